"""Merge order: sort keys that compare the same way for every backend's items."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache, total_ordering
from typing import Any

from mqs.query import SortField

DATETIME_FIELDS = frozenset({"datetime", "start_datetime", "end_datetime", "created", "updated"})


@total_ordering
class Desc:
    """Wraps a value so that it sorts in reverse."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Desc) and self.value == other.value

    def __lt__(self, other: Desc) -> bool:
        return bool(self.value > other.value)

    def __hash__(self) -> int:
        return hash(self.value)


def normalise_instant(value: Any) -> str | None:
    """An ISO instant as a fixed-width UTC string with milliseconds, so strings compare as time."""
    if not isinstance(value, str) or not value:
        return None
    return _normalised(value)


@lru_cache(maxsize=65536)  # every hit's sort key needs it, often several times per search
def _normalised(value: str) -> str | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (
        parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"
    )


def field_value(item: dict[str, Any], name: str) -> Any:
    """The value an item sorts by for a field (``id``, ``collection`` or a property)."""
    if name in ("id", "collection"):
        return item.get(name)
    props = item.get("properties") or {}
    value = props.get(name)
    if name == "datetime" and value is None:
        value = props.get("start_datetime")
    if name in DATETIME_FIELDS:
        return normalise_instant(value)
    return value


def primary_key(item: dict[str, Any], sortby: tuple[SortField, ...]) -> tuple[Any, ...]:
    """The key a backend sorts by: missing values last in either direction."""
    key: list[Any] = []
    for sort in sortby:
        value = field_value(item, sort.field)
        missing = value is None
        if not missing and sort.direction == "desc":
            value = Desc(value)
        key.append((missing, value if not missing else 0))
    return tuple(key)


def raw_values(item: dict[str, Any], sortby: tuple[SortField, ...]) -> list[Any]:
    """The primary key's plain JSON values (for paging tokens)."""
    return [field_value(item, s.field) for s in sortby]


def key_from_values(values: list[Any], sortby: tuple[SortField, ...]) -> tuple[Any, ...]:
    """Rebuild a primary key from :func:`raw_values`."""
    fake: dict[str, Any] = {"properties": {}}
    for sort, value in zip(sortby, values, strict=True):
        if sort.field in ("id", "collection"):
            fake[sort.field] = value
        else:
            fake["properties"][sort.field] = value
    return primary_key(fake, sortby)


def backend_sort(sortby: tuple[SortField, ...], fields: dict[str, str]) -> list[tuple[str, str]]:
    """The leading sort keys a backend knows, as (its field name, direction).

    Keys after the first one the backend cannot sort by are dropped: the gateway's merge
    still orders ties itself, but a backend can only be trusted up to its first unknown key.
    """
    keys = []
    for sort in sortby:
        if sort.field not in fields:
            break
        keys.append((fields[sort.field], sort.direction))
    return keys
