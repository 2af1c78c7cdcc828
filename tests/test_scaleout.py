"""Several gateway processes on one Redis: shared paging, shared cache, metrics, shutdown.

Real processes (``python -m mqs.cli serve``, one of them with ``--workers 2``) on their own
ports, the same federation file and ``MQS_TOKEN_SECRET``, the cache on the real Redis at
127.0.0.1:6379; the emulated backends are served by this test on loopback, and their request
counters show what reached them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from factories import series
from prometheus_client.parser import text_string_to_metric_families

from adapters.faults import FaultInjector, Faults
from adapters.registry import EMULATORS
from mqs.serving import bound_socket, serving_in_thread

S2 = series(12)  # products 0..11, one a day
L2A = "sentinel-2-l2a"
REDIS_URL = "redis://127.0.0.1:6379/11"
SECRET_PASSWORD = "pw-that-must-never-be-logged-7f3a"
START_TIMEOUT_S = 90.0  # generous: on a loaded machine three interpreters start at once


@dataclass
class Gateway:
    """A running ``mqs serve`` process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """Its log lines: each must be one JSON object."""
        text = self.log.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_config(path: Path, backends: dict[str, str], cache_url: str) -> Path:
    config = {
        "server": {"breaker": {"failures": 0}},
        "cache": {"url": cache_url, "search_ttl_s": 120, "item_ttl_s": 120},
        "collections": {L2A: {"title": "Sentinel-2 L2A"}},
        "backends": [
            {
                "id": bid,
                "kind": "stac",
                "url": url,
                "priority": 10 - i,
                "collections": [L2A],
                "auth": {
                    "type": "basic",
                    "username_env": "MQS_TEST_USER",
                    "password_env": "MQS_TEST_PASSWORD",
                },
            }
            for i, (bid, url) in enumerate(backends.items())
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


StartGateway = Callable[..., Gateway]


@contextmanager
def _gateways(tmp: Path) -> Iterator[StartGateway]:
    """``start(config, workers=1, *extra_args)`` -> a gateway process, starting up."""
    started: list[Gateway] = []
    env = os.environ | {
        "MQS_TOKEN_SECRET": "scale-out-test-secret",
        "MQS_TEST_USER": "mqs",
        "MQS_TEST_PASSWORD": SECRET_PASSWORD,
        "MQS_LOG_LEVEL": "info",
        "MQS_LOG_FORMAT": "json",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("MQS_CACHE_URL", None)

    def start(config: Path, workers: int = 1, *extra: str) -> Gateway:
        port = _free_port()
        log = tmp / f"gateway-{port}.log"
        command = [sys.executable, "-m", "mqs.cli", "serve", "--config", str(config)]
        command += ["--port", str(port), "--workers", str(workers), *extra]
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        gateway = Gateway(f"http://127.0.0.1:{port}", process, log)
        started.append(gateway)
        return gateway

    try:
        yield start
    finally:
        for gateway in started:
            if gateway.process.poll() is None:
                gateway.process.send_signal(signal.SIGTERM)
        for gateway in started:
            try:
                gateway.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gateway.process.kill()
                gateway.process.wait()


@dataclass
class Cluster:
    """Two gateway instances (one with two workers) over two emulated archives."""

    one: Gateway
    two: Gateway
    emulators: dict[str, Any]
    faults: Faults  # archive a's behaviour (normal unless a test changes it)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("scaleout")
    faults = Faults()
    emulators = {"a": EMULATORS["stac"](S2[:8]), "b": EMULATORS["stac"](S2[4:])}
    apps = [
        (FaultInjector(emulators["a"], faults), bound_socket()),
        (emulators["b"], bound_socket()),
    ]
    with serving_in_thread(apps) as urls, _gateways(tmp) as start:
        backends = dict(zip(emulators, urls, strict=True))
        config = _write_config(tmp / "federation.yaml", backends, REDIS_URL)
        one = start(config, 1, "--shutdown-timeout", "20")
        two = start(config, 2)  # two worker processes behind one port
        _wait_ready(one)
        _wait_ready(two)
        yield Cluster(one, two, emulators, faults)


def _own_search() -> dict[str, Any]:
    """A search of its own: no answer an earlier search left in Redis matches it."""
    end = f"2021-12-{random.randrange(10, 31)}T{random.randrange(24):02d}:"
    end += f"{random.randrange(60):02d}:{random.randrange(60):02d}.{random.randrange(1000):03d}Z"
    return {"collections": [L2A], "datetime": f"2021-01-01T00:00:00Z/{end}"}


def _wait_ready(gateway: Gateway) -> None:
    give_up = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < give_up:
        if gateway.process.poll() is not None:
            raise AssertionError(f"gateway exited: {gateway.log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{gateway.url}/_mgmt/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gateway not ready: {gateway.log.read_text()[-2000:]}")


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _next(page: dict[str, Any]) -> dict[str, Any] | None:
    return next((link for link in page["links"] if link["rel"] == "next"), None)


def _follow(link: dict[str, Any]) -> httpx.Response:
    """A ``next`` link as a client follows it (POST links carry the body with the token)."""
    if link.get("method") == "POST":
        return httpx.post(link["href"], json=link["body"])
    return httpx.get(link["href"])


def test_two_processes_share_paging_cache_and_metrics(cluster: Cluster) -> None:
    one, two, emulators = cluster.one, cluster.two, cluster.emulators
    search = _own_search()
    requests = {"X-Request-ID": "scaleout-test-1"}

    # a search begun on one instance pages to the end on the other
    first = httpx.post(f"{one.url}/search", json=search | {"limit": 5}, headers=requests)
    assert first.status_code == 200
    assert first.headers["x-request-id"] == "scaleout-test-1"
    ids = [f["id"] for f in first.json()["features"]]
    asked = {bid: emulators[bid].state.requests for bid in emulators}
    assert all(asked.values())
    link = _next(first.json())
    pages_on_two = 0
    assert link is not None and link["href"].startswith(one.url)
    link["href"] = two.url + link["href"].removeprefix(one.url)
    while link is not None:
        assert link["href"].startswith(two.url)  # next links name the instance that answered
        page = _follow(link)
        assert page.status_code == 200, page.text
        ids += [f["id"] for f in page.json()["features"]]
        pages_on_two += 1
        link = _next(page.json())
    assert pages_on_two == 2
    assert ids == [item["id"] for item in S2]  # all twelve products, newest first, each once

    # a backend answer cached by one instance is served by the other
    asked = {bid: emulators[bid].state.requests for bid in emulators}
    again = httpx.post(f"{two.url}/search", json=search | {"limit": 5})
    assert [f["id"] for f in again.json()["features"]] == ids[:5]
    assert {bid: emulators[bid].state.requests for bid in emulators} == asked

    # a few more searches on the two-worker instance: one scrape adds up both workers
    for _ in range(6):
        assert httpx.get(f"{two.url}/search", params={"collections": L2A}).status_code == 200
    one_metrics, two_metrics = _scrape(one.url), _scrape(two.url)
    searches = ("mqs_searches_total", frozenset({("collection", L2A)}))
    pages: tuple[str, frozenset[tuple[str, str]]] = ("mqs_search_pages_total", frozenset())
    assert (one_metrics[searches], one_metrics[pages]) == (1, 1)
    assert (two_metrics[searches], two_metrics[pages]) == (7, 2 + 1 + 6)
    hits = ("mqs_cache_requests_total", frozenset({("layer", "backend-search"), ("result", "hit")}))
    assert two_metrics[hits] >= 2  # the first page asked again: both backends from Redis
    for method, count in (("POST", 2 + 1), ("GET", 6)):
        route = frozenset({("route", "/search"), ("method", method), ("status", "200")})
        assert two_metrics[("mqs_http_requests_total", route)] == count

    # JSON logs: the request id on the search line, each backend's outcome, no credential
    for gateway in (one, two):
        text = gateway.log.read_text()
        assert SECRET_PASSWORD not in text
        assert "Authorization" not in text and "Basic " not in text
    line = next(x for x in one.lines() if x["event"] == "search")
    assert line["request_id"] == "scaleout-test-1"
    assert set(line["backends"]) == {"a", "b"}
    assert line["backends"]["a"]["status"] == "ok"


# Last: it stops instance one.
def test_shutdown_lets_a_search_in_flight_finish(cluster: Cluster) -> None:
    gateway, faults = cluster.one, cluster.faults
    faults.set("slow", delay_s=2.0)  # archive a answers after 2 s
    seen = faults.requests
    answer: dict[str, httpx.Response] = {}

    def search() -> None:
        answer["response"] = httpx.post(f"{gateway.url}/search", json=_own_search(), timeout=30)

    client = threading.Thread(target=search)
    client.start()
    give_up = time.monotonic() + 10
    while faults.requests == seen:  # the search has reached the slow backend
        assert time.monotonic() < give_up
        time.sleep(0.02)
    gateway.process.send_signal(signal.SIGTERM)
    client.join(timeout=30)
    response = answer["response"]
    assert response.status_code == 200
    assert response.json()["federation:report"]["a"]["status"] == "ok"
    assert len(response.json()["features"]) == 10
    # uvicorn re-raises the signal once it has shut down cleanly
    assert gateway.process.wait(timeout=20) in (0, -signal.SIGTERM)
    events = [line["event"] for line in gateway.lines()]
    shutdown = events.index("Shutting down")
    assert events.index("request", shutdown) < events.index("Application shutdown complete.")
    with pytest.raises(httpx.TransportError):  # and it no longer listens
        httpx.get(f"{gateway.url}/_mgmt/ping", timeout=2)
