"""Fault injection for tests and demos: one ASGI wrapper that makes any emulator misbehave.

The test holds a :class:`Faults` object shared with the wrapped app and changes it at run
time: ``faults.set("status", status=503, retry_after="0", times=1)`` answers the next request
with a 503 and lets the following ones through; ``only=`` (a regex on the path) limits the
fault to some requests (e.g. downloads). Every request the wrapper sees is counted.

Faults (``Faults.mode``):

- ``slow``: wait ``delay_s`` seconds, then answer normally.
- ``status``: answer ``status`` (500, 503, 429...) with a ``Retry-After`` header when given.
- ``reset``: announce the real answer's length, send half of it and drop the connection.
- ``truncated``: send the first half of the real answer as a complete (shorter) message.
- ``malformed``: the real answer with bytes no JSON or XML parser accepts in its middle.
- ``html``: a 200 with a proxy's HTML error page instead of the API's answer.
- ``redirect``: a 302 to the request's own URL (a redirect loop).
- ``hang``: never answer (until the client gives up, or ``delay_s`` when it is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Fault = Literal["slow", "status", "reset", "truncated", "malformed", "html", "redirect", "hang"]
FAULTS: tuple[Fault, ...] = (
    "slow",
    "status",
    "reset",
    "truncated",
    "malformed",
    "html",
    "redirect",
    "hang",
)
HANG_LIMIT_S = 60.0  # a hanging answer never outlives a test run
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response.</p>"
    b"</body></html>\n"
)
GARBAGE = b"\x00\x01<<<not json, not xml>>>\x00"


class InjectedReset(Exception):
    """Raised after a partial answer: the ASGI server drops the connection."""


@dataclass
class Faults:
    """What the wrapped app does next; the test and the app share it."""

    mode: Fault | None = None
    times: int | None = None  # how many more requests the fault hits (None: every one)
    delay_s: float = 0.0
    status: int = 503
    retry_after: str | None = None
    requests: int = 0  # requests seen, faulty or not
    faulted: int = 0  # requests the fault hit
    paths: list[str] = field(default_factory=list)
    only: str | None = None  # a regex: the fault hits only requests whose path matches it

    def set(
        self,
        mode: Fault,
        *,
        times: int | None = None,
        delay_s: float = 0.0,
        status: int = 503,
        retry_after: str | None = None,
        only: str | None = None,
    ) -> None:
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}")
        self.mode, self.times, self.delay_s, self.only = mode, times, delay_s, only
        self.status, self.retry_after = status, retry_after

    def clear(self) -> None:
        self.mode = None

    def reset(self) -> None:
        """No fault, nothing counted."""
        self.mode, self.requests, self.faulted = None, 0, 0
        self.paths.clear()

    def take(self, path: str = "") -> Fault | None:
        """The fault for the request that just arrived at ``path`` (and count it)."""
        self.requests += 1
        mode = self.mode
        if mode is None or self.times == 0:
            return None
        if self.only is not None and not re.search(self.only, path):
            return None
        if self.times is not None:
            self.times -= 1
        self.faulted += 1
        return mode


class FaultInjector:
    """ASGI middleware: ``FaultInjector(emulator, faults)`` misbehaves as ``faults`` says."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.faults.paths.append(str(scope.get("path", "")))
        mode = self.faults.take(str(scope.get("path", "")))
        if mode is None:
            await self.app(scope, receive, send)
        elif mode == "slow":
            await asyncio.sleep(self.faults.delay_s)
            await self.app(scope, receive, send)
        elif mode == "hang":
            await _hang(receive, self.faults.delay_s or HANG_LIMIT_S)
            await _answer(send, 504, b"gave up hanging", "text/plain")
        elif mode in ("status", "html", "redirect"):
            await self._canned(mode, scope, send)
        else:
            await self._mangled(mode, scope, receive, send)

    async def _canned(self, mode: Fault, scope: Scope, send: Send) -> None:
        if mode == "html":
            await _answer(send, 200, HTML_PAGE, "text/html; charset=utf-8")
        elif mode == "redirect":
            await _answer(send, 302, b"", "text/plain", [(b"location", _own_url(scope))])
        else:
            after = self.faults.retry_after
            headers = [(b"retry-after", after.encode())] if after is not None else []
            await _answer(send, self.faults.status, b"Unavailable", "text/plain", headers)

    async def _mangled(self, mode: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, then send its answer broken as ``mode`` says."""
        start, body = await _capture(self.app, scope, receive)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        half = body[: len(body) // 2]
        if mode == "reset":
            length = [(b"content-length", str(len(body)).encode())]
            await send({**start, "headers": headers + length})
            await send({"type": "http.response.body", "body": half, "more_body": True})
            raise InjectedReset("connection dropped by fault injection")
        mangled = half if mode == "truncated" else half + GARBAGE + body[len(half) :]
        length = [(b"content-length", str(len(mangled)).encode())]
        await send({**start, "headers": headers + length})
        await send({"type": "http.response.body", "body": mangled})


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
    """The app's response start message and whole body."""
    start: Message = {}
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    return start, b"".join(chunks)


async def _hang(receive: Receive, limit_s: float) -> None:
    """Wait until the client disconnects (or ``limit_s``)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), limit_s)


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    all_headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def _own_url(scope: Scope) -> bytes:
    path = str(scope.get("root_path", "")) + str(scope.get("path", "/"))
    query = scope.get("query_string", b"")
    return path.encode() + (b"?" + query if query else b"")


def with_faults(app: Any, faults: Faults | None = None) -> tuple[FaultInjector, Faults]:
    """``app`` wrapped for fault injection, and the control object (new unless given)."""
    faults = faults or Faults()
    return FaultInjector(app, faults), faults


__all__ = ["FAULTS", "Fault", "FaultInjector", "Faults", "InjectedReset", "with_faults"]
