"""The shared client's transport: httpx's API over aiohttp's connection pool.

Adapters, retries, the answer cache and the tests speak httpx (``httpx.AsyncClient``,
``httpx.Request``/``Response``, httpx's exceptions); underneath, requests to backends go through
aiohttp, whose HTTP/1.1 parser and pool are C-accelerated. httpcore spends ~280 us of CPU per
backend request of a 30 KB search page, aiohttp ~130 us (``benchmarks/bench_cpu.py``), and a
federated search makes one request per backend.

The request is sent as httpx built it: the URL as encoded (``yarl.URL(..., encoded=True)``: no
re-quoting of what an adapter quoted for its backend's language), its headers, its body; no
cookies are kept, redirects are never followed, bodies are not decompressed (httpx decodes
them). aiohttp's failures become the httpx exceptions ``adapters/http.py`` tells apart: a
refused connection ``ConnectError``, a dropped or malformed answer ``RemoteProtocolError``, a
reset ``ReadError``, a timeout ``ConnectTimeout``/``ReadTimeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
import yarl

# Order matters: the first class an error is an instance of decides.
_MAPPED: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (asyncio.TimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientError, httpx.TransportError),
)


@contextlib.contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError:
        raise
    except (TimeoutError, aiohttp.ClientError) as exc:
        for source, target in _MAPPED:
            if isinstance(exc, source):
                raise target(str(exc) or type(exc).__name__, request=request) from exc
        raise  # pragma: no cover - ClientError is the last entry


class _Body(httpx.AsyncByteStream):
    """The answer's body as it arrives (at most one read buffer at a time)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response, self._request = response, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # Read to the end: the connection goes back to the pool; otherwise it is closed.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one ``aiohttp.ClientSession``, opened on first use."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                limit_per_host=0,
                keepalive_timeout=self._limits.keepalive_expiry or 5.0,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        timeout = request.extensions.get("timeout", {})
        try:
            data: bytes | httpx.AsyncByteStream | None = request.content or None
        except httpx.RequestNotRead:
            data = request.stream  # type: ignore[assignment]  # streamed request bodies
        headers = [(k, v) for k, v in request.headers.multi_items() if k != "transfer-encoding"]
        with _httpx_errors(request):
            response = await session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        extensions = {
            "http_version": b"HTTP/1.1",
            "reason_phrase": (response.reason or "").encode(),
        }
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
