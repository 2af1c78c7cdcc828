"""resto ``search.json`` answers -> pages of product records (pure).

The envelope is a GeoJSON FeatureCollection whose ``properties`` carry ``totalResults`` (null
unless ``exactCount=1`` was asked for: the count is exact only then), ``exactCount`` (``1``/``0``
on CDSE, ``true`` on older servers), ``startIndex``, ``itemsPerPage`` and ``links`` (``next``
while a full page was returned). Records are the features: ``properties.title`` the product
name, ``startDate``/``completionDate`` with 3 or 6 fraction digits, ``geometry`` a GeoJSON
geometry, ``[]`` (CDSE before July 2024) or ``null`` when the product has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Record = dict[str, Any]


class AnswerError(ValueError):
    """The backend answered something that is not a resto search result."""


@dataclass(frozen=True)
class Answer:
    records: list[Record]  # the features, in the backend's order
    total: int | None  # exact number of matches, when the backend counted
    next_link: bool | None  # whether it links a next page (None: it gives no links)


def parse_instant(value: Any) -> datetime | None:
    """``2023-04-20T12:26:59.025000Z`` / ``...59.025Z`` / ``+00:00`` -> an aware UTC datetime."""
    if not isinstance(value, str) or not value[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _error_text(body: dict[str, Any]) -> str | None:
    """resto's error body ``{"ErrorMessage": ..., "ErrorCode": ...}`` (or ``detail``)."""
    message = body.get("ErrorMessage") or body.get("detail") or body.get("message")
    return str(message)[:300] if message else None


def parse_answer(body: Any) -> Answer:
    if not isinstance(body, dict):
        raise AnswerError("not a resto answer")
    if body.get("type") != "FeatureCollection" or not isinstance(body.get("features"), list):
        raise AnswerError(_error_text(body) or "not a resto FeatureCollection")
    meta = as_dict(body.get("properties"))
    total = meta.get("totalResults")
    counted = meta.get("exactCount") in (1, True)
    exact = counted and isinstance(total, int) and not isinstance(total, bool) and total >= 0
    links = meta.get("links")
    next_link = None
    if isinstance(links, list):
        next_link = any(isinstance(x, dict) and x.get("rel") == "next" for x in links)
    records = [f for f in body["features"] if isinstance(f, dict)]
    return Answer(records, total if exact else None, next_link)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def record_properties(record: Record) -> dict[str, Any]:
    return as_dict(record.get("properties"))


def record_start(record: Record) -> datetime | None:
    """The sensing start resto sorts by."""
    return record_moment(record, "startDate")


def record_moment(record: Record, name: str) -> datetime | None:
    """An instant property of a record (``startDate``, ``published``: what resto sorts by)."""
    return parse_instant(record_properties(record).get(name))


def has_more(answer: Answer, page: int, size: int) -> bool:
    """Whether another page follows: a full page, a ``next`` link when links are given, and
    fewer matches before it than the exact count when there is one."""
    if len(answer.records) < size or answer.next_link is False:
        return False
    return answer.total is None or page * size < answer.total
