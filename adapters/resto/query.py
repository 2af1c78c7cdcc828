"""SearchQuery -> resto ``search.json`` parameters (pure).

What resto evaluates exactly, and is therefore claimed (``pushable``): the collections (path and
``productType``), the geometry (``box``, or ``geometry`` as WKT; resto intersects) and these
``query`` clauses: ``eo:cloud_cover`` (<=, >=, =, between -> ``cloudCover=[a,b]``, inclusive),
``sat:relative_orbit``/``sat:absolute_orbit`` (comparisons, between -> integer intervals),
``sat:orbit_state`` (=), ``sar:instrument_mode`` (=) and ``grid:code`` (= -> ``tileId``).

Sent as a superset only, evaluated again by the gateway: ``datetime`` (resto selects on a
product's start date, STAC on the overlap of [start, end] with the interval, so both ends are
widened by a margin), ``ids`` (``productIdentifier`` is a LIKE pattern on the archive path),
strict comparisons on cloud cover and ``in`` on numbers (sent as the enclosing interval).

Every value is a number formatted here, an instant formatted from a parsed datetime, a term from
a fixed table or a string checked against a strict pattern; geometries are re-serialised from
shapely shapes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from adapters.resto.collections import Source
from mqs.cql import Clause, comparison, conjuncts
from mqs.identity import product_name
from mqs.literals import format_instant
from mqs.query import SearchQuery

ORBIT_MAX = 99_999_999
MAX_IDS = 50  # more ids are not sent (the URL would grow too long): the gateway filters them
PRODUCT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,250}$")
_MGRS = re.compile(r"^MGRS-(\d{1,2}[C-X][A-Z]{2})$")
_MODES = frozenset({"IW", "EW", "SM", "WV"})
_STATES = {"ascending": "ASCENDING", "descending": "DESCENDING"}
# STAC property -> (resto parameter, lowest and highest value an item can carry, integer?)
NUMERIC = {
    "eo:cloud_cover": ("cloudCover", 0.0, 100.0, False),
    "sat:relative_orbit": ("relativeOrbitNumber", 1.0, float(ORBIT_MAX), True),
    "sat:absolute_orbit": ("orbitNumber", 1.0, float(ORBIT_MAX), True),
}
# STAC sort key -> resto ``sortParam`` (one key; resto sorts by startDate, completionDate,
# published, updated). ``created`` is ``published`` (see .items); completionDate is not claimed:
# an item whose completion equals its start has no ``end_datetime`` to sort by.
SORT_FIELDS = {"datetime": "startDate", "created": "published"}

Interval = tuple[float, float]


@dataclass(frozen=True)
class Translation:
    """The parameters every source of one search shares, and what the adapter must know."""

    params: list[tuple[str, str]] = field(default_factory=list)
    empty: bool = False  # nothing can match: ask nobody
    local_geometry: BaseGeometry | None = None  # sent as its envelope: filter hits exactly
    optical_only: bool = False  # a clause on eo:cloud_cover: radar items never match


def number(value: float) -> str:
    """A finite number as resto reads it: ``15``, ``49.5``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _operand(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _bounds(op: str, x: float, integer: bool) -> tuple[Interval, bool] | None:
    """The interval ``op x`` selects, and whether resto's inclusive one is exact."""
    inf = math.inf
    if integer:
        table = {
            "<": (-inf, math.ceil(x) - 1),
            "<=": (-inf, math.floor(x)),
            ">": (math.floor(x) + 1, inf),
            ">=": (math.ceil(x), inf),
            "=": (x, x) if x.is_integer() else (1.0, 0.0),
        }
        return ((float(table[op][0]), float(table[op][1])), True) if op in table else None
    real = {"<": (-inf, x), "<=": (-inf, x), ">": (x, inf), ">=": (x, inf), "=": (x, x)}
    return (real[op], op in ("<=", ">=", "=")) if op in real else None


def numeric_clause(clause: Clause) -> tuple[str, Interval, bool] | None:
    """(resto parameter, clamped interval, exact?) of a numeric clause it can express."""
    args = clause.get("args")
    if clause.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        prop = args[0].get("property") if isinstance(args[0], dict) else None
        low, high = _operand(args[1]), _operand(args[2])
        if prop not in NUMERIC or low is None or high is None:
            return None
        integer = NUMERIC[prop][3]
        found: tuple[Interval, bool] | None = (
            ((math.ceil(low), math.floor(high)) if integer else (low, high)),
            True,
        )
    else:
        parts = comparison(clause)
        if parts is None or parts[1] not in NUMERIC:
            return None
        op, prop, operand = parts
        integer = NUMERIC[prop][3]
        if op == "in" and isinstance(operand, list) and operand:
            values = [_operand(v) for v in operand]
            if any(v is None for v in values):
                return None
            known = [v for v in values if v is not None]
            found = ((min(known), max(known)), False)
        else:
            x = _operand(operand)
            found = _bounds(op, x, integer) if x is not None else None
    if found is None:
        return None
    param, lowest, highest, _ = NUMERIC[prop]
    (low, high), exact = found
    return param, (max(float(low), lowest), min(float(high), highest)), exact


def term_clause(clause: Clause) -> tuple[str, str] | None:
    """(resto parameter, value) of an exact equality on a term property."""
    parts = comparison(clause)
    if parts is None:
        return None
    op, prop, operand = parts
    if op == "in" and isinstance(operand, list) and len(operand) == 1:
        op, operand = "=", operand[0]
    if op != "=" or not isinstance(operand, str):
        return None
    if prop == "sat:orbit_state" and operand in _STATES:
        return "orbitDirection", _STATES[operand]
    if prop == "sar:instrument_mode" and operand in _MODES:
        return "sensorMode", operand
    if prop == "grid:code" and (tile := _MGRS.match(operand)):
        return "tileId", tile[1]
    return None


def pushable(clause: Clause) -> bool:
    """Whether resto evaluates ``clause`` exactly (the gateway then leaves it alone)."""
    if term_clause(clause) is not None:
        return True
    found = numeric_clause(clause)
    return found is not None and found[2]


def _filter_params(query: SearchQuery) -> tuple[list[tuple[str, str]], bool, bool]:
    """(parameters, empty?, optical only?) for the query's filter clauses."""
    intervals: dict[str, Interval] = {}
    terms: dict[str, set[str]] = {}
    optical = False
    for clause in conjuncts(query.filter):
        args = clause.get("args")
        first = args[0] if isinstance(args, list) and args else None
        if isinstance(first, dict) and first.get("property") == "eo:cloud_cover":
            optical = True
        if (term := term_clause(clause)) is not None:
            terms.setdefault(term[0], set()).add(term[1])
        elif (found := numeric_clause(clause)) is not None:
            param, (low, high), _ = found
            old_low, old_high = intervals.get(param, (-math.inf, math.inf))
            intervals[param] = (max(low, old_low), min(high, old_high))
    empty = any(low > high for low, high in intervals.values())
    empty = empty or any(len(values) > 1 for values in terms.values())
    params = []
    for param in ("cloudCover", "orbitNumber", "relativeOrbitNumber"):
        if param in intervals:
            low, high = intervals[param]
            if param != "cloudCover" and low == high:
                params.append((param, number(low)))
            elif low <= high:
                params.append((param, f"[{number(low)},{number(high)}]"))
    for param in ("orbitDirection", "sensorMode", "tileId"):
        if param in terms:
            params.append((param, min(terms[param])))
    return params, empty, optical


def _instant(moment: datetime, shift: timedelta) -> str | None:
    try:
        return format_instant(moment + shift)
    except OverflowError:
        return None  # beyond year 1 or 9999: no bound at all is the superset


def datetime_params(query: SearchQuery, margin_s: float) -> Iterator[tuple[str, str]]:
    """``startDate``/``completionDate`` widened by ``margin_s``: a superset of the products
    whose [start, end] meets the interval, whichever of resto's readings of the two applies
    (start within the bounds, [start, end] within them, or overlap), as long as no product
    lasts longer than the margin."""
    if query.datetime is None:
        return
    start, end = query.datetime
    margin = timedelta(seconds=margin_s)
    if start is not None and (text := _instant(start, -margin)) is not None:
        yield "startDate", text
    if end is not None and (text := _instant(end, margin)) is not None:
        yield "completionDate", text


def geometry_param(
    query: SearchQuery, max_wkt: int
) -> tuple[tuple[str, str] | None, BaseGeometry | None]:
    """(``box`` or ``geometry`` parameter, the shape the adapter must check hits against)."""
    if query.geometry is None:
        return None, None
    if query.bbox is not None and query.bbox[0] <= query.bbox[2] and query.geometry.area > 0:
        return ("box", ",".join(number(v) for v in query.bbox)), None
    # antimeridian boxes, intersects, and boxes without area (a point: WKT POINT)
    wkt = str(shapely.to_wkt(query.geometry, rounding_precision=-1, trim=True))
    if len(wkt) <= max_wkt:
        return ("geometry", wkt), None
    envelope = ",".join(number(v) for v in query.geometry.bounds)
    return ("box", envelope), query.geometry


def ids_param(query: SearchQuery) -> tuple[tuple[str, str] | None, bool]:
    """(``productIdentifier`` LIKE patterns joined by ``|``, whether no id can match)."""
    if not query.ids:
        return None, False
    names = [product_name(i) for i in query.ids if PRODUCT_NAME.match(i)]
    valid = list(dict.fromkeys(n for n in names if PRODUCT_NAME.match(n)))
    if not valid:
        return None, True
    if len(valid) > MAX_IDS:
        return None, False
    return ("productIdentifier", "|".join(f"%{n}%" for n in valid)), False


def translate(query: SearchQuery, margin_s: float, max_wkt: int) -> Translation:
    """The parameters shared by every source of ``query`` (collections come per source)."""
    params = list(datetime_params(query, margin_s))
    geometry, local = geometry_param(query, max_wkt)
    if geometry is not None:
        params.append(geometry)
    ids, no_ids = ids_param(query)
    if ids is not None:
        params.append(ids)
    filters, empty, optical = _filter_params(query)
    params += filters
    return Translation(params, empty or no_ids, local, optical)


def sort_order(query: SearchQuery) -> tuple[str, bool]:
    """(resto ``sortParam``, descending?): the primary key when resto knows it."""
    first = query.sortby[0] if query.sortby else None
    if first is None or first.field not in SORT_FIELDS:
        return "startDate", True
    return SORT_FIELDS[first.field], first.direction == "desc"


def source_params(
    query: SearchQuery,
    shared: Translation,
    source: Source,
    page: tuple[int, int],
    exact_count: bool,
    status: str | None,
) -> list[tuple[str, str]]:
    """The whole parameter list of one source's request for ``page`` = (number, size)."""
    number_, size = page
    params = [("productType", source.product_type)] if source.product_type else []
    params += shared.params
    if status:
        params.append(("status", status))
    sort_param, descending = sort_order(query)
    params += [
        ("sortParam", sort_param),
        ("sortOrder", "descending" if descending else "ascending"),
    ]
    params += [("maxRecords", str(size)), ("page", str(number_))]
    if exact_count and number_ == 1:
        params.append(("exactCount", "1"))
    return params
