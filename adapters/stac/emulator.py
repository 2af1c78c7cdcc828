"""A STAC API backend emulator: items from a file, ``/search`` with the core parameters.

It behaves like the STAC APIs recorded in ``tests/fixtures/stac`` (Earth Search, Planetary
Computer): ItemCollections with ``numberMatched``/``numberReturned``, a POST ``next`` link
carrying a ``token`` in its body with ``merge: true``, a GET ``next`` link with ``token=``.
It evaluates searches on its own (no gateway code). With ``sort`` (the Sort extension) it
orders by the ``sortby`` it is sent (see :mod:`adapters.stac.emulator_ext`), else by datetime,
newest first; ties by its own ids. With ``filter`` (the Filter extension) it evaluates CQL2;
without, it ignores ``filter`` as a server without the extension does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.stac.emulator_ext import (
    DEFAULT_SORT,
    FILTER_CONFORMANCE,
    SORT_CONFORMANCE,
    FilterError,
    matches,
    parse_filter,
    parse_sortby,
    sort_key,
)

Items = list[dict[str, Any]]


def _json(data: Any, status: int = 200, media: str = "application/json") -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=media)


def _error(status: int, description: str, code: str = "BadRequest") -> Response:
    return _json({"code": code, "description": description}, status)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Catalogue:
    def __init__(self, items: Items) -> None:
        self.items = items
        self.by_id = {(i["collection"], i["id"]): i for i in items}
        self.shapes = {id(i): shape(i["geometry"]) for i in items}
        self.times = {id(i): self._interval(i) for i in items}

    @staticmethod
    def _interval(item: dict[str, Any]) -> tuple[datetime, datetime]:
        p = item["properties"]
        start = _instant(p.get("start_datetime") or p["datetime"])
        return start, _instant(p.get("end_datetime") or p.get("datetime") or p["start_datetime"])

    def search(self, params: dict[str, Any]) -> Items:
        found = [i for i in self.items if self._matches(i, params)]
        expr = params.get("filter")
        if expr is not None:
            found = [i for i in found if matches(expr, i)]
        sortby = params.get("sortby") or DEFAULT_SORT
        found.sort(key=lambda i: sort_key(i, sortby))
        return found

    def _matches(self, item: dict[str, Any], params: dict[str, Any]) -> bool:
        if params.get("collections") and item["collection"] not in params["collections"]:
            return False
        if params.get("ids") and item["id"] not in params["ids"]:
            return False
        geom: BaseGeometry | None = params.get("geometry")
        if geom is not None and not geom.intersects(self.shapes[id(item)]):
            return False
        start, end = self.times[id(item)]
        low, high = params.get("interval", (None, None))
        if (low and end < low) or (high and start > high):
            return False
        return all(_query_ok(item["properties"].get(k), ops) for k, ops in params["query"].items())


def _query_ok(value: Any, ops: dict[str, Any]) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "eq": lambda v: value == v,
        "neq": lambda v: value != v,
        "in": lambda v: value in v,
        "lt": lambda v: value is not None and value < v,
        "lte": lambda v: value is not None and value <= v,
        "gt": lambda v: value is not None and value > v,
        "gte": lambda v: value is not None and value >= v,
    }
    return all(op in checks and checks[op](arg) for op, arg in ops.items())


def _geometry(raw: dict[str, Any]) -> BaseGeometry | None:
    """``bbox`` (antimeridian boxes: west > east) or ``intersects`` as a shape."""
    intersects = raw.get("intersects")
    if intersects:
        return shape(orjson.loads(intersects) if isinstance(intersects, str) else intersects)
    bbox = raw.get("bbox")
    if isinstance(bbox, str):
        bbox = [float(v) for v in bbox.split(",")]
    if not bbox:
        return None
    w, s, e, n = (bbox[0], bbox[1], bbox[-3], bbox[-2]) if len(bbox) == 6 else bbox
    return box(w, s, e, n) if w <= e else box(w, s, 180, n).union(box(-180, s, e, n))


def _parse(raw: dict[str, Any], post: bool, sort: bool, filter_: bool) -> dict[str, Any]:
    """GET strings or POST JSON -> normalised parameters; ValueError for bad input.

    Without the Sort (``sort``) or Filter (``filter_``) extension, ``sortby``/``filter`` are
    ignored, as a server without them ignores parameters it does not know.
    """
    query = raw.get("query") or {}
    params: dict[str, Any] = {"query": orjson.loads(query) if isinstance(query, str) else query}
    if not isinstance(params["query"], dict):
        raise ValueError("query must be an object")
    for key in ("collections", "ids"):
        value = raw.get(key)
        params[key] = value.split(",") if isinstance(value, str) else value
    params["geometry"] = _geometry(raw)
    if raw.get("datetime"):
        parts = str(raw["datetime"]).split("/")
        ends = [None if p in ("", "..") else _instant(p) for p in parts]
        params["interval"] = (ends[0], ends[-1])
    params["sortby"] = parse_sortby(raw.get("sortby")) if sort else DEFAULT_SORT
    params["filter"] = parse_filter(raw, post) if filter_ else None
    if params["filter"] is not None and params["query"]:
        raise FilterError("Can only use either query or filter at one time.")
    params["limit"] = max(1, int(raw.get("limit") or 10))
    token = str(raw.get("token") or "next:0")
    params["offset"] = int(token.removeprefix("next:"))
    return params


def create_emulator(
    items: Items | Path | str,
    *,
    max_page_size: int = 100,
    post_search: bool = True,
    sort: bool = True,
    filter: bool = True,
) -> Starlette:
    """An ASGI app serving ``items`` (a list, or a GeoJSON FeatureCollection file).

    ``sort``/``filter``: whether it implements the Sort and Filter extensions.
    """
    if isinstance(items, str | Path):
        items = list(orjson.loads(Path(items).read_bytes())["features"])
    catalogue = _Catalogue(items)
    collections = sorted({i["collection"] for i in catalogue.items})

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def served(item: dict[str, Any], root: str) -> dict[str, Any]:
        out = copy.deepcopy(item)
        for asset in out.get("assets", {}).values():
            asset["href"] = str(asset["href"]).replace("$BASE", root)
        col = f"{root}/collections/{item['collection']}"
        out["links"] = [
            {"rel": "self", "href": f"{col}/items/{item['id']}", "type": "application/geo+json"},
            {"rel": "parent", "href": col, "type": "application/json"},
            {"rel": "collection", "href": col, "type": "application/json"},
            {"rel": "root", "href": f"{root}/", "type": "application/json"},
        ]
        return out

    def page(request: Request, raw: dict[str, Any], post: bool) -> Response:
        app_state = request.app.state
        app_state.requests += 1
        try:
            params = _parse(raw, post, sort, filter)
        except FilterError as exc:
            return _error(400, str(exc), "InvalidQueryParameter")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return _error(400, f"invalid search: {exc}")
        if params["filter"] is not None:
            app_state.filters.append(params["filter"].to_text())
        found = catalogue.search(params)
        limit, offset = min(params["limit"], max_page_size), params["offset"]
        chosen = found[offset : offset + limit]
        root = base(request)
        body: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": [served(i, root) for i in chosen],
            "numberMatched": len(found),
            "numberReturned": len(chosen),
            "links": [{"rel": "root", "href": f"{root}/", "type": "application/json"}],
        }
        if offset + limit < len(found):
            body["links"].append(_next(request, raw, post, f"next:{offset + limit}"))
        return _json(body, media="application/geo+json")

    def _next(request: Request, raw: dict[str, Any], post: bool, token: str) -> dict[str, Any]:
        link: dict[str, Any] = {"rel": "next", "type": "application/geo+json"}
        if post:
            link.update(
                href=f"{base(request)}/search", method="POST", body={"token": token}, merge=True
            )
        else:
            query = {k: v for k, v in request.query_params.items() if k != "token"}
            href = request.url.replace(query=urlencode({**query, "token": token}))
            link.update(href=str(href), method="GET")
        return link

    async def search(request: Request) -> Response:
        if request.method == "POST":
            if not post_search:
                return _error(405, "POST /search is not supported here")
            try:
                raw = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                return _error(400, "body is not JSON")
            return page(request, raw if isinstance(raw, dict) else {}, True)
        return page(request, dict(request.query_params), False)

    async def items_of(request: Request) -> Response:
        raw = {**request.query_params, "collections": request.path_params["cid"]}
        return page(request, raw, False)

    async def item(request: Request) -> Response:
        found = catalogue.by_id.get((request.path_params["cid"], request.path_params["iid"]))
        if found is None:
            return _error(404, "item not found")
        return _json(served(found, base(request)), media="application/geo+json")

    def collection_doc(cid: str, root: str) -> dict[str, Any]:
        mine = [i for i in catalogue.items if i["collection"] == cid]
        bounds = [catalogue.shapes[id(i)].bounds for i in mine]
        times = sorted(catalogue.times[id(i)][0] for i in mine)
        return {
            "type": "Collection",
            "id": cid,
            "stac_version": "1.0.0",
            "description": cid,
            "license": "proprietary",
            "links": [{"rel": "self", "href": f"{root}/collections/{cid}"}],
            "extent": {
                "spatial": {
                    "bbox": [
                        [
                            min(b[0] for b in bounds),
                            min(b[1] for b in bounds),
                            max(b[2] for b in bounds),
                            max(b[3] for b in bounds),
                        ]
                    ]
                },
                "temporal": {
                    "interval": [
                        [
                            times[0].isoformat().replace("+00:00", "Z"),
                            times[-1].isoformat().replace("+00:00", "Z"),
                        ]
                    ]
                },
            },
        }

    async def collection(request: Request) -> Response:
        cid = request.path_params["cid"]
        if cid not in collections:
            return _error(404, "collection not found")
        return _json(collection_doc(cid, base(request)))

    async def all_collections(request: Request) -> Response:
        root = base(request)
        return _json({"collections": [collection_doc(c, root) for c in collections], "links": []})

    conformance = [
        "https://api.stacspec.org/v1.0.0/core",
        "https://api.stacspec.org/v1.0.0/item-search",
        *(SORT_CONFORMANCE if sort else ()),
        *(FILTER_CONFORMANCE if filter else ()),
    ]

    async def landing(request: Request) -> Response:
        root = base(request)
        return _json(
            {
                "type": "Catalog",
                "id": "emulator",
                "stac_version": "1.0.0",
                "description": "emulator",
                "conformsTo": conformance,
                "links": [{"rel": "search", "href": f"{root}/search", "method": "POST"}],
            }
        )

    app = Starlette(
        routes=[
            Route("/", landing),
            Route("/search", search, methods=["GET", "POST"]),
            Route("/collections", all_collections),
            Route("/collections/{cid}", collection),
            Route("/collections/{cid}/items", items_of),
            Route("/collections/{cid}/items/{iid}", item),
        ]
    )
    app.state.requests = 0
    app.state.filters = []  # every filter it evaluated, as CQL2 text (what was pushed to it)
    return app
