"""Collection search: ``GET /collections`` with ``q``, ``bbox``, ``datetime``, ``limit``, ``token``.

The STAC API Collection Search extension (with basic free-text search) over the federation's
canonical collections. A collection matches when every given criterion holds:

- ``q``: comma-separated terms, any of which (case-insensitively) occurs in the collection's
  id, title, description or keywords (the free-text extension's basic form: terms are OR'd);
- ``bbox``: its spatial extent intersects the box (antimeridian boxes: west > east);
- ``datetime``: its temporal interval overlaps the instant or interval (open ends open).

Pages hold ``limit`` collections (default 100, at most ``server.max_limit``) in configuration
order; ``next`` carries the offset of the following page as ``token``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import attr
from fastapi import Query
from stac_fastapi.types.search import APIRequest

from mqs.errors import InvalidRequest
from mqs.links import JSON
from mqs.literals import bbox_geometry, parse_instant
from mqs.query import Interval, parse_bbox, parse_datetime, parse_limit

COLLECTION_SEARCH_CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search",
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search#free-text",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/simple-query",
]
DEFAULT_LIMIT = 100
MAX_TERMS = 20
MAX_TERM_LENGTH = 200


@attr.s
class CollectionSearchGetRequest(APIRequest):
    """The parameters of ``GET /collections`` (for the OpenAPI document; parsed below)."""

    q: Annotated[
        str | None,
        Query(description="Free text: comma-separated terms, any may match (title, keywords...)"),
    ] = attr.ib(default=None)
    bbox: Annotated[
        str | None,
        Query(description="Collections whose spatial extent intersects west,south,east,north"),
    ] = attr.ib(default=None)
    datetime: Annotated[
        str | None,
        Query(description="Collections whose temporal extent overlaps this RFC 3339 interval"),
    ] = attr.ib(default=None)
    limit: Annotated[int | None, Query(description="Collections per page (default 100)", ge=1)] = (
        attr.ib(default=None)
    )
    token: Annotated[str | None, Query(description="Continues a listing (from a next link)")] = (
        attr.ib(default=None)
    )


@dataclass(frozen=True)
class CollectionQuery:
    """A validated collection search."""

    terms: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    interval: Interval | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _terms(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    terms = tuple(dict.fromkeys(t for part in text.split(",") if (t := part.strip().casefold())))
    if len(terms) > MAX_TERMS or any(len(t) > MAX_TERM_LENGTH for t in terms):
        raise InvalidRequest(
            f"invalid q: at most {MAX_TERMS} terms of at most {MAX_TERM_LENGTH} characters"
        )
    return terms


def _offset(token: str | None) -> int:
    if token is None or token == "":
        return 0
    if not (token.isascii() and token.isdigit()) or len(token) > 9:
        raise InvalidRequest("invalid paging token")
    return int(token)


def parse_collection_query(params: dict[str, str], max_limit: int) -> CollectionQuery:
    """The query string of ``GET /collections`` -> a validated query (400 on bad input)."""
    return CollectionQuery(
        terms=_terms(params.get("q")),
        bbox=parse_bbox(params.get("bbox")),
        interval=parse_datetime(params.get("datetime")),
        limit=parse_limit(params.get("limit"), min(DEFAULT_LIMIT, max_limit), max_limit),
        offset=_offset(params.get("token")),
    )


def _text_matches(doc: dict[str, Any], terms: tuple[str, ...]) -> bool:
    keywords = doc.get("keywords") or []
    fields = [doc.get("id"), doc.get("title"), doc.get("description"), *keywords]
    text = "\n".join(str(f) for f in fields if f).casefold()
    return any(term in text for term in terms)


def _bbox_matches(doc: dict[str, Any], bbox: tuple[float, float, float, float]) -> bool:
    area = bbox_geometry(bbox)
    for box in doc["extent"]["spatial"]["bbox"]:
        west, south, east, north = box[:4] if len(box) == 4 else (box[0], box[1], box[3], box[4])
        if area.intersects(bbox_geometry((west, south, east, north))):
            return True
    return False


def _instant(text: str | None) -> datetime | None:
    return None if text in (None, "", "..") else parse_instant(str(text))


def _interval_matches(doc: dict[str, Any], interval: Interval) -> bool:
    start, end = interval
    for first, last in doc["extent"]["temporal"]["interval"]:
        begins, ends = _instant(first), _instant(last)
        if (end is None or begins is None or begins <= end) and (
            start is None or ends is None or start <= ends
        ):
            return True
    return False


def matches(doc: dict[str, Any], query: CollectionQuery) -> bool:
    """Whether a collection document meets every criterion of ``query`` (pure)."""
    if query.terms and not _text_matches(doc, query.terms):
        return False
    if query.bbox is not None and not _bbox_matches(doc, query.bbox):
        return False
    return query.interval is None or _interval_matches(doc, query.interval)


def page(
    docs: list[dict[str, Any]], query: CollectionQuery
) -> tuple[list[dict[str, Any]], int, int | None]:
    """(this page's collections, how many matched, the next page's offset or None)."""
    found = [doc for doc in docs if matches(doc, query)]
    end = query.offset + query.limit
    return found[query.offset : end], len(found), end if end < len(found) else None


def listing_links(base: str, params: list[tuple[str, str]], next_offset: int | None) -> list[Any]:
    """``self`` (with the search's parameters), ``root``, ``parent`` and ``next`` if any."""
    url = f"{base}collections"
    kept = [(k, v) for k, v in params if k != "token"]
    self_params = [*kept, *[(k, v) for k, v in params if k == "token"]]
    links = [
        {"rel": "self", "href": f"{url}?{urlencode(self_params)}" if params else url, "type": JSON},
        {"rel": "root", "href": base, "type": JSON},
        {"rel": "parent", "href": base, "type": JSON},
    ]
    if next_offset is not None:
        href = f"{url}?{urlencode([*kept, ('token', str(next_offset))])}"
        links.append({"rel": "next", "href": href, "type": JSON, "method": "GET"})
    return links
