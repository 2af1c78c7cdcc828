"""SearchQuery -> Terrascope OpenSearch ``/products`` requests (pure).

One request per (Terrascope collection, title) pair: ``collection`` takes one URN and
``title`` one product title. What is sent, and how exact it is:

- ``collection``: exact (claimed as pushdown).
- ``bbox``: the envelope of the query geometry, a superset whether Terrascope compares it with
  the footprint or the product's bbox; the gateway tests the geometry itself.
- ``start``/``end``: the query interval widened by ``margin_s`` and rounded outward to whole
  seconds (Terrascope truncates fractions), a superset whether Terrascope selects by overlap,
  by containment or by the acquisition start; the gateway tests STAC's overlap itself.
- ``title``: the ids (validated titles only); the gateway checks the ids itself.
- ``cloudCover=[a,b]`` (inclusive), ``orbitDirection``, ``relativeOrbitNumber``, ``tileId``:
  exact for the clauses :func:`pushable` accepts; ``<``/``>`` on cloud cover narrow the
  interval as a superset and stay with the gateway.
- ``sortKeys=start,,0``: acquisition start, descending (SRU syntax ``key,schema,ascending``);
  ``start,,1`` ascending, ``published,,0|1`` for ``created``.

Every value is formatted here from parsed numbers and instants or checked against a strict
pattern, and travels as a URL query parameter encoded by httpx: nothing can widen a request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shapely.geometry.base import BaseGeometry

from adapters.terrascope.collections import TerrascopeCollection
from mqs.cql import Clause, comparison, conjuncts
from mqs.query import Interval, SearchQuery

TITLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
MGRS = re.compile(r"^MGRS-(\d{1,2}[C-X][A-HJ-NP-Z][A-HJ-NP-V])$")
ORBIT_STATES = {"ascending": "ASCENDING", "descending": "DESCENDING"}
CLOUD = "eo:cloud_cover"
# STAC sort key -> Terrascope ``sortKeys`` key (one key). ``created`` is ``published``
# (see .items); ``end`` is not claimed: an item whose end equals its start has no
# ``end_datetime`` to sort by.
SORT_FIELDS = {"datetime": "start", "created": "published"}
Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SubQuery:
    """One Terrascope request stream: a canonical collection and its parameters."""

    collection: str
    params: Params


def number(value: Any) -> str | None:
    """A finite JSON number as text (``20``, ``5.5``); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def instant(value: datetime, *, up: bool) -> str:
    """Whole seconds in UTC, rounded down (``up=False``) or up."""
    value = value.astimezone(UTC)
    whole = value.replace(microsecond=0)
    if up and whole < value:
        whole += timedelta(seconds=1)
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


def time_params(interval: Interval, margin_s: float) -> list[tuple[str, str]]:
    """``start``/``end`` covering every product that may overlap ``interval``."""
    start, end = interval
    margin = timedelta(seconds=margin_s)
    params = []
    if start is not None:
        params.append(("start", instant(start - margin, up=False)))
    if end is not None:
        params.append(("end", instant(end + margin, up=True)))
    return params


def bbox_param(geometry: BaseGeometry) -> tuple[str, str]:
    west, south, east, north = geometry.bounds
    values = (max(west, -180.0), max(south, -90.0), min(east, 180.0), min(north, 90.0))
    return ("bbox", ",".join(str(number(v)) for v in values))


def title_of(product_id: str) -> str | None:
    """The Terrascope title an id names (``urn:eop:VITO:<C>:<title>`` or the title)."""
    title = product_id.rsplit(":", 1)[-1] if product_id.startswith("urn:") else product_id
    return title if TITLE.match(title) else None


# --- property filters ----------------------------------------------------------------------
def _cloud(clause: Clause) -> tuple[float, float, bool] | None:
    """(low, high, exact) of a cloud-cover clause as an inclusive ``[low,high]``."""
    if clause.get("op") == "between":
        args = clause.get("args")
        if not isinstance(args, list) or len(args) != 3 or args[0] != {"property": CLOUD}:
            return None
        if number(args[1]) is None or number(args[2]) is None:
            return None
        return (float(args[1]), float(args[2]), True)
    found = comparison(clause)
    if found is None or found[1] != CLOUD or number(found[2]) is None:
        return None
    op, value = found[0], float(found[2])
    bounds = {
        "=": (value, value, True),
        "<=": (0.0, value, True),
        ">=": (value, 100.0, True),
        "<": (0.0, value, False),
        ">": (value, 100.0, False),
    }
    return bounds.get(op)


def _single(clause: Clause) -> tuple[str, str] | None:
    """The exact single-valued parameter of an equality clause (or a one-value ``in``)."""
    found = comparison(clause)
    if found is None:
        return None
    op, prop, value = found
    if op == "in" and isinstance(value, list) and len(value) == 1:
        op, value = "=", value[0]
    if op != "=":
        return None
    if prop == "sat:orbit_state" and isinstance(value, str) and value in ORBIT_STATES:
        return ("orbitDirection", ORBIT_STATES[value])
    if prop == "grid:code" and isinstance(value, str) and (tile := MGRS.match(value)):
        return ("tileId", tile[1])
    orbit = number(value)
    if prop == "sat:relative_orbit" and orbit is not None and orbit.isdigit() and orbit != "0":
        return ("relativeOrbitNumber", orbit)
    return None


def pushable(clause: Clause) -> bool:
    """Whether Terrascope evaluates ``clause`` exactly (cloud cover is always within 0-100)."""
    cloud = _cloud(clause)
    return (cloud is not None and cloud[2]) or _single(clause) is not None


def filter_params(expr: Clause | None) -> list[tuple[str, str]] | None:
    """Parameters for the clauses of ``expr`` (exact or superset); None when nothing matches."""
    low, high, cloud = 0.0, 100.0, False
    singles: dict[str, str] = {}
    for clause in conjuncts(expr):
        if (bounds := _cloud(clause)) is not None:
            low, high, cloud = max(low, bounds[0]), min(high, bounds[1]), True
        elif (single := _single(clause)) is not None:
            name, value = single
            if singles.setdefault(name, value) != value:
                return None  # two different values of a single-valued property
    if low > high:
        return None
    params = [("cloudCover", f"[{number(low)},{number(high)}]")] if cloud else []
    return params + sorted(singles.items())


# --- whole requests ------------------------------------------------------------------------
def sort_order(query: SearchQuery) -> tuple[str, bool]:
    """(the STAC field the requests sort by, descending?): the search's first key when
    Terrascope knows it, else the acquisition start, newest first."""
    first = query.sortby[0] if query.sortby else None
    if first is None or first.field not in SORT_FIELDS:
        return "datetime", True
    return first.field, first.direction == "desc"


def sort_keys(query: SearchQuery) -> str:
    """SRU ``sortKeys`` (``key,schema,ascending``): ``start,,0`` (acquisition start,
    descending), ``start,,1``, ``published,,0`` ..."""
    field, descending = sort_order(query)
    return f"{SORT_FIELDS[field]},,{0 if descending else 1}"


def common_params(query: SearchQuery, margin_s: float) -> list[tuple[str, str]] | None:
    """Everything but ``collection`` and ``title``; None when the query can match nothing."""
    filters = filter_params(query.filter)
    if filters is None:
        return None
    params = [bbox_param(query.geometry)] if query.geometry is not None else []
    if query.datetime is not None:
        params += time_params(query.datetime, margin_s)
    return params + filters


def plan(
    query: SearchQuery,
    collections: dict[str, TerrascopeCollection],
    *,
    margin_s: float,
    max_requests: int,
) -> list[SubQuery]:
    """The request streams of ``query``: one per collection (and title, for few ids)."""
    wanted = [c for c in (query.collections or tuple(collections)) if c in collections]
    common = common_params(query, margin_s)
    if common is None or not wanted:
        return []
    titles: list[str | None] = [None]
    if query.ids:
        valid = sorted({t for i in query.ids if (t := title_of(i)) is not None})
        if not valid:
            return []  # no id is a possible title: nothing to ask
        if len(valid) * len(wanted) <= max_requests:
            titles = list(valid)
    tail = (*common, ("sortKeys", sort_keys(query)))
    return [
        SubQuery(cid, (("collection", collections[cid].urn), *_title(t), *tail))
        for cid in wanted
        for t in titles
    ]


def _title(title: str | None) -> tuple[tuple[str, str], ...]:
    return (("title", title),) if title else ()
