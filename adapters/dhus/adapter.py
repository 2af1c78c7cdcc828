"""Adapter for ESA's Data Hub Software (kind ``dhus``): OpenSearch (default) or OData v1 search.

The configured ``url`` is the hub's root (``https://dhus.example.eu/dhus``): OpenSearch at
``{url}/search``, OData at ``{url}/odata/v1``. Credentials (HTTP Basic) come from the
environment variables the config names, through :mod:`adapters.http`.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any, ClassVar, Literal

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import BackendPage, BadBackendResponse, Capabilities, Hit, PageState
from adapters.dhus import deleted, manifest, odata, solr
from adapters.dhus.collections import ProductSet, resolve
from adapters.dhus.items import to_item
from adapters.dhus.mapping import (
    Feed,
    FeedError,
    parse_atom_feed,
    parse_json_feed,
    parse_odata_products,
)
from adapters.http import fetch_bytes, fetch_json
from mqs.cache import Cache
from mqs.config import BackendConfig
from mqs.deletions.model import DeletedPage
from mqs.query import SearchQuery

log = logging.getLogger("mqs.adapters.dhus")

MANIFEST_TTL_S = 24 * 3600.0
_ROOT_FOLDER = re.compile(r"/Nodes\('([^'/]+)'\)/Nodes\('manifest\.safe'\)/\$value$")


class DhusOptions(BaseModel):
    """``options:`` of a ``dhus`` backend."""

    model_config = ConfigDict(extra="forbid")

    search_api: Literal["opensearch", "odata"] = "opensearch"
    response_format: Literal["json", "atom"] = Field(
        "json", description="OpenSearch answer format: format=json, or DHuS's Atom XML"
    )
    max_rows: int = Field(100, ge=1, le=1000, description="The hub's page size limit")
    post_above: int = Field(
        4000, ge=256, description="Send q as a POST form when the GET URL would be longer"
    )
    resolve_files: bool = Field(
        True, description="On the single-item endpoint, read manifest.safe for per-file assets"
    )


class DhusAdapter:
    """A federation member speaking DHuS."""

    Options: ClassVar[type[BaseModel]] = DhusOptions
    check_collections = staticmethod(resolve)  # config validation: every mapping understood

    def __init__(
        self, backend: BackendConfig, client: httpx.AsyncClient, cache: Cache | None = None
    ) -> None:
        self.backend = backend
        self.client = client
        self.cache = cache
        self.options = DhusOptions.model_validate(backend.options)
        self.sets: dict[str, ProductSet] = resolve(backend.collection_map())
        self.root = backend.url.rstrip("/")
        self.odata_root = f"{self.root}/odata/v1"
        if self.options.search_api == "odata":
            pushdown = frozenset({"collections", "ids", "datetime"})
            sortable = frozenset(odata.SORT_FIELDS)
            pushable = None
        else:
            pushdown = frozenset({"collections", "ids", "geometry", "datetime"})
            sortable = solr.sortable(self.sets.values())
            pushable = solr.pushable
        self.capabilities = Capabilities(
            pushdown, self.options.max_rows, pushable, sortable, sort_keys=len(sortable)
        )

    def _sets(self, query: SearchQuery) -> list[ProductSet]:
        wanted = query.collections or tuple(self.sets)
        return [self.sets[c] for c in wanted if c in self.sets]

    async def search(self, query: SearchQuery, state: PageState | None, limit: int) -> BackendPage:
        rows = min(limit, self.options.max_rows)
        start = int((state or {}).get("s", 0))
        if self.options.search_api == "odata":
            feed = await self._odata_page(query, start, rows)
        else:
            feed = await self._opensearch_page(query, start, rows)
        hits = []
        for record in feed.records:
            item = to_item(record, self.sets, self.odata_root)
            if item is not None:
                hits.append(Hit(item["id"], item))
        more = len(feed.records) >= rows and (feed.total is None or start + rows < feed.total)
        return BackendPage(hits, {"s": start + rows} if more else None, feed.total)

    async def _opensearch_page(self, query: SearchQuery, start: int, rows: int) -> Feed:
        params = {
            "q": solr.build_q(query, self._sets(query)),
            "start": str(start),
            "rows": str(rows),
            "orderby": solr.orderby(query, self.capabilities.sortable),
        }
        atom = self.options.response_format == "atom"
        if not atom:
            params["format"] = "json"
        url = f"{self.root}/search"
        accept = "application/atom+xml" if atom else "application/json"
        if len(str(httpx.QueryParams(params))) + len(url) > self.options.post_above:
            raw = await fetch_bytes(
                self.client, self.backend, "POST", url, data=params, accept=accept, idempotent=True
            )
        else:
            raw = await fetch_bytes(
                self.client,
                self.backend,
                "GET",
                url,
                params=httpx.QueryParams(params),
                accept=accept,
            )
        return self._parse(lambda: parse_atom_feed(raw or b"") if atom else _json_feed(raw))

    async def _odata_page(self, query: SearchQuery, start: int, rows: int) -> Feed:
        params = {
            "$format": "json",
            "$top": str(rows),
            "$skip": str(start),
            "$inlinecount": "allpages",
            "$orderby": odata.orderby(query),
            "$expand": "Attributes",
        }
        if (filter_ := odata.build_filter(query, self._sets(query))) is not None:
            params["$filter"] = filter_
        body = await fetch_json(
            self.client,
            self.backend,
            "GET",
            f"{self.odata_root}/Products",
            params=httpx.QueryParams(params),
        )
        return self._parse(lambda: parse_odata_products(body))

    def _parse(self, parse: Any) -> Feed:
        try:
            feed: Feed = parse()
        except FeedError as exc:
            status = int(exc.code) if exc.code and exc.code.isdigit() else None
            raise BadBackendResponse(self.backend.id, f"DHuS error: {exc}", status) from None
        return feed

    async def get_item(self, collection: str, product_id: str) -> Hit | None:
        query = SearchQuery(collections=(collection,), ids=(product_id,), limit=10)
        page = await self.search(query, None, 10)
        hit = next((h for h in page.hits if h.product_id == product_id), None)
        if hit is not None and self.options.resolve_files:
            await self._add_file_assets(hit.item)
        return hit

    async def _add_file_assets(self, item: dict[str, Any]) -> None:
        """Per-file assets from the product's manifest.safe (cached; best effort)."""
        href = (item["assets"].get("manifest") or {}).get("href")
        product_href = (item["assets"].get("product") or {}).get("href", "")
        if not href or not product_href:
            return
        product_url = product_href.removesuffix("/$value")
        try:
            text = await self._manifest(href)
        except BadBackendResponse as exc:
            log.info("no manifest for %s: %s", item["id"], exc)
            return
        found = _ROOT_FOLDER.search(href)
        if found is None:
            return
        root_folder = found[1]
        item["assets"].update(
            manifest.file_assets(manifest.parse_manifest(text), product_url, root_folder)
        )

    async def _manifest(self, href: str) -> bytes:
        key = f"dhus:manifest:{self.backend.id}:{href}"
        if self.cache is not None and (cached := await self.cache.get(key)) is not None:
            return cached
        text = await fetch_bytes(self.client, self.backend, "GET", href, accept="application/xml")
        if text is None:
            raise BadBackendResponse(self.backend.id, "manifest not found", 404)
        if self.cache is not None:
            await self.cache.set(key, text, MANIFEST_TTL_S)
        return text

    async def describe(self, collection: str) -> dict[str, Any] | None:
        return None

    async def deleted_products(self, since: datetime | None, skip: int, top: int) -> DeletedPage:
        """One page of the hub's ``DeletedProducts`` feed (:mod:`adapters.dhus.deleted`)."""
        top = min(top, self.options.max_rows)
        params = httpx.QueryParams(deleted.deleted_params(since, skip, top))
        url = f"{self.odata_root}/DeletedProducts"
        # fresh: a feed page read again later may have grown since (never from the cache)
        body = await fetch_json(self.client, self.backend, "GET", url, params=params, fresh=True)
        try:
            return deleted.parse_deleted(body, top)
        except FeedError as exc:
            raise BadBackendResponse(self.backend.id, f"DHuS error: {exc}") from None


def _json_feed(raw: bytes | None) -> Feed:
    try:
        body = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        raise FeedError("answer is not valid JSON") from None
    return parse_json_feed(body)


__all__ = ["DhusAdapter", "DhusOptions"]
