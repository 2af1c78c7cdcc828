"""Operations endpoints and request context: ``/_mgmt/ready``, request ids, search log lines."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import COLLECTIONS, TEST_SECRET, Archive, MakeFederation
from factories import series
from oidc_issuer import serving_issuers
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.registry import EMULATORS
from mqs.app import create_app
from mqs.config import Settings, parse_config
from mqs.logs import configure_logging, get_logger, request_id
from mqs.serving import bound_socket, serving_in_thread, url_of

S2 = series(4)
SHARED_REDIS = "redis://127.0.0.1:6379/11"
NOTHING_LISTENS = "redis://127.0.0.1:9/0"  # the discard port: connections are refused


class HeaderRecorder:
    """Passes requests to the emulator and keeps each request's headers (the backend's view)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


@pytest.fixture
def recorded() -> Iterator[tuple[str, HeaderRecorder]]:
    """A gateway over one emulated archive whose received headers are recorded."""
    backend = HeaderRecorder(EMULATORS["stac"](S2))
    backend_sock, gateway_sock = bound_socket(), bound_socket()
    config = parse_config(
        {
            "collections": {cid: {"title": cid} for cid in COLLECTIONS},
            "cache": {"search_ttl_s": 0, "item_ttl_s": 0},
            "backends": [
                {
                    "id": "a",
                    "kind": "stac",
                    "url": url_of(backend_sock),
                    "collections": list(COLLECTIONS),
                }
            ],
        }
    )
    app = create_app(config, Settings(token_secret=TEST_SECRET))
    with serving_in_thread([(backend, backend_sock), (app, gateway_sock)]) as (_, url):
        yield url, backend


def test_request_id_is_returned_and_sent_to_backends(
    recorded: tuple[str, HeaderRecorder],
) -> None:
    url, backend = recorded
    given = "req-2021.10.24:abc_1"
    response = httpx.get(f"{url}/search", headers={"X-Request-ID": given})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == given
    assert [h.get("x-request-id") for h in backend.seen] == [given]


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("two words", id="space"),
        pytest.param("x" * 200, id="too-long"),
        pytest.param("<script>", id="markup"),
        pytest.param(None, id="absent"),
    ],
)
def test_an_insane_request_id_is_replaced(
    recorded: tuple[str, HeaderRecorder], given: str | None
) -> None:
    url, backend = recorded
    headers = {"X-Request-ID": given} if given is not None else {}
    response = httpx.get(f"{url}/search", headers=headers)
    made = response.headers["x-request-id"]
    assert made != given and len(made) == 32 and int(made, 16) >= 0
    assert backend.seen[-1]["x-request-id"] == made


def test_every_answer_has_a_request_id(make_federation: MakeFederation) -> None:
    fed = make_federation(a=Archive(S2))
    for path in ("/", "/collections", "/_mgmt/health", "/nope", "/search?bbox=1,2"):
        response = httpx.get(f"{fed.url}{path}")
        assert len(response.headers["x-request-id"]) == 32, path


@pytest.mark.parametrize(
    ("cache_url", "status", "cache"),
    [
        pytest.param("memory://", 200, "memory", id="memory"),
        pytest.param(SHARED_REDIS, 200, "redis", id="redis"),
        pytest.param(NOTHING_LISTENS, 503, "unreachable", id="redis-down"),
    ],
)
def test_readiness(
    make_federation: MakeFederation, cache_url: str, status: int, cache: str
) -> None:
    fed = make_federation(a=Archive(S2), b=Archive([], down=True), cache={"url": cache_url})
    response = httpx.get(f"{fed.url}/_mgmt/ready")
    assert response.status_code == status
    body = response.json()
    assert body["cache"] == cache
    assert body["config"] == "loaded"
    assert body["status"] == ("ready" if status == 200 else "not-ready")
    assert body["backends"] == {"a": "closed", "b": "closed"}


def test_readiness_lists_each_backends_breaker(make_federation: MakeFederation) -> None:
    fed = make_federation(
        a=Archive(S2), b=Archive([], down=True), server={"breaker": {"failures": 1}}
    )
    assert httpx.get(f"{fed.url}/search").status_code == 200
    response = httpx.get(f"{fed.url}/_mgmt/ready")
    assert response.status_code == 200  # one backend down does not take the instance out
    assert response.json()["backends"] == {"a": "closed", "b": "open"}
    # liveness is unchanged: the breakers' view
    health = httpx.get(f"{fed.url}/_mgmt/health").json()
    assert health["status"] == "degraded"


def test_one_log_line_per_search_with_each_backends_outcome(
    make_federation: MakeFederation, caplog: pytest.LogCaptureFixture
) -> None:
    fed = make_federation(a=Archive(S2), b=Archive([], down=True))
    caplog.set_level(logging.INFO, logger="mqs.search")
    response = httpx.post(f"{fed.url}/search", json={"collections": ["sentinel-2-l2a"]})
    assert response.status_code == 200
    lines = [r for r in caplog.records if r.name == "mqs.search"]
    assert len(lines) == 1
    line: Any = lines[0]
    assert line.getMessage() == "search"
    assert line.collections == ["sentinel-2-l2a"] and line.items == 4 and line.first_page
    assert line.backends["a"]["status"] == "ok" and line.backends["a"]["items"] == 4
    assert line.backends["b"]["status"] == "unavailable" and line.backends["b"]["items"] == 0
    assert set(line.backends["b"]) == {"status", "items", "requests", "ms"}


def test_metrics_are_prometheus_text(make_federation: MakeFederation) -> None:
    fed = make_federation(a=Archive(S2))
    response = httpx.get(f"{fed.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE mqs_http_requests_total counter" in response.text
    assert "/metrics" not in httpx.get(f"{fed.url}/api").text  # not part of the STAC API


def test_request_logging_never_shows_query_strings(
    make_federation: MakeFederation, caplog: pytest.LogCaptureFixture
) -> None:
    fed = make_federation(a=Archive(S2))
    caplog.set_level(logging.INFO, logger="mqs.access")
    params = {"collections": "sentinel-2-l2a", "limit": "1"}
    assert httpx.get(f"{fed.url}/search", params=params).status_code == 200
    access: list[Any] = [r for r in caplog.records if r.name == "mqs.access"]
    assert [(r.route, r.path, r.status) for r in access] == [("/search", "/search", 200)]
    assert "sentinel-2-l2a" not in caplog.text


def test_probes_and_metrics_need_no_token_and_are_not_rate_limited(
    make_federation: MakeFederation,
) -> None:
    """Kubelets and Prometheus cannot sign in: ops paths stay open when users must."""
    with serving_issuers(1) as (issuer,):
        issuers = [{"url": issuer.url, "audience": "mqs"}]
        limit = {"requests_per_s": 0.01, "burst": 1, "anonymous_burst": 1}
        fed = make_federation(
            auth={"anonymous": False, "issuers": issuers, "rate_limit": limit}, a=Archive(S2)
        )
        assert httpx.get(f"{fed.url}/search").status_code == 401
        for _ in range(3):
            for path in ("/metrics", "/_mgmt/ready", "/_mgmt/ping"):
                assert httpx.get(f"{fed.url}{path}").status_code == 200, path


def test_json_log_lines_carry_the_request_id_and_no_credentials(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("info", "json")
        token = request_id.set("rid-1")
        logging.getLogger("mqs.cache").warning("down: %s", "redis://user:REDISPW@h:6379/0")
        get_logger("mqs.test").info(
            "asked",
            url="https://robot:URLPW@archive.example/search?apikey=KEYSECRET&q=1",
            authorization="Bearer TOKENSECRET",
            password_env_value="ENVSECRET",
        )
        request_id.reset(token)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines()]
    assert [line["event"] for line in lines] == ["down: redis://h:6379/0", "asked"]
    assert all(line["request_id"] == "rid-1" and line["pid"] for line in lines)
    assert lines[1]["url"] == "https://archive.example/search"
    for secret in ("REDISPW", "URLPW", "KEYSECRET", "TOKENSECRET", "ENVSECRET"):
        assert secret not in err


def test_credentials_in_messages_nested_fields_and_exceptions_are_not_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    basic = base64.b64encode(b"robot:BASICPW-123").decode()
    try:
        configure_logging("info", "json")
        # a library writing a request's headers out in its message
        logging.getLogger("some.library").warning("retrying with Authorization: Bearer HDRSECRET1")
        logging.getLogger("some.library").warning("sent %s", {"password": "FORMPW-9", "n": 1})
        get_logger("mqs.test").info(  # credentials one level down, in a field with a plain name
            "asked", request={"headers": {"Authorization": f"Basic {basic}"}, "n": 1}
        )
        try:
            raise RuntimeError("backend refused 'Bearer EXCSECRET99'")
        except RuntimeError:
            logging.getLogger("mqs.test").exception("download failed")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines()]
    assert len(lines) == 4
    assert lines[0]["event"] == "retrying with Authorization: Bearer [redacted]"
    assert lines[1]["event"] == "sent {'password': '[redacted]', 'n': 1}"
    assert lines[2]["request"] == {"headers": {"Authorization": "[redacted]"}, "n": 1}
    assert "RuntimeError" in lines[3]["exception"]
    for secret in ("HDRSECRET1", "FORMPW", basic, "BASICPW", "EXCSECRET99"):
        assert secret not in err
