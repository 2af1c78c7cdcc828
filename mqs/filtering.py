"""The gateway's own evaluation of the query parts a backend cannot evaluate exactly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cql2
import shapely
from shapely.geometry import shape

from mqs.cql import compile_residual, matches, split
from mqs.literals import format_instant
from mqs.ordering import normalise_instant
from mqs.query import SearchQuery

if TYPE_CHECKING:
    from adapters.base import Adapter, Hit


def query_parts(query: SearchQuery) -> frozenset[str]:
    """The parts a query constrains: collections, ids, geometry, datetime."""
    parts = set()
    if query.collections:
        parts.add("collections")
    if query.ids:
        parts.add("ids")
    if query.geometry is not None:
        parts.add("geometry")
    if query.datetime is not None:
        parts.add("datetime")
    return frozenset(parts)


@dataclass(frozen=True)
class Residual:
    """What the gateway evaluates itself for one backend: query parts and filter clauses."""

    parts: frozenset[str] = frozenset()
    filter: cql2.Expr | None = None

    def __bool__(self) -> bool:
        return bool(self.parts) or self.filter is not None


def residual_parts(query: SearchQuery, adapter: Adapter, pushdown: bool = True) -> Residual:
    """The parts of ``query`` the backend does not evaluate itself: the gateway must.

    With ``pushdown`` off the backend is sent no filter clause and the gateway evaluates all.
    """
    _, rest = split(query.filter, adapter.capabilities.filter if pushdown else None)
    return Residual(query_parts(query) - adapter.capabilities.pushdown, compile_residual(rest))


def residual_matches(hit: Hit, query: SearchQuery, residual: Residual) -> bool:
    """Whether a backend's item satisfies the ``residual`` parts of ``query``."""
    item = hit.item
    if residual.filter is not None:
        # the filter's ``id`` is the product name, whatever the backend calls its item
        view = item if item.get("id") == hit.product_id else {**item, "id": hit.product_id}
        if not matches(residual.filter, view):
            return False
    parts = residual.parts
    if "collections" in parts and item.get("collection") not in query.collections:
        return False
    if "ids" in parts and hit.product_id not in query.ids:
        return False
    if "datetime" in parts and not datetime_matches(item, query):
        return False
    return not ("geometry" in parts and not geometry_matches(item, query))


def datetime_matches(item: dict[str, Any], query: SearchQuery) -> bool:
    assert query.datetime is not None
    props = item.get("properties") or {}
    start = normalise_instant(props.get("start_datetime") or props.get("datetime"))
    end = normalise_instant(props.get("end_datetime") or props.get("datetime"))
    if start is None or end is None:
        return False
    low, high = (normalise_instant(format_instant(t)) for t in query.datetime)
    return (high is None or start <= high) and (low is None or end >= low)


def geometry_matches(item: dict[str, Any], query: SearchQuery) -> bool:
    geometry = item.get("geometry")
    if not geometry or query.geometry is None:
        return False
    try:
        return bool(shapely.intersects(shape(geometry), query.geometry))
    except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException):
        return False
