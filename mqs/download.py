"""One download endpoint for assets of backends that need credentials.

Items never show a URL that only works with the gateway's own backend credentials: the
``href`` of an asset (and each ``alternate`` href) held by a backend with ``auth`` becomes
``{base}download/{collection}/{item}/{asset}`` (alternates add ``?backend=<id>``), see
:func:`proxy_assets`. Public hrefs stay direct.

``GET|HEAD /download/{collection}/{item}/{asset}[?backend=ID]`` (:func:`download`) checks the
user's access to the collection (:mod:`mqs.auth`), resolves the item through the federation
(as ``/collections/{c}/items/{id}`` does, without the backends the user may not see), and
takes the copies of the asset held by backends, the highest priority first (or only
``backend``'s). Each is asked in turn, with the backend's
credentials, until one answers 200/206: a connection failure, timeout, 5xx, 401/403 (after
one retry with a fresh OAuth2 token), 404 or redirect to an untrusted origin (see
:func:`trusted`; trusted redirects are followed) before the first byte moves on to the
next copy. The answer is streamed as it arrives (never held whole), with ``Range``/``If-Range``
passed through (206 + ``Content-Range``; 416 for an unsatisfiable range) and the upstream's
``Content-Length``, ``Content-Type``, ``Content-Disposition``, ``ETag``, ``Last-Modified``,
``Accept-Ranges`` kept; ``X-MQS-Backend`` says whose copy it is; ``X-Content-Type-Options:
nosniff`` and a sandboxing ``Content-Security-Policy`` keep a backend's bytes from running as
a page of the gateway's origin. A client that goes away
closes the upstream stream. Credentials are sent only to URLs under the backend's configured
``url`` and appear in no answer, header, log line or error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import FastAPI, Query, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from adapters.base import BackendError
from mqs.auth import hidden_backends, require_collection
from mqs.config import BackendConfig
from mqs.errors import MQSError, NotFound, UpstreamFailed, UpstreamTimeout
from mqs.identity import product_name
from mqs.metrics import record_download
from mqs.query import parse_ids
from mqs.runtime import Runtime

log = logging.getLogger("mqs.download")

PASSED = (
    "content-type",
    "content-length",
    "content-range",
    "content-disposition",
    "content-encoding",
    "etag",
    "last-modified",
    "accept-ranges",
)
# Answer headers a browser's script may read across origins (CORS ``expose_headers``).
DOWNLOAD_EXPOSED = (
    "Content-Range",
    "Content-Disposition",
    "Content-Length",
    "Accept-Ranges",
    "ETag",
    "X-MQS-Backend",
)
# An asset is served from the gateway's origin, whatever its type: a browser must not sniff it
# into HTML nor run anything in it (scripts there could read what the API pages of that origin,
# e.g. the OpenAPI UI, hold).
SANDBOXED = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
_SINGLE_RANGE = re.compile(r"^bytes=\d*-\d*$")
_ASSET_KEY = re.compile(r"^[\w.:-]{1,100}$")


class RangeNotSatisfiable(MQSError):
    status = 416
    code = "RangeNotSatisfiable"


@dataclass(frozen=True)
class Source:
    """One backend's copy of an asset."""

    backend: BackendConfig
    href: str


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_and_path(url: str) -> tuple[str, str] | None:
    """(``scheme://host:port``, path) of an absolute http(s) URL without credentials, else None.

    The URL must mean the same origin to :func:`urllib.parse.urlsplit` and to httpx (which
    sends it): no control characters (one parser drops them, the other refuses them).
    """
    if not url.isprintable():
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
        sent = httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    port = port or _DEFAULT_PORTS[scheme]
    if (sent.scheme, sent.host, sent.port or _DEFAULT_PORTS[scheme]) != (
        scheme,
        parts.hostname,
        port,
    ):
        return None
    return f"{scheme}://{parts.hostname}:{port}", parts.path


_root = lru_cache(maxsize=1024)(_origin_and_path)  # backend URLs: a few, parsed once


def under(href: str, root: str) -> bool:
    """Whether ``href`` is a URL within the backend URL ``root`` (same origin, path below)."""
    url, base = _origin_and_path(href), _root(root)
    if url is None or base is None or url[0] != base[0]:
        return False
    path, prefix = url[1], base[1].rstrip("/")
    if "/../" in f"{path}/" or "/./" in f"{path}/" or "\\" in path:
        return False  # no way out of the backend's path (some servers take a backslash for /)
    if any(encoded in path.lower() for encoded in ("%2e", "%2f", "%5c")):
        return False  # nor percent-encoded dots or slashes a server may decode before ".."
    return path == prefix or path.startswith(f"{prefix}/")


def sources(item: dict[str, Any], key: str, backends: Mapping[str, BackendConfig]) -> list[Source]:
    """The copies of asset ``key`` that backends of the federation hold, best first."""
    asset = (item.get("assets") or {}).get(key)
    if not isinstance(asset, dict):
        return []
    holders = (item.get("properties") or {}).get("federation:backends") or []
    found: dict[str, Source] = {}
    href = asset.get("href")
    for bid in holders:
        backend = backends.get(bid)
        if backend is not None and isinstance(href, str) and under(href, backend.url):
            found[bid] = Source(backend, href)
            break
    alternates = asset.get("alternate")
    for bid, alternate in (alternates if isinstance(alternates, dict) else {}).items():
        backend = backends.get(bid)
        alt = alternate.get("href") if isinstance(alternate, dict) else None
        if (
            backend is not None
            and bid not in found
            and isinstance(alt, str)
            and under(alt, backend.url)
        ):
            found[bid] = Source(backend, alt)
    return sorted(found.values(), key=lambda s: (-s.backend.priority, s.backend.id))


def proxy_assets(
    item: dict[str, Any], base: str, backends: Iterable[BackendConfig]
) -> dict[str, Any]:
    """``item`` with the hrefs that need a backend's credentials pointing at the gateway."""
    protected = {b.id: b for b in backends if b.auth is not None}
    assets = item.get("assets")
    if not protected or not isinstance(assets, dict):
        return item
    named = (item.get("properties") or {}).get("federation:backends") or []
    holders = [protected[bid] for bid in named if bid in protected]
    root = f"{base}download/{quote(str(item.get('collection')), safe='')}"
    root += f"/{quote(str(item.get('id')), safe='')}"
    rewritten = {}
    for key, asset in assets.items():
        if not isinstance(asset, dict):
            rewritten[key] = asset
            continue
        url = f"{root}/{quote(key, safe='')}"
        asset = dict(asset)
        href = asset.get("href")
        if isinstance(href, str) and any(under(href, b.url) for b in holders):
            asset["href"] = url
        alternates = asset.get("alternate")
        if isinstance(alternates, dict):
            asset["alternate"] = {
                bid: _proxied(alt, protected.get(bid), f"{url}?backend={quote(bid)}")
                for bid, alt in alternates.items()
            }
        rewritten[key] = asset
    return {**item, "assets": rewritten}


def _proxied(alternate: Any, backend: BackendConfig | None, url: str) -> Any:
    href = alternate.get("href") if isinstance(alternate, dict) else None
    if backend is None or not isinstance(href, str) or not under(href, backend.url):
        return alternate
    return {**alternate, "href": url}


class _Failed(Exception):
    """One copy could not be had before its first byte; ``status`` says how."""

    def __init__(self, status: str, http_status: int | None = None) -> None:
        super().__init__(status)
        self.status, self.http_status = status, http_status


class _Relay(StreamingResponse):
    """Streams an upstream answer; whatever ends it (done, error, client gone) closes it."""

    def __init__(
        self, upstream: httpx.Response, headers: dict[str, str], collection: str, backend: str
    ) -> None:
        self.upstream, self.collection, self.backend = upstream, collection, backend
        self.sent = 0
        self._closed = False
        super().__init__(self._chunks(), upstream.status_code, headers)

    async def _chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.upstream.aiter_raw():
            self.sent += len(chunk)
            yield chunk

    async def stream_response(self, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await send(start | {"headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as exc:  # the backend broke off mid-stream: so does the answer
            log.warning("download from %s broke off: %s", self.backend, type(exc).__name__)
            return  # never ended: the server drops the connection, the client sees it cut short
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.upstream.aclose()
        record_download(self.collection, self.backend, self.sent)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.mqs
    return runtime


BACKEND_PARAMETER = Query(
    None,
    description="the id of the backend whose copy to download (default: the best available)",
    pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
)


async def download(
    request: Request,
    collection_id: str,
    item_id: str,
    asset: str,
    backend: str | None = BACKEND_PARAMETER,
) -> Response:
    """The asset's bytes, streamed with the gateway's credentials for the backend holding it
    (``Range``, ``HEAD``; falls back to another backend's copy when one fails before sending)."""
    runtime = _runtime(request)
    if collection_id not in runtime.config.collections:
        raise NotFound(f"collection {collection_id[:100]!r} not found")
    await require_collection(request, collection_id)  # 401/403 STAC errors
    ids = parse_ids([item_id])
    if not ids or not _ASSET_KEY.match(asset):
        raise NotFound("asset not found")
    hidden = await hidden_backends(request)  # backends the user may not see: not asked
    item, outcomes = await runtime.federation.get_item(collection_id, product_name(ids[0]), hidden)
    if item is None:
        if outcomes and all(o.status != "ok" for o in outcomes.values()):
            raise UpstreamFailed("no backend could answer")
        raise NotFound(f"item {item_id[:100]!r} not found in {collection_id!r}")
    backends = {b.id: b for b in runtime.config.backends}
    found = sources(item, asset, backends)
    found = [s for s in found if s.backend.id not in hidden and backend in (None, s.backend.id)]
    if not found:
        raise NotFound(f"asset {asset[:100]!r} not found in item {item_id[:100]!r}")
    upstream, source = await _open_first(runtime, request, found)
    headers = {name: value for name in PASSED if (value := upstream.headers.get(name))}
    headers |= SANDBOXED  # a backend's bytes never run as a page of the gateway's origin
    headers["X-MQS-Backend"] = source.backend.id
    if request.method == "HEAD":
        await upstream.aclose()
        return Response(b"", upstream.status_code, headers=headers)
    return _Relay(upstream, headers, collection_id, source.backend.id)


async def _open_first(
    runtime: Runtime, request: Request, found: list[Source]
) -> tuple[httpx.Response, Source]:
    """The first copy that answers with bytes, else the error that sums up the failures."""
    failures: dict[str, _Failed] = {}
    for source in found:
        try:
            return await _open(runtime, request, source), source
        except _Failed as exc:
            failures[source.backend.id] = exc
            if exc.http_status == 416:
                break  # the client's range, not the backend's fault: no other copy differs
            log.info("download: %s failed (%s), trying the next copy", source.backend.id, exc)
    for failed in failures.values():
        if failed.http_status == 416:
            total = failed.status.removeprefix("range:")
            unsatisfiable = RangeNotSatisfiable(f"range not satisfiable ({total} bytes)")
            unsatisfiable.headers = {"Content-Range": f"bytes */{total}"}
            raise unsatisfiable
    statuses = {bid: f.status for bid, f in failures.items()}
    if all(f.http_status == 404 for f in failures.values()):
        raise NotFound("asset not found at any backend holding it")
    error = UpstreamTimeout if all(s == "timeout" for s in statuses.values()) else UpstreamFailed
    raise error("no backend could deliver the asset", {"federation:backends": statuses})


async def _open(runtime: Runtime, request: Request, source: Source) -> httpx.Response:
    """The upstream answer to this request for ``source``, its body not yet read."""
    credentials = runtime.credentials.get(source.backend.id)
    for attempt in (1, 2):
        headers = {"Accept": "*/*", "Cache-Control": "no-cache"}  # never via the answer cache
        wanted = request.headers.get("range", "").strip()
        if _SINGLE_RANGE.match(wanted):  # several ranges are not passed on: the whole asset
            headers["Range"] = wanted
            if if_range := request.headers.get("if-range"):
                headers["If-Range"] = if_range
        try:
            if credentials is not None:
                headers["Authorization"] = await credentials.authorization()
        except BackendError:  # no token: not configured, or the token endpoint refused
            raise _Failed("auth") from None
        upstream = await _send(runtime, request.method, source, headers)
        if upstream.status_code == 405 and request.method == "HEAD":  # HEAD not supported:
            await upstream.aclose()  # the headers of a GET whose body is never read
            upstream = await _send(runtime, "GET", source, headers)
        upstream = await _follow(runtime, upstream, source, headers)
        status = upstream.status_code
        if status in (200, 206):
            return upstream
        await upstream.aclose()
        refused = status in (401, 403) and credentials is not None and attempt == 1
        if refused and credentials and await credentials.reject(headers["Authorization"]):
            continue  # a token the backend no longer takes: once more with a fresh one
        if status == 416:
            total = upstream.headers.get("content-range", "").rpartition("/")[2]
            raise _Failed(f"range:{total if total.isdigit() else '*'}", 416)
        kind = "unavailable" if status >= 500 else "not-found" if status == 404 else "bad-response"
        raise _Failed(kind, status)
    raise AssertionError("unreachable")  # pragma: no cover


_REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 3


def trusted(url: str, backend: BackendConfig) -> bool:
    """Whether ``url`` may get ``backend``'s credentials: below its ``url``, or on one of its
    ``auth.download_origins`` (same checks on the path as :func:`under`)."""
    origins = backend.auth.download_origins if backend.auth is not None else []
    return under(url, backend.url) or any(under(url, f"{origin}/") for origin in origins)


async def _follow(
    runtime: Runtime, upstream: httpx.Response, source: Source, headers: dict[str, str]
) -> httpx.Response:
    """Follow a backend's redirects to trusted places only (:func:`trusted`), at most
    :data:`MAX_REDIRECTS`; a redirect elsewhere is answered as it is (that copy fails)."""
    for _ in range(MAX_REDIRECTS):
        if upstream.status_code not in _REDIRECTS or "location" not in upstream.headers:
            return upstream
        try:
            target = str(upstream.url.join(upstream.headers["location"]))
        except (httpx.InvalidURL, ValueError):
            return upstream
        if not trusted(target, source.backend):
            log.info("download: %s redirects to an untrusted origin", source.backend.id)
            return upstream
        method = "GET" if upstream.status_code == 303 else upstream.request.method
        await upstream.aclose()
        upstream = await _send(runtime, method, Source(source.backend, target), headers)
    return upstream


async def _send(
    runtime: Runtime, method: str, source: Source, headers: dict[str, str]
) -> httpx.Response:
    timeout = httpx.Timeout(source.backend.timeout_s)
    request = runtime.http.build_request(method, source.href, headers=headers, timeout=timeout)
    try:
        return await runtime.http.send(request, stream=True)
    except httpx.TimeoutException:
        raise _Failed("timeout") from None
    except httpx.TransportError:
        raise _Failed("unavailable") from None


DOWNLOAD_PATH = "/download/{collection_id}/{item_id}/{asset}"
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the asset", "content": {"application/octet-stream": {}}},
    206: {"description": "the requested range of the asset (``Content-Range``)"},
    401: {"description": "sign-in needed for this collection"},
    403: {"description": "the user may not see this collection"},
    404: {"description": "no such collection, item, asset or backend copy"},
    416: {"description": "range not satisfiable (``Content-Range: bytes */<size>``)"},
    502: {"description": "no backend holding the asset could deliver it"},
}


def install_download(app: FastAPI) -> None:
    """``GET`` (documented) and ``HEAD`` of :data:`DOWNLOAD_PATH`."""
    app.add_api_route(
        DOWNLOAD_PATH,
        download,
        methods=["GET"],
        name="Download an asset",
        operation_id="download_asset",
        response_class=Response,
        responses=_RESPONSES,
    )
    app.add_api_route(DOWNLOAD_PATH, download, methods=["HEAD"], include_in_schema=False)


__all__ = ["DOWNLOAD_EXPOSED", "download", "install_download", "proxy_assets", "sources", "under"]
