"""One page of the k-way merge: each backend's stream, buffered in the merge order.

See :mod:`mqs.federation` for the order and why paging is exact. A stream is trusted only up to
the sort-key prefix its backend honours (:meth:`Stream.passed`); every hit's key prefix is
checked against the previous one, so a backend out of the order it claims fails for the search.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from adapters.base import Adapter, BackendError, BackendPage, Hit
from mqs.breaker import is_backend_fault
from mqs.config import BackendConfig
from mqs.filtering import Residual, residual_matches
from mqs.merge import merge_copies
from mqs.ordering import primary_key
from mqs.paging import Cursor
from mqs.query import SearchQuery

log = logging.getLogger("mqs.federation")

MAX_PAGES_PER_STREAM = 50
# A backend whose items the gateway filters is asked for pages this large: a selective filter
# would otherwise cost one round trip per few items.
FILTERED_PAGE_SIZE = 100
# Hits asked for past the page: the merge emits a key only once every stream has read past it,
# so a backend answering exactly ``limit`` hits (or ending its page inside a tie group, e.g. a
# Sentinel-2 datatake's tiles) would cost a second round trip per search.
LOOKAHEAD = 20


@dataclass
class Member:
    """A backend of the federation: its configuration and its adapter."""

    config: BackendConfig
    adapter: Adapter


@dataclass
class Entry:
    page: int
    offset: int
    key: tuple[Any, ...]
    hit: Hit
    consumed: bool = False


@dataclass
class Outcome:
    """What one backend did for one search (the per-backend report)."""

    status: str = "ok"
    items: int = 0
    requests: int = 0
    ms: float = 0.0
    detail: str | None = None
    fault: bool = False  # the failure is the backend's, not the query's (see mqs.breaker)


@dataclass
class Stream:
    member: Member
    query: SearchQuery
    cursor: Cursor
    entries: list[Entry] = field(default_factory=list)
    states: list[dict[str, Any] | None] = field(default_factory=list)
    next_state: dict[str, Any] | None = None
    done: bool = False
    matched: int | None = None
    outcome: Outcome = field(default_factory=Outcome)
    pos: int = 0  # entries before it are all consumed
    residual: Residual = field(default_factory=Residual)  # what the gateway evaluates itself
    prefix: int = 1  # how many leading sort keys the backend's order honours
    seen: tuple[Any, ...] | None = None  # the last hit's key prefix, in the backend's order
    admitted: bool = False  # its breaker let this search ask it

    def head(self) -> Entry | None:
        while self.pos < len(self.entries) and self.entries[self.pos].consumed:
            self.pos += 1
        return self.entries[self.pos] if self.pos < len(self.entries) else None

    def run_of(self, key: tuple[Any, ...]) -> list[Entry]:
        """The unconsumed entries with primary key ``key`` (a run at the front of the buffer)."""
        run = []
        for entry in self.entries[self.pos :]:
            if entry.key != key:
                break
            if not entry.consumed:
                run.append(entry)
        return run

    def passed(self, key: tuple[Any, ...]) -> bool:
        """Whether no later hit of this stream can sort before ``key``."""
        return self.done or (self.seen is not None and self.seen > key[: self.prefix])


def failure_kind(member: Member, exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    kind = getattr(exc, "kind", "error")
    log.warning("backend %s failed: %s", member.config.id, exc)
    return str(kind)


def failure_detail(member: Member, exc: Exception, budget: float) -> str:
    """The report's words for a failure (BackendError messages hold no secrets or URLs)."""
    if not isinstance(exc, TimeoutError):
        return str(exc)
    if budget < member.config.timeout_s:
        return f"backend {member.config.id!r}: no answer before the search deadline"
    return f"backend {member.config.id!r}: no answer within {member.config.timeout_s:g} s"


class Merger:
    """One page of the k-way merge (see the module docstring)."""

    def __init__(
        self,
        streams: list[Stream],
        query: SearchQuery,
        frontier: tuple[Any, ...] | None,
        deadline: float,
    ) -> None:
        self.streams = streams
        self.query = query
        self.frontier = frontier
        self.deadline = deadline  # event-loop time by which the page is answered
        self.paused = False  # a stream read MAX_PAGES_PER_STREAM pages: end the page early
        self.late = False  # the deadline passed: no more requests, end the page early

    async def run(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while len(out) < self.query.limit:
            # A page the gateway filtered down to nothing is not the end: fetch on until each
            # stream has a head or is exhausted.
            while not self.paused and (
                empty := [s for s in self.streams if s.head() is None and not s.done]
            ):
                await self._refill(empty)
            key = await self._least_key()
            if key is None:
                break
            self._emit_group(key, out)
        return out

    async def _least_key(self) -> tuple[Any, ...] | None:
        """The least key of the buffered hits once every stream has read past it.

        A backend that sorts by fewer keys than the search asks returns hits equal on its keys
        in any order: reading on can bring a smaller key, so the least is taken again after
        every read. None when nothing is left or the page ends early.
        """
        while not self.paused:
            heads = [e for s in self.streams if (e := s.head()) is not None]
            if not heads:
                return None
            key = min(e.key for e in heads)
            pending = [s for s in self.streams if not s.passed(key)]
            if not pending:
                return key
            await self._refill(pending)
        return None

    def _emit_group(self, key: tuple[Any, ...], out: list[dict[str, Any]]) -> None:
        group = [
            (e.hit.product_id, -s.member.config.priority, s.member.config.id, e, s)
            for s in self.streams
            if s.head() is not None
            for e in s.run_of(key)
        ]
        group.sort(key=lambda g: g[:3])
        for product_id, copies in groupby(group, key=lambda g: g[0]):
            if len(out) >= self.query.limit:
                return
            merged: list[tuple[BackendConfig, dict[str, Any]]] = []
            for *_, entry, stream in copies:
                entry.consumed = True
                if not merged or merged[-1][0] is not stream.member.config:
                    stream.outcome.items += 1
                    merged.append((stream.member.config, entry.hit.item))
            out.append(merge_copies(product_id, merged))

    async def _refill(self, streams: list[Stream]) -> None:
        if streams:
            await asyncio.gather(*(self._fetch(s) for s in streams))

    async def _fetch(self, stream: Stream) -> None:
        """Fetch the stream's next page (or the page its cursor names) into its buffer."""
        first = not stream.states
        state = stream.cursor.state if first else stream.next_state
        self.late = asyncio.get_running_loop().time() >= self.deadline
        if self.late or len(stream.states) >= MAX_PAGES_PER_STREAM:
            # This request has read enough: the page ends here and its token resumes the scan.
            self.paused = True
            return
        page = await self._call(stream, state)
        if page is None:
            return
        if page.next_state is not None and page.next_state == state:
            self._fail(stream, "error", "the backend answers the same page again")
            return
        stream.states.append(state)
        stream.next_state = page.next_state
        stream.done = page.next_state is None
        if page.matched is not None:
            stream.matched = page.matched
        skip = stream.cursor.offset if first else 0
        self._buffer(stream, page, len(stream.states) - 1, skip)

    def _buffer(self, stream: Stream, page: BackendPage, page_no: int, skip: int) -> None:
        """Keep the page's wanted hits, in the merge order; check the backend's order."""
        fresh = []
        sortby = self.query.sortby
        by_id = any(s.field == "id" for s in sortby)
        for offset, hit in enumerate(page.hits):
            item = {**hit.item, "id": hit.product_id} if by_id else hit.item
            key = primary_key(item, sortby)
            head = key[: stream.prefix]
            if stream.seen is not None and head < stream.seen:
                shown = ",".join(f"{s.field} {s.direction}" for s in sortby[: stream.prefix])
                self._fail(stream, "error", f"the backend's items are not sorted by {shown}")
                stream.entries.clear()
                return
            stream.seen = head
            if offset < skip or not residual_matches(hit, self.query, stream.residual):
                continue
            if self.frontier is not None and (key, hit.product_id) <= self.frontier:
                continue
            fresh.append(Entry(page_no, offset, key, hit))
        # Hits equal on the keys the backend sorts by may come in any order, across pages.
        waiting = [e for e in stream.entries[stream.pos :] if not e.consumed]
        stream.entries = sorted(waiting + fresh, key=lambda e: e.key)
        stream.pos = 0

    async def _call(self, stream: Stream, state: dict[str, Any] | None) -> BackendPage | None:
        member = stream.member
        started = time.perf_counter()
        stream.outcome.requests += 1
        # Never past the search's deadline, even for a later page inside the merge.
        budget = min(member.config.timeout_s, self.deadline - asyncio.get_running_loop().time())
        try:
            async with asyncio.timeout(budget):
                return await member.adapter.search(stream.query, state, self._page_size(stream))
        except (BackendError, TimeoutError) as exc:
            detail = failure_detail(member, exc, budget)
            self._fail(stream, failure_kind(member, exc), detail, is_backend_fault(exc))
        except Exception:
            log.exception("adapter %s crashed", member.config.id)
            self._fail(stream, "error", "adapter error")
        finally:
            stream.outcome.ms += (time.perf_counter() - started) * 1000
        return None

    def _page_size(self, stream: Stream) -> int:
        """What to ask a backend for: the page and a look-ahead (see ``LOOKAHEAD``), or more
        when the gateway filters its items."""
        limit = self.query.limit
        if stream.residual:
            return max(limit, FILTERED_PAGE_SIZE)
        return limit + min(max(limit // 2, 1), LOOKAHEAD)

    @staticmethod
    def _fail(stream: Stream, status: str, detail: str, fault: bool = True) -> None:
        stream.done = True
        stream.outcome.status = status
        stream.outcome.detail = detail
        stream.outcome.fault = fault
