"""The STAC API's application logic (stac-fastapi core client) over the federation."""

from __future__ import annotations

from typing import Any

import attr
import orjson
from fastapi import Request
from pydantic import BaseModel
from stac_fastapi.types.core import AsyncBaseCoreClient
from starlette.responses import Response

from mqs.auth import hidden_backends, require_collection, restrict_search, visible_collections
from mqs.collection_search import listing_links, page, parse_collection_query
from mqs.collections import all_collections, collection_document
from mqs.deletions.search import deleted_mode, screen, screen_item
from mqs.download import proxy_assets
from mqs.errors import InvalidRequest, NotFound, UpstreamFailed, UpstreamTimeout
from mqs.federation import Outcome, SearchResult
from mqs.fields import Selector, parse_fields, selector
from mqs.identity import product_name
from mqs.links import (
    GEOJSON,
    JSON,
    SCHEMA,
    SORTABLES,
    add_item_links,
    base_url,
    get_next_link,
    post_next_link,
)
from mqs.metrics import observe_backends
from mqs.observe import observe_search
from mqs.query import build_query, parse_ids
from mqs.runtime import Runtime


def json_response(
    body: Any, media_type: str = JSON, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.mqs
    return runtime


def federation_report(outcomes: dict[str, Outcome]) -> dict[str, dict[str, Any]]:
    """``federation:report``: per backend, how it went for this page of the search."""
    report: dict[str, dict[str, Any]] = {}
    for bid, o in sorted(outcomes.items()):
        entry = {"status": o.status, "items": o.items, "requests": o.requests, "ms": round(o.ms)}
        report[bid] = entry | ({"detail": o.detail} if o.detail else {})
    return report


def report_headers(outcomes: dict[str, Outcome]) -> dict[str, str]:
    """``Server-Timing`` (per backend: latency, status) and ``X-MQS-Missing`` (failed ones)."""
    timing = [f'{bid};dur={o.ms:.0f};desc="{o.status}"' for bid, o in sorted(outcomes.items())]
    headers = {"Server-Timing": ", ".join(timing)} if timing else {}
    missing = [bid for bid, o in sorted(outcomes.items()) if o.status != "ok"]
    if missing:
        headers["X-MQS-Missing"] = ",".join(missing)
    return headers


def _raise_if_all_failed(outcomes: dict[str, Outcome], found: bool) -> None:
    failed = [o for o in outcomes.values() if o.status != "ok"]
    if found or not outcomes or len(failed) < len(outcomes):
        return
    extra = {
        "federation:backends": {bid: o.status for bid, o in outcomes.items()},
        "federation:report": federation_report(outcomes),
    }
    error = UpstreamTimeout if all(o.status == "timeout" for o in failed) else UpstreamFailed
    raise error("no backend could answer", extra)


@attr.s
class FederationClient(AsyncBaseCoreClient):
    """Landing page, collections, items and search, answered by the federation."""

    async def landing_page(self, **kwargs: Any) -> Any:
        request: Request = kwargs["request"]
        page = await super().landing_page(request=request)
        runtime = _runtime(request)
        base = base_url(request)
        page["links"] += [
            {"rel": "federation", "href": f"{base}backends", "type": JSON, "title": "Backends"},
            {"rel": SORTABLES, "href": f"{base}sortables", "type": SCHEMA, "title": "Sortables"},
        ]
        hidden = await hidden_backends(request)  # backends the user may not see (mqs.auth)
        page["federation"] = {  # type: ignore[typeddict-unknown-key]
            b.id: {"title": b.display_title, "url": b.url}
            for b in runtime.config.backends
            if b.id not in hidden
        }
        return page

    async def all_collections(self, **kwargs: Any) -> Any:
        """``GET /collections``: filtered and paged by collection search (``q``, ``bbox``...)."""
        request: Request = kwargs["request"]
        runtime = _runtime(request)
        params = list(request.query_params.multi_items())
        query = parse_collection_query(dict(params), runtime.config.server.max_limit)
        base = base_url(request)
        ids = await visible_collections(request, runtime.config.collections)  # mqs.auth
        hidden = await hidden_backends(request)  # not providers of what is listed (mqs.auth)
        listed = await all_collections(runtime, base, ids, hidden)
        found, matched, next_offset = page(listed, query)
        body = {"collections": found, "links": listing_links(base, params, next_offset)}
        return json_response(body | {"numberMatched": matched, "numberReturned": len(found)})

    async def get_collection(self, collection_id: str, **kwargs: Any) -> Any:
        request: Request = kwargs["request"]
        runtime = _runtime(request)
        if collection_id not in runtime.config.collections:
            raise NotFound(f"collection {collection_id[:100]!r} not found")
        await require_collection(request, collection_id)
        hidden = await hidden_backends(request)  # not providers of what is listed (mqs.auth)
        document = await collection_document(runtime, collection_id, base_url(request), hidden)
        return json_response(document)

    async def get_item(self, item_id: str, collection_id: str, **kwargs: Any) -> Any:
        request: Request = kwargs["request"]
        runtime = _runtime(request)
        if collection_id not in runtime.config.collections:
            raise NotFound(f"collection {collection_id[:100]!r} not found")
        await require_collection(request, collection_id)
        ids = parse_ids([item_id])
        if not ids:
            raise NotFound("item not found")
        hidden = await hidden_backends(request)  # backends the user may not see (mqs.auth)
        item, outcomes = await runtime.federation.get_item(
            collection_id, product_name(ids[0]), hidden
        )
        observe_backends(outcomes)
        _raise_if_all_failed(outcomes, item is not None)
        if item is None:
            raise NotFound(f"item {item_id[:100]!r} not found in {collection_id!r}")
        await screen_item(runtime.deletions, item, hidden)  # withdrawn: flagged (mqs.deletions)
        base = base_url(request)
        item = proxy_assets(item, base, runtime.config.backends)  # credentialed hrefs -> gateway
        return json_response(add_item_links(item, base), GEOJSON)

    async def get_search(self, **kwargs: Any) -> Any:  # type: ignore[override]
        request: Request = kwargs["request"]
        params = list(request.query_params.multi_items())
        url = f"{base_url(request)}search"
        return await self._search(request, dict(params), lambda t: get_next_link(url, params, t))

    async def post_search(self, search_request: BaseModel, **kwargs: Any) -> Any:
        request: Request = kwargs["request"]
        body = search_request.model_dump(
            mode="json", exclude_unset=True, exclude_none=True, by_alias=True
        )
        body.pop("token", None)
        fields = getattr(search_request, "fields", None)
        given: set[str] = getattr(fields, "model_fields_set", set())
        if isinstance(body.get("fields"), dict) and "include" in given:
            body["fields"].setdefault("include", [])  # given, even as null: see mqs.fields
        url = f"{base_url(request)}search"
        token = getattr(search_request, "token", None)
        params = {**body, "token": token}
        return await self._search(request, params, lambda t: post_next_link(url, body, t))

    async def item_collection(self, collection_id: str, **kwargs: Any) -> Any:  # type: ignore[override]
        request: Request = kwargs["request"]
        runtime = _runtime(request)
        if collection_id not in runtime.config.collections:
            raise NotFound(f"collection {collection_id[:100]!r} not found")
        await require_collection(request, collection_id)
        params = [p for p in request.query_params.multi_items() if p[0] != "collections"]
        url = f"{base_url(request)}collections/{collection_id}/items"
        search = {**dict(params), "collections": [collection_id]}
        return await self._search(request, search, lambda t: get_next_link(url, params, t))

    async def _search(self, request: Request, params: dict[str, Any], next_link: Any) -> Response:
        runtime = _runtime(request)
        server = runtime.config.server
        query = build_query(
            params, runtime.config.collections, server.default_limit, server.max_limit
        )
        visible = await restrict_search(request, query, runtime.config.collections)
        if visible is None:  # the user may see none of the collections asked for: no items
            empty = SearchResult(items=[], next_position=None, matched=0, outcomes={})
            body = self._item_collection(request, empty, selector(None))
            return json_response(body, GEOJSON)
        query = visible
        token = params.get("token")
        if token is not None and not isinstance(token, str):
            raise InvalidRequest("invalid paging token")
        position = runtime.codec.decode(token, query.fingerprint()) if token else None
        select = selector(parse_fields(params.get("fields")))
        shown = deleted_mode(params)  # withdrawn products: exclude | include (mqs.deletions)
        hidden = await hidden_backends(request)  # backends the user may not see (mqs.auth)
        result = await runtime.federation.search(query, position, hidden)
        await screen(runtime.deletions, result, shown, base_url(request), hidden)
        observe_search(runtime, query, position is None, result)  # metrics and the log line
        _raise_if_all_failed(result.outcomes, bool(result.items))
        body = self._item_collection(request, result, select)
        if result.next_position is not None:
            body["links"].append(
                next_link(runtime.codec.encode(result.next_position, query.fingerprint()))
            )
        return json_response(body, GEOJSON, headers=report_headers(result.outcomes))

    @staticmethod
    def _item_collection(
        request: Request, result: SearchResult, select: Selector
    ) -> dict[str, Any]:
        base = base_url(request)
        backends = _runtime(request).config.backends
        features = [
            select(add_item_links(proxy_assets(item, base, backends), base))
            for item in result.items
        ]
        body: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": features,
            "numberReturned": len(features),
            "links": [
                {"rel": "self", "href": str(request.url), "type": GEOJSON},
                {"rel": "root", "href": base, "type": JSON},
            ],
        }
        if result.matched is not None:
            body["numberMatched"] = result.matched
        missing = sorted(bid for bid, o in result.outcomes.items() if o.status != "ok")
        if missing:
            body["federation:missing"] = missing
        body["federation:report"] = federation_report(result.outcomes)
        return body
