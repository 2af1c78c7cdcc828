"""The caching, single-flight transport beneath the gateway's client, against real ASGI peers.

Each test talks through ``CachingTransport`` to a small Starlette app (served with
``httpx.ASGITransport``) that answers with what the test asks for and counts what reached it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import Archive, MakeFederation
from factories import series
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.faults import Fault, Faults
from mqs.cache import MemoryCache
from mqs.config import ConfigError, Settings, load_config, parse_config
from mqs.httpcache import CachePolicy, CachingTransport, Stored
from mqs.serving import bound_socket, url_of

BASE = "http://backend.test"


class Peer:
    """A backend answering ``/answer?status=..&cc=..&size=..``; counts each request it got."""

    def __init__(self, gzip: bool = False) -> None:
        self.hits: Counter[str] = Counter()
        self.release = asyncio.Event()
        self.release.set()
        routes = [Route("/{path:path}", self.answer, methods=["GET", "POST"])]
        middleware = [Middleware(GZipMiddleware, minimum_size=100)] if gzip else []
        self.app = Starlette(routes=routes, middleware=middleware)

    async def answer(self, request: Request) -> Response:
        body = await request.body()
        self.hits[f"{request.method} {request.url.path}?{request.url.query} {body!r}"] += 1
        await self.release.wait()
        params = request.query_params
        headers = {"Cache-Control": params["cc"]} if "cc" in params else {}
        size = int(params.get("size", "0"))
        payload = (f"{request.method} {request.url} {sum(self.hits.values())} ".encode()).ljust(
            size, b"x"
        )
        return Response(payload, int(params.get("status", "200")), headers=headers)

    @property
    def total(self) -> int:
        return sum(self.hits.values())


class KeyLog(MemoryCache):
    """The in-memory cache, also remembering every key and value written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[str, bytes] = {}

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self.written[key] = value
        await super().set(key, value, ttl_s)


def client(peer: Peer, cache: MemoryCache, **policy: Any) -> httpx.AsyncClient:
    transport = CachingTransport(httpx.ASGITransport(app=peer.app), cache, CachePolicy(**policy))
    return httpx.AsyncClient(transport=transport, base_url=BASE)


async def twice(http: httpx.AsyncClient, method: str, url: str, **kw: Any) -> list[bytes]:
    return [(await http.request(method, url, **kw)).content for _ in range(2)]


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ("q=1", True),
        ("q=1&cc=public,%20max-age%3D60", True),
        ("q=1&cc=no-store", False),
        ("q=1&cc=private", False),
        ("q=1&cc=no-cache", False),
        ("q=1&cc=max-age%3D0", False),
        ("q=1&cc=max-age%3D60,%20s-maxage%3D0", False),
        ("q=1&status=404", False),
        ("q=1&status=500", False),
        ("q=1&status=503", False),
        ("q=1&size=5000", False),  # larger than max_body_bytes below
        ("q=1&size=4000", True),
    ],
)
async def test_only_fresh_successful_answers_of_bounded_size_are_kept(
    query: str, kept: bool
) -> None:
    peer = Peer()
    async with client(peer, MemoryCache(), max_body_bytes=4096) as http:
        first, second = await twice(http, "GET", f"/search?{query}")
    assert peer.total == (1 if kept else 2)
    assert (first == second) is kept  # each upstream answer says how many requests it saw
    assert first.startswith(b"GET ") and len(first) >= int(query.partition("size=")[2] or 0)


async def test_an_encoded_answer_is_kept_as_sent_and_decoded_on_every_read() -> None:
    peer, cache = Peer(gzip=True), KeyLog()
    async with client(peer, cache) as http:
        first, second = await twice(http, "GET", "/search?q=1&size=30000")
    assert peer.total == 1 and first == second and len(first) == 30000
    assert [len(v) < 3000 for v in cache.written.values()] == [True]  # still gzip-encoded


async def test_the_key_is_the_normalised_request_and_never_holds_a_secret() -> None:
    peer, cache = Peer(), KeyLog()
    async with client(peer, cache) as http:
        await twice(http, "GET", "/search?a=1&b=2&b=3")
        await http.get("/search?b=2&b=3&a=1")  # same request, parameters in another order
        await http.get("/search?a=1&b=3&b=2")  # repeated parameters keep their order
        await http.get("/search?a=1&b=2&b=3", headers={"Accept": "application/xml"})
        for secret in ("Bearer s3cr3t-one", "Bearer s3cr3t-two"):
            await twice(http, "GET", "/search?a=1&b=2&b=3", headers={"Authorization": secret})
    assert peer.total == 5  # plain, reordered repeat, other Accept, two credentials
    assert len(cache.written) == 5
    assert not any(b"s3cr3t" in key.encode() for key in cache.written)
    assert not any(b"s3cr3t" in value for value in cache.written.values())


async def test_searches_and_documents_are_kept_but_token_and_other_posts_are_not() -> None:
    peer = Peer()
    async with client(peer, MemoryCache(), search_ttl_s=60, item_ttl_s=0) as http:
        await twice(http, "POST", "/search", json={"limit": 1})
        await twice(http, "POST", "/search", json={"limit": 2})
        await twice(http, "POST", "/dhus/search", data={"q": "*"})  # an OpenSearch POST
        await twice(http, "POST", "/realms/x/token", data={"grant_type": "password"})
        await twice(
            http, "POST", "/search", content=b"<xml/>", headers={"Content-Type": "text/xml"}
        )
        await twice(http, "GET", "/collections/s2")  # a document: item_ttl_s is 0
        await twice(http, "GET", "/search?q=1", headers={"Cache-Control": "no-cache"})
    kept = {"POST /search? b'{\"limit\":1}'", "POST /search? b'{\"limit\":2}'"}
    kept.add("POST /dhus/search? b'q=%2A'")
    assert {hit for hit, n in peer.hits.items() if n == 1} == kept
    assert sum(peer.hits.values()) == len(kept) + 4 * 2


async def test_identical_concurrent_requests_make_one_upstream_request() -> None:
    peer = Peer()
    peer.release.clear()
    async with client(peer, MemoryCache(), search_ttl_s=0) as http:  # nothing is cached
        tasks = [asyncio.create_task(http.get("/search?q=1")) for _ in range(30)]
        other = asyncio.create_task(http.get("/search?q=2"))
        while peer.total < 2:
            await asyncio.sleep(0)
        peer.release.set()
        answers = await asyncio.gather(*tasks, other)
        assert peer.total == 2
        assert len({a.content for a in answers[:-1]}) == 1
        await http.get("/search?q=1")  # not cached (ttl 0): the flight is over, asked again
    assert peer.total == 3


async def test_a_cancelled_leader_hands_over_to_a_waiting_request() -> None:
    peer = Peer()
    peer.release.clear()
    async with client(peer, MemoryCache()) as http:
        leader = asyncio.create_task(http.get("/search?q=1"))
        while peer.total < 1:
            await asyncio.sleep(0)
        followers = [asyncio.create_task(http.get("/search?q=1")) for _ in range(3)]
        await asyncio.sleep(0)
        leader.cancel()
        peer.release.set()
        answers = await asyncio.gather(*followers)
    assert leader.cancelled() and [a.status_code for a in answers] == [200] * 3
    assert len({a.content for a in answers}) == 1
    assert peer.total == 2  # one of the followers asked for all three


async def test_concurrent_requests_share_a_transport_error() -> None:
    sock = bound_socket()
    url = url_of(sock)
    sock.close()  # nothing listens there
    inner = httpx.AsyncHTTPTransport()
    transport = CachingTransport(inner, MemoryCache(), CachePolicy())
    async with httpx.AsyncClient(transport=transport) as http:
        results = await asyncio.gather(
            *(http.get(f"{url}/search?q=1") for _ in range(10)), return_exceptions=True
        )
    assert all(isinstance(r, httpx.ConnectError) for r in results), results


@pytest.mark.parametrize(
    "raw", [b"", b"MQS1", b"MQS1\x00\x00\x00\x05[1,2", b"MQS1\x00\x00\x10\x00[]", b"junk"]
)
def test_a_damaged_cache_value_is_a_miss(raw: bytes) -> None:
    assert Stored.decode(raw) is None


def test_a_stored_answer_survives_encoding() -> None:
    stored = Stored(200, ((b"content-type", b"application/json"),), b'{"a": 1}')
    assert Stored.decode(stored.encode()) == stored


def test_cache_config_validates_and_the_url_override_keeps_the_ttls(tmp_path: Path) -> None:
    backend = {"id": "b", "kind": "stac", "url": "http://x", "collections": ["c"]}
    base = {"collections": {"c": {}}, "backends": [backend]}
    config = parse_config(base | {"cache": {"search_ttl_s": 5, "item_ttl_s": 0}})
    assert CachePolicy.from_config(config.cache) == CachePolicy(5, 0, 4 * 1024 * 1024)
    with pytest.raises(ConfigError, match=r"cache\.search_ttl_s"):
        parse_config(base | {"cache": {"search_ttl_s": -1}})
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(base | {"cache": {"search_ttl_s": 5}}))
    loaded = load_config(path, Settings(cache_url="redis://r:6379/0"))
    assert (loaded.cache.url, loaded.cache.search_ttl_s) == ("redis://r:6379/0", 5)


@pytest.mark.parametrize("fault", ["malformed", "html"])
def test_a_broken_answer_is_not_replayed_from_the_cache(
    make_federation: MakeFederation, fault: Fault
) -> None:
    """A corrupt or HTML 200 is that search's failure, not the next searches' for a TTL."""
    faults = Faults()
    items = series(3)
    fed = make_federation(
        cache={"search_ttl_s": 60},
        a=Archive(items, faults=faults),
        b=Archive(items[:1]),
    )
    faults.set(fault, times=1)
    with httpx.Client(timeout=30) as client:
        first = client.get(f"{fed.url}/search").json()
        second = client.get(f"{fed.url}/search").json()
        third = client.get(f"{fed.url}/search").json()
    assert first["federation:missing"] == ["a"]
    assert "federation:missing" not in second
    assert [f["id"] for f in second["features"]] == [i["id"] for i in items]
    for page in (second, third):
        page.pop("federation:report")  # per-backend latencies differ between the two
    assert third == second and faults.requests == 2  # the good answer is cached
