"""Running ASGI apps on loopback: the gateway, the emulators, or several at once (demo, tests)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def bound_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready socket (port 0: the OS picks a free one)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: small responses are not held back by Nagle's algorithm
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def make_server(app: Any, sock: socket.socket, log_level: str = "warning") -> uvicorn.Server:
    config = uvicorn.Config(app, log_level=log_level, lifespan="auto", access_log=False)
    server = uvicorn.Server(config)
    return server


async def serve_all(servers: list[tuple[uvicorn.Server, socket.socket]]) -> None:
    """Serve every app on its socket in this event loop until they are told to exit."""
    await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))


@contextmanager
def serving_in_thread(apps: list[tuple[Any, socket.socket]]) -> Iterator[list[str]]:
    """Serve apps from a background thread (for synchronous clients in tests); yields URLs."""
    servers = [(make_server(app, sock), sock) for app, sock in apps]
    thread = threading.Thread(target=asyncio.run, args=(serve_all(servers),), daemon=True)
    thread.start()
    try:
        while not all(server.started for server, _ in servers):
            if not thread.is_alive():
                raise RuntimeError("servers failed to start")
            threading.Event().wait(0.01)
        yield [url_of(sock) for _, sock in servers]
    finally:
        for server, _ in servers:
            server.should_exit = True
        thread.join(timeout=10)
