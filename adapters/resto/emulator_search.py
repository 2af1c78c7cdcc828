"""resto's search parameters, evaluated over product records (the emulator's search engine).

Semantics (resto's model of search filters, as in its open-source code and CDSE's manual):
``startDate``/``completionDate`` bound a product's *start* (``startDate >= time:start`` and
``startDate <= time:end``); ``box`` (``west > east`` crosses the antimeridian) and ``geometry``
(WKT) intersect the footprint; numeric parameters take ``n`` or an interval ``[a,b]``, ``]a,b[``,
``[a``, ``b]`` ...; text parameters compare exactly, ``|`` separates alternatives, and a value
ending in ``%`` is a SQL LIKE pattern (``%``, ``_``). ``productType`` also accepts the family
names CDSE keeps for finder clients: ``L1C``/``L2A`` select ``S2MSI1C``/``S2MSI2A`` (as the
recorded CDSE answers show) and ``GRD``/``SLC``/``RAW``/``OCN`` every Sentinel-1 type of that kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep

from adapters.resto.emulator_records import Product

Predicate = Callable[[Product], bool]

PAGING = ("maxRecords", "page", "index", "sortParam", "sortOrder", "exactCount")
SORT_KEYS = {
    "startDate": lambda p: p.start,
    "completionDate": lambda p: p.fields["completionDate"],
    "published": lambda p: p.fields["published"],
    "updated": lambda p: p.fields["updated"],
}
_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(|Z|[+\-]\d{2}:\d{2}))?$"
)  # the pattern of resto's description document
_NUMBER = r"-?\d+(?:\.\d+)?"
_RANGE = re.compile(rf"^([\[\]])({_NUMBER}),({_NUMBER})([\[\]])$")
_LOW = re.compile(rf"^([\[\]])({_NUMBER})$")
_HIGH = re.compile(rf"^({_NUMBER})([\[\]])$")
_PLAIN = re.compile(rf"^{_NUMBER}$")
_S1_FAMILY = re.compile(r"^(?:IW|EW|SM|WV|S[1-6])_(GRD|SLC|RAW|OCN)[HMF_]_\d[SA]$")
_S2_FAMILY = {"L1C": "S2MSI1C", "L2A": "S2MSI2A", "LEVEL1C": "S2MSI1C", "LEVEL2A": "S2MSI2A"}
NUMERIC = {"cloudCover": "cloudCover", "orbitNumber": "orbitNumber"}
NUMERIC |= {"relativeOrbitNumber": "relativeOrbitNumber", "resolution": "resolution"}
TEXT = (
    "productType", "processingLevel", "platform", "instrument", "sensorMode", "orbitDirection",
    "status", "polarisation", "swath", "timeliness", "productIdentifier", "organisationName",
)  # fmt: skip


class RestoError(Exception):
    """A request resto refuses: ``{"ErrorMessage": ..., "ErrorCode": status}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_date(name: str, text: str) -> datetime:
    if not _DATE.match(text):
        raise RestoError(f"Invalid {name}: {text}")
    head, _, rest = text.partition(".")
    if rest:  # Python reads at most 6 fraction digits
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{head}.{digits[0][:6]}{rest[digits.end() :]}"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def interval(name: str, text: str) -> Callable[[float], bool]:
    """``n``, ``[a,b]``, ``]a,b[``, ``[a,b[``, ``[a``, ``]a``, ``b]``, ``b[``."""
    if _PLAIN.match(text):
        wanted = float(text)
        return lambda v: v == wanted
    if found := _RANGE.match(text):
        low, high = float(found[2]), float(found[3])
        low_in, high_in = found[1] == "[", found[4] == "]"
        return lambda v: (v >= low if low_in else v > low) and (v <= high if high_in else v < high)
    if found := _LOW.match(text):
        low, low_in = float(found[2]), found[1] == "["
        return lambda v: v >= low if low_in else v > low
    if found := _HIGH.match(text):
        high, high_in = float(found[1]), found[2] == "]"
        return lambda v: v <= high if high_in else v < high
    raise RestoError(f"Invalid {name}: {text}")


def _like(pattern: str) -> Callable[[str], bool]:
    if len(pattern) < 4:
        raise RestoError("% is only allowed for string with 3+ characters")
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    compiled = re.compile(regex, re.DOTALL)
    return lambda value: compiled.fullmatch(value) is not None


def _type_family(value: str) -> str:
    found = _S1_FAMILY.match(value)
    return found[1] if found else _S2_FAMILY.get(value, value)


def text_filter(name: str, text: str) -> Predicate:
    """Exact values (LIKE when ending with ``%``), ``|`` between alternatives."""
    tests: list[Callable[[str], bool]] = []
    for value in text.split("|"):
        if value.endswith("%"):
            tests.append(_like(value))
        elif name == "productType" and value in ("GRD", "SLC", "RAW", "OCN", *_S2_FAMILY):
            family = _S2_FAMILY.get(value, value)
            tests.append(lambda v, w=value, f=family: v == w or _type_family(v) == f)  # type: ignore[misc]
        else:
            tests.append(lambda v, wanted=value: v == wanted)  # type: ignore[misc]

    def test(p: Product) -> bool:
        field = p.fields.get(name)
        return isinstance(field, str) and any(t(field) for t in tests)

    return test


def spatial_filter(name: str, text: str) -> Predicate:
    try:
        if name == "box":
            west, south, east, north = (float(v) for v in text.split(","))
            parts = [box(west, south, east, north)] if west <= east else [
                box(west, south, 180, north), box(-180, south, east, north)
            ]  # fmt: skip
            shape: BaseGeometry = shapely.union_all(parts)
        else:
            shape = shapely.from_wkt(text)
    except (ValueError, shapely.errors.GEOSException):
        raise RestoError(f"Invalid {name}") from None
    if shape is None or shape.is_empty or not shape.is_valid:
        raise RestoError(f"Invalid {name}")
    prepared = prep(shape)
    return lambda p: p.geometry is not None and bool(prepared.intersects(p.geometry))


def _tile(product: Product) -> str | None:
    found = re.search(r"_T(\d{2}[A-Z]{3})_", product.title)
    return found[1] if found else None


def compile_filters(params: Mapping[str, str]) -> list[Predicate]:
    """One predicate per search parameter; unknown parameters are ignored, as resto does."""
    preds: list[Predicate] = []
    for name, text in params.items():
        if name in PAGING or text == "":
            continue
        if name == "startDate":
            low = parse_date(name, text)
            preds.append(lambda p, low=low: p.start >= low)  # type: ignore[misc]
        elif name == "completionDate":
            high = parse_date(name, text)
            preds.append(lambda p, high=high: p.start <= high)  # type: ignore[misc]
        elif name in ("box", "geometry"):
            preds.append(spatial_filter(name, text))
        elif name in NUMERIC:
            test = interval(name, text)
            preds.append(lambda p, n=name, t=test: _number(p.fields.get(n), t))  # type: ignore[misc]
        elif name in TEXT:
            preds.append(text_filter(name, text))
        elif name == "identifier":
            ids = set(text.split("|"))
            preds.append(lambda p, i=ids: p.uuid in i or p.fields["productIdentifier"] in i)  # type: ignore[misc]
        elif name == "tileId":
            tiles = set(text.split("|"))
            preds.append(lambda p, t=tiles: _tile(p) in t)  # type: ignore[misc]
    return preds


def _number(value: Any, test: Callable[[float], bool]) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and test(float(value))


def int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name, "")
    if text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise RestoError(f"Invalid {name}: {text}")
    return int(text)


def order(products: list[Product], params: Mapping[str, str]) -> list[Product]:
    """``sortParam``/``sortOrder`` (descending by default); otherwise the index's own order.
    Ties keep the index order (by uuid)."""
    ordered = sorted(products, key=lambda p: p.uuid)
    sort_param = params.get("sortParam", "")
    if not sort_param:
        return ordered
    if sort_param not in SORT_KEYS:
        raise RestoError(f"Invalid sortParam: {sort_param}")
    direction = params.get("sortOrder", "descending")
    if direction not in ("ascending", "descending", "asc", "desc"):
        raise RestoError(f"Invalid sortOrder: {direction}")
    ordered.sort(key=SORT_KEYS[sort_param], reverse=direction.startswith("desc"))
    return ordered
