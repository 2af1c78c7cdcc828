"""The one place adapters talk HTTP: auth from the environment, size limits, error translation."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from adapters.base import BackendError, BackendTimeout, BackendUnavailable, BadBackendResponse
from mqs.config import BackendConfig, secret_from_env

MAX_BODY_BYTES = 64 * 1024 * 1024


def backend_auth(backend: BackendConfig) -> httpx.Auth | None:
    """HTTP credentials read from the environment variables the config names."""
    auth = backend.auth
    if auth is None or auth.type == "oauth2":  # oauth2 tokens are for downloads, not search
        return None
    if auth.type == "basic":
        user = secret_from_env(auth.username_env) or ""
        password = secret_from_env(auth.password_env) or ""
        return httpx.BasicAuth(user, password)
    token = secret_from_env(auth.token_env) or ""
    return _Bearer(token)


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


async def fetch_json(
    client: httpx.AsyncClient,
    backend: BackendConfig,
    method: str,
    url: str,
    *,
    params: httpx.QueryParams | None = None,
    json: Any = None,
    data: dict[str, str] | None = None,
    not_found_ok: bool = False,
) -> Any:
    """One request; the parsed JSON body, or None for a 404 when ``not_found_ok``."""
    raw = await fetch_bytes(
        client, backend, method, url, params=params, json=json, data=data, not_found_ok=not_found_ok
    )
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadBackendResponse(backend.id, "answer is not valid JSON") from None


async def fetch_bytes(
    client: httpx.AsyncClient,
    backend: BackendConfig,
    method: str,
    url: str,
    *,
    params: httpx.QueryParams | None = None,
    json: Any = None,
    data: dict[str, str] | None = None,
    accept: str = "application/geo+json, application/json",
    not_found_ok: bool = False,
) -> bytes | None:
    """One request; the raw body (capped), or None for a 404 when ``not_found_ok``.

    ``json`` is sent as a JSON body, ``data`` as a form (``x-www-form-urlencoded``).
    """
    headers = {"Accept": accept}
    content: bytes | None = None
    if json is not None:
        content = orjson.dumps(json)
        headers["Content-Type"] = "application/json"
    elif data is not None:
        content = str(httpx.QueryParams(data)).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        request = client.build_request(
            method, url, params=params, content=content, headers=headers, timeout=backend.timeout_s
        )
        response = await client.send(request, stream=True, auth=backend_auth(backend))
        try:
            if not_found_ok and response.status_code == 404:
                return None
            _check_status(backend, response)
            return await _read_capped(backend, response)
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        raise BackendTimeout(backend.id, "timed out") from None
    except httpx.TransportError as exc:
        raise BackendUnavailable(backend.id, f"connection failed ({type(exc).__name__})") from None


def _check_status(backend: BackendConfig, response: httpx.Response) -> None:
    status = response.status_code
    if status >= 500 or status == 429:
        raise BackendUnavailable(backend.id, f"HTTP {status}", status)
    if status in (401, 403):
        raise BadBackendResponse(backend.id, f"HTTP {status}: credentials refused", status)
    if status >= 300:
        raise BadBackendResponse(backend.id, f"HTTP {status}", status)


async def _read_capped(backend: BackendConfig, response: httpx.Response) -> bytes:
    chunks = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadBackendResponse(backend.id, "answer too large")
        chunks.append(chunk)
    return b"".join(chunks)


__all__ = ["BackendError", "backend_auth", "fetch_bytes", "fetch_json"]
