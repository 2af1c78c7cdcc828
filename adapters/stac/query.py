"""SearchQuery -> STAC API ``/search`` request (pure)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from mqs.literals import format_instant
from mqs.query import SearchQuery


def backend_collections(query: SearchQuery, names: dict[str, str]) -> list[str]:
    """The backend's own names of the query's canonical collections."""
    return [names[cid] for cid in query.collections if cid in names]


def datetime_param(query: SearchQuery) -> str | None:
    if query.datetime is None:
        return None
    start, end = query.datetime
    if start is not None and start == end:
        return format_instant(start)
    return f"{format_instant(start) or '..'}/{format_instant(end) or '..'}"


def id_values(product_id: str) -> list[str]:
    """The spellings a product-name property may use for one product."""
    return [product_id, f"{product_id}.SAFE", f"{product_id}.SEN3"]


def search_body(
    query: SearchQuery, names: dict[str, str], limit: int, id_property: str | None, sort: bool
) -> dict[str, Any]:
    """The POST ``/search`` body for the first page."""
    body: dict[str, Any] = {"collections": backend_collections(query, names), "limit": limit}
    if query.bbox is not None:
        body["bbox"] = list(query.bbox)
    elif query.intersects is not None:
        body["intersects"] = query.intersects
    if (dt := datetime_param(query)) is not None:
        body["datetime"] = dt
    if query.ids and id_property:
        values = [v for pid in query.ids for v in id_values(pid)]
        body["query"] = {id_property: {"in": values}}
    elif query.ids:
        body["ids"] = list(query.ids)
    if sort:
        body["sortby"] = [
            {"field": _sort_field(s.field, id_property), "direction": s.direction}
            for s in query.sortby
        ]
    return body


def _sort_field(name: str, id_property: str | None) -> str:
    """The backend's name of a sort key; ``id`` is the product name, wherever it is kept."""
    if name == "id" and id_property:
        return f"properties.{id_property}"
    return name if name in ("id", "collection") else f"properties.{name}"


def get_params(body: dict[str, Any]) -> httpx.QueryParams:
    """The same search as GET ``/search`` query parameters."""
    params: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in body.items():
        if key in ("collections", "ids", "bbox"):
            params.append((key, ",".join(str(v) for v in value)))
        elif key in ("intersects", "query"):
            params.append((key, orjson.dumps(value).decode()))
        elif key == "sortby":
            params.append((key, ",".join(_sort_token(s) for s in value)))
        else:
            params.append((key, str(value)))
    return httpx.QueryParams(params)


def _sort_token(sort: dict[str, str]) -> str:
    return ("-" if sort["direction"] == "desc" else "+") + sort["field"]


def same_origin(href: str, base: str) -> bool:
    """Whether a link the backend gave stays within the backend's configured API."""
    link, root = urlsplit(href), urlsplit(base)
    return (link.scheme, link.netloc) == (root.scheme, root.netloc) and link.path.startswith(
        root.path.rstrip("/")
    )
