"""The Filter extension at the edge: CQL2 text or JSON -> one checked, normalised expression.

``cql2`` parses and validates the grammar; this module adds what ``cql2`` leaves open: the
operators the gateway evaluates (an unknown function is a 400, not a silent non-match), size
limits, geometry and instant literals that are checked, the CRS, and one spelling per clause
(``properties.x`` -> ``x``, literals on the right), so that adapters recognise what they push.
"""

from __future__ import annotations

from typing import Any

import cql2
import orjson
import shapely
from shapely.geometry import shape

from mqs.cql import Clause, validated
from mqs.errors import InvalidRequest

CRS84 = frozenset(
    {
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "https://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "http://www.opengis.net/def/crs/EPSG/0/4326",
    }
)
LANGS = ("cql2-text", "cql2-json")
MAX_FILTER_CHARS = 100_000
MAX_NODES = 2_000
MAX_DEPTH = 24
MAX_VERTICES = 10_000

LOGICAL = frozenset({"and", "or", "not"})
COMPARISON = frozenset({"=", "<>", "<", "<=", ">", ">=", "like", "between", "in", "isNull"})
SPATIAL = frozenset(
    {
        "s_intersects",
        "s_within",
        "s_contains",
        "s_disjoint",
        "s_equals",
        "s_touches",
        "s_crosses",
        "s_overlaps",
    }
)
TEMPORAL = frozenset(
    {
        "t_intersects",
        "t_before",
        "t_after",
        "t_during",
        "t_equals",
        "t_disjoint",
        "t_meets",
        "t_metby",
        "t_overlaps",
        "t_overlappedby",
        "t_starts",
        "t_startedby",
        "t_finishes",
        "t_finishedby",
        "t_contains",
    }
)
ARRAY = frozenset({"a_equals", "a_contains", "a_containedBy", "a_overlaps"})
FUNCTIONS = frozenset({"casei", "accenti"})
OPERATORS = LOGICAL | COMPARISON | SPATIAL | TEMPORAL | ARRAY | FUNCTIONS
_FLIPPED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_SYMMETRIC_SPATIAL = frozenset({"s_intersects", "s_disjoint", "s_equals", "s_touches"})


def parse_filter(value: Any, lang: Any = None, crs: Any = None) -> Clause | None:
    """The Filter extension's ``filter`` (+ ``filter-lang``, ``filter-crs``) -> CQL2 JSON."""
    if value is None or value == "" or value == {}:
        return None
    if crs not in (None, "") and crs not in CRS84:
        raise InvalidRequest(f"invalid filter-crs {str(crs)[:100]!r}: only CRS84 is supported")
    if lang not in (None, "", *LANGS):
        raise InvalidRequest(f"invalid filter-lang {str(lang)[:40]!r}: use one of {LANGS}")
    try:
        expr = _parse(value, lang)
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        raise InvalidRequest(f"invalid filter: {_short(exc)}") from None
    normalised = _normalise(expr, 0, [0])
    if normalised is True:
        return None
    if normalised is False:  # matches nothing: every item has an id
        return {"op": "isNull", "args": [{"property": "id"}]}
    if not isinstance(normalised, dict):
        raise InvalidRequest("invalid filter: the expression must be a boolean condition")
    return validated(normalised)


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _parse(value: Any, lang: Any) -> Any:
    if isinstance(value, dict):
        if lang == "cql2-text":
            raise InvalidRequest("invalid filter: filter-lang is cql2-text but filter is JSON")
        try:
            text = orjson.dumps(_legacy(value)).decode()
        except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits
            raise InvalidRequest(f"invalid filter: {str(exc)[:100]}") from None
        return cql2.parse_json(text).to_json()
    if not isinstance(value, str):
        raise InvalidRequest("invalid filter: expected CQL2 text or a CQL2 JSON object")
    if len(value) > MAX_FILTER_CHARS:
        raise InvalidRequest(f"invalid filter: longer than {MAX_FILTER_CHARS} characters")
    looks_json = value.lstrip().startswith("{")
    if lang == "cql2-json" or (lang in (None, "") and looks_json):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidRequest("invalid filter: not valid JSON") from None
        return _parse(parsed, "cql2-json")
    return cql2.parse_text(value).to_json()


def _legacy(node: Any) -> Any:
    """Drafts of CQL2 JSON wrote ``between`` as ``[property, [low, high]]``; clients still do."""
    if isinstance(node, list):
        return [_legacy(n) for n in node]
    if not isinstance(node, dict):
        return node
    fixed = {k: _legacy(v) for k, v in node.items()}
    args = fixed.get("args")
    if fixed.get("op") == "between" and isinstance(args, list) and len(args) == 2:
        low_high = args[1]
        if isinstance(low_high, list) and len(low_high) == 2:
            fixed["args"] = [args[0], *low_high]
    return fixed


def _normalise(node: Any, depth: int, count: list[int]) -> Any:
    """Check every node and return the expression in the gateway's one spelling."""
    count[0] += 1
    if count[0] > MAX_NODES or depth > MAX_DEPTH:
        raise InvalidRequest(f"invalid filter: more than {MAX_NODES} terms or too deeply nested")
    if isinstance(node, list):
        return [_normalise(n, depth + 1, count) for n in node]
    if not isinstance(node, dict):
        return node
    if "op" in node:
        return _operation(node, depth, count)
    if "property" in node:
        return {"property": _property(node["property"])}
    if "type" in node or "bbox" in node:
        _check_geometry(node)
        return node
    if "timestamp" in node or "date" in node or "interval" in node:
        return {k: _normalise(v, depth + 1, count) for k, v in node.items()}
    raise InvalidRequest(f"invalid filter: unexpected object {_snippet(node)}")


def _operation(node: Clause, depth: int, count: list[int]) -> Clause:
    op = node["op"]
    if op not in OPERATORS:
        known = "comparisons, LIKE, BETWEEN, IN, IS NULL, AND/OR/NOT, S_*, T_*, A_*, CASEI"
        raise InvalidRequest(f"invalid filter: unsupported operator {str(op)[:40]!r} ({known})")
    args = [_normalise(a, depth + 1, count) for a in node.get("args") or []]
    if op in _FLIPPED and len(args) == 2 and _is_literal(args[0]) and _is_property(args[1]):
        return {"op": _FLIPPED[op], "args": [args[1], args[0]]}
    swap = len(args) == 2 and _is_property(args[1]) and not _is_property(args[0])
    if op in _SYMMETRIC_SPATIAL and swap:
        return {"op": op, "args": [args[1], args[0]]}
    return {"op": op, "args": args}


def _is_property(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"property"}


def _is_literal(node: Any) -> bool:
    return not isinstance(node, dict | list) or not ({"op", "property"} & set(node))


def _property(name: Any) -> str:
    if not isinstance(name, str) or not name or len(name) > 128 or not name.isprintable():
        raise InvalidRequest("invalid filter: property names must be short printable strings")
    return name.removeprefix("properties.")


def _check_geometry(node: Clause) -> None:
    if "bbox" in node:
        box = node["bbox"]
        ok = isinstance(box, list) and len(box) in (4, 6)
        if ok and len(box) == 4:
            west, south, east, north = box
            ok = -180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90
        if not ok:
            raise InvalidRequest(f"invalid filter: bad BBOX {_snippet(node)}")
        return
    try:
        geometry = shape(node)
    except Exception:
        raise InvalidRequest(f"invalid filter: bad geometry {_snippet(node)}") from None
    if geometry.is_empty or shapely.get_num_coordinates(geometry) > MAX_VERTICES:
        raise InvalidRequest(f"invalid filter: empty geometry or more than {MAX_VERTICES} vertices")
    if not shapely.box(-180, -90, 180, 90).covers(geometry.envelope):
        raise InvalidRequest("invalid filter: geometry coordinates must be lon/lat (CRS84)")


def _snippet(node: Any) -> str:
    text = orjson.dumps(node).decode()
    return text[:80] + ("..." if len(text) > 80 else "")
