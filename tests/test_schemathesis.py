"""Property-based API fuzzing: schemathesis, driven by ``openapi/openapi.json``, on the demo.

Every operation of the committed OpenAPI document gets generated requests, valid and invalid
(positive and negative generation), sent over loopback to the gateway over the demo
federation's seven emulated archives. Whatever a request holds, the gateway answers without
a server error, and every 4xx is a STAC error body. The run is bounded and derandomised so CI
is stable (``MQS_FUZZ_EXAMPLES`` per operation, default 20); ``make fuzz`` runs a longer one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from mqs.app import create_app
from mqs.config import Settings
from mqs.demo import demo_federation
from mqs.serving import bound_socket, serving_in_thread

OPENAPI = Path(__file__).parent.parent / "openapi" / "openapi.json"
EXAMPLES = int(os.environ.get("MQS_FUZZ_EXAMPLES", "20"))

schema = schemathesis.openapi.from_path(OPENAPI)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config, apps = demo_federation(Path(tmp_path_factory.mktemp("fuzz-demo")))
    app = create_app(config, Settings(token_secret="fuzz-test"))
    with serving_in_thread([*apps, (app, bound_socket())]) as urls:
        yield urls[-1]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_every_4xx_is_a_stac_error(case: Any, demo_url: str) -> None:
    response = case.call(base_url=demo_url, timeout=30)
    status = response.status_code
    where = f"{case.method} {case.formatted_path} -> {status}: {response.text[:300]}"
    assert status < 500, where
    if status >= 400 and case.method != "HEAD":  # a HEAD answer has no body
        content_type = response.headers.get("content-type") or [""]  # header -> its values
        assert content_type[0].startswith("application/json"), where
        body = orjson.loads(response.content or b"null")
        assert isinstance(body, dict), where
        assert isinstance(body.get("code"), str) and body["code"], where
        assert isinstance(body.get("description"), str) and body["description"], where
