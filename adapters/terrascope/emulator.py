"""An executable specification of VITO's Terrascope OpenSearch catalogue.

``create_emulator(items)`` serves, for a list of STAC items, the answers Terrascope gives for
the products those items describe: ``/products`` (one ``collection`` URN, mandatory;
``bbox``, ``geometry`` (WKT), ``start``/``end``, ``cloudCover=[a,b]`` (inclusive) or a
number, ``productType``, ``tileId``, ``orbitDirection``, ``relativeOrbitNumber``, ``title``,
``uid``, ``sortKeys`` (SRU), ``startIndex`` (1-based), ``count``, ``accessedFrom=MEP`` for
``file://`` paths), ``/collections`` and the files' downloads. Answers are built by
``emulator_records`` (features) and ``emulator_feeds`` (envelopes); this module parses
requests, selects, orders and pages.

Unrecorded behaviour is chosen on purpose. ``start``/``end`` are truncated to whole seconds
(the recordings echo them so) and select by ``time_relation``: ``during`` (the acquisition
lies within [start, end]: the default, the strictest), ``intersects`` or ``date`` (the
acquisition start lies within). Sort ties and unsorted answers come in the index's own
order. ``startIndex + count - 1`` above ``max_results`` (Elasticsearch's result window) and
other invalid requests are a plain-text 400 (no error body was recorded).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import orjson
import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from adapters.terrascope.emulator_feeds import (
    DEFAULT_COUNT,
    GEOJSON,
    BadRequest,
    Search,
    collections_body,
    param_instant,
    products_body,
)
from adapters.terrascope.emulator_records import (
    Item,
    Record,
    default_urn,
    feature,
    file_of,
    load_items,
    record_from_item,
)

__all__ = ["create_emulator"]

MEP_ROOT = "file:///data/MTDA"
TimeRelation = Literal["during", "intersects", "date"]
Filter = Callable[[Record], bool]
_SORT_FIELDS: dict[str, Callable[[Record], Any]] = {
    "title": lambda r: r.title,
    "start": lambda r: r.begin,
    "date": lambda r: r.begin,
    "end": lambda r: r.end,
    "published": lambda r: r.published,
    "updated": lambda r: r.updated,
}
_INTERVAL = re.compile(r"^\[\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\]$")


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BadRequest(f"invalid {name}: {text}") from None


def _bbox(text: str) -> BaseGeometry:
    parts = [_number(p, "bbox") for p in text.split(",")]
    if len(parts) != 4 or parts[1] > parts[3]:
        raise BadRequest(f"invalid bbox: {text}")
    return box(*parts)


def _geometry(text: str) -> BaseGeometry:
    try:
        return shapely.from_wkt(text)
    except shapely.errors.GEOSException:
        raise BadRequest(f"invalid geometry: {text[:80]}") from None


def _sort(text: str) -> list[tuple[str, bool]]:
    """SRU ``sortKeys``: ``key[,schema[,ascending[,caseSensitive[,missingValue]]]]`` ..."""
    keys = []
    for spec in text.split():
        parts = spec.split(",")
        if parts[0] not in _SORT_FIELDS or (len(parts) > 2 and parts[2] not in ("0", "1", "")):
            raise BadRequest(f"invalid sortKeys: {text}")
        keys.append((parts[0], len(parts) < 3 or parts[2] != "0"))
    return keys


def _interval(params: dict[str, str], relation: TimeRelation) -> Filter:
    low = param_instant(params["start"]) if params.get("start") else None
    high = param_instant(params["end"]) if params.get("end") else None

    def ok(r: Record) -> bool:
        if relation == "intersects":  # [begin, end] meets [low, high]
            first, last = r.end, r.begin
        elif relation == "date":  # the acquisition start lies within [low, high]
            first, last = r.begin, r.begin
        else:  # during: [begin, end] lies within [low, high]
            first, last = r.begin, r.end
        return (low is None or first >= low) and (high is None or last <= high)

    return ok


def _cloud(text: str) -> Filter:
    found = _INTERVAL.match(text)
    low, high = (found[1], found[2]) if found else (text, text)
    a, b = _number(low, "cloudCover"), _number(high, "cloudCover")

    def ok(r: Record) -> bool:
        value = r.info.get("cloudCover")
        return isinstance(value, int | float) and a <= value <= b

    return ok


def _equal(name: str, value: str) -> Filter:
    def ok(r: Record) -> bool:
        found = r.params.get(name, r.info.get(name))
        if name == "orbitDirection":
            return str(found).upper() == value.upper()
        return str(found) == value

    return ok


def _area(area: BaseGeometry) -> Filter:
    return lambda r: bool(area.intersects(r.shape))


def _filters(params: dict[str, str], relation: TimeRelation) -> list[Filter]:
    where: list[Filter] = []
    if params.get("bbox"):
        where.append(_area(_bbox(params["bbox"])))
    if params.get("geometry"):
        where.append(_area(_geometry(params["geometry"])))
    if params.get("start") or params.get("end"):
        where.append(_interval(params, relation))
    if params.get("cloudCover"):
        where.append(_cloud(params["cloudCover"]))
    for name in ("productType", "tileId", "relativeOrbitNumber", "orbitDirection"):
        if (value := params.get(name)) is not None:
            where.append(_equal(name, value))
    if (title := params.get("title")) is not None:
        where.append(lambda r: r.title == title)
    if (uid := params.get("uid")) is not None:
        where.append(lambda r: uid in (r.identifier, r.title))
    return where


def parse_search(params: dict[str, str], relation: TimeRelation, max_count: int) -> Search:
    """A ``/products`` request's parameters -> a :class:`Search`; BadRequest when invalid."""
    if not params.get("collection"):
        raise BadRequest("the collection parameter is mandatory")
    search = Search(params, params["collection"], _filters(params, relation))
    search.sort = _sort(params["sortKeys"]) if params.get("sortKeys") else []
    try:
        search.start_index = int(params.get("startIndex") or 1)
        search.count = int(params.get("count") or DEFAULT_COUNT)
    except ValueError:
        raise BadRequest("startIndex and count must be integers") from None
    if search.start_index < 1 or not 0 <= search.count <= max_count:
        raise BadRequest(f"startIndex must be >= 1 and count within [0, {max_count}]")
    return search


class _Catalogue:
    """The emulated service: its records and how it answers each route."""

    def __init__(self, records: list[Record], relation: TimeRelation, limits: tuple[int, int]):
        self.records = records
        self.relation = relation
        self.max_count, self.max_results = limits

    def find(self, search: Search) -> list[Record]:
        found = [r for r in self.records if r.urn == search.collection]
        found = [r for r in found if all(ok(r) for ok in search.where)]
        found.sort(key=lambda r: r.order)
        for name, ascending in reversed(search.sort):
            found.sort(key=_SORT_FIELDS[name], reverse=not ascending)
        return found

    async def products(self, request: Request) -> Response:
        request.app.state.requests += 1
        params = dict(request.query_params)
        request.app.state.queries.append(params)
        try:
            search = parse_search(params, self.relation, self.max_count)
            if search.start_index - 1 + search.count > self.max_results:
                raise BadRequest(f"Result window is too large, must be <= {self.max_results}")
        except BadRequest as exc:
            return Response(f"Bad Request: {exc}", 400, media_type="text/plain")
        found = self.find(search)
        first = search.start_index - 1
        base = str(request.base_url)
        root = MEP_ROOT if params.get("accessedFrom") == "MEP" else f"{base}download"
        features = [feature(r, root) for r in found[first : first + search.count]]
        body = products_body(search, len(found), features, str(request.url), base)
        return Response(orjson.dumps(body), media_type=GEOJSON)

    async def collections(self, request: Request) -> Response:
        request.app.state.requests += 1
        body = collections_body(self.records, str(request.url), str(request.base_url))
        return Response(orjson.dumps(body), media_type=GEOJSON)

    async def download(self, request: Request) -> Response:
        """A product file (its declared length of zeros); ``HEAD`` for the headers only."""
        request.app.state.requests += 1
        found = file_of(self.records, request.path_params["path"])
        if found is None:
            return Response("Not Found", 404, media_type="text/plain")
        size = found.length or 0
        headers = {"Content-Length": str(size)}
        if request.method == "HEAD":
            return Response(b"", headers=headers, media_type=found.type)
        return StreamingResponse(_zeros(size), headers=headers, media_type=found.type)


def create_emulator(
    source: list[Item] | Path | str,
    *,
    collections: dict[str, str] | None = None,
    time_relation: TimeRelation = "during",
    max_count: int = 1000,
    max_results: int = 10000,
) -> Starlette:
    """An ASGI app serving ``source`` (items, or a JSON / FeatureCollection file of them).

    ``collections`` maps STAC collection ids to URNs (default: the built-in table, else
    ``urn:eop:VITO:<ID>``, e.g. ``urn:eop:VITO:SENTINEL_2_L2A``).
    """
    urns = collections or {}
    records = [
        record_from_item(i, urns.get(i["collection"]) or default_urn(i["collection"]))
        for i in load_items(source)
    ]
    catalogue = _Catalogue(records, time_relation, (max_count, max_results))
    app = Starlette(
        routes=[
            Route("/products", catalogue.products),
            Route("/collections", catalogue.collections),
            Route("/download/{path:path}", catalogue.download, methods=["GET", "HEAD"]),
        ]
    )
    app.state.requests = 0
    app.state.queries = []
    return app


async def _zeros(size: int) -> AsyncIterator[bytes]:
    chunk = b"\0" * 65536
    while size > 0:
        yield chunk[: min(size, len(chunk))]
        size -= len(chunk)
