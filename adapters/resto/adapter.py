"""Adapter for resto OpenSearch JSON catalogues (kind ``resto``): CDSE, CreoDIAS finder.

The configured ``url`` is the API root (``https://catalogue.dataspace.copernicus.eu/resto/api``);
searches go to ``{url}/collections/<collection>/search.json``, one request per source (collection
path and product type), paged with ``page``/``maxRecords`` and sorted by ``startDate`` (or
``published`` for ``created``). Sources are merged here into one stream (see
:mod:`adapters.resto.streams`).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import shapely
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import shape

from adapters.base import BackendPage, BadBackendResponse, Capabilities, Hit, PageState
from adapters.http import fetch_json
from adapters.resto import query as rq
from adapters.resto.collections import ProductSet, Source, resolve, serves, sources_of
from adapters.resto.items import to_item
from adapters.resto.mapping import AnswerError, has_more, parse_answer, record_properties
from adapters.resto.streams import Fetched, initial_state, merge, read_state
from mqs.cache import Cache
from mqs.config import BackendConfig
from mqs.query import SearchQuery

GET_ITEM_PAGES = 3


class RestoOptions(BaseModel):
    """``options:`` of a ``resto`` backend."""

    model_config = ConfigDict(extra="forbid")

    max_records: int = Field(
        1000, ge=1, le=2000, description="The largest maxRecords the backend accepts"
    )
    datetime_margin_s: float = Field(
        3600.0,
        ge=0,
        le=30 * 86400,
        description="startDate/completionDate are widened by this much (at least the longest "
        "sensing duration of a served product); the gateway evaluates datetime exactly",
    )
    exact_count: bool = Field(True, description="Ask for exactCount=1 on first pages")
    status: str | None = Field(
        None, pattern=r"^[A-Za-z0-9|]{1,32}$", description="Sent as status=, e.g. ALL or ONLINE"
    )
    max_wkt_length: int = Field(
        4000,
        ge=100,
        description="Longer intersects geometries are sent as their bounding box and the hits "
        "checked here",
    )


class RestoAdapter:
    """A federation member speaking resto's OpenSearch JSON."""

    Options: ClassVar[type[BaseModel]] = RestoOptions
    check_collections = staticmethod(resolve)  # config validation: every mapping understood

    def __init__(
        self, backend: BackendConfig, client: httpx.AsyncClient, cache: Cache | None = None
    ) -> None:
        self.backend = backend
        self.client = client
        self.options = RestoOptions.model_validate(backend.options)
        self.sets: dict[str, ProductSet] = resolve(backend.collection_map())
        self.root = backend.url.rstrip("/")
        self.capabilities = Capabilities(
            pushdown=frozenset({"collections", "geometry"}),
            max_page_size=self.options.max_records,
            filter=rq.pushable,
            sortable=frozenset(rq.SORT_FIELDS),
        )

    def _plan(self, query: SearchQuery, shared: rq.Translation) -> dict[Source, list[str]]:
        plan = sources_of(self.sets, query.collections or tuple(self.sets))
        if shared.optical_only:  # radar items never carry eo:cloud_cover: no match there
            plan = {s: cids for s, cids in plan.items() if not s.sar}
        return plan

    async def search(self, query: SearchQuery, state: PageState | None, limit: int) -> BackendPage:
        shared = rq.translate(query, self.options.datetime_margin_s, self.options.max_wkt_length)
        plan = self._plan(query, shared)
        if shared.empty or not plan:
            return BackendPage([], None, 0)
        sources = list(plan)
        if state is None:
            state = initial_state(sources, min(limit, self.options.max_records))
        try:
            size, cursors = read_state(state, sources, self.options.max_records)
        except ValueError as exc:
            raise BadBackendResponse(self.backend.id, str(exc)) from None
        fetched = await asyncio.gather(
            *(self._fetch(query, shared, s, cursor, size) for s, cursor in cursors.items())
        )
        sort_param, descending = rq.sort_order(query)
        emitted, next_state = merge([f for f, _ in fetched], size, descending, sort_param)
        hits = self._hits(emitted, plan, shared)
        first = all(cursor == (1, 0) for cursor in cursors.values())
        totals = [total for _, total in fetched]
        exact = first and shared.local_geometry is None and None not in totals
        matched = sum(t for t in totals if t is not None) if exact else None
        return BackendPage(hits, next_state, matched)

    async def _fetch(
        self,
        query: SearchQuery,
        shared: rq.Translation,
        source: Source,
        cursor: tuple[int, int],
        size: int,
    ) -> tuple[Fetched, int | None]:
        params = rq.source_params(
            query, shared, source, (cursor[0], size), self.options.exact_count, self.options.status
        )
        url = f"{self.root}/collections/{quote(source.collection, safe='')}/search.json"
        body = await fetch_json(
            self.client, self.backend, "GET", url, params=httpx.QueryParams(dict(params))
        )
        try:
            answer = parse_answer(body)
        except AnswerError as exc:
            raise BadBackendResponse(self.backend.id, f"resto error: {exc}") from None
        records = answer.records[:size]
        more = has_more(answer, cursor[0], size)
        return Fetched(source, cursor, records, more), answer.total

    def _hits(
        self,
        emitted: list[tuple[Source, dict[str, Any]]],
        plan: dict[Source, list[str]],
        shared: rq.Translation,
    ) -> list[Hit]:
        hits = []
        for source, record in emitted:
            if not serves(source, record_properties(record).get("productType")):
                continue  # another product type than the one asked for
            item = to_item(record, plan[source][0])
            if item is None or not _inside(item, shared):
                continue
            hits.append(Hit(item["id"], item))
        return hits

    async def get_item(self, collection: str, product_id: str) -> Hit | None:
        query = SearchQuery(collections=(collection,), ids=(product_id,), limit=50)
        state: PageState | None = None
        for _ in range(GET_ITEM_PAGES):
            page = await self.search(query, state, 50)
            hit = next((h for h in page.hits if h.product_id == product_id), None)
            if hit is not None or page.next_state is None:
                return hit
            state = page.next_state
        return None

    async def describe(self, collection: str) -> dict[str, Any] | None:
        return None  # resto describes collections as OpenSearch documents, not STAC


def _inside(item: dict[str, Any], shared: rq.Translation) -> bool:
    """The exact intersects test for a geometry that was sent as its bounding box."""
    if shared.local_geometry is None:
        return True
    if not item.get("geometry"):
        return False
    return bool(shapely.intersects(shape(item["geometry"]), shared.local_geometry))


__all__ = ["RestoAdapter", "RestoOptions"]
