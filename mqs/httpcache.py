"""Backend answers cached and coalesced beneath the shared HTTP client, in one place.

``CachingTransport`` wraps the client's transport, so adapters (and the retries in
``adapters/http.py``, which run above the client) need not know about it:

- a search request (GET with a query string, POST with a JSON search or a form to ``.../search``)
  or a document request (GET without a query string) is keyed by method, URL, the query sorted
  by name, a hash of the body, the ``Accept`` and ``Content-Type`` headers and a hash of the
  credentials sent (the backend identity; secrets never appear in a key);
- a 200 answer that is not ``no-store``/``no-cache``/``private`` and not larger than
  ``max_body_bytes`` is cached for ``search_ttl_s``/``item_ttl_s`` (capped by ``max-age``);
- identical requests in flight at the same time cause one upstream request (single-flight):
  the others wait for its answer, or its transport error.

Anything else (token requests, other methods, a request saying ``Cache-Control: no-cache``)
passes straight through.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from typing import cast

import httpx
import orjson

from mqs.cache import Cache
from mqs.config import CacheConfig
from mqs.metrics import record_cache

_MAGIC = b"MQS1"
_DROPPED = {b"connection", b"keep-alive", b"transfer-encoding", b"set-cookie", b"content-length"}
_CREDENTIALS = ("authorization", "proxy-authorization", "cookie")
_MAX_AGE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*\"?(\d+)")
MEMO_S = 1.0  # a cached answer stays with the finished flight this long (in-process)


@dataclass(frozen=True)
class CachePolicy:
    search_ttl_s: float = 30.0
    item_ttl_s: float = 300.0
    max_body_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_config(cls, config: CacheConfig) -> CachePolicy:
        return cls(config.search_ttl_s, config.item_ttl_s, config.max_body_bytes)

    def ttl(self, request: httpx.Request) -> float | None:
        """How long this request's answer may be kept; None: not a search or document."""
        if _directives(request.headers) & {"no-cache", "no-store"}:
            return None
        if request.method == "GET":
            return self.search_ttl_s if request.url.query else self.item_ttl_s
        if request.method == "POST" and _is_search_body(request):
            return self.search_ttl_s
        return None


def _directives(headers: httpx.Headers) -> set[str]:
    value = ",".join(headers.get_list("cache-control")).lower()
    return {part.split("=", 1)[0].strip() for part in value.split(",") if part.strip()}


def _is_search_body(request: httpx.Request) -> bool:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "application/json":
        return True  # STAC API POST /search (and its next links)
    return kind == "application/x-www-form-urlencoded" and request.url.path.endswith("/search")


def _layer(request: httpx.Request) -> str:
    """The cache metrics' layer: a search page or a document (GET without a query)."""
    document = request.method == "GET" and not request.url.query
    return "backend-document" if document else "backend-search"


def _body(request: httpx.Request) -> bytes | None:
    try:
        return request.content
    except httpx.RequestNotRead:
        return None  # a streamed body: not cacheable


def request_key(request: httpx.Request, body: bytes) -> str:
    """The exact normalised request, hashed (credentials only as a hash of a hash)."""
    url = request.url
    query = sorted(url.params.multi_items(), key=lambda pair: pair[0])  # stable: keeps repeats
    secrets = "\n".join(f"{h}:{v}" for h in _CREDENTIALS for v in request.headers.get_list(h))
    identity = hashlib.sha256(secrets.encode()).hexdigest() if secrets else "-"
    parts = [
        request.method,
        f"{url.scheme}://{url.netloc.decode('ascii')}{url.raw_path.split(b'?', 1)[0].decode()}",
        str(httpx.QueryParams(tuple(query))),
        hashlib.sha256(body).hexdigest(),
        request.headers.get("accept", ""),
        request.headers.get("content-type", ""),
        identity,
    ]
    return "http:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Stored:
    """An answer read in full: status, headers, raw (still content-encoded) body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    @classmethod
    def of(cls, response: httpx.Response, body: bytes) -> Stored:
        kept = tuple((k, v) for k, v in response.headers.raw if k.lower() not in _DROPPED)
        return cls(response.status_code, kept, body)

    def response(self) -> httpx.Response:
        headers = [*self.headers, (b"content-length", str(len(self.body)).encode())]
        return httpx.Response(self.status, headers=headers, stream=httpx.ByteStream(self.body))

    def ttl(self, ttl_s: float) -> float:
        """How long it may be cached (0: not at all)."""
        if self.status != 200 or ttl_s <= 0:
            return 0.0  # nothing to check (parsing a large page costs milliseconds)
        headers = httpx.Headers(list(self.headers))
        if _directives(headers) & {"no-store", "no-cache", "private"}:
            return 0.0
        if not self._well_formed(headers):
            return 0.0  # a broken answer is that backend's error now, not for the next TTL
        ages = dict(_MAX_AGE.findall(",".join(headers.get_list("cache-control")).lower()))
        age = ages.get("s-maxage", ages.get("max-age"))  # a shared cache obeys s-maxage first
        return min(ttl_s, float(age)) if age is not None else ttl_s

    def _well_formed(self, headers: httpx.Headers) -> bool:
        """Not an HTML error page; JSON that parses (XML is checked by its adapter)."""
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind in ("text/html", "application/xhtml+xml"):
            return False
        if not kind.endswith("json"):
            return True
        try:
            orjson.loads(self.response().read())
        except (orjson.JSONDecodeError, httpx.DecodingError):
            return False
        return True

    def encode(self) -> bytes:
        head = orjson.dumps(
            [self.status, [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers]]
        )
        return _MAGIC + len(head).to_bytes(4, "big") + head + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Stored | None:
        """None for anything that is not an encoded answer (a foreign or damaged value)."""
        if not raw.startswith(_MAGIC) or len(raw) < 8:
            return None
        size = int.from_bytes(raw[4:8], "big")
        try:
            status, headers = orjson.loads(raw[8 : 8 + size])
            pairs = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            return None
        if not isinstance(status, int) or len(raw) < 8 + size:
            return None
        return cls(status, pairs, raw[8 + size :])


@dataclass(frozen=True)
class _Failed:
    error: Exception


class _Signal(Enum):
    RETRY = "the leader was cancelled: try again"
    UNSHARED = "too large to share: send your own request"


Outcome = Stored | _Failed | _Signal


class _Rest(httpx.AsyncByteStream):
    """An answer too large to keep: the chunks read so far, then the rest of the upstream."""

    def __init__(self, head: list[bytes], rest: AsyncIterator[bytes], upstream: httpx.Response):
        self._head, self._rest, self._upstream = head, rest, upstream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._head:
            yield chunk
        async for chunk in self._rest:
            yield chunk

    async def aclose(self) -> None:
        await self._upstream.aclose()


class CachingTransport(httpx.AsyncBaseTransport):
    """Cache and single-flight for backend answers, around the client's real transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport, cache: Cache, policy: CachePolicy):
        self._inner, self._cache, self._policy = inner, cache, policy
        self._flights: dict[str, asyncio.Future[Outcome]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ttl = self._policy.ttl(request)
        body = _body(request) if ttl is not None else None
        if ttl is None or body is None:
            return await self._inner.handle_async_request(request)
        key = request_key(request, body)
        while (flight := self._flights.get(key)) is not None:
            outcome = await asyncio.shield(flight)  # a waiter's cancellation is its own
            if outcome is not _Signal.RETRY:
                record_cache(_layer(request), "coalesced")
                return await self._follow(request, outcome)
        return await self._lead(request, key, ttl)

    async def _follow(self, request: httpx.Request, outcome: Outcome) -> httpx.Response:
        if isinstance(outcome, Stored):
            return outcome.response()
        if isinstance(outcome, _Failed):
            error = outcome.error
            if isinstance(error, httpx.RequestError):
                raise type(error)(str(error), request=request) from error
            raise error
        return await self._inner.handle_async_request(request)

    async def _lead(self, request: httpx.Request, key: str, ttl_s: float) -> httpx.Response:
        """Look the answer up, else ask upstream; meanwhile identical requests wait for it."""
        flight: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        outcome: Outcome = _Signal.RETRY  # unless the leader gets an answer or an error
        memo = 0.0
        try:
            stored = await self._lookup(key, ttl_s)
            if ttl_s > 0:
                record_cache(_layer(request), "miss" if stored is None else "hit")
            if stored is not None:
                outcome = stored  # a hit, shared with whoever waits for it
                return stored.response()
            response, outcome = await self._fetch(request)
            flight.set_result(outcome)
            if isinstance(outcome, Stored) and (keep := outcome.ttl(ttl_s)) > 0:
                memo = min(keep, MEMO_S)  # bridges the write below and a shared cache's latency
                await self._cache.set(key, outcome.encode(), keep)
            return response
        except Exception as exc:
            outcome = _Failed(exc)
            raise
        finally:
            if not flight.done():
                flight.set_result(outcome)
            self._land(key, flight, memo)

    async def _lookup(self, key: str, ttl_s: float) -> Stored | None:
        if ttl_s <= 0:
            return None
        cached = await self._cache.get(key)
        return Stored.decode(cached) if cached is not None else None

    def _land(self, key: str, flight: asyncio.Future[Outcome], memo_s: float) -> None:
        def remove() -> None:
            if self._flights.get(key) is flight:
                del self._flights[key]

        if memo_s > 0:
            asyncio.get_running_loop().call_later(memo_s, remove)
        else:
            remove()

    async def _fetch(self, request: httpx.Request) -> tuple[httpx.Response, Outcome]:
        """The upstream answer, read in full unless it is larger than ``max_body_bytes``."""
        upstream = await self._inner.handle_async_request(request)
        stream = cast(httpx.AsyncByteStream, upstream.stream)
        chunks: list[bytes] = []
        size = 0
        try:
            chunk_iter = stream.__aiter__()
            async for chunk in chunk_iter:
                chunks.append(chunk)
                size += len(chunk)
                if size > self._policy.max_body_bytes:
                    rest = _Rest(chunks, chunk_iter, upstream)
                    passed = httpx.Response(
                        upstream.status_code,
                        headers=upstream.headers.raw,
                        stream=rest,
                        extensions=upstream.extensions,
                    )
                    return passed, _Signal.UNSHARED
        except BaseException:
            await upstream.aclose()
            raise
        await upstream.aclose()
        stored = Stored.of(upstream, b"".join(chunks))
        return stored.response(), stored

    async def aclose(self) -> None:
        await self._inner.aclose()
