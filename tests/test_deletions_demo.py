"""The demo federation publishes DeletedProducts feeds; its gateway reports them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mqs.app import create_app
from mqs.config import Settings
from mqs.demo import demo_federation
from mqs.demodata import demo_deletions, generate_catalogue
from mqs.serving import bound_socket, serving_in_thread


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config, apps = demo_federation(Path(tmp_path_factory.mktemp("demo-deletions")))
    assert config.server.deletions.enabled
    gateway = bound_socket()
    app = create_app(config, Settings(token_secret="demo-test"))
    with serving_in_thread([*apps, (app, gateway)]) as urls:
        yield urls[-1]


def test_the_demo_reports_what_its_archives_withdrew(demo: str) -> None:
    declared = demo_deletions(generate_catalogue())
    expected = {archive: len(rows) for archive, rows in declared.items()}
    deadline = time.monotonic() + 30
    body = httpx.get(f"{demo}/deletions", timeout=30).json()
    while body["counts"]["total"] < sum(expected.values()) and time.monotonic() < deadline:
        time.sleep(0.2)  # the first background sync runs at startup
        body = httpx.get(f"{demo}/deletions", timeout=30).json()
    by_backend = body["counts"]["by_backend"]
    assert {b: c["total"] for b, c in by_backend.items() if c["total"]} == expected
    assert {"replaced-by-reprocessing", "duplicate", "unknown"} <= set(body["counts"]["by_class"])
    # the withdrawn products are earlier versions: the demo's searches are unchanged
    names = {d["product"] for d in body["deletions"]}
    held = {i["id"] for items in generate_catalogue().values() for i in items}
    assert names and not names & held
