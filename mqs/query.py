"""The one normalised search every adapter receives, parsed and validated at the edge."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from mqs.cql import Clause, and_of, conjuncts, parse_query_extension
from mqs.cqlfilter import parse_filter
from mqs.errors import InvalidRequest
from mqs.hints import Lifted, lift
from mqs.literals import bbox_geometry, format_instant, parse_instant

Interval = tuple[datetime | None, datetime | None]

MAX_IDS = 1000
MAX_ID_LENGTH = 256
MAX_VERTICES = 10_000
MAX_SORT_KEYS = 5


@dataclass(frozen=True)
class SortField:
    field: str
    direction: str = "desc"  # "asc" | "desc"


DEFAULT_SORT: tuple[SortField, ...] = (SortField("datetime", "desc"),)


@dataclass(frozen=True)
class SearchQuery:
    """A validated STAC search. ``geometry`` is the bbox or intersects as one shapely shape."""

    collections: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    intersects: dict[str, Any] | None = None
    geometry: BaseGeometry | None = field(default=None, compare=False)
    datetime: Interval | None = None
    limit: int = 10
    sortby: tuple[SortField, ...] = DEFAULT_SORT
    filter: dict[str, Any] | None = None  # CQL2 JSON (see mqs.cql)

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the result set (not the page size): paging tokens are bound to it."""
        return {
            "c": sorted(self.collections),
            "i": sorted(self.ids),
            "b": list(self.bbox) if self.bbox else None,
            "g": self.intersects,
            "d": [format_instant(t) for t in self.datetime] if self.datetime else None,
            "s": [[s.field, s.direction] for s in self.sortby],
            "f": self.filter,
        }


def parse_datetime(text: str | None) -> Interval | None:
    """``instant``, ``start/end``, ``../end``, ``start/..`` (an empty end is open too)."""
    if text is None or text == "":
        return None
    parts = text.split("/")
    if len(parts) == 1:
        instant = parse_instant(parts[0])
        return (instant, instant)
    if len(parts) != 2:
        raise InvalidRequest(f"invalid datetime {text!r}: at most one '/' is allowed")
    start, end = (None if p in ("", "..") else parse_instant(p) for p in parts)
    if start is None and end is None:
        raise InvalidRequest(f"invalid datetime {text!r}: both ends are open")
    if start and end and start > end:
        raise InvalidRequest(f"invalid datetime {text!r}: start is after end")
    return (start, end)


def parse_bbox(values: Any) -> tuple[float, float, float, float] | None:
    """A 2D or 3D bbox; the 3D heights are dropped. Antimeridian boxes have west > east."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    try:
        nums = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidRequest(f"invalid bbox {values!r}: expected numbers") from None
    if len(nums) not in (4, 6) or not all(math.isfinite(n) for n in nums):
        raise InvalidRequest("invalid bbox: expected 4 (or 6) finite numbers")
    west, south, east, north = nums if len(nums) == 4 else (nums[0], nums[1], nums[3], nums[4])
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise InvalidRequest("invalid bbox: longitudes must be within [-180, 180]")
    if not (-90 <= south <= north <= 90):
        raise InvalidRequest("invalid bbox: latitudes must be within [-90, 90], south <= north")
    return (west, south, east, north)


def parse_intersects(value: Any) -> tuple[dict[str, Any] | None, BaseGeometry | None]:
    """A GeoJSON geometry (object or JSON text) -> (the GeoJSON, a valid shapely shape)."""
    if value is None:
        return None, None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidRequest("invalid intersects: not JSON") from None
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    if not isinstance(value, dict) or value.get("type") in (None, "Feature", "FeatureCollection"):
        raise InvalidRequest("invalid intersects: expected a GeoJSON geometry object")
    try:
        geom = shape(value)
    except Exception as exc:
        raise InvalidRequest(f"invalid intersects: {exc}") from None
    if geom.is_empty or shapely.get_num_coordinates(geom) > MAX_VERTICES:
        raise InvalidRequest(f"invalid intersects: empty or more than {MAX_VERTICES} vertices")
    lon_lat_ok = shapely.box(-180, -90, 180, 90).covers(geom.envelope)
    if not lon_lat_ok:
        raise InvalidRequest("invalid intersects: coordinates must be lon/lat within range")
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return value, geom


def _string_list(values: Any, what: str) -> tuple[str, ...]:
    """A comma-separated string or a JSON list -> distinct, stripped, non-empty strings."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = values.split(",")
    if not isinstance(values, list | tuple):
        raise InvalidRequest(f"invalid {what}: expected a list of strings")
    return tuple(dict.fromkeys(s for v in values if (s := str(v).strip())))


def parse_ids(values: Any) -> tuple[str, ...]:
    ids = _string_list(values, "ids")
    if len(ids) > MAX_IDS:
        raise InvalidRequest(f"invalid ids: at most {MAX_IDS} ids per search")
    for item_id in ids:
        if len(item_id) > MAX_ID_LENGTH or not item_id.isprintable():
            raise InvalidRequest(f"invalid id {item_id[:40]!r}: too long or not printable")
    return ids


def parse_collections(values: Any, known: dict[str, Any]) -> tuple[str, ...]:
    collections = _string_list(values, "collections")
    unknown = [c for c in collections if c not in known]
    if unknown:
        shown = ", ".join(repr(c[:64]) for c in unknown[:5])
        raise InvalidRequest(f"unknown collection(s): {shown}")
    return collections


def parse_limit(value: Any, default: int, maximum: int) -> int:
    """A positive integer, capped at the server's maximum."""
    if value is None or value == "":
        return default
    try:
        limit = int(value)
        if isinstance(value, float) and value != limit:
            raise ValueError
    except (TypeError, ValueError):
        raise InvalidRequest(f"invalid limit {value!r}: expected a positive integer") from None
    if limit < 1:
        raise InvalidRequest(f"invalid limit {limit}: must be at least 1")
    return min(limit, maximum)


def _sort_token(token: str) -> tuple[str, str]:
    # a '+' left unescaped in a URL arrives as a space: both mean ascending
    token = token.strip()
    return token.lstrip("+-"), "desc" if token.startswith("-") else "asc"


def parse_sortby(value: Any) -> tuple[SortField, ...]:
    """``-datetime,+eo:cloud_cover`` (GET) or ``[{"field", "direction"}]`` (POST)."""
    if value is None or value == "" or value == []:
        return DEFAULT_SORT
    if isinstance(value, str):
        pairs = [_sort_token(t) for t in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
        pairs = [(str(v.get("field", "")), str(v.get("direction", "asc")).lower()) for v in value]
    else:
        raise InvalidRequest("invalid sortby: expected '-a,+b' or a list of {field, direction}")
    if len(pairs) > MAX_SORT_KEYS:
        raise InvalidRequest(f"invalid sortby: at most {MAX_SORT_KEYS} keys")
    fields: list[SortField] = []
    for raw, direction in pairs:
        name = raw.strip().removeprefix("properties.")
        valid = bool(name) and len(name) <= 128 and name.isprintable()
        if not valid or direction not in ("asc", "desc"):
            raise InvalidRequest(f"invalid sortby key {name[:64]!r} {direction[:8]!r}")
        if any(f.field == name for f in fields):
            raise InvalidRequest(f"invalid sortby: {name!r} appears twice")
        fields.append(SortField(name, direction))
    return tuple(fields)


def parse_filters(params: dict[str, Any], known_collections: dict[str, Any]) -> Lifted:
    """``query`` and ``filter`` as one expression, with the clauses that route lifted out."""
    parts = [
        parse_query_extension(params.get("query")),
        parse_filter(params.get("filter"), params.get("filter-lang"), params.get("filter-crs")),
    ]
    clauses = [c for part in parts if part is not None for c in conjuncts(part)]
    return lift(and_of(clauses) if clauses else None, known_collections)


def _narrowed(
    given: tuple[str, ...],
    lifted: tuple[tuple[str, ...], list[Clause]] | None,
    rest: list[Clause],
) -> tuple[str, ...]:
    """The parameter's values narrowed by the filter's (both must hold).

    When they share nothing, nothing matches: the filter keeps its clauses and says so.
    """
    if lifted is None:
        return given
    values, clauses = lifted
    both = tuple(v for v in values if not given or v in given)
    if not both:
        rest.extend(clauses)
        return given
    return both


def build_query(
    params: dict[str, Any], known_collections: dict[str, Any], default_limit: int, max_limit: int
) -> SearchQuery:
    """Everything a STAC search may carry (GET strings or POST JSON) -> one SearchQuery."""
    bbox = parse_bbox(params.get("bbox"))
    intersects, geometry = parse_intersects(params.get("intersects"))
    if bbox is not None and intersects is not None:
        raise InvalidRequest("bbox and intersects are mutually exclusive")
    if bbox is not None:
        geometry = bbox_geometry(bbox)
    dt = params.get("datetime")
    if dt is not None and not isinstance(dt, str):
        raise InvalidRequest("invalid datetime: expected an RFC 3339 string or interval")
    interval = parse_datetime(dt)
    lifted = parse_filters(params, known_collections)
    rest = list(lifted.rest)
    if lifted.area is not None:
        area, shape_, clause, exact = lifted.area
        if geometry is None:
            intersects, geometry = area, shape_
        elif exact:
            rest.append(clause)  # two areas: an item must intersect both
    collections = parse_collections(params.get("collections"), known_collections)
    ids = parse_ids(params.get("ids"))
    return SearchQuery(
        collections=_narrowed(collections, lifted.collections, rest),
        ids=_narrowed(ids, lifted.ids, rest),
        bbox=bbox,
        intersects=intersects,
        geometry=geometry,
        datetime=interval if interval is not None else lifted.interval,
        limit=parse_limit(params.get("limit"), default_limit, max_limit),
        sortby=parse_sortby(params.get("sortby")),
        filter=and_of(rest) if rest else None,
    )
