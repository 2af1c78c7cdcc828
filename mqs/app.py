"""``create_app(config)``: the FastAPI application, built by stac-fastapi's StacApi."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal, cast

import attr
from brotli_asgi import BrotliMiddleware
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field, field_validator, model_validator
from stac_fastapi.api.app import StacApi
from stac_fastapi.api.middleware import ProxyHeaderMiddleware
from stac_fastapi.api.models import (
    ItemCollectionUri,
    create_get_request_model,
    create_post_request_model,
    create_request_model,
)
from stac_fastapi.extensions.collection_search import CollectionSearchExtension
from stac_fastapi.extensions.fields import FieldsExtension
from stac_fastapi.extensions.fields.request import FieldsExtensionGetRequest
from stac_fastapi.extensions.filter import FilterExtension
from stac_fastapi.extensions.filter.request import FilterExtensionGetRequest
from stac_fastapi.extensions.pagination import TokenPaginationExtension
from stac_fastapi.extensions.pagination.request import GETTokenPagination
from stac_fastapi.extensions.query import QueryExtension
from stac_fastapi.extensions.sort import SortExtension
from stac_fastapi.extensions.sort.request import SortExtensionGetRequest
from stac_fastapi.types.config import ApiSettings
from stac_fastapi.types.search import (
    APIRequest,
    BaseSearchGetRequest,
    BaseSearchPostRequest,
    DateTimeQueryType,
)
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from mqs import __version__
from mqs.auth import hidden_backends, visible_collections
from mqs.auth.middleware import AuthMiddleware
from mqs.client import FederationClient, json_response
from mqs.collection_search import COLLECTION_SEARCH_CONFORMANCE, CollectionSearchGetRequest
from mqs.config import FederationConfig, Settings
from mqs.deletions.routes import deletions_endpoint
from mqs.download import DOWNLOAD_EXPOSED, install_download
from mqs.errors import install_error_handlers
from mqs.inline import inline_request_models
from mqs.links import JSON, base_url
from mqs.ops import install_ops
from mqs.pagecache import PageCache
from mqs.queryables import (
    FIELDS_CONFORMANCE,
    FILTER_CONFORMANCE,
    SORT_CONFORMANCE,
    FederationQueryables,
    FederationSortables,
)
from mqs.runtime import Runtime, open_runtime


@attr.s
class _ItemCollectionRequest(ItemCollectionUri):
    """``/collections/{id}/items``; datetime is validated by :mod:`mqs.query`."""

    datetime: DateTimeQueryType = attr.ib(default=None)


@attr.s
class _SearchGetRequest(BaseSearchGetRequest):
    """GET ``/search``; datetime is validated by :mod:`mqs.query` (clear 400 messages)."""

    datetime: DateTimeQueryType = attr.ib(default=None)


class _FilterPostRequest(BaseModel):
    """POST ``filter``: CQL2 JSON, or CQL2 text with ``filter-lang: cql2-text``.

    (pystac-client, and so QGIS, POSTs a text filter as text; :mod:`mqs.cqlfilter` parses both.)
    """

    filter_expr: dict[str, Any] | str | None = Field(
        None, alias="filter", description="A CQL2 JSON object, or CQL2 text (filter-lang)"
    )
    filter_lang: Literal["cql2-json", "cql2-text"] | None = Field(
        None, alias="filter-lang", description="Default: cql2-json for objects, else cql2-text"
    )
    filter_crs: str | None = Field(None, alias="filter-crs", description="CRS84 only")


class _SearchPostRequest(BaseSearchPostRequest):
    """POST ``/search``; a single collection or id given as a string is taken as a list.

    (stac-api-validator sends ``"collections": "id"``; the spec says array. Being lenient here
    costs nothing and helps clients that made the same mistake.)
    """

    deleted: str | None = None  # withdrawn products: exclude | include (mqs.deletions.search)

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, value: Any) -> Any:
        if not isinstance(value, dict):  # stac-pydantic's own validators assume one
            raise ValueError("the search body must be a JSON object")
        return value

    @field_validator("collections", "ids", mode="before")
    @classmethod
    def _one_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("fields", mode="before", check_fields=False)
    @classmethod
    def _fields_object(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("fields must be an object with include and/or exclude")
        return value


async def _backends(request: Request) -> Response:
    """The federation's backends, as far as the user may see them (:mod:`mqs.auth`): hidden
    backends are left out, and so are the collections the user may not see."""
    runtime: Runtime = request.app.state.mqs
    base = base_url(request)
    hidden = await hidden_backends(request)
    visible = set(await visible_collections(request, runtime.config.collections))
    members = [
        {
            "id": b.id,
            "kind": b.kind,
            "title": b.display_title,
            "url": b.url,
            "priority": b.priority,
            "collections": [c for c in b.collection_map() if c in visible],
        }
        for b in runtime.config.backends
        if b.id not in hidden
    ]
    links = [
        {"rel": "self", "href": f"{base}backends", "type": JSON},
        {"rel": "root", "href": base, "type": JSON},
    ]
    return json_response({"backends": members, "links": links})


async def _health(request: Request) -> Response:
    """Each backend's circuit breaker; ``down`` (503) when every one is open."""
    runtime: Runtime = request.app.state.mqs
    health = runtime.federation.breakers.health()
    return json_response(health, status=503 if health["status"] == "down" else 200)


def create_app(config: FederationConfig, settings: Settings | None = None) -> FastAPI:
    """The gateway over ``config``; backends, cache and HTTP client open at startup."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(config, settings) as runtime:
            app.state.mqs = runtime
            yield

    server = config.server
    fastapi_app = FastAPI(
        title=server.title,
        description=server.description,
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api",
        docs_url="/api.html",
        redoc_url=None,
    )
    filter_extension = FilterExtension(
        client=FederationQueryables(), conformance_classes=FILTER_CONFORMANCE
    )
    filter_extension.POST = _FilterPostRequest
    extensions: list[Any] = [
        TokenPaginationExtension(),
        QueryExtension(),
        filter_extension,
        SortExtension(client=FederationSortables(), conformance_classes=SORT_CONFORMANCE),
        FieldsExtension(conformance_classes=FIELDS_CONFORMANCE),
    ]
    mixins: list[type[APIRequest]] = [
        GETTokenPagination,
        FilterExtensionGetRequest,
        SortExtensionGetRequest,
        FieldsExtensionGetRequest,
    ]
    items_model = cast(
        type[APIRequest],
        create_request_model(
            "ItemCollectionRequest",
            base_model=_ItemCollectionRequest,
            mixins=mixins,
            request_type="GET",
        ),
    )
    api = StacApi(
        settings=ApiSettings(
            stac_fastapi_title=server.title,
            stac_fastapi_description=server.description,
            stac_fastapi_landing_id="mqs",
            stac_fastapi_version=__version__,
        ),
        client=FederationClient(landing_page_id="mqs"),
        extensions=[
            *extensions,
            CollectionSearchExtension(
                GET=CollectionSearchGetRequest, conformance_classes=COLLECTION_SEARCH_CONFORMANCE
            ),
        ],
        collections_get_request_model=CollectionSearchGetRequest,
        app=fastapi_app,
        title=server.title,
        description=server.description,
        api_version=__version__,
        search_get_request_model=create_get_request_model(extensions, _SearchGetRequest),
        search_post_request_model=create_post_request_model(extensions, _SearchPostRequest),
        items_get_request_model=items_model,
        health_check=cast(Any, _health),  # an endpoint: FastAPI passes it the request
        middlewares=[
            Middleware(BrotliMiddleware, excluded_handlers=[r"^/download/"]),  # bytes as sent
            Middleware(
                CORSMiddleware,
                allow_origins=server.cors_origins,
                allow_methods=["OPTIONS", "POST", "GET", "HEAD"],
                allow_headers=["Content-Type", "Authorization", "Range", "If-Range"],
                expose_headers=list(DOWNLOAD_EXPOSED),  # browsers may read them (downloads)
                max_age=600,
            ),
            Middleware(ProxyHeaderMiddleware),
            Middleware(AuthMiddleware),  # tokens and rate limits (mqs.auth)
            Middleware(PageCache),  # innermost: repeated searches (cache.page_ttl_s)
        ],
    )
    app = api.app
    app.add_api_route("/backends", _backends, methods=["GET"], name="Federation backends")
    app.add_api_route("/deletions", deletions_endpoint, methods=["GET"], name="Deleted products")
    install_download(app)  # GET|HEAD /download/{collection}/{item}/{asset} (mqs.download)
    install_error_handlers(app)
    install_ops(app, list(config.collections), [b.id for b in config.backends])
    inline_request_models(api)  # GET request models built on the event loop (mqs.inline)
    return app
