"""Adapter for any STAC API: POST ``/search`` (GET when POST is refused), follows ``next``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    BackendError,
    BackendPage,
    BadBackendResponse,
    Capabilities,
    Hit,
    PageState,
)
from adapters.http import fetch_json
from adapters.stac import mapping
from adapters.stac.pushdown import pushable_for
from adapters.stac.query import get_params, same_origin, search_body
from mqs.cache import Cache
from mqs.config import BackendConfig
from mqs.query import MAX_SORT_KEYS, SearchQuery


class StacOptions(BaseModel):
    """``options:`` of a ``stac`` backend."""

    model_config = ConfigDict(extra="forbid")

    search_method: Literal["POST", "GET"] = "POST"
    product_id_property: str | None = Field(
        None, description="Item property holding the product name when ids differ from it"
    )
    sort: bool = Field(True, description="Send sortby (the Sort extension)")
    filter_extension: bool = Field(
        False, description="The backend implements the Filter extension with CQL2 JSON"
    )
    max_page_size: int = Field(1000, ge=1)


class StacAdapter:
    """A federation member speaking STAC API."""

    Options: ClassVar[type[BaseModel]] = StacOptions

    def __init__(
        self, backend: BackendConfig, client: httpx.AsyncClient, cache: Cache | None = None
    ) -> None:
        self.backend = backend
        self.client = client
        self.options = StacOptions.model_validate(backend.options)
        mapping_ = backend.collection_map()
        self.names = {cid: str(name or cid) for cid, name in mapping_.items()}
        self.canonical = {name: cid for cid, name in self.names.items()}
        # With the Sort extension the backend orders by any key it is sent (the gateway checks
        # the order it gets); without it, STAC APIs answer newest first.
        # With the Filter extension it evaluates the clauses on properties it names the same.
        sort, id_property = self.options.sort, self.options.product_id_property
        self.capabilities = Capabilities(
            pushdown=frozenset({"collections", "ids", "geometry", "datetime"}),
            max_page_size=self.options.max_page_size,
            filter=pushable_for(id_property) if self.options.filter_extension else None,
            sortable=None if sort else frozenset({"datetime"}),
            sort_keys=MAX_SORT_KEYS if sort else 1,
            sort_directions=frozenset({"asc", "desc"} if sort else {"desc"}),
        )

    async def search(self, query: SearchQuery, state: PageState | None, limit: int) -> BackendPage:
        limit = min(limit, self.options.max_page_size)
        options = self.options
        first = search_body(
            query,
            self.names,
            limit,
            options.product_id_property,
            options.sort,
            cql2=options.filter_extension,
        )
        if state is None:
            body = await self._first_page(first)
        else:
            body = await self._follow(state, first)
        link = mapping.next_link(body)
        hits = mapping.page_hits(body, self.canonical, self.options.product_id_property)
        next_state = self._state(link) if link and hits else None
        return BackendPage(hits, next_state, mapping.matched(body))

    async def get_item(self, collection: str, product_id: str) -> Hit | None:
        query = SearchQuery(collections=(collection,), ids=(product_id,), limit=10)
        page = await self.search(query, None, 10)
        return next((h for h in page.hits if h.product_id == product_id), None)

    async def describe(self, collection: str) -> dict[str, Any] | None:
        name = self.names.get(collection)
        if name is None:
            return None
        url = f"{self.backend.url}/collections/{httpx.URL(name).raw_path.decode()}"
        body = await fetch_json(self.client, self.backend, "GET", url, not_found_ok=True)
        return body if isinstance(body, dict) else None

    async def _first_page(self, body: dict[str, Any]) -> Any:
        url = f"{self.backend.url}/search"
        if self.options.search_method == "POST":
            try:
                return await fetch_json(
                    self.client, self.backend, "POST", url, json=body, idempotent=True
                )
            except BadBackendResponse as exc:
                if exc.status not in (405, 501):
                    raise
        try:
            params = get_params(body)
        except ValueError as exc:  # nothing the backend could answer exactly
            raise BackendError(self.backend.id, str(exc)) from None
        return await fetch_json(self.client, self.backend, "GET", url, params=params)

    async def _follow(self, state: PageState, first: dict[str, Any]) -> Any:
        href = str(state.get("h", ""))
        if not same_origin(href, self.backend.url):
            raise BadBackendResponse(self.backend.id, "next link leaves the backend's API")
        if state.get("m") == "POST":
            link_body = state.get("b") or {}
            body = {**first, **link_body} if state.get("g") else link_body
            return await fetch_json(
                self.client, self.backend, "POST", href, json=body, idempotent=True
            )
        return await fetch_json(self.client, self.backend, "GET", href)

    def _state(self, link: dict[str, Any]) -> PageState:
        href = str(link["href"])
        if not same_origin(href, self.backend.url):
            raise BadBackendResponse(self.backend.id, "next link leaves the backend's API")
        method = str(link.get("method", "GET")).upper()
        body = link.get("body") if isinstance(link.get("body"), dict) else None
        return {"m": method, "h": href, "b": body, "g": bool(link.get("merge", False))}
