"""B3's yardstick: a minimal stac-fastapi app whose ``/search`` returns fixed bytes.

``uvicorn --factory baseline_app:create`` with ``BASELINE_BODY`` naming a file: every search
answers that file's bytes (the gateway's answer to the same search, captured by
:mod:`bench_throughput`). It is the least a stac-fastapi application does per request, so the
gateway's cached throughput divided by its throughput is the share the federation keeps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attr
from fastapi import FastAPI
from stac_fastapi.api.app import StacApi
from stac_fastapi.types.config import ApiSettings
from stac_fastapi.types.core import AsyncBaseCoreClient
from starlette.responses import Response


@attr.s
class FixedClient(AsyncBaseCoreClient):
    """Answers every search with the same bytes; nothing else is benchmarked."""

    body: bytes = attr.ib(default=b"{}")

    async def get_search(self, **kwargs: Any) -> Any:  # type: ignore[override]
        return Response(self.body, media_type="application/geo+json")

    async def post_search(self, search_request: Any, **kwargs: Any) -> Any:
        return Response(self.body, media_type="application/geo+json")

    async def all_collections(self, **kwargs: Any) -> Any:
        return {"collections": [], "links": []}

    async def get_collection(self, collection_id: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def get_item(self, item_id: str, collection_id: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def item_collection(self, collection_id: str, **kwargs: Any) -> Any:  # type: ignore[override]
        raise NotImplementedError


def create() -> FastAPI:
    body = Path(os.environ["BASELINE_BODY"]).read_bytes()
    settings = ApiSettings(
        stac_fastapi_title="baseline",
        stac_fastapi_description="fixed answers",
        stac_fastapi_landing_id="baseline",
        stac_fastapi_version="0",
    )
    return StacApi(settings=settings, client=FixedClient(body=body)).app
