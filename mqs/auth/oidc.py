"""One trusted OpenID Connect issuer: discovery, JWKS, JWT validation, introspection, userinfo.

Every request to the issuer goes through the gateway's shared HTTP client with
``Cache-Control: no-cache``, so the cache of backend answers beneath it never keeps issuer
documents (a JWKS refresh must see the issuer's current keys). Discovery and the JWKS are kept
in the process for ``discovery_ttl_s``; a token signed with a key id the JWKS does not have
causes a refetch, at most once per ``jwks_refresh_min_s``, so a flood of forged key ids cannot
turn the gateway against the issuer. Tokens are sent only to the issuer's own endpoints and
are never logged nor put into an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from mqs.auth.config import IssuerConfig
from mqs.auth.errors import IssuerUnavailable, Unauthorized

log = logging.getLogger("mqs.auth")

MAX_TOKEN_BYTES = 16 * 1024
NO_CACHE = {"Cache-Control": "no-cache", "Accept": "application/json"}


def refuse(reason: str) -> Unauthorized:
    return Unauthorized(f"invalid token: {reason}", invalid_token=True)


def compact_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A JWS compact token's header and (unverified) claims; None when not a JWT at all."""
    if token.count(".") != 2:
        return None
    try:
        signed = jws.extract_compact(token.encode("ascii"))
        claims = orjson.loads(signed.payload)
    except (JoseError, ValueError, UnicodeError, orjson.JSONDecodeError):
        raise refuse("malformed token") from None
    header = dict(signed.protected)
    if not isinstance(claims, dict):
        raise refuse("malformed token")
    return header, claims


class Issuer:
    """Validates tokens of one issuer (see the module docstring). Safe under concurrent use."""

    def __init__(
        self,
        config: IssuerConfig,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.url = config.url
        self.http = http
        self.clock = clock
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched_at = -1e18  # when discovery and JWKS were last read
        self._failed_at = -1e18  # when a refresh last failed
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Issuer({self.url!r})"

    async def _get(self, url: str, **kwargs: Any) -> httpx.Response:
        method = "POST" if "data" in kwargs else "GET"
        headers = NO_CACHE | kwargs.pop("headers", {})
        try:
            return await self.http.request(
                method, url, headers=headers, timeout=self.config.timeout_s, **kwargs
            )
        except httpx.HTTPError as exc:
            log.warning("issuer %s: %s", self.url, type(exc).__name__)
            raise IssuerUnavailable("the identity provider cannot be reached") from None

    async def _json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._get(url, **kwargs)
        try:
            body = orjson.loads(response.content) if response.status_code == 200 else None
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            log.warning("issuer %s: unusable answer (%s)", self.url, response.status_code)
            raise IssuerUnavailable("the identity provider gave an unusable answer")
        return body

    async def _refresh(self) -> None:
        metadata = await self._json(f"{self.url}/.well-known/openid-configuration")
        if str(metadata.get("issuer", "")).rstrip("/") != self.url:
            log.warning("issuer %s: discovery names another issuer", self.url)
            raise IssuerUnavailable("the identity provider's discovery document is inconsistent")
        jwks_uri = metadata.get("jwks_uri")
        keys = KeySet(keys=[])
        if isinstance(jwks_uri, str):
            try:
                keys = KeySet.import_key_set(await self._json(jwks_uri))  # type: ignore[arg-type]
            except (JoseError, KeyError, TypeError, ValueError):
                raise IssuerUnavailable("the identity provider's JWKS is invalid") from None
        self._metadata, self._keys = metadata, keys
        self._fetched_at = self.clock()
        log.info("issuer %s: %d signing keys", self.url, len(keys.keys))

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (fetched with the JWKS, kept ``discovery_ttl_s``).

        When a periodic refresh fails the documents held are kept (and the refresh tried again
        after ``jwks_refresh_min_s``): an issuer's short outage does not sign everyone out. An
        issuer never reached is asked again only after ``jwks_refresh_min_s`` too.
        """
        stale = self._age() > self.config.discovery_ttl_s
        retry = self.clock() - self._failed_at >= self.config.jwks_refresh_min_s
        if self._metadata is not None and not (stale and retry):
            return self._metadata  # nothing to fetch: never waits behind another's refresh
        async with self._lock:
            stale = self._age() > self.config.discovery_ttl_s
            retry = self.clock() - self._failed_at >= self.config.jwks_refresh_min_s
            if self._metadata is None and not retry:  # failed a moment ago: do not wait again
                raise IssuerUnavailable("the identity provider cannot be reached")
            if self._metadata is None or (stale and retry):
                try:
                    await self._refresh()
                except IssuerUnavailable:
                    self._failed_at = self.clock()
                    if self._metadata is None:
                        raise
                    log.warning("issuer %s: refresh failed, keeping its known keys", self.url)
            assert self._metadata is not None
            return self._metadata

    def _age(self) -> float:
        return self.clock() - self._fetched_at

    async def _key_for(self, kid: str | None) -> Any:
        await self.metadata()
        if self._has(kid):  # a known key: never waits behind another token's JWKS refresh
            assert self._keys is not None
            return self._keys.get_by_kid(kid)
        async with self._lock:
            assert self._keys is not None
            if not self._has(kid):
                self._unless_failed_recently()
                if self._age() >= self.config.jwks_refresh_min_s:
                    try:  # a rotated key: refetched at most every jwks_refresh_min_s
                        await self._refresh()
                    except IssuerUnavailable:
                        self._failed_at = self.clock()  # failures count against the limit too
                        raise
            if not self._has(kid):
                raise refuse("unknown signing key")
            return self._keys.get_by_kid(kid)

    def _unless_failed_recently(self) -> None:
        """A refresh failed less than ``jwks_refresh_min_s`` ago: the issuer is not asked again
        (a flood of unknown key ids during an outage must not become a flood of requests)."""
        if self.clock() - self._failed_at < self.config.jwks_refresh_min_s:
            raise IssuerUnavailable("the identity provider cannot be reached")

    def _has(self, kid: str | None) -> bool:
        keys = self._keys.keys if self._keys is not None else []
        return any(k.kid == kid for k in keys) or (kid is None and len(keys) == 1)

    async def verify_jwt(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        """The claims of a JWT this issuer signed, checked; else :class:`Unauthorized`."""
        alg = header.get("alg")
        if alg not in self.config.algorithms:
            raise refuse("signature algorithm not allowed")
        kid = header.get("kid")
        key = await self._key_for(kid if isinstance(kid, str) else None)
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except JoseError:
            raise refuse("bad signature") from None
        self.check_claims(decoded.claims, require_exp=True)
        return decoded.claims

    def check_claims(self, claims: dict[str, Any], require_exp: bool) -> None:
        """iss, aud (when configured), exp/nbf/iat with the configured leeway, sub."""
        options: dict[str, Any] = {
            "iss": {"essential": True, "values": [self.url, f"{self.url}/"]},
            "sub": {"essential": True},
            "exp": {"essential": require_exp},
        }
        if self.config.audiences:
            options["aud"] = {"essential": True, "values": self.config.audiences}
        registry = JWTClaimsRegistry(now=int(self.clock()), leeway=self.config.leeway_s, **options)
        try:
            registry.validate(claims)
        except JoseError as exc:
            claim = getattr(exc, "claim", None)
            raise refuse(f"claim {claim} rejected" if claim else "claims rejected") from None

    async def introspect(self, token: str) -> dict[str, Any] | None:
        """RFC 7662: the active token's claims, or None when the issuer says it is not active."""
        conf = self.config.introspection
        endpoint = (await self.metadata()).get("introspection_endpoint")
        if conf is None or not isinstance(endpoint, str):
            return None
        client_id = os.environ.get(conf.client_id_env)
        secret = os.environ.get(conf.client_secret_env)
        if not client_id or not secret:
            log.warning("issuer %s: introspection client credentials not set", self.url)
            raise IssuerUnavailable("token introspection is not configured")
        answer = await self._json(
            endpoint,
            data={"token": token, "token_type_hint": "access_token"},
            auth=(client_id, secret),
        )
        if answer.get("active") is not True:
            return None
        claims = {"iss": self.url} | answer
        self.check_claims(claims, require_exp=False)
        return claims

    async def userinfo(self, token: str, subject: str) -> dict[str, Any]:
        """The userinfo answer for the token's user (``sub`` must match, OIDC Core 5.3.2)."""
        endpoint = (await self.metadata()).get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            raise IssuerUnavailable("the identity provider has no userinfo endpoint")
        response = await self._get(endpoint, headers={"Authorization": f"Bearer {token}"})
        if response.status_code in (401, 403):
            raise refuse("refused by the identity provider")
        try:
            info = orjson.loads(response.content) if response.status_code == 200 else None
        except orjson.JSONDecodeError:
            info = None
        if not isinstance(info, dict):
            raise IssuerUnavailable("the identity provider gave an unusable userinfo answer")
        if info.get("sub") != subject:
            raise refuse("userinfo is about another user")
        return info
