"""A bearer token -> the :class:`Principal` it speaks for, over every trusted issuer.

A JWT goes to the issuer named by its (as yet unverified) ``iss`` and is validated there; any
other token is introspected (RFC 7662) at each issuer configured for it, in order. With
``userinfo: true`` the issuer's userinfo endpoint supplies entitlements and assurance (EGI
Check-in puts them only there). Introspection and userinfo answers are kept in the shared cache
for ``userinfo_ttl_s`` (never past the token's expiry), keyed by a hash of issuer and token.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from mqs.auth.config import AuthConfig
from mqs.auth.errors import Forbidden, Unauthorized
from mqs.auth.oidc import MAX_TOKEN_BYTES, Issuer, compact_parts, refuse
from mqs.auth.principal import Principal, meets, principal_from
from mqs.cache import Cache


class Authenticator:
    """Validates bearer tokens against the configured issuers (shared by concurrent requests)."""

    def __init__(
        self,
        config: AuthConfig,
        http: httpx.AsyncClient,
        cache: Cache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.cache = cache
        self.clock = clock
        self.issuers = {c.url: Issuer(c, http, clock) for c in config.issuers}

    async def authenticate(self, token: str) -> Principal:
        """The token's user; :class:`Unauthorized` (401) or :class:`Forbidden` (403) if not."""
        if not token or len(token) > MAX_TOKEN_BYTES or not token.isascii():
            raise refuse("malformed token")
        if not token.isprintable() or " " in token:
            raise refuse("malformed token")
        parts = compact_parts(token)
        if parts is not None:
            header, unverified = parts
            issuer = self.issuers.get(str(unverified.get("iss", "")).rstrip("/"))
            if issuer is None:
                raise refuse("untrusted issuer")
            claims = await issuer.verify_jwt(token, header)
        else:
            issuer, claims = await self._introspect(token)
        extra: dict[str, Any] = {}
        if issuer.config.userinfo:
            extra = await self._userinfo(issuer, token, claims)
        try:
            principal = principal_from(issuer.url, claims, extra)
        except ValueError:
            raise refuse("no subject") from None
        if not meets(principal.assurance, issuer.config.min_assurance):
            raise Forbidden("the sign-in's assurance level is too low for this service")
        return principal

    async def _introspect(self, token: str) -> tuple[Issuer, dict[str, Any]]:
        candidates = [i for i in self.issuers.values() if i.config.introspection is not None]
        if not candidates:
            raise refuse("not a JWT and no issuer introspects tokens")
        for issuer in candidates:
            answer = await self._cached("introspect", issuer, token, issuer.introspect)
            if answer is not None:
                issuer.check_claims(answer, require_exp=False)  # still valid when read from cache
                return issuer, answer
        raise refuse("token is not active")

    async def _userinfo(self, issuer: Issuer, token: str, claims: dict[str, Any]) -> dict[str, Any]:
        subject = str(claims.get("sub", ""))

        async def fetch(tok: str) -> dict[str, Any]:
            return await issuer.userinfo(tok, subject)

        info = await self._cached("userinfo", issuer, token, fetch, claims.get("exp"))
        assert info is not None
        return info

    async def _cached(
        self,
        kind: str,
        issuer: Issuer,
        token: str,
        fetch: Callable[[str], Awaitable[dict[str, Any] | None]],
        exp: Any = None,
    ) -> dict[str, Any] | None:
        digest = hashlib.sha256(f"{issuer.url}\n{token}".encode()).hexdigest()
        key = f"auth:{kind}:{digest}"
        cached = await self.cache.get(key)
        if cached is not None:
            value = orjson.loads(cached)
            return value if isinstance(value, dict) else None
        answer = await fetch(token)
        expiry = answer.get("exp") if answer is not None else None
        ttl = self.config.userinfo_ttl_s
        for limit in (exp, expiry):
            if isinstance(limit, int | float):
                ttl = min(ttl, limit - self.clock())
        await self.cache.set(key, orjson.dumps(answer), ttl)
        return answer


__all__ = ["Authenticator", "Forbidden", "Unauthorized"]
