"""Cache of whole search pages: a repeated identical search answered without the federation.

Opt-in with ``cache.page_ttl_s`` (0, the default: off). A ``GET``/``POST /search`` or
``GET /collections/{id}/items`` answer is kept for ``page_ttl_s`` in the gateway's cache
(``memory://`` per process, or the Redis every worker and instance shares) when it is a 200
that every backend it asked answered (no ``X-MQS-Missing``: a degraded page is not repeated),
no larger than ``cache.max_body_bytes``. The key is a digest of everything the answer can depend
on: method, path, query string, body and *every* request header (``Authorization`` included, so
one user's page is never another's; ``Host``/``X-Forwarded-*`` make the links). A page served
from the cache is the same bytes, ``federation:report`` included, with ``X-MQS-Cache: hit``.

It runs inside the authentication middleware (tokens and rate limits still apply to every
request) and in front of request parsing and the federation, which is what makes a cached
search cheap (benchmarks/bench_throughput.py, B3).

Identical searches in flight at the same time (the same key) are computed once
(``cache.coalesce_pages``, on by default, whatever ``page_ttl_s`` says): the first is answered
by the federation, the others wait for it and get its bytes with ``X-MQS-Cache: coalesced``.
Beneath, the backends' answers were shared already (single flight, :mod:`mqs.httpcache`); the
page itself was then built once per waiting request, and those requests all got their answers at
the same moment, each waiting for the others' CPU (B6 with identical searches:
benchmarks/bench_latency.py). Only a page that could be kept is shared; when the first request
fails or is degraded, each waiting request is answered on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mqs.cache import Cache

_PAGES = re.compile(r"^/(search|collections/[^/]+/items)/?$")
_MAGIC = b"MQP1"
_MAX_REQUEST_BODY = 64 * 1024  # larger search bodies are not worth a key


def page_key(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"], scope.get("root_path", ""), scope["path"]):
        digest.update(str(part).encode() + b"\0")
    digest.update(bytes(scope.get("query_string", b"")) + b"\0")
    for name, value in sorted(scope.get("headers", [])):
        digest.update(bytes(name) + b":" + bytes(value) + b"\0")
    digest.update(body)
    return "mqs:page:" + digest.hexdigest()


def _encode(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    head = orjson.dumps([status, [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers]])
    return _MAGIC + len(head).to_bytes(4, "big") + head + body


def _decode(raw: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    if not raw.startswith(_MAGIC) or len(raw) < 8:
        return None
    size = int.from_bytes(raw[4:8], "big")
    try:
        status, headers = orjson.loads(raw[8 : 8 + size])
        pairs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        return None
    return int(status), pairs, raw[8 + size :]


Page = tuple[int, list[tuple[bytes, bytes]], bytes]


class PageCache:
    """Pure ASGI middleware; the cache and its settings come from the running gateway."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._flights: dict[str, asyncio.Future[Page | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = _runtime(scope)
        ttl = runtime.config.cache.page_ttl_s if runtime is not None else 0
        if (
            runtime is None
            or (ttl <= 0 and not runtime.config.cache.coalesce_pages)
            or scope["type"] != "http"
            or scope["method"] not in ("GET", "POST")
            or not _PAGES.match(str(scope["path"]))
        ):
            await self.app(scope, receive, send)
            return
        body, receive = await _read_body(receive)
        if len(body) > _MAX_REQUEST_BODY:
            await self.app(scope, receive, send)
            return
        cache: Cache = runtime.cache
        key = page_key(scope, body)
        cached = await cache.get(key) if ttl > 0 else None
        page = _decode(cached) if cached is not None else None
        if page is None and (flight := self._flights.get(key)) is not None:
            page = await asyncio.shield(flight)  # a waiter's cancellation is its own
            if page is not None:
                page = (page[0], [*page[1], (b"x-mqs-cache", b"coalesced")], page[2])
        if page is not None:
            status, headers, content = page
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})
            return
        await self._answer_and_share(scope, receive, send, (cache, key, ttl))

    async def _answer_and_share(
        self, scope: Scope, receive: Receive, send: Send, where: tuple[Cache, str, float]
    ) -> None:
        cache, key, ttl = where
        if key in self._flights:  # another request leads: answer this one on its own
            await self.app(scope, receive, send)
            return
        flight: asyncio.Future[Page | None] = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        page: Page | None = None
        try:
            page = await self._answer(scope, receive, send)
        finally:
            del self._flights[key]
            flight.set_result(page)  # None (failed, degraded): each waiter answers on its own
        if page is not None and ttl > 0:
            status, headers, content = page
            stored = _encode(status, [*headers, (b"x-mqs-cache", b"hit")], content)
            await cache.set(key, stored, ttl)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> Page | None:
        """Answer the request; its page when it may be repeated (a complete 200, not too big)."""
        limit = _runtime(scope).config.cache.max_body_bytes
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        keep = True

        async def capture(message: Message) -> None:
            nonlocal start, keep, size
            if message["type"] == "http.response.start":
                start = message
                names = {bytes(k).lower() for k, _ in message.get("headers", [])}
                keep = message["status"] == 200 and b"x-mqs-missing" not in names
            elif message["type"] == "http.response.body" and keep:
                chunks.append(bytes(message.get("body", b"")))
                size += len(chunks[-1])
                keep = size <= limit
            await send(message)

        await self.app(scope, receive, capture)
        if not keep or start is None:
            return None
        headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
        return int(start["status"]), headers, b"".join(chunks)


def _runtime(scope: Scope) -> Any:
    app = scope.get("app")
    return getattr(getattr(app, "state", None), "mqs", None)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The request body, and a ``receive`` that hands it on to the application."""
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = bool(message.get("more_body"))
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay
