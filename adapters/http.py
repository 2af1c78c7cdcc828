"""The one place adapters talk HTTP: auth from the environment, size limits, error translation.

Every exchange with a backend fits in its ``timeout_s`` budget, retries included. Idempotent
requests (GET, and POSTs the caller marks as reads) are retried after a dropped connection or
a 429/502/503/504, with jittered exponential backoff or after the ``Retry-After`` the backend
asks for; a ``Retry-After`` beyond the time left fails at once. Anything the backend answers
that is not its API's answer (redirects, HTML pages, bodies over the cap, unparseable JSON)
becomes that backend's :class:`BackendError`, never another exception.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from adapters.base import BackendError, BackendTimeout, BackendUnavailable, BadBackendResponse
from mqs.config import BackendConfig, secret_from_env

log = logging.getLogger("mqs.adapters.http")

MAX_BODY_BYTES = 64 * 1024 * 1024
RETRY_STATUSES = frozenset({429, 502, 503, 504})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
DEADLINE_MARGIN_S = 0.5


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
    idempotent: bool | None = None,
    fresh: bool = False,
) -> Any:
    """One request; the parsed JSON body, or None for a 404 when ``not_found_ok``."""
    raw = await fetch_bytes(
        client,
        backend,
        method,
        url,
        params=params,
        json=json,
        data=data,
        not_found_ok=not_found_ok,
        idempotent=idempotent,
        fresh=fresh,
    )
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        where = f"at byte {exc.pos} of {len(raw)}" if exc.pos < len(raw) else "body ends early"
        raise BadBackendResponse(backend.id, f"answer is not valid JSON ({where})") from None


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
    idempotent: bool | None = None,
    fresh: bool = False,
) -> bytes | None:
    """The raw body (capped), or None for a 404 when ``not_found_ok``.

    ``json`` is sent as a JSON body, ``data`` as a form (``x-www-form-urlencoded``). The whole
    exchange, retries included, takes at most the backend's ``timeout_s``. A request is retried
    only when ``idempotent`` (default: GET and HEAD; a caller marks a POST that only reads).
    ``fresh``: never answered from the gateway's cache of backend answers (``no-cache``).
    """
    headers = {"Accept": accept}
    if fresh:
        headers["Cache-Control"] = "no-cache"
    content: bytes | None = None
    if json is not None:
        content = orjson.dumps(json)
        headers["Content-Type"] = "application/json"
    elif data is not None:
        content = str(httpx.QueryParams(data)).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = client.build_request(method, url, params=params, content=content, headers=headers)
    retry = RetryPolicy() if _idempotent(method, idempotent) else NO_RETRY
    exchange = _Exchange(client, backend, request, accept, not_found_ok)
    return await retry.run(exchange, _deadline(backend.timeout_s))


def _deadline(timeout_s: float) -> float:
    """When to give up: a little before the caller's own timeout of the same length.

    That timeout started earlier; ending first, a failure after retries is reported as what
    it was (a 503, a dropped connection) rather than as the timeout it ran into.
    """
    return asyncio.get_running_loop().time() + timeout_s - min(timeout_s * 0.1, DEADLINE_MARGIN_S)


def _idempotent(method: str, idempotent: bool | None) -> bool:
    return idempotent if idempotent is not None else method.upper() in ("GET", "HEAD")


class _Retry(Exception):
    """An attempt failed in a way worth trying again; ``error`` is what to raise otherwise."""

    def __init__(self, error: BackendError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Exchange:
    """One request to one backend, sent as often as the retry policy says."""

    client: httpx.AsyncClient
    backend: BackendConfig
    request: httpx.Request
    accept: str
    not_found_ok: bool

    async def attempt(self, deadline: float) -> bytes | None:
        bid = self.backend.id
        try:
            async with asyncio.timeout_at(deadline):
                return await self._send(deadline)
        except (TimeoutError, httpx.TimeoutException):
            raise BackendTimeout(bid, f"no answer within {self.backend.timeout_s:g} s") from None
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            error = BackendUnavailable(bid, f"connection failed ({_transport_reason(exc)})")
            raise _Retry(error) from None
        except httpx.TransportError as exc:
            raise BackendUnavailable(bid, f"connection failed ({type(exc).__name__})") from None

    async def _send(self, deadline: float) -> bytes | None:
        timeout = max(deadline - asyncio.get_running_loop().time(), 0.001)
        self.request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
        response = await send_lean(self.client, self.request, backend_auth(self.backend))
        try:
            if self.not_found_ok and response.status_code == 404:
                return None
            _check_status(self.backend, response)
            _check_type(self.backend, response, self.accept)
            return await _read_capped(self.backend, response)
        finally:
            await response.aclose()


async def send_lean(
    client: httpx.AsyncClient, request: httpx.Request, auth: httpx.Auth | None
) -> httpx.Response:
    """``client.send(request, stream=True, auth=auth)`` without what a backend exchange never
    uses: cookies, redirects (never followed here) and auth challenges (Basic and Bearer set a
    header and need no answer). The client's request hooks and its transport still run.

    ``AsyncClient.send`` costs ~100 us of CPU per request above its transport, a third of it
    in parsing cookies from every answer (``benchmarks/bench_latency.py`` B6: a 10-item search
    over three backends makes three such requests).
    """
    for hook in client.event_hooks["request"]:
        await hook(request)
    if auth is not None:
        request = next(auth.auth_flow(request))
    transport = client._transport_for_url(request.url)  # the proxy the environment names, if any
    response = await transport.handle_async_request(request)
    response.request = request
    return response


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff, within a deadline, honouring ``Retry-After``."""

    attempts: int = 4
    base_s: float = 0.2
    cap_s: float = 2.0

    async def run(self, exchange: _Exchange, deadline: float) -> bytes | None:
        loop = asyncio.get_running_loop()
        failed: _Retry | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                return await exchange.attempt(deadline)
            except BackendTimeout:
                if failed is None:
                    raise
                # Retrying used the time up: the failure that made it retry is the news.
                raise _give_up(failed, f"{_attempts(attempt)}, the last out of time") from None
            except _Retry as retry:
                failed = retry
            delay = self._delay(attempt, failed)
            if attempt == self.attempts:
                raise _give_up(failed, _attempts(attempt) if attempt > 1 else None)
            if loop.time() + delay >= deadline:
                if failed.retry_after is not None:
                    raise _give_up(failed, f"Retry-After {delay:g} s is beyond the time left")
                raise _give_up(failed, f"{_attempts(attempt)}, no time left for another")
            log.info("retrying %s in %.2f s: %s", exchange.backend.id, delay, failed.error)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, failed: _Retry) -> float:
        if failed.retry_after is not None:
            return failed.retry_after
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))


NO_RETRY = RetryPolicy(attempts=1)


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def _give_up(failed: _Retry, note: str | None) -> BackendError:
    """The error that made the last attempt fail, with how the retries ended (``note``)."""
    error = failed.error
    if note is None:
        return error
    reason = str(error).split(": ", 1)[-1]
    return type(error)(error.backend, f"{reason} ({note})", error.status)


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "refused or unreachable"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "dropped, or the answer is incomplete"
    return "reset"


def _check_status(backend: BackendConfig, response: httpx.Response) -> None:
    status = response.status_code
    if status in RETRY_STATUSES:
        error = BackendUnavailable(backend.id, f"HTTP {status}", status)
        raise _Retry(error, retry_after_s(response.headers.get("Retry-After")))
    if status == 501:  # a method or feature the backend lacks, not an outage
        raise BadBackendResponse(backend.id, "HTTP 501: not implemented", status)
    if status >= 500:
        raise BackendUnavailable(backend.id, f"HTTP {status}", status)
    if status in (401, 403):
        raise BadBackendResponse(backend.id, f"HTTP {status}: credentials refused", status)
    if 300 <= status < 400:
        raise BadBackendResponse(backend.id, f"HTTP {status}: redirects are not followed", status)
    if not 200 <= status < 300:
        raise BadBackendResponse(backend.id, f"HTTP {status}", status)


def _check_type(backend: BackendConfig, response: httpx.Response, accept: str) -> None:
    """An HTML page (a proxy's or a login error page) is never the API's answer."""
    media = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media in HTML_TYPES and "html" not in accept:
        status = response.status_code
        raise BadBackendResponse(backend.id, f"answered an HTML page (HTTP {status})", status)


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds from now (delay-seconds or an HTTP date); None if absent."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


async def _read_capped(backend: BackendConfig, response: httpx.Response) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadBackendResponse(backend.id, "answer too large")
    chunks = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadBackendResponse(backend.id, "answer too large")
        chunks.append(chunk)
    return b"".join(chunks)


__all__ = [
    "BackendError",
    "RetryPolicy",
    "backend_auth",
    "fetch_bytes",
    "fetch_json",
    "retry_after_s",
]
