"""Sign-in with OpenID Connect bearer tokens, entitlement-based access, per-user rate limits.

The runtime holds one :class:`Gate`. :class:`~mqs.auth.middleware.AuthMiddleware` checks every
request's token (and rate limit) once; handlers ask :func:`require_collection`,
:func:`visible_collections` and :func:`restrict_search` what the request's user may see.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx
from fastapi import Request

from mqs.auth import policy
from mqs.auth.authenticate import Authenticator
from mqs.auth.config import AuthConfig
from mqs.auth.errors import Forbidden, IssuerUnavailable, RateLimited, Unauthorized
from mqs.auth.policy import check, visible
from mqs.auth.principal import Principal
from mqs.auth.ratelimit import Buckets, bucket_key, buckets_for
from mqs.cache import Cache
from mqs.query import SearchQuery

if TYPE_CHECKING:  # mqs.config imports mqs.auth.config
    from mqs.config import FederationConfig

__all__ = [
    "AuthConfig",
    "Forbidden",
    "Gate",
    "IssuerUnavailable",
    "Principal",
    "RateLimited",
    "Unauthorized",
    "as_anonymous",
    "current_principal",
    "hidden_backends",
    "require_collection",
    "restrict_search",
    "visible_collections",
]

_STATE_KEY = "mqs_principal"
_UNKNOWN = object()


class Gate:
    """The gateway's authentication, access rules and rate limiter (one per runtime)."""

    def __init__(
        self,
        config: AuthConfig,
        http: httpx.AsyncClient,
        cache: Cache,
        serving: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.config = config
        self.cache = cache
        self.serving = dict(serving or {})  # collection id -> the backends serving it
        self.authenticator = Authenticator(config, http, cache)
        self.buckets: Buckets | None = buckets_for(cache) if config.rate_limit else None

    @classmethod
    def for_federation(
        cls, federation: FederationConfig, http: httpx.AsyncClient, cache: Cache
    ) -> Gate:
        routing = federation.routing()
        serving = {cid: [b.id for b in backends] for cid, backends in routing.items()}
        return cls(federation.auth, http, cache, serving)

    @property
    def enabled(self) -> bool:
        """Whether tokens are read at all (no issuer: every request is anonymous, as before)."""
        return bool(self.config.issuers)

    async def wait_s(self, principal: Principal | None, client: str) -> float:
        """0 when the request may go, else the seconds until the user's bucket has a token."""
        limit = self.config.rate_limit
        if self.buckets is None or limit is None:
            return 0.0
        if principal is not None:
            key = f"user:{principal.key}"
            return await self.buckets.take(bucket_key(key), limit.requests_per_s, limit.burst)
        rate = limit.anonymous_requests_per_s or limit.requests_per_s
        burst = limit.anonymous_burst or limit.burst
        return await self.buckets.take(bucket_key(f"addr:{client}"), rate, burst)

    async def refused_wait_s(self, client: str) -> float:
        """Seconds before tokens from ``client`` are checked again (0: now), after more refused
        tokens than the anonymous rate limit allows: invalid tokens cost the issuers work (an
        introspection, a JWKS refetch), so their flood stops before it reaches them."""
        if self.buckets is None:
            return 0.0
        until = await self.cache.get(_refused_key(client))
        try:
            return max(0.0, float(until or 0) - time.time())
        except ValueError:
            return 0.0

    async def note_refused(self, client: str) -> None:
        """A token from ``client`` was refused: counted in its own bucket of refusals."""
        limit = self.config.rate_limit
        if self.buckets is None or limit is None:
            return
        rate = limit.anonymous_requests_per_s or limit.requests_per_s
        burst = limit.anonymous_burst or limit.burst
        wait = await self.buckets.take(bucket_key(f"refused:{client}"), rate, burst)
        if wait > 0:
            await self.cache.set(_refused_key(client), str(time.time() + wait).encode(), wait)


def _refused_key(client: str) -> str:
    return "auth:" + bucket_key(f"refused-until:{client}")


def gate_of(request: Request) -> Gate | None:
    runtime = getattr(request.app.state, "mqs", None)
    gate = getattr(runtime, "auth", None)
    return gate if isinstance(gate, Gate) else None


def bearer_token(request: Request) -> str | None:
    """The ``Authorization: Bearer`` token; None when there is no Authorization header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'", invalid_token=True)
    return value.strip()


async def current_principal(request: Request) -> Principal | None:
    """The request's signed-in user (None: anonymous); 401/403/503 errors as they arise."""
    known = getattr(request.state, _STATE_KEY, _UNKNOWN)
    if known is not _UNKNOWN:
        return known if isinstance(known, Principal) else None
    gate = gate_of(request)
    principal = None
    if gate is not None and gate.enabled:
        token = bearer_token(request)
        if token is not None:
            principal = await gate.authenticator.authenticate(token)
    setattr(request.state, _STATE_KEY, principal)
    return principal


def as_anonymous(request: Request) -> None:
    """The request goes on without a user (a public path's refused token): handlers asking
    :func:`current_principal` get None, the token is not checked again."""
    setattr(request.state, _STATE_KEY, None)


async def require_collection(request: Request, collection: str) -> None:
    """Returns when the request's user may see ``collection``; else 401 (with
    ``WWW-Authenticate: Bearer``) without a valid token, 403 when the user lacks the rights."""
    gate = gate_of(request)
    if gate is None:
        return
    principal = await current_principal(request)
    check(gate.config, collection, principal, gate.serving.get(collection, ()))


async def hidden_backends(request: Request) -> frozenset[str]:
    """The backends whose items the request's user may not see (``auth.backends`` rules)."""
    gate = gate_of(request)
    if gate is None or not gate.config.backends:
        return frozenset()
    return policy.hidden_backends(gate.config, await current_principal(request))


async def visible_collections(request: Request, collections: Iterable[str]) -> tuple[str, ...]:
    """Those of ``collections`` the request's user may see (listings show only these)."""
    gate = gate_of(request)
    if gate is None:
        return tuple(collections)
    principal = await current_principal(request)
    return visible(gate.config, collections, principal, gate.serving)


async def restrict_search(
    request: Request, query: SearchQuery, known: Iterable[str]
) -> SearchQuery | None:
    """The search narrowed to the collections the user may see (``known``: all of them).

    None when none of the collections it asks for is visible: the answer is an empty page.
    """
    known = tuple(known)
    allowed = await visible_collections(request, known)
    if len(allowed) == len(known):
        return query
    kept = tuple(c for c in (query.collections or known) if c in allowed)
    return replace(query, collections=kept) if kept else None
