"""Gateway URLs and links (items and collections point at the gateway, never at a backend)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from stac_fastapi.types.requests import get_base_url

from mqs.runtime import Runtime

QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
SORTABLES = "http://www.opengis.net/def/rel/ogc/1.0/sortables"
SCHEMA = "application/schema+json"
GEOJSON = "application/geo+json"
JSON = "application/json"


def base_url(request: Request) -> str:
    """The gateway's public root URL, ending with ``/``."""
    runtime: Runtime = request.app.state.mqs
    configured = runtime.config.server.base_url
    return configured.rstrip("/") + "/" if configured else get_base_url(request)


def collection_url(base: str, collection: str) -> str:
    return f"{base}collections/{quote(collection, safe='')}"


def item_url(base: str, collection: str, item_id: str) -> str:
    return f"{collection_url(base, collection)}/items/{quote(item_id, safe='')}"


def add_item_links(item: dict[str, Any], base: str) -> dict[str, Any]:
    """Gateway ``self``/``parent``/``collection``/``root`` before the backends' ``via`` links."""
    cid = str(item.get("collection"))
    col = collection_url(base, cid)
    item["links"] = [
        {"rel": "self", "href": item_url(base, cid, item["id"]), "type": GEOJSON},
        {"rel": "parent", "href": col, "type": JSON},
        {"rel": "collection", "href": col, "type": JSON},
        {"rel": "root", "href": base, "type": JSON},
        *item.get("links", []),
    ]
    return item


def get_next_link(url: str, params: list[tuple[str, str]], token: str) -> dict[str, Any]:
    query = [(k, v) for k, v in params if k != "token"] + [("token", token)]
    return {"rel": "next", "href": f"{url}?{urlencode(query)}", "type": GEOJSON, "method": "GET"}


def post_next_link(url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    return {
        "rel": "next",
        "href": url,
        "type": GEOJSON,
        "method": "POST",
        "body": {**body, "token": token},
        "merge": False,
    }
