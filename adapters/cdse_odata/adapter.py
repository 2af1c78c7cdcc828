"""Adapter for the Copernicus Data Space Ecosystem OData catalogue (kind ``cdse-odata``).

The configured ``url`` is the catalogue's root (``https://catalogue.dataspace.copernicus.eu``):
products at ``{url}/odata/v1/Products``. Searching is public; downloading a product needs an
OAuth2 bearer token from CDSE's Keycloak, which :meth:`CdseOdataAdapter.bearer` provides when
the backend's ``auth`` is ``oauth2`` (see :mod:`adapters.oauth2`).

Paging is by ``$skip`` (the page state is the number of products skipped); CDSE refuses a
``$skip`` above 10000, so a search going further fails there with a message saying so instead
of silently ending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    BackendPage,
    BadBackendResponse,
    Capabilities,
    Hit,
    PageState,
)
from adapters.cdse_odata import deleted
from adapters.cdse_odata import query as odata
from adapters.cdse_odata.collections import ProductSet, resolve
from adapters.cdse_odata.items import to_item
from adapters.cdse_odata.mapping import ODataError, Page, parse_page
from adapters.http import fetch_json
from adapters.oauth2 import TokenError, TokenProvider, provider_for
from mqs.cache import Cache
from mqs.config import BackendConfig
from mqs.deletions.model import DeletedPage
from mqs.query import SearchQuery


class CdseOdataOptions(BaseModel):
    """``options:`` of a ``cdse-odata`` backend."""

    model_config = ConfigDict(extra="forbid")

    max_page_size: int = Field(1000, ge=1, le=1000, description="$top per request (CDSE: 1000)")
    max_skip: int = Field(10000, ge=0, description="The largest $skip the catalogue accepts")
    geometry_margin_deg: float = Field(
        0.5,
        ge=0,
        le=10,
        description="Widen the intersects area sent to CDSE (spherical edges) by this much; "
        "the gateway then intersects exactly (planar, as STAC)",
    )
    quicklooks: bool = Field(
        False, description="Also $expand=Assets, for a thumbnail asset (larger answers)"
    )


class CdseOdataAdapter:
    """A federation member speaking the CDSE OData catalogue API."""

    Options: ClassVar[type[BaseModel]] = CdseOdataOptions
    check_collections = staticmethod(resolve)  # config validation: every mapping understood

    def __init__(
        self, backend: BackendConfig, client: httpx.AsyncClient, cache: Cache | None = None
    ) -> None:
        self.backend = backend
        self.client = client
        self.options = CdseOdataOptions.model_validate(backend.options)
        self.sets: dict[str, ProductSet] = resolve(backend.collection_map())
        self.odata_root = f"{backend.url.rstrip('/')}/odata/v1"
        self.tokens: TokenProvider | None = provider_for(backend, client, cache)  # shared
        self.capabilities = Capabilities(
            pushdown=frozenset({"collections", "ids", "datetime"}),
            max_page_size=self.options.max_page_size,
            filter=odata.pushable,
            sortable=frozenset(odata.SORT_FIELDS),
        )

    def _sets(self, query: SearchQuery) -> list[ProductSet]:
        wanted = query.collections or tuple(self.sets)
        return [self.sets[c] for c in wanted if c in self.sets]

    async def search(self, query: SearchQuery, state: PageState | None, limit: int) -> BackendPage:
        top = min(limit, self.options.max_page_size)
        skip = int((state or {}).get("s", 0))
        if skip < 0 or skip > self.options.max_skip:
            raise BadBackendResponse(
                self.backend.id,
                f"CDSE pages end at $skip={self.options.max_skip}: narrow the search",
            )
        sets = self._sets(query)
        if not sets:  # none of the query's collections is served here: not the whole catalogue
            return BackendPage([], None, 0)
        params = odata.params(
            query,
            sets,
            top=top,
            skip=skip,
            margin=self.options.geometry_margin_deg,
            assets=self.options.quicklooks,
        )
        url = f"{self.odata_root}/Products"
        body = await fetch_json(
            self.client,
            self.backend,
            "GET",
            url,
            params=httpx.QueryParams([(k, v) for k, v in params]),
        )
        page = self._parse(body)
        hits = []
        for product in page.products:
            item = to_item(product, self.sets, self.odata_root)
            if item is not None:
                hits.append(Hit(item["id"], item))
        # A full page without a next link is CDSE at its $skip limit: go on, and fail there.
        more = bool(page.products) and (page.next_link is not None or len(page.products) >= top)
        return BackendPage(hits, {"s": skip + len(page.products)} if more else None, page.count)

    def _parse(self, body: Any) -> Page:
        try:
            return parse_page(body)
        except ODataError as exc:
            raise BadBackendResponse(self.backend.id, f"CDSE OData error: {exc}") from None

    async def get_item(self, collection: str, product_id: str) -> Hit | None:
        query = SearchQuery(collections=(collection,), ids=(product_id,), limit=10)
        page = await self.search(query, None, 10)
        return next((h for h in page.hits if h.product_id == product_id), None)

    async def describe(self, collection: str) -> dict[str, Any] | None:
        return None

    async def deleted_products(self, since: datetime | None, skip: int, top: int) -> DeletedPage:
        """One page of CDSE's ``DeletedProducts`` feed (:mod:`adapters.cdse_odata.deleted`)."""
        top = min(top, self.options.max_page_size)
        params = httpx.QueryParams(deleted.deleted_params(since, skip, top))
        url = f"{self.odata_root}/DeletedProducts"
        # fresh: a feed page read again later may have grown since (never from the cache)
        body = await fetch_json(self.client, self.backend, "GET", url, params=params, fresh=True)
        try:
            return deleted.parse_deleted(body, top)
        except ODataError as exc:
            raise BadBackendResponse(self.backend.id, f"CDSE OData error: {exc}") from None

    async def bearer(self) -> str:
        """An ``Authorization`` header value for CDSE downloads (``Bearer <access token>``)."""
        if self.tokens is None:
            raise TokenError(self.backend.id, "downloads need auth: {type: oauth2, ...}")
        return await self.tokens.authorization()


__all__ = ["CdseOdataAdapter", "CdseOdataOptions"]
