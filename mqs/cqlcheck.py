"""CQL2 JSON operand rules, checked without ``cql2``'s schema validator.

``cql2.Expr.validate()`` compiles the JSON schema ``cql2`` embeds on its first call, which
costs a process ~130 MiB of RSS for good (and ~45 ms). :func:`check` enforces the same rules,
those of the CQL2 JSON schema of OGC 21-065r2 (its ``$defs``: andOrExpression, notExpression,
binaryComparisonPredicate, isLike, isBetween, isInList, isNull, spatial, temporal, array,
arithmetic, casei, accenti, functionRef, geometry / bbox / date / timestamp / interval
literals), with a table from operator to arity and to the kinds of operand each argument
takes, walked recursively with bounded depth and size.

Where the schema says ``oneOf`` this checker accepts a node that matches *any* alternative.
The two differ only for a node that fits two alternatives at once, such as an object that is
both a GeoJSON geometry with a ``bbox`` member and a ``{"bbox": ...}`` literal, or both a
property reference and a date. ``cql2`` drops such extra members when it parses, so
:func:`mqs.cql.validated`, which checks what ``cql2`` parsed, never meets one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mqs.errors import InvalidRequest

MAX_DEPTH = 64  # mqs.cqlfilter stops filters at 24 levels; this only guards the recursion
MAX_NODES = 100_000  # the Query extension alone may send 50 properties x 1000 'in' values

Kinds = tuple[str, ...]
CHARACTER: Kinds = ("str", "casei", "accenti")
NUMERIC: Kinds = ("num", "arith")
INSTANT: Kinds = ("date", "timestamp")
EXPRESSION: Kinds = ("bool", "predicate", "function")
SPATIAL: Kinds = ("geometry", "bbox")
TEMPORAL: Kinds = (*INSTANT, "interval")
NULLABLE: Kinds = (*CHARACTER, *NUMERIC, *EXPRESSION, *SPATIAL, *TEMPORAL, "property")


@dataclass(frozen=True)
class Slot:
    """What one argument position accepts, and how a message names it."""

    kinds: Kinds
    text: str


COND = Slot(EXPRESSION, "a boolean expression")
SCALAR = Slot(
    (*CHARACTER, *NUMERIC, *INSTANT, "bool", "function", "property"),
    "a string, number, boolean, date, timestamp, property or function",
)
TEXT = Slot((*CHARACTER, "property", "function"), "a string, property or function")
PATTERN = Slot(("pattern",), "a string pattern")
NUMBER = Slot((*NUMERIC, "property", "function"), "a number, property or function")
SCALARS = Slot(("scalars",), "a list of scalars")
GEOMETRY = Slot((*SPATIAL, "property", "function"), "a geometry, bbox, property or function")
TIME = Slot(
    (*TEMPORAL, "property", "function"), "a date, timestamp, interval, property or function"
)
ARRAY = Slot(("array", "property", "function"), "an array, property or function")
OPERAND = Slot(("num", "arith", "property", "function"), "a number, property or function")
ISNULL = Slot(NULLABLE, "a literal, property, function or expression")
ANY = Slot((*NULLABLE, "array"), "a literal, array, property, function or expression")
BOUND = Slot(
    ("date_str", "timestamp_str", "open", "property", "function"),
    "a date, timestamp, '..', property or function",
)


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


@dataclass(frozen=True)
class Rule:
    """Arity of an operator and its argument slots (the last one repeats)."""

    low: int
    high: int | None
    slots: tuple[Slot, ...]


SPATIAL_OPS = _names("s_contains s_crosses s_disjoint s_equals s_intersects s_overlaps")
SPATIAL_OPS += ("s_touches", "s_within")
TEMPORAL_OPS = _names("t_after t_before t_contains t_disjoint t_during t_equals t_finishedBy")
TEMPORAL_OPS += _names("t_finishes t_intersects t_meets t_metBy t_overlappedBy t_overlaps")
TEMPORAL_OPS += ("t_startedBy", "t_starts")
ARRAY_OPS = ("a_containedBy", "a_contains", "a_equals", "a_overlaps")
ARITHMETIC_OPS = ("+", "-", "*", "/", "^", "%", "div")
RULES: dict[str, Rule] = {
    "and": Rule(2, None, (COND,)),
    "or": Rule(2, None, (COND,)),
    "not": Rule(1, 1, (COND,)),
    **{op: Rule(2, 2, (SCALAR,)) for op in ("=", "<>", "<", ">", "<=", ">=")},
    "like": Rule(2, 2, (TEXT, PATTERN)),
    "between": Rule(3, 3, (NUMBER,)),
    "in": Rule(2, 2, (SCALAR, SCALARS)),
    "isNull": Rule(1, 1, (ISNULL,)),
    **{op: Rule(2, 2, (GEOMETRY,)) for op in SPATIAL_OPS},
    **{op: Rule(2, 2, (TIME,)) for op in TEMPORAL_OPS},
    **{op: Rule(2, 2, (ARRAY,)) for op in ARRAY_OPS},
    **{op: Rule(2, 2, (OPERAND,)) for op in ARITHMETIC_OPS},
    "casei": Rule(1, 1, (TEXT,)),
    "accenti": Rule(1, 1, (TEXT,)),
}
FUNCTION = Rule(0, None, (ANY,))  # any operator the standard does not reserve
PATTERN_RULE = Rule(1, 1, (PATTERN,))  # casei / accenti around a LIKE pattern

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")
# GeoJSON type -> minimum lengths of the nested coordinate arrays, outermost first
_COORDINATES = {
    "Point": (),
    "LineString": (2,),
    "Polygon": (0, 4),
    "MultiPoint": (0,),
    "MultiLineString": (0, 2),
    "MultiPolygon": (0, 0, 4),
}
_ORDINALS = ("first", "second", "third")


def check(expr: Any) -> None:
    """Raise :class:`InvalidRequest` unless ``expr`` is a valid CQL2 JSON boolean expression."""
    _Walk().node(expr, COND, ("the filter must be ", ""), 0)


def category(op: str) -> str:
    """The kind of operand a node with operator ``op`` is."""
    if op in ("casei", "accenti"):
        return op
    if op in ARITHMETIC_OPS:
        return "arith"
    return "predicate" if op in RULES else "function"


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(f"invalid filter: {message}")


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def _numbers(value: Any, least: int) -> bool:
    return isinstance(value, list) and len(value) >= least and all(map(_number, value))


def describe(value: Any) -> str:
    """A short name of what a node is, for messages."""
    if not isinstance(value, dict):
        names = {bool: "a boolean", str: "a string", list: "an array", type(None): "null"}
        return names.get(type(value), "a number")
    op = value.get("op")
    if isinstance(op, str):
        return f"function {op!r}" if category(op) == "function" else f"operator {op!r}"
    if isinstance(value.get("property"), str):
        return "a property"
    return "an object with keys " + ", ".join(map(repr, sorted(map(str, value))))[:80]


class _Walk:
    """One check: counts the nodes it visits."""

    def __init__(self) -> None:
        self.nodes = 0

    def node(self, value: Any, slot: Slot, where: tuple[str, str], depth: int) -> None:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise _bad(f"more than {MAX_NODES} terms or nested deeper than {MAX_DEPTH}")
        errors: list[InvalidRequest] = []
        for kind in slot.kinds:
            try:
                if _MATCHERS[kind](self, value, depth):
                    return
            except InvalidRequest as exc:  # the node is of this kind, but broken inside
                errors.append(exc)
        if errors:
            raise errors[0]
        raise _bad(f"{where[0]}{slot.text}{where[1]}, got {describe(value)}")

    def call(self, value: Any, kind: str, depth: int) -> bool:
        op = value.get("op") if isinstance(value, dict) else None
        if not isinstance(op, str) or category(op) != kind.removeprefix("pattern_"):
            return False
        args = value.get("args")
        if not isinstance(args, list):
            raise _bad(f"{op!r} needs an 'args' array")
        rule = PATTERN_RULE if kind.startswith("pattern_") else RULES.get(op, FUNCTION)
        if len(args) < rule.low or (rule.high is not None and len(args) > rule.high):
            raise _bad(f"{op!r} takes {_arity(rule)}, got {len(args)}")
        for i, arg in enumerate(args):
            nth = _ORDINALS[i] if i < len(_ORDINALS) else f"no. {i + 1}"
            slot = rule.slots[min(i, len(rule.slots) - 1)]
            self.node(arg, slot, (f"{op!r} takes ", f" as its {nth} argument"), depth + 1)
        return True

    def items(self, value: Any, slot: Slot, depth: int) -> bool:
        if not isinstance(value, list):
            return False
        for arg in value:
            self.node(arg, slot, ("an array item must be ", ""), depth + 1)
        return True

    def interval(self, value: Any, depth: int) -> bool:
        if not isinstance(value, dict) or "interval" not in value:
            return False
        bounds = value["interval"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise _bad("an interval takes a list of 2 bounds")
        for bound in bounds:
            self.node(bound, BOUND, ("an interval bound must be ", ""), depth + 1)
        return True

    def geometry(self, value: Any) -> bool:
        kind = value.get("type") if isinstance(value, dict) else None
        if kind not in _COORDINATES and kind != "GeometryCollection":
            return False
        if "bbox" in value and not _numbers(value["bbox"], 4):
            raise _bad(f"the bbox of a {kind} must be at least 4 numbers")
        if kind == "GeometryCollection":
            members = value.get("geometries")
            if not isinstance(members, list) or len(members) < 2:
                raise _bad("a GeometryCollection takes at least 2 geometries")
            if not all(isinstance(m, dict) and m.get("type") in _COORDINATES for m in members):
                raise _bad("a GeometryCollection takes only simple geometries")
            return all(self.geometry(m) for m in members)
        if "coordinates" not in value or not self.coordinates(value["coordinates"], kind):
            raise _bad(f"bad coordinates for a GeoJSON {kind}")
        return True

    def coordinates(self, value: Any, kind: str) -> bool:
        levels = [(value, _COORDINATES[kind])]
        while levels:
            node, least = levels.pop()
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise _bad(f"more than {MAX_NODES} terms or coordinates")
            if not least:
                if not _numbers(node, 2):
                    return False
            elif not isinstance(node, list) or len(node) < least[0]:
                return False
            else:
                levels.extend((n, least[1:]) for n in node)
        return True


def _arity(rule: Rule) -> str:
    count = f"{rule.low} argument" + ("s" if rule.low != 1 else "")
    return count if rule.high == rule.low else f"at least {count}"


def _instant(key: str, pattern: re.Pattern[str]) -> Callable[[_Walk, Any, int], bool]:
    def match(walk: _Walk, value: Any, depth: int) -> bool:
        if not isinstance(value, dict) or key not in value:
            return False
        text = value[key]
        if not isinstance(text, str) or not pattern.fullmatch(text):
            raise _bad(f"bad {key} {str(text)[:40]!r}: use {_FORMATS[key]}")
        return True

    return match


def _bbox(walk: _Walk, value: Any, depth: int) -> bool:
    if not isinstance(value, dict) or "bbox" not in value:
        return False
    box = value["bbox"]
    if not _numbers(box, 4) or len(box) not in (4, 6):
        raise _bad("a bbox takes 4 or 6 numbers")
    return True


def _string(test: Callable[[str], bool]) -> Callable[[_Walk, Any, int], bool]:
    return lambda walk, value, depth: isinstance(value, str) and test(value)


def _op(kind: str) -> Callable[[_Walk, Any, int], bool]:
    return lambda walk, value, depth: walk.call(value, kind, depth)


def _pattern(walk: _Walk, value: Any, depth: int) -> bool:
    return isinstance(value, str) or any(
        walk.call(value, kind, depth) for kind in ("pattern_casei", "pattern_accenti")
    )


_FORMATS = {"date": "YYYY-MM-DD", "timestamp": "YYYY-MM-DDThh:mm:ss[.fff]Z"}
_MATCHERS: dict[str, Callable[[_Walk, Any, int], bool]] = {
    "bool": lambda walk, value, depth: isinstance(value, bool),
    "num": lambda walk, value, depth: _number(value),
    "str": _string(lambda text: True),
    "date_str": _string(lambda text: _DATE.fullmatch(text) is not None),
    "timestamp_str": _string(lambda text: _TIMESTAMP.fullmatch(text) is not None),
    "open": _string(lambda text: text == ".."),
    "property": lambda walk, value, depth: (
        isinstance(value, dict) and isinstance(value.get("property"), str)
    ),
    "date": _instant("date", _DATE),
    "timestamp": _instant("timestamp", _TIMESTAMP),
    "interval": lambda walk, value, depth: walk.interval(value, depth),
    "geometry": lambda walk, value, depth: walk.geometry(value),
    "bbox": _bbox,
    "array": lambda walk, value, depth: walk.items(value, ANY, depth),
    "scalars": lambda walk, value, depth: walk.items(value, SCALAR, depth),
    "pattern": _pattern,
    **{kind: _op(kind) for kind in ("predicate", "function", "arith", "casei", "accenti")},
}
