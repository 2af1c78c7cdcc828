"""Emulated backends for the benchmarks, served from their own process.

Run by :mod:`harness` as ``python benchmarks/backends.py SPEC.json``; prints one JSON line
(backend id -> URL) once every emulator listens, then serves until terminated.

``SPEC.json``: ``[{"id", "kind", "items" (a catalogue file), "latency_s", "max_page_size",
"replay"}]``. Each backend is the real emulator of its kind (``adapters/*/emulator.py``)
behind :class:`FixedLatency`: every answer arrives ``latency_s`` after the request, however
long the emulator took. With ``replay`` (the default) the emulator computes each distinct
request's answer once and the same bytes are replayed for identical requests, so a backend
answers in ``latency_s`` (not ``latency_s`` plus Python's search time under load): the
benchmark then measures the gateway, not the emulator. This process uses uvloop when it is
installed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.registry import EMULATORS
from mqs.serving import bound_socket, make_server, serve_all, url_of

Message = dict[str, Any]


class FixedLatency:
    """ASGI wrapper: answers ``latency_s`` after the request arrived, optionally replayed."""

    def __init__(self, app: Any, latency_s: float, replay: bool = True) -> None:
        self.app, self.latency_s, self.replay = app, latency_s, replay
        self.answers: dict[tuple[Any, ...], list[Message]] = {}
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        self.requests += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if not self.replay:  # streamed through (downloads): nothing is held
            await asyncio.sleep(max(self.latency_s - (time.perf_counter() - started), 0))
            await self.app(scope, _replayed(body, receive), send)
            return
        key = (scope["method"], scope["path"], scope["query_string"], body)
        messages = self.answers.get(key)
        if messages is None:
            messages = await self._run(scope, body)
            if messages and messages[0].get("status") == 200:
                self.answers[key] = messages
        wait = self.latency_s - (time.perf_counter() - started)
        if wait > 0:
            await asyncio.sleep(wait)
        for message in messages:
            await send(message)

    async def _run(self, scope: Any, body: bytes) -> list[Message]:
        sent: list[Message] = []
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if delivered:
                await asyncio.sleep(3600)  # the app waits for a disconnect that never comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        return sent


def _replayed(body: bytes, receive: Any) -> Any:
    """A ``receive`` giving the already-read body, then the client's further messages."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            message: Message = await receive()
            return message
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    servers, urls = [], {}
    for backend in spec:
        options = dict(backend.get("emulator", {}))
        if "credentials" in options:
            options["credentials"] = tuple(options["credentials"])
        emulator = EMULATORS[backend["kind"]](Path(backend["items"]), **options)
        app = FixedLatency(emulator, backend.get("latency_s", 0.0), backend.get("replay", True))
        sock = bound_socket()
        servers.append((make_server(app, sock), sock))
        urls[backend["id"]] = url_of(sock)
    print(json.dumps(urls), flush=True)
    try:
        import uvloop

        uvloop.run(serve_all(servers))
    except ImportError:
        asyncio.run(serve_all(servers))


if __name__ == "__main__":
    main()
