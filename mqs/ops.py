"""What operators look at: ``/metrics``, ``/_mgmt/ready`` and the request middleware.

:func:`install_ops` adds both routes and :class:`RequestContext`, the outermost middleware:
it takes or makes the request id (``X-Request-ID``), returns it on the answer, times the
request for the endpoint metrics (by route template, never the raw path) and writes one
access line without the query string.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mqs import metrics
from mqs.cache import RedisCache
from mqs.client import json_response
from mqs.logs import REQUEST_ID_HEADER, accept_request_id, get_logger, request_id

_access = get_logger("mqs.access")
_HEADER = REQUEST_ID_HEADER.lower().encode()
UNMATCHED = "unmatched"  # the route label of requests no route matched (404s)


class RequestContext:
    """Request id, endpoint metrics and an access line for every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == _HEADER), None)
        rid = accept_request_id(given.decode("latin-1") if given is not None else None)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500  # unless the app starts an answer
        done = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, done
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (_HEADER, rid.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                done = True  # counted before the client can see the end of the answer
                _observe(scope, status, started)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if not done:  # the app failed or the client went away
                _observe(scope, status, started)
            request_id.reset(token)


def _observe(scope: Scope, status: int, started: float) -> None:
    """The endpoint metrics and the access line of one answered request."""
    seconds = time.perf_counter() - started
    route = getattr(scope.get("route"), "path", None) or UNMATCHED
    metrics.observe_http(route, scope["method"], status, seconds)
    _access.info(
        "request",
        method=scope["method"],
        route=route,
        path=scope["path"],
        status=status,
        ms=round(seconds * 1000, 1),
    )


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition (every worker's, in multiprocess mode)."""
    runtime = getattr(request.app.state, "mqs", None)
    if runtime is not None:
        states = {bid: b.state for bid, b in runtime.federation.breakers.by_id.items()}
        metrics.set_circuit_states(states)
    body, media_type = metrics.exposition(request.headers.get("accept", ""))
    return Response(body, media_type=media_type)


async def readiness(request: Request) -> Response:
    """Ready (200) when the configuration is loaded and the cache answers; 503 otherwise."""
    runtime = getattr(request.app.state, "mqs", None)
    if runtime is None:
        return json_response({"status": "not-ready", "config": "not loaded"}, status=503)
    cache = await _cache_status(runtime.cache)
    breakers = runtime.federation.breakers.by_id
    body: dict[str, Any] = {
        "status": "ready" if cache != "unreachable" else "not-ready",
        "config": "loaded",
        "cache": cache,
        "backends": {bid: breaker.state for bid, breaker in sorted(breakers.items())},
    }
    return json_response(body, status=200 if body["status"] == "ready" else 503)


async def _cache_status(cache: Any) -> str:
    """``memory`` (deliberately local), ``redis`` (it answered a PING) or ``unreachable``."""
    if not isinstance(cache, RedisCache):
        return "memory"
    return "redis" if await cache.ping() else "unreachable"


def _forget_at_exit(lifespan: Any) -> Any:
    """The app's lifespan, then this worker's live gauges dropped (multiprocess mode)."""

    @asynccontextmanager
    async def wrapped(app: Any) -> AsyncIterator[Any]:
        async with lifespan(app) as state:
            yield state
        metrics.worker_exited(os.getpid())

    return wrapped


def install_ops(app: FastAPI, collections: list[str], backends: list[str]) -> None:
    """The operations routes and middleware; the configured ids become metric label values."""
    metrics.register_federation(collections, backends)
    app.router.lifespan_context = _forget_at_exit(app.router.lifespan_context)
    app.add_api_route(
        "/metrics", metrics_endpoint, methods=["GET"], name="Metrics", include_in_schema=False
    )
    app.add_api_route("/_mgmt/ready", readiness, methods=["GET"], name="Readiness")
    app.add_middleware(RequestContext)
