"""Every request's token and rate limit, checked once before any handler runs.

Public paths (the landing page, ``/conformance``, the OpenAPI document and ``/_mgmt/*``
probes) and CORS preflights need no token; a bad one sent there is taken as no token. Elsewhere
a token sent must be valid (else 401 ``invalid_token``), and with ``anonymous: false`` one must
be sent. The rate limit applies to every path but ``/_mgmt/*`` and ``/metrics`` (open to
probes and scrapers like ``/_mgmt/*``), keyed by the user (or, for
anonymous requests, the client address). With a rate limit, refused tokens count in a bucket of
their own per client address (the anonymous rate and burst): past it, that address's tokens are
not checked until it refills (429 ``Retry-After``; on public paths the request is anonymous), so
a flood of made-up tokens never reaches the issuers' introspection or JWKS endpoints.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mqs.auth import (
    Gate,
    RateLimited,
    Unauthorized,
    as_anonymous,
    current_principal,
    gate_of,
)
from mqs.auth.principal import Principal
from mqs.errors import MQSError, error_response

log = logging.getLogger("mqs.auth")

PUBLIC_PATHS = frozenset({"/", "/conformance", "/api", "/api.html", "/docs/oauth2-redirect"})
OPS_PREFIX = ("/_mgmt/", "/metrics")  # probes and the Prometheus scrape (mqs.ops)


def _path(scope: Scope) -> str:
    path = str(scope.get("path", "/"))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


class AuthMiddleware:
    """Pure ASGI middleware (innermost of the stack, so CORS and proxy headers apply first)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        gate = gate_of(request)
        if gate is None or (not gate.enabled and gate.buckets is None):
            await self.app(scope, receive, send)
            return
        error = await self._check(request, gate)
        if error is None:
            await self.app(scope, receive, send)
            return
        response = error_response(error.status, error.code, error.description)
        response.headers.update(error.headers)
        await response(scope, receive, send)

    async def _check(self, request: Request, gate: Gate) -> MQSError | None:
        path = _path(request.scope)
        public = path in PUBLIC_PATHS or path.startswith(OPS_PREFIX) or request.method == "OPTIONS"
        error: MQSError | None = None
        principal: Principal | None = None
        client = request.client.host if request.client else "unknown"
        try:
            if path.startswith(OPS_PREFIX):  # probes stay cheap: no token is read
                pass
            elif "authorization" in request.headers and (
                refused := await gate.refused_wait_s(client)
            ):  # too many bad tokens from here: this one is not checked (nor sent to an issuer)
                error = RateLimited(refused)
            else:
                principal = await current_principal(request)
        except MQSError as exc:
            if isinstance(exc, Unauthorized) and exc.invalid_token:
                await gate.note_refused(client)
            log.info("token refused on %s %s: %s", request.method, path, exc.description)
            error = exc
        if public and error is not None:  # on a public path a bad token means no user
            as_anonymous(request)
            error = None
        if not public and error is None and principal is None and not gate.config.anonymous:
            error = Unauthorized("this service needs a signed-in user: send a bearer token")
        if not path.startswith(OPS_PREFIX):
            wait = await gate.wait_s(principal, client)
            if wait > 0:
                error = RateLimited(wait)
        return error
