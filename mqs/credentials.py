"""The gateway's own credentials for each backend, as ``Authorization`` header values.

The federation file names environment variables, never secrets (``BackendAuth``):

- ``basic``: ``username_env`` / ``password_env`` (DHuS mirrors);
- ``bearer``: ``token_env``, a static token;
- ``oauth2``: a token endpoint (CDSE's Keycloak), password or client-credentials grant,
  refreshed before expiry and shared by every worker through the cache
  (:class:`adapters.oauth2.TokenProvider`).

Values are read from the environment when needed (a rotated secret is picked up without a
restart), sent only to the backend they belong to, and never logged or shown by ``repr``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Protocol

import httpx

from adapters.oauth2 import TokenError, TokenProvider
from mqs.cache import Cache
from mqs.config import BackendConfig, secret_from_env

__all__ = ["BackendCredentials", "StaticCredentials", "TokenError", "credentials_for"]


class BackendCredentials(Protocol):
    """What the gateway sends a backend to be let in."""

    async def authorization(self) -> str:
        """The ``Authorization`` header value (raises :class:`TokenError` when unavailable)."""
        ...

    async def reject(self, authorization: str) -> bool:
        """The backend refused ``authorization``; True when another value is worth a try."""
        ...


class StaticCredentials:
    """HTTP Basic or a static bearer token from environment variables."""

    def __init__(self, backend: BackendConfig) -> None:
        if backend.auth is None or backend.auth.type not in ("basic", "bearer"):
            raise TokenError(backend.id, "no basic or bearer auth configured")
        self.backend = backend

    def __repr__(self) -> str:
        assert self.backend.auth is not None
        return f"StaticCredentials(backend={self.backend.id!r}, type={self.backend.auth.type!r})"

    async def authorization(self) -> str:
        auth = self.backend.auth
        assert auth is not None
        if auth.type == "bearer":
            token = secret_from_env(auth.token_env)
            if not token:
                raise TokenError(self.backend.id, "bearer token not set in the environment")
            return f"Bearer {token}"
        user, password = secret_from_env(auth.username_env), secret_from_env(auth.password_env)
        if not user or password is None:
            raise TokenError(self.backend.id, "basic auth username/password not set")
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")

    async def reject(self, authorization: str) -> bool:
        return False  # nothing to renew: the configured secret is what it is


def credentials_for(
    backends: Iterable[BackendConfig], client: httpx.AsyncClient, cache: Cache
) -> dict[str, BackendCredentials]:
    """Backend id -> its credentials, for every backend with ``auth`` configured."""
    found: dict[str, BackendCredentials] = {}
    for backend in backends:
        if backend.auth is None:
            continue
        if backend.auth.type == "oauth2":
            found[backend.id] = TokenProvider(backend, client, cache=cache)
        else:
            found[backend.id] = StaticCredentials(backend)
    return found
