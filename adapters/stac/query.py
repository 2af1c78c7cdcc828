"""SearchQuery -> STAC API ``/search`` request (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from adapters.stac.pushdown import pushed_filter
from mqs.cql import and_of, conjuncts
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
    query: SearchQuery,
    names: dict[str, str],
    limit: int,
    id_property: str | None,
    sort: bool,
    cql2: bool = False,
) -> dict[str, Any]:
    """The POST ``/search`` body for the first page (``cql2``: the backend has the Filter
    extension with CQL2 JSON)."""
    body: dict[str, Any] = {"collections": backend_collections(query, names), "limit": limit}
    if query.bbox is not None:
        body["bbox"] = list(query.bbox)
    elif query.intersects is not None:
        body["intersects"] = query.intersects
    if (dt := datetime_param(query)) is not None:
        body["datetime"] = dt
    body.update(_ids_and_filter(query, id_property, cql2))
    if sort:
        body["sortby"] = [
            {"field": _sort_field(s.field, id_property), "direction": s.direction}
            for s in query.sortby
        ]
    return body


def _ids_and_filter(query: SearchQuery, id_property: str | None, cql2: bool) -> dict[str, Any]:
    """``ids``, or the product-name property's values (in ``query``, or in the filter when the
    backend has one: pgstac refuses ``query`` and ``filter`` together), and ``filter``."""
    clauses = conjuncts(pushed_filter(query.filter, id_property)) if cql2 else []
    out: dict[str, Any] = {}
    if query.ids and id_property:
        values = [v for pid in query.ids for v in id_values(pid)]
        if cql2:
            clauses.insert(0, {"op": "in", "args": [{"property": id_property}, values]})
        else:
            out["query"] = {id_property: {"in": values}}
    elif query.ids:
        out["ids"] = list(query.ids)
    if clauses:
        out.update({"filter": and_of(clauses), "filter-lang": "cql2-json"})
    return out


def _sort_field(name: str, id_property: str | None) -> str:
    """The backend's name of a sort key; ``id`` is the product name, wherever it is kept."""
    if name == "id" and id_property:
        return f"properties.{id_property}"
    return name if name in ("id", "collection") else f"properties.{name}"


def get_params(body: dict[str, Any]) -> httpx.QueryParams:
    """The same search as GET ``/search`` query parameters.

    ValueError when a list value contains a comma: GET lists have no escape for it.
    """
    params: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in body.items():
        if key in ("collections", "ids", "bbox"):
            params.append((key, _comma_list(str(v) for v in value)))
        elif key in ("intersects", "query", "filter"):
            params.append((key, orjson.dumps(value).decode()))
        elif key == "sortby":
            params.append((key, _comma_list(_sort_token(s) for s in value)))
        else:
            params.append((key, str(value)))
    return httpx.QueryParams(params)


def _comma_list(values: Iterable[str]) -> str:
    items = list(values)
    if any("," in v for v in items):
        raise ValueError("a value with a comma cannot be sent in a GET list")
    return ",".join(items)


def _sort_token(sort: dict[str, str]) -> str:
    return ("-" if sort["direction"] == "desc" else "+") + sort["field"]


def same_origin(href: str, base: str) -> bool:
    """Whether a link the backend gave stays within the backend's configured API."""
    link, root = urlsplit(href), urlsplit(base)
    return (link.scheme, link.netloc) == (root.scheme, root.netloc) and link.path.startswith(
        root.path.rstrip("/")
    )
