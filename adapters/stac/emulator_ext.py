"""The Sort and Filter extensions as the STAC API emulator evaluates them (no gateway code).

They behave like stac-fastapi over pgstac: ``sortby`` on any item field (``id``,
``collection``, ``properties.x`` or ``x``), several keys, the search's order completed by the
item id; ``filter`` in CQL2 JSON (POST: ``filter-lang`` ``cql2-json`` only) or, on GET, CQL2
text (the default ``filter-lang``) or CQL2 JSON text, evaluated on the stored items; ``query``
and ``filter`` together are refused, as pgstac refuses them.

Where this emulator is stricter than pgstac, it says so: missing values sort last in either
direction (Elasticsearch's ``missing: _last``, stac-server's order; PostgreSQL puts NULLs first
in a descending sort), and the STAC date fields compare as instants at millisecond precision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import total_ordering
from typing import Any

import cql2
import orjson

from mqs import cqlcheck
from mqs.errors import InvalidRequest

DATE_FIELDS = frozenset({"datetime", "start_datetime", "end_datetime", "created", "updated"})
DEFAULT_SORT: list[tuple[str, bool]] = [("datetime", True)]  # (field, descending)
MAX_SORT_KEYS = 10

FILTER_CONFORMANCE = (
    "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/array-functions",
)
SORT_CONFORMANCE = ("https://api.stacspec.org/v1.0.0/item-search#sort",)


class FilterError(ValueError):
    """A filter the server cannot parse or evaluate: a 400."""


# --- Sort ----------------------------------------------------------------------------------
def parse_sortby(value: Any) -> list[tuple[str, bool]]:
    """GET ``-a,+b,c`` or POST ``[{"field", "direction"}]`` -> [(field, descending)]."""
    if value in (None, "", []):
        return list(DEFAULT_SORT)
    if isinstance(value, str):
        pairs = [(t.strip().lstrip("+-"), t.strip().startswith("-")) for t in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
        pairs = [(str(v.get("field", "")), _descending(v.get("direction"))) for v in value]
    else:
        raise ValueError("sortby must be '-a,+b' or a list of {field, direction}")
    if not pairs or len(pairs) > MAX_SORT_KEYS or not all(field for field, _ in pairs):
        raise ValueError(f"sortby takes 1 to {MAX_SORT_KEYS} non-empty fields")
    return [(field.removeprefix("properties."), desc) for field, desc in pairs]


def _descending(direction: Any) -> bool:
    text = str(direction or "asc").lower()
    if text not in ("asc", "desc"):
        raise ValueError(f"unknown sort direction {text[:10]!r}")
    return text == "desc"


def field_value(item: dict[str, Any], field: str) -> Any:
    """What an item sorts by: ``id``/``collection``, else a property (dates as instants)."""
    if field in ("id", "collection"):
        return item.get(field)
    props = item.get("properties") or {}
    value = props.get(field)
    if field == "datetime" and value is None:
        value = props.get("start_datetime")  # pgstac's datetime column
    return _instant_ms(value) if field in DATE_FIELDS else value


def _instant_ms(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def _ranked(value: Any) -> tuple[int, Any]:
    """Values of any JSON type in one order (jsonb's: string, number, boolean, array, object)."""
    if isinstance(value, str):
        return (0, value)
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (1, value)
    return (3 if isinstance(value, list) else 4, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


@total_ordering
class _Reversed:
    __slots__ = ("value",)

    def __init__(self, value: tuple[int, Any]) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value

    def __lt__(self, other: _Reversed) -> bool:
        return self.value > other.value

    def __hash__(self) -> int:
        return hash(self.value)


def sort_key(item: dict[str, Any], sortby: list[tuple[str, bool]]) -> tuple[Any, ...]:
    """The item's place in the search's order: missing values last, then the item id."""
    key: list[Any] = []
    for field, desc in sortby:
        value = field_value(item, field)
        if value is None:
            key.append((1, None))
        else:
            ranked = _ranked(value)
            key.append((0, _Reversed(ranked) if desc else ranked))
    key.append(str(item.get("id")))
    return tuple(key)


# --- Filter --------------------------------------------------------------------------------
def parse_filter(raw: dict[str, Any], post: bool) -> cql2.Expr | None:
    """The search's ``filter`` (with ``filter-lang``) as a validated expression, or None."""
    value = raw.get("filter")
    if value in (None, "", {}):
        return None
    text, is_json = _filter_text(value, raw.get("filter-lang"), post)
    try:
        parsed = cql2.parse_json(text) if is_json else cql2.parse_text(text)
        expr = cql2.Expr(_unprefixed(parsed.to_json()))
        # the standard's operand rules without cql2's schema validator (mqs.cqlcheck: that
        # validator costs ~130 MiB per process, and far more on some small invalid filters)
        cqlcheck.check(expr.to_json())
    except InvalidRequest as exc:
        raise FilterError(str(exc)[:200]) from None
    except Exception as exc:  # cql2 raises a bare Exception for JSON that is no expression
        raise FilterError(f"invalid filter: {' '.join(str(exc).split())[:200]}") from None
    return expr


def _filter_text(value: Any, lang: Any, post: bool) -> tuple[str, bool]:
    """(the filter as text, whether it is CQL2 JSON): POST takes JSON, GET text or JSON text."""
    if post:
        if lang not in (None, "cql2-json"):
            raise FilterError(f"filter-lang {str(lang)[:20]!r} is not supported: use cql2-json")
        if not isinstance(value, dict):
            raise FilterError("filter must be a CQL2 JSON object")
        return orjson.dumps(value).decode(), True
    if lang not in (None, "cql2-text", "cql2-json"):
        raise FilterError(f"filter-lang {str(lang)[:20]!r} is not supported")
    return str(value), lang == "cql2-json"


def _unprefixed(node: Any) -> Any:
    """``properties.x`` -> ``x``, as pgstac reads property paths."""
    if isinstance(node, list):
        return [_unprefixed(n) for n in node]
    if isinstance(node, dict):
        if set(node) == {"property"} and isinstance(node["property"], str):
            return {"property": node["property"].removeprefix("properties.")}
        return {k: _unprefixed(v) for k, v in node.items()}
    return node


def matches(expr: cql2.Expr, item: dict[str, Any]) -> bool:
    """SQL's three-valued logic: an expression that stays unknown (a missing property) fails."""
    try:
        return bool(expr.matches(item))
    except Exception:  # cql2 raises a bare Exception when it cannot reduce the expression
        return False
