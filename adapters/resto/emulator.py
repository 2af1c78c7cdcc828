"""An executable specification of a resto OpenSearch catalogue as CDSE runs it.

``create_emulator(items)`` serves, for a list of STAC items, what
``https://catalogue.dataspace.copernicus.eu/resto/api`` answers for those products:
``/collections/<name>/search.json`` (``Sentinel1``/``SENTINEL-1``, ``Sentinel2``/``SENTINEL-2``),
``/collections/search.json`` (every collection), ``/collections/<name>/describe.xml`` and a
feature's own ``/collections/<NAME>/<uuid>.json``. Answers have the recorded envelope
(``tests/fixtures/resto``): ``totalResults`` only with ``exactCount=1`` (else ``null`` and
``exactCount`` 0), ``startIndex``, ``itemsPerPage`` = ``maxRecords`` (default 20),
``query.originalFilters``/``appliedFilters`` (every parameter but paging and sorting, plus the
collection's canonical name), ``processingTime``, links ``self`` (the request as sent),
``search``, ``previous``/``first`` past page 1, ``next`` after a full page, ``last`` with a count
(the ``page`` parameter moved to the end, as recorded). Errors are resto's
``{"ErrorMessage", "ErrorCode"}``. Parts: ``emulator_records`` (item -> record),
``emulator_search`` (parameters and their semantics); this module is HTTP only.
"""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.resto import emulator_search as engine
from adapters.resto.emulator_records import NAMESPACE, Item, Product, load_items, product_from_item

__all__ = ["create_emulator"]

COLLECTIONS = {"sentinel1": "SENTINEL-1", "sentinel2": "SENTINEL-2"}
SHORT_NAMES = {"SENTINEL-1": "Sentinel1", "SENTINEL-2": "Sentinel2"}


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def _error(message: str, status: int) -> Response:
    return _json({"ErrorMessage": message, "ErrorCode": status}, status)


def _canonical(name: str) -> str | None:
    return COLLECTIONS.get("".join(c for c in name.lower() if c.isalnum()))


def _link(rel: str, href: str, kind: str = "application/json", title: str | None = None) -> Any:
    return {"rel": rel, "type": kind, "title": title or rel, "href": href}


def _page_href(request: Request, page: int) -> str:
    """The request's URL with ``page`` moved to the end (as resto writes its links)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    return str(request.url.replace(query=urlencode([*kept, ("page", str(page))])))


def _links(request: Request, page: int, full: bool, last: int | None, describe: str) -> Any:
    osdd = "OpenSearch Description Document"
    links = [_link("self", str(request.url))]
    links.append(_link("search", describe, "application/opensearchdescription+xml", osdd))
    if page > 1:
        links += [_link("previous", _page_href(request, page - 1))]
        links += [_link("first", _page_href(request, 1))]
    if full:
        links.append(_link("next", _page_href(request, page + 1)))
    if last is not None:
        links.append(_link("last", _page_href(request, last)))
    return links


class _Catalogue:
    """The emulated catalogue: its products and how it answers."""

    def __init__(self, products: list[Product], max_records: int) -> None:
        self.products = products
        self.by_uuid = {p.uuid: p for p in products}
        self.max_records = max_records

    def base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def search(self, request: Request) -> Response:
        request.app.state.requests += 1
        name = request.path_params.get("name")
        collection = _canonical(name) if name is not None else None
        params = dict(request.query_params)
        request.app.state.queries.append({**params, "collection": name or ""})
        if name is not None and collection is None:
            return _error("Not Found", 404)
        try:
            return self.answer(request, collection, params)
        except engine.RestoError as exc:
            return _error(str(exc), exc.status)

    def answer(self, request: Request, collection: str | None, params: dict[str, str]) -> Response:
        began = time.perf_counter()
        size = engine.int_param(params, "maxRecords", 20, 1, self.max_records)
        page = engine.int_param(params, "page", 1, 1, 10**9)
        offset = (page - 1) * size + engine.int_param(params, "index", 1, 1, 10**9) - 1
        tests = engine.compile_filters(params)
        mine = [p for p in self.products if collection is None or p.collection == collection]
        found = engine.order([p for p in mine if all(t(p) for t in tests)], params)
        chosen = found[offset : offset + size]
        exact = params.get("exactCount") == "1"
        filters: dict[str, Any] = {k: v for k, v in params.items() if k not in engine.PAGING}
        if collection is not None:
            filters["collection"] = collection
        short = SHORT_NAMES.get(collection or "", "")
        root = self.base(request)
        describe = f"{root}/collections/{short}/describe.xml" if short else f"{root}/describe.xml"
        last = max(1, math.ceil(len(found) / size)) if exact else None
        meta = {
            "id": str(
                uuid.uuid5(NAMESPACE, orjson.dumps(filters, option=orjson.OPT_SORT_KEYS).decode())
            ),
            "totalResults": len(found) if exact else None,
            "exactCount": 1 if exact else 0,
            "startIndex": offset + 1,
            "itemsPerPage": size,
            "query": {
                "originalFilters": filters,
                "appliedFilters": filters,
                "processingTime": round(time.perf_counter() - began, 9),
            },
            "links": _links(request, page, len(chosen) == size, last, describe),
        }
        features = [p.feature(root) for p in chosen]
        return _json({"type": "FeatureCollection", "properties": meta, "features": features})

    async def feature(self, request: Request) -> Response:
        request.app.state.requests += 1
        product = self.by_uuid.get(request.path_params["uid"])
        if product is None or _canonical(request.path_params["name"]) != product.collection:
            return _error("Not Found", 404)
        return _json(product.feature(self.base(request)))

    async def describe(self, request: Request) -> Response:
        request.app.state.requests += 1
        collection = _canonical(request.path_params["name"])
        if collection is None:
            return _error("Not Found", 404)
        short = SHORT_NAMES[collection]
        template = f"{self.base(request)}/collections/{short}/search.json?" + "&".join(
            f"{name}={{{value}?}}" for name, value in _TEMPLATE
        )
        template = escape(template, {'"': "&quot;"})
        body = _OSDD.format(short=collection, long=f"{collection} Collection", template=template)
        return Response(body, media_type="application/opensearchdescription+xml")


_TEMPLATE = (
    ("maxRecords", "count"), ("index", "startIndex"), ("page", "startPage"),
    ("identifier", "geo:uid"), ("geometry", "geo:geometry"), ("box", "geo:box"),
    ("startDate", "time:start"), ("completionDate", "time:end"),
    ("productIdentifier", "eo:productIdentifier"), ("productType", "eo:productType"),
    ("processingLevel", "eo:processingLevel"), ("platform", "eo:platform"),
    ("instrument", "eo:instrument"), ("orbitNumber", "eo:orbitNumber"),
    ("sensorMode", "eo:sensorMode"), ("cloudCover", "eo:cloudCover"),
    ("sortParam", "resto:sortParam"), ("sortOrder", "resto:sortOrder"),
    ("status", "resto:status"), ("exactCount", "resto:exactCount"),
    ("orbitDirection", "eo:orbitDirection"),
    ("relativeOrbitNumber", "sentinel:relativeOrbitNumber"),
    ("polarisation", "resto:polarisation"), ("tileId", "resto:tileId"),
)  # fmt: skip
_OSDD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<OpenSearchDescription xml:lang="en" '
    'xmlns="http://a9.com/-/spec/opensearch/1.1/" '
    'xmlns:time="http://a9.com/-/opensearch/extensions/time/1.0/" '
    'xmlns:geo="http://a9.com/-/opensearch/extensions/geo/1.0/" '
    'xmlns:eo="http://a9.com/-/opensearch/extensions/eo/1.0/" '
    'xmlns:parameters="http://a9.com/-/spec/opensearch/extensions/parameters/1.0/" '
    'xmlns:resto="http://mapshup.info/-/resto/2.0/" '
    'xmlns:sentinel="http://creodias.eu/namespace/sentinel">\n'
    " <ShortName>{short}</ShortName>\n <Description>{long}</Description>\n"
    ' <Url type="application/json" rel="results" template="{template}"/>\n'
    " <LongName>{long}</LongName>\n <InputEncoding>UTF-8</InputEncoding>\n"
    " <OutputEncoding>UTF-8</OutputEncoding>\n</OpenSearchDescription>\n"
)


def create_emulator(source: list[Item] | Path | str, *, max_records: int = 2000) -> Starlette:
    """A resto catalogue holding the products of ``source`` (STAC items: a list or a JSON file).

    ``max_records``: the largest ``maxRecords`` accepted (CDSE: 2000).
    ``app.state.requests`` counts requests, ``app.state.queries`` records each search's
    parameters (with the path's collection under ``collection``).
    """
    products: dict[str, Product] = {}
    for item in load_items(source):
        product = product_from_item(item)
        products.setdefault(product.uuid, product)
    catalogue = _Catalogue(list(products.values()), max_records)
    app = Starlette(
        routes=[
            Route("/collections/search.json", catalogue.search),
            Route("/collections/{name}/search.json", catalogue.search),
            Route("/collections/{name}/describe.xml", catalogue.describe),
            Route("/collections/{name}/{uid}.json", catalogue.feature),
        ]
    )
    app.state.requests = 0
    app.state.queries = []
    return app
