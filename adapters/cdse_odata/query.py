"""SearchQuery -> CDSE OData ``/Products`` query parameters (pure).

Nothing from the request reaches ``$filter`` unquoted: strings are OData literals with ``'``
doubled (:func:`literal`), numbers are formatted by Python, instants are formatted from parsed
datetimes, geometries are re-serialised from shapely shapes and attribute values outside a
known vocabulary are not pushed down at all.

What is exact (the gateway trusts it): collections (``Collection/Name`` and ``productType``),
ids (``Name eq``), datetime (``ContentDate``, compared at the gateway's millisecond precision)
and the ``query`` clauses :func:`pushable` accepts. Geometry is not exact: CDSE intersects on
the sphere (PostGIS ``geography``: edges are great circles) while STAC and the gateway use
planar lon/lat, so :func:`search_area` sends a widened superset and the gateway decides.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from adapters.cdse_odata.collections import ProductSet
from mqs.cql import Clause, comparison, split
from mqs.ordering import backend_sort
from mqs.query import SearchQuery

NAME_SUFFIXES = (".SAFE", ".SEN3")
# STAC sort key -> CDSE ``$orderby`` (one key; CDSE orders by ContentDate/Start, ContentDate/End,
# PublicationDate, ModificationDate). ``created`` is the PublicationDate (see .items); End is not
# claimed: an item whose End equals its Start has no ``end_datetime`` to sort by.
SORT_FIELDS = {"datetime": "ContentDate/Start", "created": "PublicationDate"}
# STAC property -> (CDSE attribute, OData attribute type). Only these clauses are pushed down.
NUMERIC = {
    "eo:cloud_cover": ("cloudCover", "Double"),
    "sat:relative_orbit": ("relativeOrbitNumber", "Integer"),
    "sat:absolute_orbit": ("orbitNumber", "Integer"),
}
ORBIT_STATES = {"ascending": "ASCENDING", "descending": "DESCENDING"}
_OPS = {"=": "eq", "<>": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_MODE = re.compile(r"^[A-Z][A-Z0-9]{1,5}$")
_PRODUCT_TYPE = re.compile(r"^[A-Z0-9_]{2,16}$")
_S1_TYPE = re.compile(r"^(?:[A-Z0-9]{2}_)?(?:GRD|SLC|RAW|OCN)")  # GRD, IW_GRDH_1S, ...
_MGRS = re.compile(r"^MGRS-(\d{1,2}[C-X][A-Z]{2})$")
_PLATFORM = re.compile(r"^sentinel-(\d)([a-d])$")
_POLARISATION = re.compile(r"^(HH|HV|VH|VV)$")

WORLD = shapely.box(-180, -90, 180, 90)
SEGMENT_DEG = 2.0  # densify edges so great circles between vertices stay near the planar edge
MAX_SPAN_DEG = 90.0  # wider parts are not sent: a geography polygon that large means another shape
MAX_VERTICES = 400
WKT_DIGITS = 6


def literal(value: str) -> str:
    """An OData string literal: quotes doubled, nothing else can end it."""
    return "'" + value.replace("'", "''") + "'"


def instant(value: datetime) -> str:
    """``2021-10-01T00:00:00.000Z`` (UTC, milliseconds), as CDSE filters take instants."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _ms_floor(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def attribute(name: str, kind: str, condition: Callable[[str], str]) -> str:
    """``Attributes/OData.CSC.<kind>Attribute/any(att:att/Name eq '<name>' and <condition>)``,
    ``condition`` given the path of the attribute's value."""
    body = condition(f"att/OData.CSC.{kind}Attribute/Value")
    return f"Attributes/OData.CSC.{kind}Attribute/any(att:att/Name eq {literal(name)} and {body})"


def _either(terms: list[str]) -> str:
    return terms[0] if len(terms) == 1 else "(" + " or ".join(terms) + ")"


def _equal_any(path: str, values: Iterable[str]) -> str:
    """``path eq 'a'`` or a parenthesised ``or`` of such terms."""
    return _either([f"{path} eq {literal(v)}" for v in values])


def collection_clause(products: ProductSet) -> str:
    clause = f"Collection/Name eq {literal(products.collection)}"
    if not products.product_types:
        return clause
    types = products.product_types
    product_type = attribute("productType", "String", lambda v: _equal_any(v, types))
    return f"({clause} and {product_type})"


def collections_clause(sets: list[ProductSet]) -> str:
    return _either([collection_clause(s) for s in sets])


def name_candidates(product_id: str) -> list[str]:
    """Every CDSE ``Name`` whose product id (the name without its suffix) is ``product_id``."""
    names = [product_id + suffix for suffix in NAME_SUFFIXES]
    return names if product_id.endswith(NAME_SUFFIXES) else [*names, product_id]


def ids_clause(ids: tuple[str, ...]) -> str:
    return _either([f"Name eq {literal(n)}" for i in ids for n in name_candidates(i)])


def datetime_clauses(interval: tuple[datetime | None, datetime | None]) -> list[str]:
    """Products whose [Start, End] meets the interval at millisecond precision (as the gateway).

    The gateway compares instants truncated to milliseconds; CDSE keeps microseconds, so the
    upper bound becomes ``Start lt`` the next millisecond.
    """
    start, end = interval
    clauses = []
    if end is not None:
        clauses.append(
            f"ContentDate/Start lt {instant(_ms_floor(end) + timedelta(milliseconds=1))}"
        )
    if start is not None:
        clauses.append(f"ContentDate/End ge {instant(_ms_floor(start))}")
    return clauses


# --- geometry: a superset the backend can evaluate --------------------------------------------


def _parts(geometry: BaseGeometry) -> list[BaseGeometry]:
    return list(getattr(geometry, "geoms", [geometry]))


def _dense_ring(coords: Any) -> list[tuple[float, float]]:
    """Points every ``SEGMENT_DEG`` along edges that are not meridians (those are great circles)."""
    points = [(float(x), float(y)) for x, y, *_ in coords]
    out = []
    for (x1, y1), (x2, y2) in itertools.pairwise(points):
        steps = math.ceil(abs(x2 - x1) / SEGMENT_DEG) if x1 != x2 else 1
        out += [(x1 + (x2 - x1) * k / steps, y1 + (y2 - y1) * k / steps) for k in range(steps)]
    return [*out, points[-1]]


def densified(geometry: BaseGeometry) -> BaseGeometry:
    """``geometry`` with extra vertices, so that great circles between them follow its edges."""
    if isinstance(geometry, shapely.Polygon):
        holes = [_dense_ring(ring.coords) for ring in geometry.interiors]
        return shapely.Polygon(_dense_ring(geometry.exterior.coords), holes)
    if isinstance(geometry, shapely.LineString):
        return shapely.LineString(_dense_ring(geometry.coords))
    if isinstance(
        geometry, shapely.MultiPolygon | shapely.MultiLineString | shapely.GeometryCollection
    ):
        return type(geometry)([densified(part) for part in geometry.geoms])
    return geometry


def search_area(geometry: BaseGeometry, margin: float) -> BaseGeometry | None:
    """A lon/lat shape containing ``geometry`` widened by ``margin`` degrees, densified so that
    CDSE's great-circle edges stay within the margin; None when no such shape is small enough
    to send (then the gateway alone filters by geometry)."""
    shape = geometry
    if shapely.get_num_coordinates(shape) > MAX_VERTICES // 2:
        shape = shapely.unary_union([part.convex_hull for part in _parts(shape)])
    if margin > 0:
        shape = shape.buffer(margin, quad_segs=2, join_style="mitre")
    shape = shape.intersection(WORLD)
    for part in _parts(shape):
        west, south, east, north = part.bounds
        if east - west > MAX_SPAN_DEG or north - south > MAX_SPAN_DEG:
            return None
    shape = densified(shape)
    if shape.is_empty or shapely.get_num_coordinates(shape) > MAX_VERTICES:
        return None
    return shape


def wkt(geometry: BaseGeometry) -> str:
    """``POLYGON((x y, ...))``: lon lat, at most six decimals."""
    text = str(shapely.to_wkt(geometry, rounding_precision=WKT_DIGITS, trim=True))
    return re.sub(r"^([A-Z]+) \(", r"\1(", text)


def geometry_clause(geometry: BaseGeometry, margin: float) -> str | None:
    area = search_area(geometry, margin)
    if area is None:
        return None
    return f"OData.CSC.Intersects(area=geography'SRID=4326;{wkt(area)}')"


# --- query extension clauses ---------------------------------------------------------------


def _number(value: Any, kind: str) -> str | None:
    """A finite number as OData takes it; Integer attributes only take whole numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value)) if kind == "Double" else None


def _numeric(prop: str, op: str, operand: Any) -> str | None:
    name, kind = NUMERIC[prop]
    if op == "in" and isinstance(operand, list) and operand:
        numbers = [_number(v, kind) for v in operand]
        if any(n is None for n in numbers):
            return None
        return attribute(name, kind, lambda v: _either([f"{v} eq {n}" for n in numbers]))
    number = _number(operand, kind)
    if number is None or op not in _OPS:
        return None
    return attribute(name, kind, lambda v: f"{v} {_OPS[op]} {number}")


def _strings(op: str, operand: Any) -> list[str] | None:
    """The string values of an ``=`` or ``in`` clause."""
    values = operand if op == "in" and isinstance(operand, list) else [operand]
    if op not in ("=", "in") or not values or not all(isinstance(v, str) for v in values):
        return None
    return list(values)


def _terms(name: str, values: list[str] | None) -> str | None:
    if not values:
        return None
    return attribute(name, "String", lambda path: _equal_any(path, values))


def _mapped(values: list[str] | None, table: dict[str, str]) -> list[str] | None:
    if values is None or any(v not in table for v in values):
        return None
    return [table[v] for v in values]


def _matching(
    values: list[str] | None, pattern: re.Pattern[str], group: int = 0
) -> list[str] | None:
    if values is None:
        return None
    found = [pattern.match(v) for v in values]
    return [m[group] for m in found if m] if all(found) else None


def _platform(op: str, operand: Any) -> str | None:
    values = _strings(op, operand)
    found = [_PLATFORM.match(v) for v in values or []]
    if not values or not all(found):
        return None
    terms = [
        f"({_terms('platformShortName', [f'SENTINEL-{m[1]}'])} and "
        f"{_terms('platformSerialIdentifier', [m[2].upper()])})"
        for m in found
        if m
    ]
    return _either(terms)


def _contains(value: str) -> Callable[[str], str]:
    return lambda path: f"contains({path},{literal(value)})"


def _polarisations(clause: Clause) -> str | None:
    """``a_contains`` / ``a_overlaps`` on ``sar:polarizations`` -> ``polarisationChannels``
    (``VV&VH``: a two-letter code is in it exactly when it is one of its channels)."""
    args = clause.get("args")
    if not isinstance(args, list) or len(args) != 2 or args[0] != {"property": "sar:polarizations"}:
        return None
    values = args[1]
    if not isinstance(values, list) or not values:
        return None
    if not all(isinstance(v, str) and _POLARISATION.match(v) for v in values):
        return None
    terms = [attribute("polarisationChannels", "String", _contains(v)) for v in values]
    joiner = " and " if clause.get("op") == "a_contains" else " or "
    return terms[0] if len(terms) == 1 else "(" + joiner.join(terms) + ")"


def _simple(op: str, prop: str, operand: Any) -> str | None:
    if prop in NUMERIC:
        return _numeric(prop, op, operand)
    values = _strings(op, operand)
    if prop == "sat:orbit_state":
        return _terms("orbitDirection", _mapped(values, ORBIT_STATES))
    if prop == "sar:instrument_mode":
        return _terms("operationalMode", _matching(values, _MODE))
    if prop == "product:type":
        if values is None or any(_S1_TYPE.match(v) for v in values):
            return None  # items say GRD where CDSE's productType says IW_GRDH_1S: the gateway's
        return _terms("productType", _matching(values, _PRODUCT_TYPE))
    if prop == "grid:code":
        return _terms("tileId", _matching(values, _MGRS, 1))
    if prop == "platform":
        return _platform(op, operand)
    return None


def filter_clause(clause: Clause) -> str | None:
    """The exact OData translation of one CQL2 clause, or None when it has none."""
    if clause.get("op") in ("a_contains", "a_overlaps"):
        return _polarisations(clause)
    found = comparison(clause)
    return _simple(*found) if found is not None else None


def pushable(clause: Clause) -> bool:
    return filter_clause(clause) is not None


def build_filter(query: SearchQuery, sets: list[ProductSet], margin: float) -> str | None:
    """The whole ``$filter`` for ``query`` (clauses joined with ``and``)."""
    clauses = [collections_clause(sets)] if sets else []
    if query.ids:
        clauses.append(ids_clause(query.ids))
    if query.geometry is not None and (area := geometry_clause(query.geometry, margin)):
        clauses.append(area)
    if query.datetime is not None:
        clauses += datetime_clauses(query.datetime)
    pushed, _ = split(query.filter, pushable)
    clauses += [c for c in map(filter_clause, pushed) if c]
    return " and ".join(clauses) if clauses else None


def orderby(query: SearchQuery) -> str:
    """``$orderby``: the search's first sort key when CDSE knows it (one key is claimed)."""
    keys = backend_sort(query.sortby[:1], SORT_FIELDS)
    return ",".join(f"{field} {direction}" for field, direction in keys) or "ContentDate/Start desc"


def params(
    query: SearchQuery,
    sets: list[ProductSet],
    *,
    top: int,
    skip: int,
    margin: float,
    assets: bool = False,
) -> list[tuple[str, str]]:
    """The query parameters of one page, in the order CDSE's own next links use.

    The first page asks for ``$count`` (CDSE only counts there); later ones send ``$skip``.
    """
    found: list[tuple[str, str]] = []
    if (text := build_filter(query, sets, margin)) is not None:
        found.append(("$filter", text))
    found.append(("$top", str(top)))
    found.append(("$skip", str(skip)) if skip else ("$count", "true"))
    found.append(("$expand", "Attributes,Assets" if assets else "Attributes"))
    found.append(("$orderby", orderby(query)))
    return found
