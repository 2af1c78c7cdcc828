"""One sorted stream out of several resto request streams, with a stateless cursor (pure).

A search spanning several sources (e.g. ``Sentinel1/GRD`` and ``Sentinel2/S2MSI2A``) asks each
for the page its cursor names and merges their pages by the instant they are sorted by
(``startDate``, or ``published``) into one stream. An item is emitted only while every source
that has more pages still has a fetched record left, so the merged order is exact. The state
the gateway keeps is ``{"n": page size, "c": {source key: [page, records of that page already
emitted]}}``; a source missing from ``c`` is exhausted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.base import PageState
from adapters.resto.collections import Source
from adapters.resto.mapping import Record, record_moment

Cursor = tuple[int, int]  # (1-based page number, records of it already emitted)
MAX_PAGE = 1_000_000


@dataclass
class Fetched:
    """One source's page as the backend answered it."""

    source: Source
    cursor: Cursor
    records: list[Record]
    more: bool  # another page follows


def initial_state(sources: list[Source], size: int) -> PageState:
    return {"n": size, "c": {s.key: [1, 0] for s in sources}}


def read_state(
    state: PageState, sources: list[Source], max_size: int
) -> tuple[int, dict[Source, Cursor]]:
    """(page size, cursor of each source still open); ValueError for a state not ours."""
    size, cursors = state.get("n"), state.get("c")
    if not isinstance(size, int) or not 1 <= size <= max_size or not isinstance(cursors, dict):
        raise ValueError("malformed resto page state")
    by_key = {s.key: s for s in sources}
    out: dict[Source, Cursor] = {}
    for key, value in cursors.items():
        ok = isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)
        if key not in by_key or not ok or not (1 <= value[0] <= MAX_PAGE and 0 <= value[1] < size):
            raise ValueError("malformed resto page state")
        out[by_key[key]] = (value[0], value[1])
    return size, out


def _head(buffer: list[tuple[datetime | None, Record]], consumed: list[int]) -> None:
    """Drop leading records without a sensing start: they cannot be placed, so never emitted."""
    while buffer and buffer[0][0] is None:
        buffer.pop(0)
        consumed[0] += 1


def _best(
    buffers: dict[Source, list[tuple[datetime | None, Record]]], descending: bool
) -> Source | None:
    """The source whose head sorts first (the first such source on ties)."""
    best: tuple[datetime, Source] | None = None
    for source, buffer in buffers.items():
        moment = buffer[0][0] if buffer else None
        if moment is None:
            continue
        if best is None or (moment > best[0] if descending else moment < best[0]):
            best = (moment, source)
    return best[1] if best else None


def merge(
    fetched: list[Fetched], size: int, descending: bool, sort_param: str = "startDate"
) -> tuple[list[tuple[Source, Record]], PageState | None]:
    """Up to ``size`` records in merged order (by ``sort_param``, the instant resto sorted
    by), and the state of the rest (None: no more)."""
    buffers = {
        f.source: [(record_moment(r, sort_param), r) for r in f.records[f.cursor[1] :]]
        for f in fetched
    }
    consumed = {f.source: [0] for f in fetched}
    more = {f.source: f.more for f in fetched}
    out: list[tuple[Source, Record]] = []
    while len(out) < size:
        for source, buffer in buffers.items():
            _head(buffer, consumed[source])
        if any(not buffer and more[s] for s, buffer in buffers.items()):
            break  # a source's next page may hold records that sort before any we hold
        pick = _best(buffers, descending)
        if pick is None:
            break
        out.append((pick, buffers[pick].pop(0)[1]))
        consumed[pick][0] += 1
    return out, _next_state(fetched, consumed, size)


def _next_state(
    fetched: list[Fetched], consumed: dict[Source, list[int]], size: int
) -> PageState | None:
    cursors: dict[str, Any] = {}
    for f in fetched:
        page, skip = f.cursor
        emitted = skip + consumed[f.source][0]
        if emitted < len(f.records):
            cursors[f.source.key] = [page, emitted]
        elif f.more:
            cursors[f.source.key] = [page + 1, 0]
    return {"n": size, "c": cursors} if cursors else None
