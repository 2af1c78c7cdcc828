"""OAuth2 access tokens for backends whose downloads need one (CDSE's Keycloak, for one).

A :class:`TokenProvider` gets a token from the backend's token endpoint with the password grant
(``username_env``/``password_env`` set), the client-credentials grant (``client_secret_env``) or
a long-lived (offline) refresh token (``grant: refresh_token``, ``refresh_token_env``), keeps
it, and gets a new one shortly before it expires: with the refresh token when the endpoint gave
one that is still valid, else with a new grant. Concurrent callers share one
request (a lock around the refresh, checked again once held). Given the gateway's shared
cache (Redis with several workers or instances), the token is kept there too, so every worker
uses one token: a worker needing a new one takes a lock in the cache (``SET NX``), looks again,
and only then asks the endpoint; the others wait for the token to appear. Expiry times are
wall-clock times, comparable between processes. Secrets are read from the
environment when a grant is made, sent only in the form body to the token endpoint, and never
logged, stored in exception messages or shown by ``repr``.

Requests go through :mod:`adapters.http` (the injected client, the backend's timeout, error
translation): a refused grant is a :class:`~adapters.base.BadBackendResponse` with its status.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import httpx
import orjson

from adapters.base import BackendError, BadBackendResponse
from adapters.http import fetch_json
from mqs.cache import Cache
from mqs.config import BackendConfig, secret_from_env

log = logging.getLogger("mqs.adapters.oauth2")

REFRESH_MARGIN_S = 60.0  # get a new token this long before the current one expires
DEFAULT_LIFETIME_S = 300.0  # when the endpoint does not say (Keycloak's default)
LOCK_POLL_S = 0.05  # how often a worker waiting for another's token looks in the cache


class TokenError(BackendError):
    """No access token could be had (configuration, refused credentials, bad answer)."""

    kind = "auth"


@dataclass(frozen=True)
class _Token:
    access: str
    expires_at: float
    refresh: str | None
    refresh_expires_at: float

    def __repr__(self) -> str:  # never show the tokens
        return f"_Token(expires_at={self.expires_at:.0f})"

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes | None) -> _Token | None:
        try:
            data = orjson.loads(raw) if raw else None
            return cls(**data) if isinstance(data, dict) else None
        except (orjson.JSONDecodeError, TypeError):
            return None


class TokenProvider:
    """Access tokens for one backend (see the module docstring). Safe under concurrent use."""

    def __init__(
        self,
        backend: BackendConfig,
        client: httpx.AsyncClient,
        *,
        cache: Cache | None = None,
        margin_s: float = REFRESH_MARGIN_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        auth = backend.auth
        if auth is None or auth.type != "oauth2" or not auth.token_url or not auth.client_id:
            raise TokenError(backend.id, "no oauth2 auth (token_url, client_id) configured")
        self.backend = backend
        self.client = client
        self.token_url = auth.token_url
        self.client_id = auth.client_id
        self.margin_s = margin_s
        self.clock = clock
        self.cache = cache
        self.requests = 0  # token endpoint calls made (for tests and diagnostics)
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        account = secret_from_env(auth.username_env) or ""
        identity = f"{self.token_url}\n{self.client_id}\n{account}".encode()
        self._key = f"oauth2:{backend.id}:{hashlib.sha256(identity).hexdigest()[:32]}"

    def __repr__(self) -> str:
        return f"TokenProvider(backend={self.backend.id!r}, client_id={self.client_id!r})"

    async def token(self) -> str:
        """A valid access token (fetched or refreshed when needed)."""
        token = self._token
        if self._fresh(token):
            assert token is not None
            return token.access
        async with self._lock:
            token = self._token
            if token is None or not self._fresh(token):
                token = await self._obtain(token)
                self._token = token
            return token.access

    def _fresh(self, token: _Token | None) -> bool:
        return token is not None and self.clock() < token.expires_at - self.margin_s

    async def _obtain(self, held: _Token | None) -> _Token:
        """A new token: another worker's from the cache, else renewed under the cache's lock."""
        if self.cache is None:
            return await self._renew(held)
        shared = _Token.decode(await self.cache.get(self._key))
        if shared is not None and self._fresh(shared):
            return shared
        lock = f"{self._key}:lock"
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.backend.timeout_s
        while not await self.cache.add(lock, b"1", self.backend.timeout_s + 1):
            await asyncio.sleep(LOCK_POLL_S)
            shared = _Token.decode(await self.cache.get(self._key))
            if shared is not None and self._fresh(shared):
                return shared
            if loop.time() > give_up:  # the holder died or hangs: renew without it
                break
        try:
            shared = _Token.decode(await self.cache.get(self._key)) or shared
            if shared is not None and self._fresh(shared):
                return shared
            token = await self._renew(shared or held)
            keep = max(token.expires_at, token.refresh_expires_at) - self.clock()
            await self.cache.set(self._key, token.encode(), keep)
            return token
        finally:
            await self.cache.delete(lock)

    async def authorization(self) -> str:
        """The ``Authorization`` header value: ``Bearer <token>``."""
        return f"Bearer {await self.token()}"

    def forget(self) -> None:
        """Drop the cached token (e.g. after the backend refused it): the next call gets one."""
        self._token = None

    async def reject(self, authorization: str) -> bool:
        """The backend refused this ``Bearer`` value: it counts as expired, here and in the
        shared cache (its refresh token, if any, is tried first for the next one). True: the
        next :meth:`authorization` will be another token, worth trying."""
        token = self._token
        if token is not None and authorization == f"Bearer {token.access}":
            self._token = replace(token, expires_at=0.0)
        if self.cache is not None:
            shared = _Token.decode(await self.cache.get(self._key))
            if shared is not None and authorization == f"Bearer {shared.access}":
                keep = shared.refresh_expires_at - self.clock()
                if keep > 0:
                    await self.cache.set(self._key, replace(shared, expires_at=0.0).encode(), keep)
                else:
                    await self.cache.delete(self._key)
        return True

    async def _renew(self, token: _Token | None) -> _Token:
        if token is not None and token.refresh and self.clock() < token.refresh_expires_at:
            form = {"grant_type": "refresh_token", "refresh_token": token.refresh}
            try:
                return await self._request(self._with_client(form))
            except BadBackendResponse as exc:  # expired or revoked session: grant again
                log.info("backend %s: token refresh refused (%s), new grant", self.backend.id, exc)
        return await self._request(self._with_client(self._grant()))

    def _grant(self) -> dict[str, str]:
        auth = self.backend.auth
        assert auth is not None
        if auth.oauth2_grant == "password":
            username = secret_from_env(auth.username_env)
            password = secret_from_env(auth.password_env)
            if not username or not password:
                raise TokenError(
                    self.backend.id, "oauth2 username/password not set in the environment"
                )
            return {"grant_type": "password", "username": username, "password": password}
        if auth.oauth2_grant == "refresh_token":
            offline = secret_from_env(auth.refresh_token_env)
            if not offline:
                raise TokenError(self.backend.id, "oauth2 refresh token not set in the environment")
            return {"grant_type": "refresh_token", "refresh_token": offline}
        if not secret_from_env(auth.client_secret_env):
            raise TokenError(self.backend.id, "oauth2 client secret not set in the environment")
        return {"grant_type": "client_credentials"}

    def _with_client(self, form: dict[str, str]) -> dict[str, str]:
        assert self.backend.auth is not None
        secret = secret_from_env(self.backend.auth.client_secret_env)
        return {**form, "client_id": self.client_id} | ({"client_secret": secret} if secret else {})

    async def _request(self, form: dict[str, str]) -> _Token:
        self.requests += 1
        asked = self.clock()
        body = await fetch_json(self.client, self.backend, "POST", self.token_url, data=form)
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise TokenError(self.backend.id, "token endpoint answered without an access_token")
        if str(body.get("token_type", "Bearer")).lower() != "bearer":
            raise TokenError(self.backend.id, "token endpoint answered a non-bearer token")
        lifetime = _seconds(body.get("expires_in"), DEFAULT_LIFETIME_S)
        refresh = body.get("refresh_token")
        refresh_lifetime = _seconds(body.get("refresh_expires_in"), lifetime)
        return _Token(
            access=body["access_token"],
            expires_at=asked + lifetime,
            refresh=refresh if isinstance(refresh, str) and refresh else None,
            refresh_expires_at=asked + refresh_lifetime,
        )


def _seconds(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return default
    return float(value)


def provider_for(
    backend: BackendConfig, client: httpx.AsyncClient, cache: Cache | None = None
) -> TokenProvider | None:
    """A token provider when the backend's auth is oauth2 (tokens shared through ``cache``)."""
    if backend.auth is None or backend.auth.type != "oauth2":
        return None
    return TokenProvider(backend, client, cache=cache)


__all__ = ["TokenError", "TokenProvider", "provider_for"]
