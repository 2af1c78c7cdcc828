"""Terrascope answers -> pages, merged streams and collection extents (pure).

A ``/products`` answer is a GeoJSON FeatureCollection with ``totalResults``, ``startIndex``
(1-based) and ``itemsPerPage`` (0 past the end) at the top level. ``/collections`` has the
same envelope, one feature per collection (``id`` the URN, ``bbox``, ``properties.date`` as
``start/`` or ``start/end``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.base import Hit
from mqs.ordering import field_value, normalise_instant


class FeedError(ValueError):
    """An answer that is not a Terrascope OpenSearch feature collection."""


@dataclass(frozen=True)
class Page:
    total: int | None
    start_index: int
    features: list[Any]


def _count(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def parse_page(body: Any) -> Page:
    """The envelope of one answer; :class:`FeedError` when it is not one."""
    if not isinstance(body, dict) or body.get("type") != "FeatureCollection":
        raise FeedError("answer is not a GeoJSON FeatureCollection")
    features = body.get("features")
    if not isinstance(features, list):
        raise FeedError("answer has no features list")
    start = _count(body.get("startIndex"))
    return Page(_count(body.get("totalResults")), start or 1, features)


@dataclass
class Stream:
    """One fetched page of one request stream, ready to merge."""

    start: int  # startIndex of the page's first feature
    entries: list[tuple[str | None, Hit | None]]  # (sort key, hit) per feature; None: unusable
    last: bool  # nothing after this page


def sort_key(hit: Hit, field: str = "datetime") -> str | None:
    """The instant a hit sorts by (``datetime``, ``created``) as the gateway compares it."""
    value = field_value(hit.item, field)
    return value if isinstance(value, str) else None


def _before(key: str | None, other: str | None, descending: bool) -> bool:
    """Whether ``key`` sorts strictly before ``other`` (missing keys last either way)."""
    if key is None or other is None:
        return key is not None and other is None
    return key > other if descending else key < other


def merge(
    streams: list[Stream | None], count: int, descending: bool = True
) -> tuple[list[Hit], list[int | None]]:
    """The first ``count`` hits of the streams merged by their sort keys, and where each
    resumes.

    Each stream is already in order. A stream that may continue past its page limits the
    merge: once its page is used up nothing else is taken (its next page could come first).
    A resume position is None when the stream is finished.
    """
    heads = [0] * len(streams)
    hits: list[Hit] = []
    while len(hits) < count:
        best: tuple[str | None, int] | None = None
        for j, stream in enumerate(streams):
            if stream is None:
                continue
            while heads[j] < len(stream.entries) and stream.entries[heads[j]][1] is None:
                heads[j] += 1  # unusable features are passed over where they stand
            if heads[j] == len(stream.entries):
                if not stream.last:
                    return hits, _positions(streams, heads)
                continue
            key = stream.entries[heads[j]][0]
            if best is None or _before(key, best[0], descending):
                best = (key, j)
        if best is None:
            break
        hit = streams[best[1]].entries[heads[best[1]]][1]  # type: ignore[union-attr]
        assert hit is not None
        hits.append(hit)
        heads[best[1]] += 1
    return hits, _positions(streams, heads)


def _positions(streams: list[Stream | None], heads: list[int]) -> list[int | None]:
    out: list[int | None] = []
    for stream, head in zip(streams, heads, strict=True):
        done = stream is None or (stream.last and head >= len(stream.entries))
        out.append(None if done or stream is None else stream.start + head)
    return out


def collection_extent(body: Any, urn: str) -> dict[str, Any] | None:
    """The STAC-shaped metadata of collection ``urn`` from a ``/collections`` answer."""
    page = parse_page(body)
    feature = next((f for f in page.features if isinstance(f, dict) and f.get("id") == urn), None)
    if feature is None:
        return None
    props: dict[str, Any] = feature.get("properties") or {}
    if not isinstance(props, dict):
        props = {}
    doc: dict[str, Any] = {"id": urn}
    if isinstance(props.get("title"), str):
        doc["title"] = props["title"]
    bbox = feature.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        return doc
    date = props.get("date")
    date = date if isinstance(date, str) else ""
    start, _, end = date.partition("/")
    interval = [normalise_instant(start), normalise_instant(end)]
    doc["extent"] = {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}}
    return doc


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
