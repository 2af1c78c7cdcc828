"""Fan-out, k-way merge and de-duplication over the backends that serve a search.

Each backend is a stream sorted by the search's primary sort key. Items whose primary keys are
equal (a tie group: e.g. all tiles of one datatake share a sensing time) are gathered from
every stream before any of them is returned and ordered by product id, so the merged order is
total: (primary key, product id). Copies of one product have the same key and are therefore
merged together, and a paging token only needs that key to know what was returned already.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from itertools import groupby
from typing import Any

from adapters.base import Adapter, BackendError, BackendPage, Hit
from mqs.breaker import Breakers, is_backend_fault
from mqs.config import BackendConfig, BreakerConfig
from mqs.errors import InvalidRequest
from mqs.filtering import Residual, residual_matches, residual_parts
from mqs.merge import merge_copies
from mqs.ordering import key_from_values, primary_key, raw_values
from mqs.paging import Cursor, Position
from mqs.query import SearchQuery

log = logging.getLogger("mqs.federation")

MAX_PAGES_PER_STREAM = 50
# A backend whose items the gateway filters is asked for pages this large: a selective filter
# would otherwise cost one round trip per few items.
FILTERED_PAGE_SIZE = 100


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


@dataclass
class SearchResult:
    items: list[dict[str, Any]]
    next_position: Position | None
    matched: int | None
    outcomes: dict[str, Outcome]


class Federation:
    """Runs one search page over the members serving its collections."""

    def __init__(
        self,
        members: list[Member],
        routing: dict[str, list[BackendConfig]],
        deadline_s: float = 20.0,
        breakers: Breakers | None = None,
    ) -> None:
        self.members = {m.config.id: m for m in members}
        self.routing = routing
        self.deadline_s = deadline_s  # a search answers by then with what it has
        configs = [m.config for m in members]
        self.breakers = breakers or Breakers.for_backends(configs, BreakerConfig())

    def members_for(self, collections: tuple[str, ...]) -> list[tuple[Member, tuple[str, ...]]]:
        """Each member serving any of ``collections`` (all when empty) and which ones it serves."""
        wanted = collections or tuple(self.routing)
        served: dict[str, list[str]] = {}
        for cid in wanted:
            for backend in self.routing[cid]:
                served.setdefault(backend.id, []).append(cid)
        return [(self.members[bid], tuple(cids)) for bid, cids in served.items()]

    async def search(self, query: SearchQuery, position: Position | None) -> SearchResult:
        streams = self._open_streams(query, position)
        frontier = self._frontier(query, position)
        deadline = asyncio.get_running_loop().time() + self.deadline_s
        merger = _Merger(streams, query, frontier, deadline)
        items = await merger.run()
        next_position = _next_position(streams, query, items, position)
        stalled = merger.paused and not items
        if stalled and _stalled(streams, position, next_position, merger.late):
            next_position = _next_position(streams, query, items, position)
        self._settle(streams)
        return SearchResult(
            items=items,
            next_position=next_position,
            matched=_exact_matched(streams, position),
            outcomes={s.member.config.id: s.outcome for s in streams},
        )

    def _open_streams(self, query: SearchQuery, position: Position | None) -> list[Stream]:
        streams = []
        members = self.members_for(query.collections)
        _check_sortable(query, [m for m, _ in members])
        for member, cids in members:
            cursor = Cursor(state=None)
            if position is not None:
                cursor = position.cursors.get(member.config.id, Cursor(None, done=True))
            pushdown = member.config.filter_pushdown
            backend_query = replace(
                query, collections=cids, filter=query.filter if pushdown else None
            )
            residual = residual_parts(query, member.adapter, pushdown)
            stream = Stream(member, backend_query, cursor, done=cursor.done, residual=residual)
            stream.prefix = member.adapter.capabilities.sorted_prefix(query.sortby)
            if cursor.failed:
                stream.outcome = Outcome(
                    status=cursor.failed, detail="failed earlier in this search"
                )
            elif not stream.done:
                self._admit(stream)
            streams.append(stream)
        return streams

    def _admit(self, stream: Stream) -> None:
        """Ask the backend's breaker; an open one skips the backend for the whole search."""
        breaker = self.breakers[stream.member.config.id]
        if breaker.allow():
            stream.admitted = True
        else:
            stream.done = True
            stream.outcome = Outcome(status="skipped", detail=breaker.why_skipped())

    def _settle(self, streams: list[Stream]) -> None:
        """Each backend this search asked tells its breaker how that went."""
        for stream in streams:
            if not stream.admitted:
                continue
            breaker, outcome = self.breakers[stream.member.config.id], stream.outcome
            if outcome.requests == 0:
                breaker.release()
            else:
                breaker.record(outcome.status, outcome.fault)

    @staticmethod
    def _frontier(query: SearchQuery, position: Position | None) -> tuple[Any, ...] | None:
        if position is None or position.frontier is None:
            return None
        return (key_from_values(position.frontier, query.sortby), position.last_id)

    async def get_item(
        self, collection: str, product_id: str
    ) -> tuple[dict[str, Any] | None, dict[str, Outcome]]:
        """The merged item of one product from every backend serving ``collection``."""
        members = [m for m, _ in self.members_for((collection,))]
        results = await asyncio.gather(*(self._get_one(m, collection, product_id) for m in members))
        copies = [(m.config, hit.item) for m, (hit, _) in zip(members, results, strict=True) if hit]
        outcomes = {m.config.id: o for m, (_, o) in zip(members, results, strict=True)}
        if not copies:
            return None, outcomes
        copies.sort(key=lambda c: (-c[0].priority, c[0].id))
        return merge_copies(product_id, copies), outcomes

    async def _get_one(
        self, member: Member, collection: str, product_id: str
    ) -> tuple[Hit | None, Outcome]:
        breaker = self.breakers[member.config.id]
        if not breaker.allow():
            return None, Outcome(status="skipped", detail=breaker.why_skipped())
        outcome = Outcome(requests=1)
        hit: Hit | None = None
        started = time.perf_counter()
        budget = min(member.config.timeout_s, self.deadline_s)
        try:
            async with asyncio.timeout(budget):
                hit = await member.adapter.get_item(collection, product_id)
        except (BackendError, TimeoutError) as exc:
            outcome.status, outcome.detail = _failure(member, exc), _detail(member, exc, budget)
            outcome.fault = is_backend_fault(exc)
        outcome.ms = (time.perf_counter() - started) * 1000
        outcome.items = int(hit is not None)
        breaker.record(outcome.status, outcome.fault)
        return hit, outcome


def _stalled(
    streams: list[Stream], previous: Position | None, following: Position | None, late: bool
) -> bool:
    """A page that read its budget without moving any cursor would repeat forever.

    That happens when a backend sorts by fewer keys than asked and one run of equal leading
    keys spans more pages than a request may read (or than the search deadline allows): the
    streams still inside it fail. A backend that failed on this page is progress already.
    """
    if following is None or any(s.outcome.status != "ok" and not s.cursor.failed for s in streams):
        return False
    start = previous.cursors if previous is not None else {}
    stuck = [
        s
        for s in streams
        if not s.done
        and following.cursors.get(s.member.config.id) == start.get(s.member.config.id, Cursor(None))
    ]
    if len(stuck) < len([s for s in streams if not s.done]):
        return False
    limit = "the search deadline" if late else f"{MAX_PAGES_PER_STREAM} pages"
    for stream in stuck:
        status = "timeout" if late else "error"
        _Merger._fail(stream, status, f"cannot order this search within {limit}", fault=False)
    return True


def _check_sortable(query: SearchQuery, members: list[Member]) -> None:
    """A 400 when a backend of the search cannot order by the first sort key."""
    first = query.sortby[0]
    unable = [m for m in members if m.adapter.capabilities.sorted_prefix(query.sortby) == 0]
    if not unable:
        return
    names = ", ".join(repr(m.config.id) for m in unable)
    limited = [m.adapter.capabilities.sortable for m in members]
    known = [set(fields) for fields in limited if fields is not None]  # None: any field
    common = set.intersection(*known) if known else set()
    hint = f"; every backend here sorts by: {', '.join(sorted(common))}" if common else ""
    raise InvalidRequest(
        f"cannot sort by {first.field} {first.direction}: backend(s) {names} cannot{hint}"
    )


def _failure(member: Member, exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    kind = getattr(exc, "kind", "error")
    log.warning("backend %s failed: %s", member.config.id, exc)
    return str(kind)


def _detail(member: Member, exc: Exception, budget: float) -> str:
    """The report's words for a failure (BackendError messages hold no secrets or URLs)."""
    if not isinstance(exc, TimeoutError):
        return str(exc)
    if budget < member.config.timeout_s:
        return f"backend {member.config.id!r}: no answer before the search deadline"
    return f"backend {member.config.id!r}: no answer within {member.config.timeout_s:g} s"


class _Merger:
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
            detail = _detail(member, exc, budget)
            self._fail(stream, _failure(member, exc), detail, is_backend_fault(exc))
        except Exception:
            log.exception("adapter %s crashed", member.config.id)
            self._fail(stream, "error", "adapter error")
        finally:
            stream.outcome.ms += (time.perf_counter() - started) * 1000
        return None

    def _page_size(self, stream: Stream) -> int:
        """What to ask a backend for: the page, or more when the gateway filters its items."""
        limit = self.query.limit
        return max(limit, FILTERED_PAGE_SIZE) if stream.residual else limit

    @staticmethod
    def _fail(stream: Stream, status: str, detail: str, fault: bool = True) -> None:
        stream.done = True
        stream.outcome.status = status
        stream.outcome.detail = detail
        stream.outcome.fault = fault


def _next_position(
    streams: list[Stream],
    query: SearchQuery,
    items: list[dict[str, Any]],
    previous: Position | None,
) -> Position | None:
    cursors: dict[str, Cursor] = {}
    more = False
    for s in streams:
        bid = s.member.config.id
        first = min(((e.page, e.offset) for e in s.entries if not e.consumed), default=None)
        if s.outcome.status != "ok":
            cursors[bid] = Cursor(None, done=True, failed=s.outcome.status)
        elif first is not None:
            cursors[bid] = Cursor(s.states[first[0]], first[1])
            more = True
        elif not s.done:
            cursors[bid] = Cursor(s.next_state if s.states else s.cursor.state, 0)
            more = True
        else:
            cursors[bid] = Cursor(None, done=True)
    if not more:
        return None
    if not items:  # a page that ended early with nothing yet: the frontier stays where it was
        return (
            Position(previous.frontier, previous.last_id, cursors)
            if previous
            else Position(None, None, cursors)
        )
    last = items[-1]
    return Position(raw_values(last, query.sortby), last["id"], cursors)


def _exact_matched(streams: list[Stream], position: Position | None) -> int | None:
    """A count only when it is exact: all counts known, nothing filtered locally, no overlap."""
    if any(s.matched is None or s.outcome.status != "ok" for s in streams):
        return None
    if any(s.residual for s in streams):
        return None
    contributing = [s for s in streams if s.matched]
    if len(contributing) > 1:
        return None
    return sum(s.matched or 0 for s in streams)
