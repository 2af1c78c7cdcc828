"""The ``$filter`` language of CDSE's OData catalogue (the subset clients use), over products.

Supported: ``and``/``or``/``not``, parentheses, ``eq ne lt le gt ge``; ``'strings'`` (a quote
doubled inside), unquoted instants (``2014-04-05T00:00:00.000Z``, ``2024-09-01``), numbers,
``true``/``false``/``null``; the product properties ``Name``, ``Id``, ``Collection/Name``,
``ContentDate/Start|End``, ``OriginDate``, ``PublicationDate``, ``ModificationDate``,
``ContentLength``, ``Online``; ``contains``/``startswith``/``endswith``/``tolower``/``toupper``;
attribute lambdas ``Attributes/OData.CSC.<T>Attribute/any(att:att/Name eq 'x' and
att/OData.CSC.<T>Attribute/Value le 5)`` (``T`` = String, Integer, Double, DateTimeOffset: only
attributes of that type are visited) and ``OData.CSC.Intersects(area=geography'SRID=4326;WKT')``.

Intersects is evaluated on the sphere as CDSE's PostGIS ``geography`` does: every edge of both
shapes is a great-circle arc (sampled every half degree), not a straight line in lon/lat.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from adapters.cdse_odata.emulator_records import Attribute, Product

Getter = Callable[[Product, Attribute | None], Any]
Typed = tuple[str, Getter]  # (kind: str | num | bool | date | geo | null, getter)

PROPERTIES: dict[str, Typed] = {
    "Name": ("str", lambda p, a: p.name),
    "Id": ("str", lambda p, a: p.id),
    "Collection/Name": ("str", lambda p, a: p.collection),
    "ContentDate/Start": ("date", lambda p, a: p.start),
    "ContentDate/End": ("date", lambda p, a: p.end),
    "OriginDate": ("date", lambda p, a: p.origin),
    "PublicationDate": ("date", lambda p, a: p.publication),
    "ModificationDate": ("date", lambda p, a: p.modification),
    "ContentLength": ("num", lambda p, a: p.content_length),
    "Online": ("bool", lambda p, a: True),
}
ATTRIBUTE_KINDS = {"String": "str", "Integer": "num", "Double": "num", "DateTimeOffset": "date"}
_TOKEN = re.compile(
    r"\s*(?:geography'(?P<geo>[^']*)'|'(?P<str>(?:[^']|'')*)'"
    r"|(?P<date>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)"
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][\w.]*)|(?P<punct>[()/,:=]))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b),
    "ne": lambda a, b: bool(a != b),
    "lt": lambda a, b: a is not None and b is not None and bool(a < b),
    "le": lambda a, b: a is not None and b is not None and bool(a <= b),
    "gt": lambda a, b: a is not None and b is not None and bool(a > b),
    "ge": lambda a, b: a is not None and b is not None and bool(a >= b),
}
_TEXT_FUNCTIONS: dict[str, tuple[str, int, Callable[..., Any]]] = {
    "contains": ("bool", 2, lambda text, part: part in text),
    "startswith": ("bool", 2, lambda text, prefix: text.startswith(prefix)),
    "endswith": ("bool", 2, lambda text, suffix: text.endswith(suffix)),
    "tolower": ("str", 1, lambda text: text.lower()),
    "toupper": ("str", 1, lambda text: text.upper()),
}
ARC_STEP_DEG = 0.5


class FilterError(ValueError):
    """A ``$filter`` the catalogue rejects (HTTP 400)."""


# --- geography -------------------------------------------------------------------------------
def _vector(lon: float, lat: float) -> tuple[float, float, float]:
    lam, phi = math.radians(lon), math.radians(lat)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def _arc(a: tuple[float, float], b: tuple[float, float]) -> list[tuple[float, float]]:
    """Points of the great-circle arc from ``a`` towards ``b`` (``b`` itself excluded)."""
    if abs(b[0] - a[0]) > 180:  # crosses the antimeridian: kept as given
        return [a]
    p, q = _vector(*a), _vector(*b)
    omega = math.acos(max(-1.0, min(1.0, sum(x * y for x, y in zip(p, q, strict=True)))))
    steps = math.ceil(math.degrees(omega) / ARC_STEP_DEG)
    if omega < 1e-12 or steps <= 1:
        return [a]
    low, high = min(a[0], b[0]), max(a[0], b[0])
    points = [a]
    for k in range(1, steps):
        t = k / steps
        s, u = math.sin((1 - t) * omega), math.sin(t * omega)
        x, y, z = ((s * pi + u * qi) / math.sin(omega) for pi, qi in zip(p, q, strict=True))
        lon = math.degrees(math.atan2(y, x))
        lon += 360 if lon < low - 1 else -360 if lon > high + 1 else 0
        points.append((lon, math.degrees(math.atan2(z, math.hypot(x, y)))))
    return points


def _ring(coords: Any) -> list[tuple[float, float]]:
    points = [(float(x), float(y)) for x, y, *_ in coords]
    out = [p for a, b in itertools.pairwise(points) for p in _arc(a, b)]
    return [*out, points[-1]]


def on_sphere(geometry: BaseGeometry) -> BaseGeometry:
    """The shape whose edges are the great-circle arcs between ``geometry``'s vertices."""
    if isinstance(geometry, shapely.Polygon):
        shell = _ring(geometry.exterior.coords)
        found = shapely.Polygon(shell, [_ring(r.coords) for r in geometry.interiors])
        return found if found.is_valid else shapely.make_valid(found)
    if isinstance(geometry, shapely.LineString):
        return shapely.LineString(_ring(geometry.coords))
    if hasattr(geometry, "geoms"):
        return shapely.unary_union([on_sphere(g) for g in geometry.geoms])
    return geometry


@lru_cache(maxsize=65536)
def _product_shape(product: Product) -> BaseGeometry | None:
    return None if product.geometry is None else on_sphere(product.geometry)


def _intersects(wkt: str) -> Getter:
    text = wkt.strip()
    if not text.upper().startswith("SRID=4326;"):
        raise FilterError("Invalid geography: expected SRID=4326;<WKT>")
    try:
        area = shapely.from_wkt(text.split(";", 1)[1])
    except shapely.errors.GEOSException as exc:
        raise FilterError(f"Invalid geography: {exc}") from None
    if area is None or area.is_empty:
        raise FilterError("Invalid geography: empty")
    spherical = on_sphere(area)
    return lambda p, a: (s := _product_shape(p)) is not None and bool(s.intersects(spherical))


# --- parser ----------------------------------------------------------------------------------
def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _const(value: Any) -> Getter:
    return lambda p, a: value


def _either(first: Getter, second: Getter) -> Getter:
    return lambda p, a: bool(first(p, a)) or bool(second(p, a))


def _both(first: Getter, second: Getter) -> Getter:
    return lambda p, a: bool(first(p, a)) and bool(second(p, a))


def tokenize(text: str) -> list[tuple[str, str]]:
    """``$filter`` -> (kind, value) tokens; string values unquoted (``''`` -> ``'``)."""
    tokens, pos = [], 0
    while pos < len(text) and text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"Invalid filter: unexpected character at position {pos + 1}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        tokens.append((kind, value.replace("''", "'") if kind == "str" else value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.k = text, 0
        self.tokens = [*tokenize(text), ("end", "")]
        self.lambdas: dict[str, str] = {}  # variable -> attribute type

    def peek(self, kind: str, value: str | None = None) -> bool:
        tok = self.tokens[self.k]
        return tok[0] == kind and (value is None or tok[1] == value)

    def take(self, kind: str, value: str | None = None) -> str:
        if not self.peek(kind, value):
            found = self.tokens[self.k][1] or "end of filter"
            raise FilterError(f"Invalid filter: unexpected '{found}'")
        self.k += 1
        return self.tokens[self.k - 1][1]

    def parse(self) -> Callable[[Product], bool]:
        kind, get = self.disjunction()
        self.take("end")
        if kind != "bool":
            raise FilterError("Invalid filter: not a boolean expression")
        return lambda p: bool(get(p, None))

    def disjunction(self) -> Typed:
        left = self.conjunction()
        while self.peek("name", "or"):
            self.k += 1
            left = ("bool", _either(left[1], self.conjunction()[1]))
        return left

    def conjunction(self) -> Typed:
        left = self.negation()
        while self.peek("name", "and"):
            self.k += 1
            left = ("bool", _both(left[1], self.negation()[1]))
        return left

    def negation(self) -> Typed:
        if self.peek("name", "not"):
            self.k += 1
            inner = self.negation()[1]
            return ("bool", lambda p, x: not inner(p, x))
        return self.comparison()

    def comparison(self) -> Typed:
        left = self.operand()
        if self.tokens[self.k][0] == "name" and self.tokens[self.k][1] in _COMPARE:
            op = _COMPARE[self.take("name")]
            right = self.operand()
            if "null" not in (left[0], right[0]) and left[0] != right[0]:
                raise FilterError(f"Invalid filter: cannot compare {left[0]} with {right[0]}")
            a, b = left[1], right[1]
            return ("bool", lambda p, x: op(a(p, x), b(p, x)))
        return left

    def operand(self) -> Typed:
        kind, value = self.tokens[self.k]
        self.k += 1
        if kind == "punct" and value == "(":
            inner = self.disjunction()
            self.take("punct", ")")
            return inner
        if kind == "str":
            return ("str", _const(value))
        if kind == "num":
            return ("num", _const(float(value) if any(c in value for c in ".eE") else int(value)))
        if kind == "date":
            return ("date", _const(_instant(value)))
        if kind == "name" and value in ("true", "false", "null"):
            return ("null", _const(None)) if value == "null" else ("bool", _const(value == "true"))
        if kind == "name" and self.peek("punct", "("):
            return self.call(value)
        if kind == "name":
            return self.path(value)
        raise FilterError(f"Invalid filter: unexpected '{value or 'end of filter'}'")

    def path(self, first: str) -> Typed:
        segments = [first]
        while self.peek("punct", "/"):
            self.k += 1
            segments.append(self.take("name"))
            if segments[-1] == "any" and self.peek("punct", "("):
                return self.lambda_(segments[:-1])
        if first in self.lambdas:
            return self.variable(first, segments[1:])
        found = PROPERTIES.get("/".join(segments))
        if found is None:
            raise FilterError(f"Invalid field: {'/'.join(segments)}")
        return found

    def variable(self, name: str, rest: list[str]) -> Typed:
        kind = self.lambdas[name]
        if rest == ["Name"]:
            return ("str", lambda p, a: a[0] if a else None)
        if rest in (["Value"], [f"OData.CSC.{kind}Attribute", "Value"]):
            return (ATTRIBUTE_KINDS[kind], lambda p, a: a[2] if a else None)
        raise FilterError(f"Invalid field: {name}/{'/'.join(rest)}")

    def lambda_(self, segments: list[str]) -> Typed:
        found = (
            re.fullmatch(r"OData\.CSC\.(\w+)Attribute", segments[-1])
            if len(segments) == 2
            else None
        )
        if segments[0] != "Attributes" or found is None or found[1] not in ATTRIBUTE_KINDS:
            raise FilterError(f"Invalid filter: cannot iterate {'/'.join(segments)}")
        kind = found[1]
        self.take("punct", "(")
        variable = self.take("name")
        self.take("punct", ":")
        self.lambdas[variable] = kind
        body = self.disjunction()[1]
        del self.lambdas[variable]
        self.take("punct", ")")
        return ("bool", lambda p, a: any(body(p, att) for att in p.attributes if att[1] == kind))

    def call(self, name: str) -> Typed:
        self.take("punct", "(")
        if name == "OData.CSC.Intersects":
            self.take("name", "area")
            self.take("punct", "=")
            getter = _intersects(self.take("geo"))
            self.take("punct", ")")
            return ("bool", getter)
        if name not in _TEXT_FUNCTIONS:
            raise FilterError(f"Invalid filter: unknown function '{name}'")
        kind, arity, function = _TEXT_FUNCTIONS[name]
        args = [self.disjunction()]
        while self.peek("punct", ","):
            self.k += 1
            args.append(self.disjunction())
        self.take("punct", ")")
        if len(args) != arity or any(k not in ("str", "null") for k, _ in args):
            raise FilterError(f"Invalid filter: {name} takes {arity} string argument(s)")
        getters = [g for _, g in args]
        return (kind, lambda p, a: function(*((g(p, a) or "") for g in getters)))


def compile_filter(text: str) -> Callable[[Product], bool]:
    """``$filter`` -> a predicate over products; :class:`FilterError` when invalid."""
    try:
        return _Parser(text).parse()
    except (ValueError, IndexError) as exc:
        if isinstance(exc, FilterError):
            raise
        raise FilterError(f"Invalid filter: {exc}") from None
