"""An executable specification of ESA's Data Hub Software (DHuS) HTTP API.

``create_emulator(items)`` serves, for a list of STAC items, the answers a DHuS mirror
(apihub/scihub) gives for the products those items describe: OpenSearch ``/search`` (Solr
``q``, JSON or Atom) and OData v1 ``/odata/v1/Products...`` (entities, ``$filter``, attributes,
nodes, downloads with ``Range``). Every answer is shaped like the real recordings in
``tests/fixtures/dhus`` (see PROVENANCE.md): envelopes, key order, numbers as strings, the
single-result and empty-feed quirks, error bodies and statuses, Tomcat's 401 pages.

Parts: ``emulator_records`` (STAC item -> DHuS record), ``emulator_solr`` (the ``q`` language),
``emulator_opensearch`` (feeds), ``emulator_odata`` (``$filter`` and entities),
``emulator_safe`` (manifest, nodes, zip, quick-look). This module is HTTP only.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.dhus import emulator_odata as odata
from adapters.dhus import emulator_opensearch as opensearch
from adapters.dhus import emulator_safe as safe
from adapters.dhus.emulator_deleted import DeletedProducts
from adapters.dhus.emulator_records import Item, Product, load_items, product_from_item
from adapters.dhus.emulator_solr import SolrError, compile_query
from adapters.emulated_download import Payload, ranged_response

__all__ = ["create_emulator"]

_TOMCAT8_HEAD = (
    "<!DOCTYPE html><html><head><title>Apache Tomcat/8.0.36 - Error report</title><style type"
    '="text/css">H1 {font-family:Tahoma,Arial,sans-serif;color:white;background-color:#525D76'
    ";font-size:22px;} H2 {font-family:Tahoma,Arial,sans-serif;color:white;background-color:#"
    "525D76;font-size:16px;} H3 {font-family:Tahoma,Arial,sans-serif;color:white;background-c"
    "olor:#525D76;font-size:14px;} BODY {font-family:Tahoma,Arial,sans-serif;color:black;back"
    "ground-color:white;} B {font-family:Tahoma,Arial,sans-serif;color:white;background-color"
    ":#525D76;} P {font-family:Tahoma,Arial,sans-serif;background:white;color:black;font-size"
    ":12px;}A {color : black;}A.name {color : black;}.line {height: 1px; background-color: #5"
    "25D76; border: none;}</style> </head>"
)
_ODATA_401_BODY = (
    "<body><h1>HTTP Status 401 - Full authentication is required to access this resource</h1>"
    '<div class="line"></div><p><b>type</b> Status report</p><p><b>message</b> <u>Full authen'
    "tication is required to access this resource</u></p><p><b>description</b> <u>This reques"
    't requires HTTP authentication.</u></p><hr class="line"><h3>Apache Tomcat/8.0.36</h3></b'
    "ody></html>"
)
_SEARCH_401 = (
    '<!doctype html><html lang="en"><head><title>HTTP Status 401 \u2013 Unauthorized</title><'
    'style type="text/css">h1 {font-family:Tahoma,Arial,sans-serif;color:white;background-col'
    "or:#525D76;font-size:22px;} h2 {font-family:Tahoma,Arial,sans-serif;color:white;backgrou"
    "nd-color:#525D76;font-size:16px;} h3 {font-family:Tahoma,Arial,sans-serif;color:white;ba"
    "ckground-color:#525D76;font-size:14px;} body {font-family:Tahoma,Arial,sans-serif;color:"
    "black;background-color:white;} b {font-family:Tahoma,Arial,sans-serif;color:white;backgr"
    "ound-color:#525D76;} p {font-family:Tahoma,Arial,sans-serif;background:white;color:black"
    ";font-size:12px;} a {color:black;} a.name {color:black;} .line {height:1px;background-co"
    "lor:#525D76;border:none;}</style></head><body><h1>HTTP Status 401 \u2013 Unauthorized</h"
    '1><hr class="line" /><p><b>Type</b> Status Report</p><p><b>Message</b> Unauthorized</p><'
    "p><b>Description</b> The request has not been applied because it lacks valid authenticat"
    'ion credentials for the target resource.</p><hr class="line" /><h3>Apache Tomcat/8.5.42<'
    "/h3></body></html>"
)
_SEARCH_REALM = 'Basic realm="Sentinels Scientific Data Hub Search"'
_ODATA_REALM = 'Basic realm="OData service"'
_SEGMENT = re.compile(r"^(?P<name>\$?\w+)(?:\('(?P<key>(?:[^']|'')*)'\))?$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_V2 = {"DataServiceVersion": "2.0"}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


def _rows_error(limit: int) -> Response:
    """DHuS's answer to ``rows`` above its maximum: Tomcat's 500 page."""
    message = f"parameter `rows` exceeds the maximum value ({limit})"
    nested = "Request processing failed; nested exception is java.lang.IllegalArgumentException"
    nested += f": {message}"
    body = (
        f'{_TOMCAT8_HEAD}<body><h1>HTTP Status 500 - {nested}</h1><div class="line"></div><p><b>'
        f"type</b> Exception report</p><p><b>message</b> <u>{nested}</u></p><p><b>description</b>"
        " <u>The server encountered an internal error that prevented it from fulfilling this "
        "request.</u></p><p><b>exception</b></p><pre>org.springframework.web.util."
        f"NestedServletException: {nested}\n</pre><p><b>note</b> <u>The full stack trace of the "
        'root cause is available in the Apache Tomcat/8.0.36 logs.</u></p><hr class="line">'
        "<h3>Apache Tomcat/8.0.36</h3></body></html>"
    )
    headers = {"cause-message": f"IllegalArgumentException : {message}", "Pragma": "no-cache"}
    return Response(body, 500, headers=headers, media_type="text/html;charset=utf-8")


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name, "")
    try:
        value = int(text) if text.strip() else default
    except ValueError:
        raise SolrError(f'For input string: "{text}"') from None
    if value < 0:
        raise SolrError(f"'{name}' parameter cannot be negative")
    return value


def _byte_range(match: re.Match[str], size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` -> (first, last) within ``size``; None when unsatisfiable."""
    first, last = match.group(1), match.group(2)
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end and start < size else None


def _download(request: Request, data: bytes, media: str, filename: str | None) -> Response:
    """Bytes with ``Range`` (206/416; other range forms are ignored) and ``HEAD`` support."""
    headers = {"Accept-Ranges": "bytes"} | _V2
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    status, body = 200, data
    match = _RANGE.match(request.headers.get("range", "").strip())
    if match and match.group(1) + match.group(2):
        bounds = _byte_range(match, len(data))
        if bounds is None:
            return Response(b"", 416, headers={"Content-Range": f"bytes */{len(data)}"})
        status, body = 206, data[bounds[0] : bounds[1] + 1]
        headers["Content-Range"] = f"bytes {bounds[0]}-{bounds[1]}/{len(data)}"
    headers["Content-Length"] = str(len(body))
    return Response(b"" if request.method == "HEAD" else body, status, headers, media_type=media)


class _Segment:
    def __init__(self, text: str) -> None:
        match = _SEGMENT.match(text)
        if match is None:
            raise odata.ODataError(f"Resource not found for the segment '{text}'.", 404)
        self.name = match.group("name")
        key = match.group("key")
        self.key = None if key is None else key.replace("''", "'")


class _Hub:
    """One emulated DHuS mirror: its products and how it answers."""

    def __init__(
        self,
        products: list[Product],
        credentials: tuple[str, str] | None,
        max_rows: int,
        tie_order: str,
    ) -> None:
        self.products = products
        self.by_uuid = {p.uuid: p for p in products}
        self.credentials, self.max_rows, self.tie_order = credentials, max_rows, tie_order
        self.deleted = DeletedProducts(products, self.by_uuid, max_rows)  # emulator_deleted
        self.product_size: int | None = None  # downloads: a filler of this size, not the zip

    def denied(self, request: Request, realm: str, body: str) -> Response | None:
        """None when allowed; else the 401 Tomcat answers with (recorded body and realm)."""
        if self.credentials is None:
            return None
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True) if scheme.lower() == "basic" else b""
        except (binascii.Error, ValueError):
            given = b""
        expected = ":".join(self.credentials).encode()
        if given and secrets.compare_digest(given, expected):
            return None
        headers = {"WWW-Authenticate": realm, "Content-Language": "en", "Pragma": "no-cache"}
        if realm == _SEARCH_REALM:
            headers["Cache-Control"] = "no-cache, no-store, max-age=0, must-revalidate"
        return Response(body, 401, headers=headers, media_type="text/html;charset=utf-8")

    # --- OpenSearch ----------------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        request.app.state.requests += 1
        if denied := self.denied(request, _SEARCH_REALM, _SEARCH_401):
            return denied
        params = dict(request.query_params)
        if request.method == "POST":
            form = (await request.body()).decode("utf-8", "replace")
            params |= dict(parse_qsl(form, keep_blank_values=True))
        query = params.get("q", "*")
        request.app.state.queries.append(query)
        as_json = params.get("format", "").lower() == "json"
        try:
            return self.feed(request, params, query, as_json)
        except SolrError as exc:
            if as_json:
                return _json(opensearch.error_json(str(exc)), headers={"Pragma": "no-cache"})
            return Response(opensearch.error_atom(str(exc)), media_type="application/atom+xml")

    def feed(self, request: Request, params: dict[str, str], query: str, as_json: bool) -> Response:
        began = time.perf_counter()
        start, rows = _int_param(params, "start", 0), _int_param(params, "rows", 10)
        if rows > self.max_rows:
            return _rows_error(self.max_rows)
        matches = compile_query(query)
        found = [p for p in self.products if matches(p)]
        ordered = opensearch.sort_products(found, params.get("orderby"), self.tie_order)
        seconds = round(time.perf_counter() - began, 3)
        page = opensearch.Page(
            query, start, rows, len(found), ordered[start : start + rows],
            str(request.base_url), as_json, seconds,
        )  # fmt: skip
        if as_json:
            return _json(opensearch.feed_json(page), headers={"Pragma": "no-cache"})
        return Response(opensearch.feed_atom(page), media_type="application/atom+xml")

    # --- OData ---------------------------------------------------------------------------------
    async def odata(self, request: Request) -> Response:
        request.app.state.requests += 1
        if denied := self.denied(request, _ODATA_REALM, _TOMCAT8_HEAD + _ODATA_401_BODY):
            return denied
        params = request.query_params
        as_json = params.get("$format") == "json" or "json" in request.headers.get("accept", "")
        try:
            parts = [_Segment(s) for s in request.path_params["path"].split("/") if s]
            if parts and parts[0].name == "DeletedProducts":
                return self.deleted_products(request, parts)
            if not parts or parts[0].name != "Products":
                name = parts[0].name if parts else ""
                raise odata.ODataError(f"Could not find an entity set for '{name}'.", 404)
            if parts[0].key is None and len(parts) == 1:
                return self.collection(request)
            product = self.by_uuid.get(parts[0].key or "")
            if product is None:
                message = f"Invalid key ({parts[0].key}) to access Products"
                raise odata.ODataError(message, 404, "InvalidKeyException")
            return self.product_part(request, product, parts[1:])
        except odata.ODataError as exc:
            headers = {"DataServiceVersion": "1.0"}
            if exc.cause:
                headers["cause-message"] = f"{exc.cause} : {exc}"
            if as_json:
                return _json(odata.error_json(str(exc)), exc.status, headers)
            body = odata.error_xml(str(exc))
            return Response(body, exc.status, headers=headers, media_type="application/xml")

    def deleted_products(self, request: Request, parts: list[_Segment]) -> Response:
        service, rest = f"{request.base_url}odata/v1/", [s.name for s in parts[1:]]
        found = self.deleted.answer(service, dict(request.query_params), parts[0].key, rest)
        if isinstance(found, str):  # $count
            return Response(found, headers=_V2, media_type="text/plain;charset=utf-8")
        return _json(found, headers=_V2)

    def collection(self, request: Request) -> Response:
        params = request.query_params
        text = params.get("$filter")
        if text is not None:
            request.app.state.queries.append(text)
        top, skip, counted = odata.page_params(params, self.max_rows)
        matches = odata.compile_filter(text) if text else (lambda p: True)
        found = [p for p in self.products if matches(p)]
        ordered = odata.order_products(found, params.get("$orderby"))
        service, expand = f"{request.base_url}odata/v1/", params.get("$expand") == "Attributes"
        results = [odata.product_json(p, service, expand) for p in ordered[skip : skip + top]]
        body: dict[str, Any] = {"__count": str(len(found))} if counted else {}
        return _json({"d": body | {"results": results}}, headers=_V2)

    def product_part(self, request: Request, p: Product, rest: list[_Segment]) -> Response:
        service = f"{request.base_url}odata/v1/"
        url = f"{service}Products('{p.uuid}')"
        names = [s.name for s in rest]
        if not rest:
            expand = request.query_params.get("$expand") == "Attributes"
            return _json({"d": odata.product_json(p, service, expand)}, headers=_V2)
        if names == ["$value"]:
            return self.product_value(request, p)
        if names == ["Online", "$value"]:
            return Response("true", headers=_V2, media_type="text/plain;charset=utf-8")
        if names == ["Products", "$value"] and rest[0].key == "Quicklook":
            return _download(request, safe.quicklook_jpeg(), "image/jpeg", None)
        if names[0] == "Attributes" and len(rest) == 1:
            return self.attributes(p, rest[0].key, url)
        if names[0] == "Nodes":
            return self.nodes(request, p, rest, url)
        raise odata.ODataError(f"Resource not found for the segment '{rest[0].name}'.", 404)

    def product_value(self, request: Request, p: Product) -> Response:
        """The product zip, streamed with ``Range``; a filler of ``product_size`` if set."""
        request.app.state.downloads += 1
        size = self.product_size
        payload = Payload(p.name, size) if size else Payload.of(safe.product_zip(p))
        headers = {"Content-Disposition": f'attachment; filename="{p.name}.zip"', **_V2}
        return ranged_response(request, payload, "application/octet-stream", headers)

    def attributes(self, p: Product, key: str | None, url: str) -> Response:
        if key is None:
            return _json({"d": {"results": odata.attributes_json(p, url)}}, headers=_V2)
        for row in odata.attribute_rows(p):
            if row[0] == key:
                return _json({"d": odata.attribute_json(url, *row)}, headers=_V2)
        raise odata.ODataError(
            f"Invalid key ({key}) to access Attributes", 404, "InvalidKeyException"
        )

    def nodes(self, request: Request, p: Product, rest: list[_Segment], url: str) -> Response:
        """``Nodes('<name>.SAFE')/Nodes('GRANULE')/.../Nodes('<file>')[/$value|/Nodes]``."""
        tree, path = safe.tree(p), None  # None: the product itself; "": the .SAFE directory
        for index, segment in enumerate(rest):
            last = index == len(rest) - 1
            if segment.name == "$value" and last and path is not None and path not in tree:
                return _download(request, safe.file_bytes(p, path), safe.content_type(path), None)
            if segment.name != "Nodes" or (segment.key is None and not last):
                raise odata.ODataError(f"Resource not found for the segment '{segment.name}'.", 404)
            if segment.key is None:
                children = [f"{p.name}.SAFE"] if path is None else tree.get(path, ())
                parent = url if path is None else self.node_url(url, p, path)
                nodes = [self.node(p, _join(path, c), f"{parent}/Nodes('{c}')") for c in children]
                return _json({"d": {"results": nodes}}, headers=_V2)
            if (path is None and segment.key != f"{p.name}.SAFE") or (
                path is not None and segment.key not in tree.get(path, ())
            ):
                message = f"Invalid key ({segment.key}) to access Nodes"
                raise odata.ODataError(message, 404, "InvalidKeyException")
            path = "" if path is None else _join(path, segment.key)
        assert path is not None
        return _json({"d": self.node(p, path, self.node_url(url, p, path))}, headers=_V2)

    @staticmethod
    def node_url(url: str, p: Product, path: str) -> str:
        names = [f"{p.name}.SAFE", *(path.split("/") if path else [])]
        return url + "".join(f"/Nodes('{name}')" for name in names)

    @staticmethod
    def node(p: Product, path: str, url: str) -> dict[str, Any]:
        tree, name = safe.tree(p), path.rsplit("/", 1)[-1] or f"{p.name}.SAFE"
        if path in tree:
            return odata.node_json(url, name, "application/octet-stream", 0, len(tree[path]))
        data = safe.file_bytes(p, path)
        kind = "SAFE Manifest" if path == "manifest.safe" else safe.content_type(path)
        children = 1 if name.endswith((".safe", ".xml")) else 0  # DHuS counts an XML's root
        return odata.node_json(url, name, kind, len(data), children)


def _join(path: str | None, name: str) -> str:
    return name if not path else f"{path}/{name}"


def create_emulator(
    source: list[Item] | Path | str,
    *,
    credentials: tuple[str, str] | None = None,
    max_rows: int = 100,
    tie_order: str = "uuid",
    product_size: int | None = None,
) -> Starlette:
    """A DHuS mirror holding the products of ``source`` (STAC items: a list or a JSON file).

    ``credentials``: (user, password) every endpoint then requires (HTTP Basic);
    ``max_rows``: the largest ``rows``/``$top`` accepted; ``tie_order``: how the index orders
    products with equal sort keys (``uuid`` as a Solr index does, ``name`` or ``input``);
    ``product_size``: ``Products(...)/$value`` serves that many deterministic bytes, generated
    lazily (see :mod:`adapters.emulated_download`), instead of the small SAFE zip.
    ``app.state.downloads`` counts ``$value`` requests that passed authentication.
    ``app.state.requests`` counts requests, ``app.state.queries`` records each ``q``/``$filter``.
    """
    if tie_order not in ("uuid", "name", "input"):
        raise ValueError(f"tie_order must be uuid, name or input, not {tie_order!r}")
    products: dict[str, Product] = {}
    for item in load_items(source):
        product = product_from_item(item)
        products.setdefault(product.uuid, product)
    hub = _Hub(list(products.values()), credentials, max_rows, tie_order)
    hub.product_size = product_size
    app = Starlette(
        routes=[
            Route("/search", hub.search, methods=["GET", "POST"]),
            Route("/odata/v1/{path:path}", hub.odata, methods=["GET", "HEAD"]),
        ]
    )
    app.state.requests = 0
    app.state.queries = []
    app.state.downloads = 0
    app.state.deleted = hub.deleted  # DeletedProducts: .delete(name, cause, when) withdraws
    return app
