"""The shared cache of backend answers through a live gateway: single-flight, hits, Redis outages.

One emulated backend of each kind serves the same demo products behind a gateway; a counting
ASGI wrapper around each emulator records every request that reached it. The oracle for every
answer is the same search through an identical gateway that caches nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
import redis

from adapters.registry import EMULATORS
from mqs.app import create_app
from mqs.config import Settings, parse_config
from mqs.demodata import generate_products
from mqs.serving import bound_socket, serving_in_thread

PRODUCTS = generate_products(start=date(2021, 10, 1), end=date(2021, 10, 10))
KINDS = ("stac", "dhus", "cdse-odata", "resto", "terrascope")
COLLECTION = "sentinel-2-l1c"  # served by every kind
SHARED_REDIS = "redis://127.0.0.1:6379/0"
UNCACHED = {"search_ttl_s": 0, "item_ttl_s": 0}


class Counting:
    """An ASGI app counting each request (method, path, query, body) before passing it on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        body = bytearray()

        async def reading() -> Any:
            message = await receive()
            body.extend(message.get("body", b""))
            return message

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                query = scope["query_string"].decode()
                self.seen[f"{scope['method']} {scope['path']}?{query} {bytes(body)!r}"] += 1
            await send(message)

        await self.app(scope, reading, sending)


@dataclass
class Federation:
    url: str
    backends: dict[str, Counting]
    backend_urls: dict[str, str]

    def requests(self) -> dict[str, Counter[str]]:
        return {bid: Counter(c.seen) for bid, c in self.backends.items()}

    def portable(self, features: list[dict[str, Any]]) -> str:
        """The features as JSON, each backend's and the gateway's address replaced by a name."""
        text = json.dumps(features, sort_keys=True).replace(self.url, "GATEWAY")
        for bid, url in self.backend_urls.items():
            text = text.replace(url, bid.upper())
        return text


@contextmanager
def federation(cache: dict[str, Any], kinds: tuple[str, ...] = KINDS) -> Iterator[Federation]:
    """A live gateway over one emulated backend per kind, with this ``cache:`` section."""
    apps, backends, counters = [], [], {}
    for kind in kinds:
        sock = bound_socket()
        bid = kind.replace("-", "")
        counters[bid] = Counting(EMULATORS[kind](PRODUCTS))
        apps.append((counters[bid], sock))
        host, port = sock.getsockname()[:2]
        backends.append(
            {"id": bid, "kind": kind, "url": f"http://{host}:{port}", "collections": [COLLECTION]}
        )
    raw = {"cache": cache, "collections": {COLLECTION: {}}, "backends": backends}
    app = create_app(parse_config(raw), Settings(token_secret="cache-tests"))
    with serving_in_thread([*apps, (app, bound_socket())]) as urls:
        yield Federation(urls[-1], counters, dict(zip(counters, urls, strict=False)))


def search(url: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/search", params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "federation:missing" not in body, body
    return list(body["features"])


QUERY = {"collections": COLLECTION, "limit": 12, "bbox": "12,48,18,51"}


@pytest.fixture(scope="module")
def oracle() -> tuple[str, dict[str, Counter[str]]]:
    """QUERY's features and each backend's requests, from a gateway that caches nothing."""
    with federation(UNCACHED) as fed:
        features = search(fed.url, QUERY)
        assert len(features) == QUERY["limit"]
        return fed.portable(features), fed.requests()


async def concurrently(url: str, params: dict[str, Any], n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(*(client.get(f"{url}/search", params=params) for _ in range(n)))


def redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(SHARED_REDIS, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.parametrize("cache_url", ["memory://", SHARED_REDIS])
def test_concurrent_identical_searches_reach_each_backend_once(
    oracle: tuple[str, dict[str, Counter[str]]], cache_url: str
) -> None:
    if cache_url == SHARED_REDIS and not redis_reachable():
        pytest.fail("no Redis on 127.0.0.1:6379: run scripts/ensure-redis.sh")
    features, sent = oracle
    assert all(sent.values())
    with federation({"url": cache_url}) as fed:
        answers = asyncio.run(concurrently(fed.url, QUERY, 50))
        assert [a.status_code for a in answers] == [200] * 50
        assert all(fed.portable(a.json()["features"]) == features for a in answers)
        assert fed.requests() == sent  # each request of one search, each exactly once
        assert fed.portable(search(fed.url, QUERY)) == features  # again, later: from the cache
        assert fed.requests() == sent


class PrivateRedis:
    """A redis-server of this test's own, on a free port, stopped and started at will."""

    def __init__(self) -> None:
        sock = bound_socket()
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(["redis-server", *args], stdout=subprocess.DEVNULL)
        wait_until(lambda: self.keys() >= 0, "redis-server to start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def keys(self) -> int:
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                return len(client.keys("mqs:http:*"))
        except redis.RedisError:
            return -1

    def flush(self) -> None:
        with redis.Redis(port=self.port, socket_timeout=1) as client:
            client.flushall()


def wait_until(done: Callable[[], bool], what: str, step: Callable[[], None] | None = None) -> None:
    """Poll ``done`` (doing ``step`` between tries, else a short pause) for at most 20 s."""
    deadline = time.monotonic() + 20
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        (step or (lambda: time.sleep(0.05)))()


class Searcher:
    """Searches with a new limit each time (a new backend request), checking each answer."""

    def __init__(self, fed: Federation, expected: str) -> None:
        self.fed, self.expected = fed, json.loads(expected)
        self.count = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def once(self) -> None:
        with self.lock:
            self.count += 1
            limit = 1 + self.count % len(self.expected)
        try:
            features = json.loads(self.fed.portable(search(self.fed.url, QUERY | {"limit": limit})))
            if features != self.expected[:limit]:
                self.failures.append(f"limit {limit}: wrong features")
        except (AssertionError, httpx.HTTPError) as exc:
            self.failures.append(f"limit {limit}: {exc!r}"[:300])


@contextmanager
def searching_in_background(searcher: Searcher) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            searcher.once()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_down_flushed_stopped_restarted_loses_no_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kinds = ("stac", "dhus", "resto")
    with federation(UNCACHED, kinds) as plain:
        expected = plain.portable(search(plain.url, QUERY | {"limit": 100}))
    assert len(json.loads(expected)) > 20
    server = PrivateRedis()
    caplog.set_level(logging.WARNING, logger="mqs.cache")
    try:
        with federation({"url": server.url}, kinds) as fed:
            searcher = Searcher(fed, expected)
            for _ in range(5):  # Redis is down at startup
                searcher.once()
            server.start()
            wait_until(lambda: server.keys() > 0, "the cache to be used", searcher.once)
            server.flush()
            wait_until(lambda: server.keys() > 0, "the cache to refill", searcher.once)
            with searching_in_background(searcher):
                server.stop()
                stopped_at = searcher.count
                wait_until(lambda: searcher.count > stopped_at + 10, "searches while Redis is down")
                server.start()
                wait_until(lambda: server.keys() > 0, "the cache to be used again")
            assert searcher.failures == []
            assert searcher.count > 20
    finally:
        server.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "mqs.cache"]
    assert sum("unavailable" in m for m in messages) == 2, messages  # at startup, when stopped
    assert sum("available again" in m for m in messages) == 2, messages
