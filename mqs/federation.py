"""Fan-out, k-way merge and de-duplication over the backends that serve a search.

Each backend is a stream sorted by the search's primary sort key. Items whose primary keys are
equal (a tie group: e.g. all tiles of one datatake share a sensing time) are gathered from
every stream before any of them is returned and ordered by product id, so the merged order is
total: (primary key, product id). Copies of one product have the same key and are therefore
merged together, and a paging token only needs that key to know what was returned already.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any

from adapters.base import BackendError, Hit
from mqs.breaker import Breakers, is_backend_fault
from mqs.config import BackendConfig, BreakerConfig
from mqs.errors import InvalidRequest
from mqs.filtering import residual_parts
from mqs.merge import merge_copies
from mqs.merger import (
    MAX_PAGES_PER_STREAM,
    Member,
    Merger,
    Outcome,
    Stream,
    failure_detail,
    failure_kind,
)
from mqs.ordering import key_from_values, raw_values
from mqs.paging import Cursor, Position
from mqs.query import SearchQuery

__all__ = ["Federation", "Member", "Outcome", "SearchResult"]


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

    def members_for(
        self, collections: tuple[str, ...], hidden: frozenset[str] = frozenset()
    ) -> list[tuple[Member, tuple[str, ...]]]:
        """Each member serving any of ``collections`` (all when empty) and which ones it serves.

        ``hidden``: backends left out (those the user may not see, see :mod:`mqs.auth`).
        """
        wanted = collections or tuple(self.routing)
        served: dict[str, list[str]] = {}
        for cid in wanted:
            for backend in self.routing[cid]:
                if backend.id not in hidden:
                    served.setdefault(backend.id, []).append(cid)
        return [(self.members[bid], tuple(cids)) for bid, cids in served.items()]

    async def search(
        self, query: SearchQuery, position: Position | None, hidden: frozenset[str] = frozenset()
    ) -> SearchResult:
        streams = self._open_streams(query, position, hidden)
        frontier = self._frontier(query, position)
        deadline = asyncio.get_running_loop().time() + self.deadline_s
        merger = Merger(streams, query, frontier, deadline)
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

    def _open_streams(
        self, query: SearchQuery, position: Position | None, hidden: frozenset[str]
    ) -> list[Stream]:
        streams = []
        members = self.members_for(query.collections, hidden)
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
        self, collection: str, product_id: str, hidden: frozenset[str] = frozenset()
    ) -> tuple[dict[str, Any] | None, dict[str, Outcome]]:
        """The merged item of one product from every backend serving ``collection``."""
        members = [m for m, _ in self.members_for((collection,), hidden)]
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
            outcome.status, outcome.detail = (
                failure_kind(member, exc),
                failure_detail(member, exc, budget),
            )
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
        Merger._fail(stream, status, f"cannot order this search within {limit}", fault=False)
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
