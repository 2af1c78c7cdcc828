"""Which CQL2 clauses a STAC API with the Filter extension evaluates exactly as the gateway does.

A STAC backend stores the same item properties under the same names as the gateway sees them,
so a clause made of comparisons, ``LIKE``, ``BETWEEN``, ``IN``, ``IS NULL``, array operators
and ``AND``/``OR``/``NOT`` over such properties means the same on both sides. Kept local:

* ``collection``: the backend's collection names differ (the gateway routes by collection);
* ``id`` when ``product_id_property`` is set: the backend's ids are not the product names;
* ``datetime``, ``start_datetime``, ``end_datetime``: pgstac reads ``datetime`` as the start
  of an interval item (the gateway's CQL2 sees null), and lifted time clauses already narrow
  the search's ``datetime``;
* ``geometry`` and spatial/temporal operators (a backend's geometry engine may decide boundary
  cases differently) and ``CASEI``/``ACCENTI`` (Unicode folding differs between databases).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mqs.cql import Clause, and_of, split

OPERATORS = frozenset(
    {"and", "or", "not", "=", "<>", "<", "<=", ">", ">=", "like", "between", "in", "isNull"}
    | {"a_equals", "a_contains", "a_containedBy", "a_overlaps"}
)
LOCAL_PROPERTIES = frozenset(
    {"collection", "geometry", "datetime", "start_datetime", "end_datetime"}
)
_LITERAL_KEYS = (frozenset({"timestamp"}), frozenset({"date"}))


def pushable_for(id_property: str | None) -> Callable[[Clause], bool]:
    """The ``Capabilities.filter`` predicate of a backend (``id`` local when it is renamed)."""
    local = LOCAL_PROPERTIES | {"id"} if id_property else LOCAL_PROPERTIES

    def pushable(clause: Clause) -> bool:
        return _exact(clause, local)

    return pushable


def _exact(node: Any, local: frozenset[str]) -> bool:
    if isinstance(node, list):
        return all(_exact(n, local) for n in node)
    if not isinstance(node, dict):
        return isinstance(node, str | int | float | bool)
    if "op" in node:
        args = node.get("args")
        return node["op"] in OPERATORS and isinstance(args, list) and _exact(args, local)
    if set(node) == {"property"}:
        return isinstance(node["property"], str) and node["property"] not in local
    return frozenset(node) in _LITERAL_KEYS and isinstance(next(iter(node.values())), str)


def pushed_filter(query_filter: Clause | None, id_property: str | None) -> Clause | None:
    """The AND of the clauses of ``query_filter`` the backend evaluates, or None."""
    pushed, _ = split(query_filter, pushable_for(id_property))
    return and_of(pushed) if pushed else None
