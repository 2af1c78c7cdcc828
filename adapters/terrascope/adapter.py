"""Adapter for VITO's Terrascope OpenSearch catalogue (kind ``terrascope``).

The configured ``url`` is the catalogue root (``https://services.terrascope.be/catalogue``):
products at ``{url}/products``, collections at ``{url}/collections``. Searches need no
credentials (downloads do; an ``auth:`` block is still sent when configured).

Terrascope takes one collection (and one title) per request, so a search is one or more
request streams (:func:`adapters.terrascope.query.plan`), each paged with ``startIndex``
(1-based) and ``count`` and sorted with ``sortKeys=start,,0``: SRU syntax
``key,schema,ascending``, acquisition start descending (the recorded answers echo
``sortKeys=title`` as ``title,,1,0,highValue``; openEO asks ``start,,0`` for the newest
product; ``published,,0|1`` sorts by ``created``). This adapter merges the streams into one
in that order (:func:`mapping.merge`);
ties come in Terrascope's own order, which the gateway copes with. The page state holds each
stream's next ``startIndex`` (None: finished) and the first page's total. Terrascope pages
only through its first ``max_results`` (10000) results: a search that needs more fails for
this backend (``federation:missing``) instead of silently ending early.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import BackendPage, BadBackendResponse, Capabilities, Hit, PageState
from adapters.http import fetch_json
from adapters.terrascope import query as tq
from adapters.terrascope.collections import TerrascopeCollection, resolve
from adapters.terrascope.items import to_hit
from adapters.terrascope.mapping import FeedError, Stream, collection_extent, merge, parse_page
from adapters.terrascope.mapping import sort_key as hit_key
from mqs.cache import Cache
from mqs.config import BackendConfig
from mqs.query import SearchQuery


class TerrascopeOptions(BaseModel):
    """``options:`` of a ``terrascope`` backend."""

    model_config = ConfigDict(extra="forbid")

    max_page_size: int = Field(100, ge=1, le=1000, description="count per request")
    max_results: int = Field(
        10000, ge=1, description="The service's result window: startIndex + count - 1 at most"
    )
    datetime_margin_s: float = Field(
        3600.0,
        ge=0,
        description="Widen start/end by this much: at least the longest product's duration",
    )
    max_requests: int = Field(
        20, ge=1, le=100, description="Most requests per page (collections x ids as titles)"
    )


class TerrascopeAdapter:
    """A federation member speaking Terrascope OpenSearch."""

    Options: ClassVar[type[BaseModel]] = TerrascopeOptions
    check_collections = staticmethod(resolve)  # config validation: every mapping understood

    def __init__(
        self, backend: BackendConfig, client: httpx.AsyncClient, cache: Cache | None = None
    ) -> None:
        self.backend = backend
        self.client = client
        self.options = TerrascopeOptions.model_validate(backend.options)
        self.collections: dict[str, TerrascopeCollection] = resolve(backend.collection_map())
        self.root = backend.url.rstrip("/")
        self.capabilities = Capabilities(
            frozenset({"collections"}),
            self.options.max_page_size,
            tq.pushable,
            sortable=frozenset(tq.SORT_FIELDS),
        )

    def _plan(self, query: SearchQuery) -> list[tq.SubQuery]:
        return tq.plan(
            query,
            self.collections,
            margin_s=self.options.datetime_margin_s,
            max_requests=self.options.max_requests,
        )

    async def search(self, query: SearchQuery, state: PageState | None, limit: int) -> BackendPage:
        subs = self._plan(query)
        count = min(limit, self.options.max_page_size)
        positions, total = self._state(state, len(subs))
        field, descending = tq.sort_order(query)
        pages = await asyncio.gather(
            *(
                self._stream(sub, pos, count, field)
                for sub, pos in zip(subs, positions, strict=True)
            )
        )
        if state is None:
            known = [p[1] for p in pages if p is not None]
            total = sum(t for t in known if t is not None) if None not in known else None
        hits, resume = merge([p[0] if p else None for p in pages], count, descending)
        more = any(r is not None for r in resume)
        return BackendPage(hits, {"p": resume, "t": total} if more else None, total)

    async def _stream(
        self, sub: tq.SubQuery, start: int | None, count: int, field: str
    ) -> tuple[Stream, int | None] | None:
        """One page of one request stream from ``start`` (None: the stream is finished)."""
        if start is None:
            return None
        window = self.options.max_results - start + 1
        if window < 1:
            raise BadBackendResponse(self.backend.id, "more results than Terrascope pages")
        count = min(count, window)
        params = httpx.QueryParams([*sub.params, ("startIndex", str(start)), ("count", str(count))])
        body = await fetch_json(
            self.client, self.backend, "GET", f"{self.root}/products", params=params
        )
        try:
            page = parse_page(body)
        except FeedError as exc:
            raise BadBackendResponse(self.backend.id, f"Terrascope answer: {exc}") from None
        spec = self.collections[sub.collection]
        entries: list[tuple[str | None, Hit | None]] = []
        for feature in page.features:
            hit = to_hit(feature, sub.collection, spec)
            entries.append((hit_key(hit, field) if hit else None, hit))
        end = start + len(entries) - 1
        last = not entries or len(entries) < count or (page.total is not None and end >= page.total)
        return Stream(start, entries, last), page.total

    def _state(self, state: PageState | None, streams: int) -> tuple[list[int | None], int | None]:
        """Each stream's next startIndex and the total reported on the first page."""
        if state is None:
            return [1] * streams, None
        positions = state.get("p")
        if not isinstance(positions, list) or len(positions) != streams:
            raise BadBackendResponse(self.backend.id, "page state does not fit this search")
        total = state.get("t")
        return [_index(p) for p in positions], total if isinstance(total, int) else None

    async def get_item(self, collection: str, product_id: str) -> Hit | None:
        query = SearchQuery(collections=(collection,), ids=(product_id,), limit=10)
        page = await self.search(query, None, 10)
        return next((h for h in page.hits if h.product_id == product_id), None)

    async def describe(self, collection: str) -> dict[str, Any] | None:
        spec = self.collections.get(collection)
        if spec is None:
            return None
        body = await fetch_json(self.client, self.backend, "GET", f"{self.root}/collections")
        try:
            return collection_extent(body, spec.urn)
        except FeedError as exc:
            raise BadBackendResponse(self.backend.id, f"Terrascope answer: {exc}") from None


def _index(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return value if ok else None
