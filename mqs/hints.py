"""Lifting the filter's top-level clauses into the search's own parts, so backends get them.

Users of the Filter extension often put everything into ``filter``: the collection, the area,
the time. Left in the expression, such clauses would send the search to every backend and
have the gateway scan whole archives. Lifted into :class:`~mqs.query.SearchQuery` they route
the search and are sent to every backend in its own language:

* ``collection = 'c'`` / ``collection IN (...)`` and ``id = ...`` / ``id IN (...)`` mean exactly
  what ``collections`` / ``ids`` mean: they move there (intersected with the parameters).
* ``S_INTERSECTS(geometry, G)`` means what ``intersects`` means: it moves there when the
  search has no area yet. Other spatial clauses imply intersection: G becomes the search area
  and the clause stays, to be evaluated exactly.
* Comparisons and T_* clauses on ``datetime`` give an interval that contains every match
  (``datetime`` of an item lies within its own start/end); it becomes the search's datetime
  when it has none, and the clauses stay (the interval is a superset, never the answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from mqs.cql import Clause, conjuncts
from mqs.errors import InvalidRequest
from mqs.literals import bbox_geometry, parse_instant

Interval = tuple[datetime | None, datetime | None]

_AREA_OPS = frozenset(
    {"s_intersects", "s_within", "s_contains", "s_equals", "s_overlaps", "s_crosses", "s_touches"}
)
_LOW = {">": True, ">=": True, "t_after": True}
_HIGH = {"<": True, "<=": True, "t_before": True}
_RANGE = frozenset({"=", "t_equals", "t_intersects", "t_during"})


@dataclass
class Lifted:
    """What the filter adds to the search's parts, and the clauses that stay a filter.

    ``collections``/``ids`` are (allowed values, the clauses they came from); ``area`` is
    (GeoJSON, shape, the clause, whether the clause means exactly "intersects the area").
    The caller decides whether a lifted clause can go (see :func:`mqs.query.build_query`).
    """

    collections: tuple[tuple[str, ...], list[Clause]] | None = None
    ids: tuple[tuple[str, ...], list[Clause]] | None = None
    area: tuple[dict[str, Any], BaseGeometry, Clause, bool] | None = None
    interval: Interval | None = None
    rest: list[Clause] = field(default_factory=list)


def lift(expr: Clause | None, known_collections: dict[str, Any]) -> Lifted:
    lifted = Lifted()
    for clause in conjuncts(expr):
        if _lift_names(clause, "collection", lifted, known_collections):
            continue
        if _lift_names(clause, "id", lifted, None):
            continue
        exact = _lift_area(clause, lifted)
        _lift_time(clause, lifted)
        if not exact:
            lifted.rest.append(clause)
    return lifted


def _values(clause: Clause, prop: str) -> list[str] | None:
    """The strings of ``prop = 's'`` or ``prop IN ('a', 'b')``."""
    args = clause.get("args") or []
    if len(args) != 2 or args[0] != {"property": prop}:
        return None
    op, operand = clause.get("op"), args[1]
    values = [operand] if op == "=" else operand if op == "in" else None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return None
    return values


def _lift_names(clause: Clause, prop: str, lifted: Lifted, known: dict[str, Any] | None) -> bool:
    values = _values(clause, prop)
    if values is None:
        return False
    if known is not None:
        unknown = [v for v in values if v not in known]
        if unknown:
            shown = ", ".join(repr(v[:64]) for v in unknown[:5])
            raise InvalidRequest(f"unknown collection(s) in filter: {shown}")
    attr = "collections" if prop == "collection" else "ids"
    current = getattr(lifted, attr)
    allowed, clauses = current if current is not None else (None, [])
    kept = tuple(dict.fromkeys(v for v in values if allowed is None or v in allowed))
    setattr(lifted, attr, (kept, [*clauses, clause]))
    return True


def _geometry(node: Any) -> tuple[dict[str, Any], BaseGeometry] | None:
    if not isinstance(node, dict):
        return None
    if "bbox" in node:
        box = node["bbox"]
        flat = (box[0], box[1], box[3], box[4]) if len(box) == 6 else tuple(box)
        geometry = bbox_geometry(flat)
        return geometry.__geo_interface__, geometry
    try:
        return node, shape(node)
    except Exception:
        return None


def _lift_area(clause: Clause, lifted: Lifted) -> bool:
    """Record the area the clause implies; True when the clause means exactly 'intersects'."""
    args = clause.get("args") or []
    op = clause.get("op")
    if op not in _AREA_OPS or len(args) != 2 or args[0] != {"property": "geometry"}:
        return False
    found = _geometry(args[1])
    if found is None or lifted.area is not None:
        return False
    exact = bool(op == "s_intersects")
    lifted.area = (*found, clause, exact)
    return exact


def _instant(node: Any) -> datetime | None:
    text = node.get("timestamp") if isinstance(node, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return parse_instant(text)
    except InvalidRequest:
        return None


def _bounds(clause: Clause) -> Interval | None:
    args = clause.get("args") or []
    op = clause.get("op")
    if len(args) != 2 or args[0] != {"property": "datetime"} or not isinstance(args[1], dict):
        return None
    operand = args[1]
    if op in _RANGE and "interval" in operand:
        ends = operand["interval"]
        if not isinstance(ends, list) or len(ends) != 2:
            return None
        low, high = (None if e == ".." else _instant({"timestamp": e}) for e in ends)
        if (low is None and ends[0] != "..") or (high is None and ends[1] != ".."):
            return None
        return (low, high)
    instant = _instant(operand)
    if instant is None:
        return None
    if op in _RANGE:
        return (instant, instant)
    if op in _LOW:
        return (instant, None)
    return (None, instant) if op in _HIGH else None


def _lift_time(clause: Clause, lifted: Lifted) -> None:
    bounds = _bounds(clause)
    if bounds is None:
        return
    if lifted.interval is None:
        lifted.interval = bounds
        return
    (low, high), (new_low, new_high) = lifted.interval, bounds
    low = max(low, new_low) if low and new_low else low or new_low
    high = min(high, new_high) if high and new_high else high or new_high
    if low is not None and high is not None and low > high:
        high = low  # nothing can match: the narrowest interval asks the backends for little
    lifted.interval = (low, high)
