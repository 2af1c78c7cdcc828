"""The gateway's internal filter expression: CQL2 JSON, parsed with the ``cql2`` library.

Every property filter a search carries (today the Query extension's ``query`` object) becomes
one CQL2 JSON expression on :class:`~mqs.query.SearchQuery`. Adapters push down the top-level
``and`` clauses they can express exactly in their backend's language; the gateway evaluates the
rest on the returned items with :func:`compile_residual`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cql2
import orjson

from mqs import cqlcheck
from mqs.errors import InvalidRequest

Clause = dict[str, Any]

_COMPARISONS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_LIKE = {"startsWith": "{}%", "endsWith": "%{}", "contains": "%{}%"}
MAX_QUERY_PROPERTIES = 50
# Array-valued STAC properties: ``eq`` means "contains", ``in`` "shares an element" on them.
ARRAY_PROPERTIES = frozenset(
    {"instruments", "sar:polarizations", "keywords", "federation:backends"}
)
MAX_IN_VALUES = 1000


def parse_query_extension(value: Any) -> Clause | None:
    """The Query extension's ``query`` object (dict or JSON text) -> a CQL2 JSON expression."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidRequest("invalid query: expected a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidRequest("invalid query: expected an object of property -> operators")
    if len(value) > MAX_QUERY_PROPERTIES:
        raise InvalidRequest(f"invalid query: at most {MAX_QUERY_PROPERTIES} properties")
    clauses = [
        _query_clause(prop, op, operand)
        for prop, ops in value.items()
        for op, operand in _ops(prop, ops)
    ]
    return validated(and_of(clauses)) if clauses else None


def _ops(prop: Any, ops: Any) -> list[tuple[str, Any]]:
    if not isinstance(prop, str) or not prop or len(prop) > 128 or not prop.isprintable():
        raise InvalidRequest("invalid query: property names must be short printable strings")
    if not isinstance(ops, dict) or not ops:
        raise InvalidRequest(f"invalid query on {prop!r}: expected an object of operators")
    return list(ops.items())


def _scalar(prop: str, value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, int | float | str):
        return value
    raise InvalidRequest(f"invalid query on {prop!r}: operands must be strings or numbers")


def _query_clause(prop: str, op: str, operand: Any) -> Clause:
    target = {"property": prop}
    if prop in ARRAY_PROPERTIES and op in ("eq", "neq", "in"):
        return _array_clause(prop, op, operand)
    if op in _COMPARISONS:
        return {"op": _COMPARISONS[op], "args": [target, _scalar(prop, operand)]}
    if op == "in":
        if not isinstance(operand, list) or not operand or len(operand) > MAX_IN_VALUES:
            raise InvalidRequest(f"invalid query on {prop!r}: 'in' takes a non-empty list")
        return {"op": "in", "args": [target, [_scalar(prop, v) for v in operand]]}
    if op in _LIKE:
        if not isinstance(operand, str):
            raise InvalidRequest(f"invalid query on {prop!r}: {op!r} takes a string")
        pattern = _LIKE[op].format(escape_like(operand))
        return {"op": "like", "args": [target, pattern]}
    known = ", ".join([*_COMPARISONS, "in", *_LIKE])
    raise InvalidRequest(f"invalid query on {prop!r}: unknown operator {op!r} (known: {known})")


def _array_clause(prop: str, op: str, operand: Any) -> Clause:
    target = {"property": prop}
    if op == "in":
        if not isinstance(operand, list) or not operand or len(operand) > MAX_IN_VALUES:
            raise InvalidRequest(f"invalid query on {prop!r}: 'in' takes a non-empty list")
        return {"op": "a_overlaps", "args": [target, [_scalar(prop, v) for v in operand]]}
    contains = {"op": "a_contains", "args": [target, [_scalar(prop, operand)]]}
    return contains if op == "eq" else {"op": "not", "args": [contains]}


def escape_like(text: str) -> str:
    """A literal for a CQL2 LIKE pattern (``%``, ``_`` and ``\\`` escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ``cql2`` parses and normalises; :func:`mqs.cqlcheck.check` then applies the operand rules of
# the standard's CQL2 JSON schema. (cql2's own ``Expr.validate()`` compiles that schema: ~45 ms,
# and ~130 MiB of RSS for the life of the process, so no gateway path may call it.) Valid
# expressions are remembered (canonical JSON -> normalised JSON), so every page of a filtered
# search, and every repetition of a popular filter, parses once per process.
_VALIDATED: dict[bytes, bytes] = {}
_VALIDATED_MAX = 1024


def validated(expr: Clause) -> Clause:
    """The expression as ``cql2`` normalises it; a 400 naming the problem when invalid."""
    try:
        key = orjson.dumps(expr, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # cql2 takes only what JSON with 64-bit integers can say
        raise InvalidRequest("invalid filter: a number beyond the 64-bit integer range") from None
    if (known := _VALIDATED.get(key)) is not None:
        remembered: Clause = orjson.loads(known)
        return remembered
    try:
        parsed = cql2.Expr(expr)
    except Exception as exc:  # cql2 raises a bare Exception for JSON that is no expression
        raise InvalidRequest(f"invalid filter: {str(exc)[:300]}") from None
    normalised: Clause = parsed.to_json()
    cqlcheck.check(normalised)  # what cql2 parsed: its timestamps are already in UTC
    if len(_VALIDATED) >= _VALIDATED_MAX:
        _VALIDATED.pop(next(iter(_VALIDATED)))  # the oldest
    _VALIDATED[key] = orjson.dumps(normalised)
    return normalised


def and_of(clauses: list[Clause]) -> Clause:
    return clauses[0] if len(clauses) == 1 else {"op": "and", "args": clauses}


def conjuncts(expr: Clause | None) -> list[Clause]:
    """The top-level ``and`` clauses of ``expr`` (nested ``and`` flattened)."""
    if expr is None:
        return []
    if expr.get("op") == "and":
        return [c for arg in expr["args"] for c in conjuncts(arg)]
    return [expr]


def split(
    expr: Clause | None, pushable: Callable[[Clause], bool] | None
) -> tuple[list[Clause], Clause | None]:
    """(clauses a backend evaluates itself, the remainder the gateway must evaluate)."""
    pushed: list[Clause] = []
    rest: list[Clause] = []
    for clause in conjuncts(expr):
        (pushed if pushable is not None and pushable(clause) else rest).append(clause)
    return pushed, and_of(rest) if rest else None


def compile_residual(expr: Clause | None) -> cql2.Expr | None:
    return cql2.Expr(expr) if expr is not None else None


def matches(expr: cql2.Expr, item: dict[str, Any]) -> bool:
    """Whether ``item`` satisfies ``expr``.

    An item the expression cannot reduce to true or false (a property it lacks: SQL's
    *unknown*) does not match, as a backend would not return it either.
    """
    try:
        return bool(expr.matches(item))
    except Exception:  # cql2 raises a bare Exception when it cannot reduce the expression
        return False


def comparison(clause: Clause) -> tuple[str, str, Any] | None:
    """``(op, property, operand)`` for a binary clause on a property and a literal."""
    args = clause.get("args")
    if not isinstance(args, list) or len(args) != 2:
        return None
    target, operand = args
    if not isinstance(target, dict) or set(target) != {"property"}:
        return None
    if isinstance(operand, dict):
        return None
    return str(clause.get("op")), str(target["property"]), operand
