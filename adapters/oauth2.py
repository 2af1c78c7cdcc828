"""OAuth2 access tokens for backends whose downloads need one (CDSE's Keycloak, for one).

A :class:`TokenProvider` gets a token from the backend's token endpoint with the password grant
(``username_env``/``password_env`` set) or the client-credentials grant (``client_secret_env``),
keeps it, and gets a new one shortly before it expires: with the refresh token when the
endpoint gave one that is still valid, else with a new grant. Concurrent callers share one
request (a lock around the refresh, checked again once held). Secrets are read from the
environment when a grant is made, sent only in the form body to the token endpoint, and never
logged, stored in exception messages or shown by ``repr``.

Requests go through :mod:`adapters.http` (the injected client, the backend's timeout, error
translation): a refused grant is a :class:`~adapters.base.BadBackendResponse` with its status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from adapters.base import BackendError, BadBackendResponse
from adapters.http import fetch_json
from mqs.config import BackendConfig, secret_from_env

log = logging.getLogger("mqs.adapters.oauth2")

REFRESH_MARGIN_S = 60.0  # get a new token this long before the current one expires
DEFAULT_LIFETIME_S = 300.0  # when the endpoint does not say (Keycloak's default)


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


class TokenProvider:
    """Access tokens for one backend (see the module docstring). Safe under concurrent use."""

    def __init__(
        self,
        backend: BackendConfig,
        client: httpx.AsyncClient,
        *,
        margin_s: float = REFRESH_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
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
        self.requests = 0  # token endpoint calls made (for tests and diagnostics)
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TokenProvider(backend={self.backend.id!r}, client_id={self.client_id!r})"

    async def token(self) -> str:
        """A valid access token (fetched or refreshed when needed)."""
        token = self._token
        if token is not None and self.clock() < token.expires_at - self.margin_s:
            return token.access
        async with self._lock:
            token = self._token
            if token is None or self.clock() >= token.expires_at - self.margin_s:
                token = await self._renew(token)
                self._token = token
            return token.access

    async def authorization(self) -> str:
        """The ``Authorization`` header value: ``Bearer <token>``."""
        return f"Bearer {await self.token()}"

    def forget(self) -> None:
        """Drop the cached token (e.g. after the backend refused it): the next call gets one."""
        self._token = None

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
        if auth.username_env or auth.password_env:
            username = secret_from_env(auth.username_env)
            password = secret_from_env(auth.password_env)
            if not username or not password:
                raise TokenError(
                    self.backend.id, "oauth2 username/password not set in the environment"
                )
            return {"grant_type": "password", "username": username, "password": password}
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


def provider_for(backend: BackendConfig, client: httpx.AsyncClient) -> TokenProvider | None:
    """A token provider when the backend's auth is oauth2, else None."""
    if backend.auth is None or backend.auth.type != "oauth2":
        return None
    return TokenProvider(backend, client)


__all__ = ["TokenError", "TokenProvider", "provider_for"]
