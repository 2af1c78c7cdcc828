"""SearchQuery -> DHuS OpenSearch request (``q`` in Solr query syntax, ``orderby``), pure.

Nothing from the request reaches ``q`` unquoted: every value is a quoted Solr phrase with
``\\`` and ``"`` escaped (:func:`phrase`), a number formatted by Python, or an instant formatted
from a parsed datetime. Geometries are re-serialised from shapely shapes, never copied.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from adapters.dhus.collections import ProductSet
from mqs.cql import Clause, comparison, split
from mqs.literals import format_instant
from mqs.ordering import backend_sort
from mqs.query import SearchQuery

# STAC property -> (DHuS Solr field, value kind). Only these clauses are pushed down.
NUMERIC_FIELDS = {
    "eo:cloud_cover": "cloudcoverpercentage",
    "sat:relative_orbit": "relativeorbitnumber",
    "sat:absolute_orbit": "orbitnumber",
}
ORBIT_STATES = {"ascending": "ASCENDING", "descending": "DESCENDING"}
_RANGE = {"<": "{{* TO {}}}", "<=": "[* TO {}]", ">": "{{{} TO *}}", ">=": "[{} TO *]"}
_INSTRUMENT_MODE = re.compile(r"^[A-Z][A-Z0-9]{1,5}$")
_POLARISATION = re.compile(r"^(HH|HV|VH|VV)$")
_PLATFORM = re.compile(r"^sentinel-(\d)([a-d])$")
_MGRS = re.compile(r"^MGRS-(\d{1,2}[C-X][A-Z]{2})$")
_PRODUCT_TYPE = re.compile(r"^[A-Z0-9_]{2,16}$")

MAX_WKT_DIGITS = 8


def phrase(value: str) -> str:
    """A Solr quoted phrase: inside quotes only ``\\`` and ``"`` are special."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def solr_instant(value: datetime) -> str:
    text = format_instant(value)
    assert text is not None
    return text


def collection_clause(sets: list[ProductSet]) -> str:
    """``(platformname:"Sentinel-2" AND producttype:"S2MSI2A") OR ...``."""
    parts = []
    for products in sets:
        types = " OR ".join(f"producttype:{phrase(t)}" for t in products.product_types)
        parts.append(f"(platformname:{phrase(products.platform)} AND ({types}))")
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def wkt(geometry: BaseGeometry) -> str:
    """Lon/lat WKT, counter-clockwise shells (as Solr's spatial index expects)."""
    if isinstance(geometry, shapely.Polygon):
        geometry = orient(geometry, 1.0)
    return str(shapely.to_wkt(geometry, rounding_precision=MAX_WKT_DIGITS, trim=True))


def footprint_clause(geometry: BaseGeometry) -> str:
    """``footprint:"Intersects(...)"``; multi-part shapes (antimeridian boxes) as an OR."""
    parts = list(getattr(geometry, "geoms", [geometry]))
    clauses = [f"footprint:{phrase(f'Intersects({wkt(part)})')}" for part in parts]
    return clauses[0] if len(clauses) == 1 else "(" + " OR ".join(clauses) + ")"


def datetime_clause(interval: tuple[datetime | None, datetime | None]) -> str:
    """Products whose [beginposition, endposition] meets the interval (STAC semantics)."""
    start, end = interval
    clauses = []
    if end is not None:
        clauses.append(f"beginposition:[* TO {solr_instant(end)}]")
    if start is not None:
        clauses.append(f"endposition:[{solr_instant(start)} TO *]")
    return " AND ".join(clauses)


def ids_clause(ids: tuple[str, ...]) -> str:
    terms = " OR ".join(f"identifier:{phrase(i)}" for i in ids)
    return f"({terms})"


def _number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def _numeric(field: str, op: str, operand: Any) -> str | None:
    if op == "in" and isinstance(operand, list):
        numbers = [_number(v) for v in operand]
        if not numbers or any(n is None for n in numbers):
            return None
        return "(" + " OR ".join(f"{field}:[{n} TO {n}]" for n in numbers) + ")"
    number = _number(operand)
    if number is None:
        return None
    if op == "=":
        return f"{field}:[{number} TO {number}]"
    if op == "<>":
        return f"({field}:[* TO *] AND NOT {field}:[{number} TO {number}])"
    return f"{field}:{_RANGE[op].format(number)}" if op in _RANGE else None


def _between(clause: Clause) -> str | None:
    args = clause.get("args")
    if not isinstance(args, list) or len(args) != 3 or not isinstance(args[0], dict):
        return None
    field = NUMERIC_FIELDS.get(str(args[0].get("property")))
    low, high = _number(args[1]), _number(args[2])
    if field is None or low is None or high is None:
        return None
    return f"{field}:[{low} TO {high}]"


def _terms(
    field: str, op: str, operand: Any, table: dict[str, str] | re.Pattern[str]
) -> str | None:
    values = operand if op == "in" and isinstance(operand, list) else [operand]
    if op not in ("=", "in") or not values:
        return None
    mapped = []
    for value in values:
        if not isinstance(value, str):
            return None
        if isinstance(table, dict):
            if value not in table:
                return None
            mapped.append(table[value])
        elif table.match(value):
            mapped.append(value)
        else:
            return None
    return "(" + " OR ".join(f"{field}:{phrase(v)}" for v in mapped) + ")"


def _platform(op: str, operand: Any) -> str | None:
    """``platform`` as the items read it (:mod:`adapters.dhus.items`): the serial identifier
    where a record has one (Sentinel-2), else the mission prefix of the product name (DHuS
    indexes no serial identifier for Sentinel-1)."""
    values = operand if op == "in" and isinstance(operand, list) else [operand]
    if op not in ("=", "in"):
        return None
    terms = []
    for value in values:
        found = _PLATFORM.match(value) if isinstance(value, str) else None
        if found is None:
            return None
        serial = phrase(f"Sentinel-{found[1]}{found[2].upper()}")
        prefix = f"S{found[1]}{found[2].upper()}_*"  # digit and letter: checked above
        terms.append(
            f"platformserialidentifier:{serial} OR "
            f"(identifier:{prefix} AND NOT platformserialidentifier:[* TO *])"
        )
    return "(" + " OR ".join(terms) + ")"


def _array(clause: Clause) -> str | None:
    """``a_contains`` / ``a_overlaps`` on ``sar:polarizations`` -> ``polarisationmode``."""
    args = clause.get("args")
    if not isinstance(args, list) or len(args) != 2 or args[0] != {"property": "sar:polarizations"}:
        return None
    values = args[1]
    if not isinstance(values, list) or not values:
        return None
    if not all(isinstance(v, str) and _POLARISATION.match(v) for v in values):
        return None
    joiner = " AND " if clause.get("op") == "a_contains" else " OR "
    return "(" + joiner.join(f"polarisationmode:{phrase(v)}" for v in values) + ")"


def _simple(op: str, prop: str, operand: Any) -> str | None:
    if prop in NUMERIC_FIELDS:
        return _numeric(NUMERIC_FIELDS[prop], op, operand)
    if prop == "sat:orbit_state":
        return _terms("orbitdirection", op, operand, ORBIT_STATES)
    if prop == "sar:instrument_mode":
        return _terms("sensoroperationalmode", op, operand, _INSTRUMENT_MODE)
    if prop == "product:type":
        return _terms("producttype", op, operand, _PRODUCT_TYPE)
    if prop == "platform":
        return _platform(op, operand)
    if prop == "grid:code" and op == "=" and isinstance(operand, str):
        # DHuS indexes `tileid` for Level-1C only; every S2 name carries `_T<tile>_`.
        found = _MGRS.match(operand)
        return f"identifier:*_T{found[1]}_*" if found else None
    return None


def filter_clause(clause: Clause) -> str | None:
    """The exact Solr translation of one CQL2 clause, or None when it has none."""
    op = clause.get("op")
    if op in ("a_contains", "a_overlaps"):
        return _array(clause)
    if op == "between":
        return _between(clause)
    found = comparison(clause)
    return _simple(*found) if found is not None else None


def pushable(clause: Clause) -> bool:
    return filter_clause(clause) is not None


def build_q(query: SearchQuery, sets: list[ProductSet]) -> str:
    """The whole ``q`` for ``query`` (clauses joined with AND)."""
    clauses = [collection_clause(sets)] if sets else []
    if query.ids:
        clauses.append(ids_clause(query.ids))
    if query.geometry is not None:
        clauses.append(footprint_clause(query.geometry))
    if query.datetime is not None:
        clauses.append(datetime_clause(query.datetime))
    pushed, _ = split(query.filter, pushable)
    clauses += [c for c in map(filter_clause, pushed) if c]
    return " AND ".join(clauses) if clauses else "*:*"


# STAC sort key -> the Solr field DHuS's ``orderby`` sorts by (several keys: ``a asc,b desc``).
SORT_FIELDS = {
    "datetime": "beginposition",
    "created": "ingestiondate",
    "id": "identifier",
    "eo:cloud_cover": "cloudcoverpercentage",
    "sat:relative_orbit": "relativeorbitnumber",
}
# DHuS's schema sorts a product without a numeric field as if it held 0 (Trie fields without
# ``sortMissingLast``), not last as the gateway does: such a key is claimed only for backends
# whose every product has it (platforms that always carry the field).
_PLATFORMS_WITH = {
    "eo:cloud_cover": frozenset({"Sentinel-2"}),
    "sat:relative_orbit": frozenset({"Sentinel-1", "Sentinel-2"}),
}


def sortable(sets: Iterable[ProductSet]) -> frozenset[str]:
    """The sort keys a backend serving ``sets`` orders exactly as the gateway does."""
    platforms = {s.platform for s in sets}
    return frozenset(
        key
        for key in SORT_FIELDS
        if key not in _PLATFORMS_WITH or platforms <= _PLATFORMS_WITH[key]
    )


def orderby(query: SearchQuery, keys: Collection[str] | None = None) -> str:
    """DHuS ``orderby`` (``key dir,key dir``): the leading sort keys the backend knows
    (``keys``: those claimed for this backend, default all)."""
    fields = {k: v for k, v in SORT_FIELDS.items() if keys is None or k in keys}
    found = backend_sort(query.sortby, fields)
    return ",".join(f"{field} {direction}" for field, direction in found) or "beginposition desc"
