"""Collection documents: canonical metadata from the config, extents from the backends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import orjson

from mqs.config import BackendConfig
from mqs.links import GEOJSON, JSON, QUERYABLES, SCHEMA, SORTABLES, collection_url
from mqs.merge import provider_entry
from mqs.metrics import record_cache
from mqs.runtime import Runtime
from mqs.summaries import enrich

log = logging.getLogger("mqs.collections")

WORLD = [-180.0, -90.0, 180.0, 90.0]


async def _backend_extent(runtime: Runtime, backend: BackendConfig, cid: str) -> Any:
    key = f"describe:{backend.id}:{cid}"
    cached = await runtime.cache.get(key)
    record_cache("collections", "hit" if cached is not None else "miss")
    if cached is not None:
        return orjson.loads(cached)
    adapter = runtime.federation.members[backend.id].adapter
    try:
        async with asyncio.timeout(backend.timeout_s):
            doc = await adapter.describe(cid)
    except Exception as exc:  # a backend's metadata is optional: never fail the listing
        log.info("no collection metadata from %s: %s", backend.id, type(exc).__name__)
        return None
    extent = doc.get("extent") if isinstance(doc, dict) else None
    await runtime.cache.set(key, orjson.dumps(extent), runtime.config.cache.collections_ttl_s)
    return extent


def _union(extents: list[Any]) -> tuple[list[float] | None, list[str | None] | None]:
    boxes, starts, ends = [], [], []
    for extent in extents:
        try:
            bbox = extent["spatial"]["bbox"][0]
            interval = extent["temporal"]["interval"][0]
        except (KeyError, IndexError, TypeError):
            continue
        if len(bbox) in (4, 6):  # 3D: west, south, bottom, east, north, top
            corners = bbox if len(bbox) == 4 else (bbox[0], bbox[1], bbox[3], bbox[4])
            boxes.append([float(v) for v in corners])
        starts.append(interval[0])
        ends.append(interval[1])
    bbox = None
    if boxes:
        bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes)]
        bbox += [max(b[2] for b in boxes), max(b[3] for b in boxes)]
    if not starts:
        return bbox, None
    start = None if None in starts else min(starts)
    end = None if None in ends else max(ends)
    return bbox, [start, end]


async def collection_document(
    runtime: Runtime, cid: str, base: str, hidden: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``cid``'s document; ``hidden``: backends the user may not see (not providers, and their
    extents not counted, see :mod:`mqs.auth`)."""
    conf = runtime.config.collections[cid]
    backends = [b for b in runtime.federation.routing[cid] if b.id not in hidden]
    bbox: list[float] | None = None
    interval: list[str | None] | None = None
    if conf.extent is not None:
        bbox, interval = conf.extent.bbox, conf.extent.interval
    else:
        found = await asyncio.gather(*(_backend_extent(runtime, b, cid) for b in backends))
        bbox, interval = _union([e for e in found if e])
    url = collection_url(base, cid)
    doc = {
        "type": "Collection",
        "id": cid,
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "title": conf.title or cid,
        "description": conf.description or conf.title or cid,
        "license": conf.license,
        "keywords": conf.keywords,
        "providers": [provider_entry(b) for b in backends],
        "extent": {
            "spatial": {"bbox": [bbox or WORLD]},
            "temporal": {"interval": [interval or [None, None]]},
        },
        "links": [
            {"rel": "self", "href": url, "type": JSON},
            {"rel": "root", "href": base, "type": JSON},
            {"rel": "parent", "href": base, "type": JSON},
            {"rel": "items", "href": f"{url}/items", "type": GEOJSON},
            {"rel": QUERYABLES, "href": f"{url}/queryables", "type": SCHEMA, "title": "Queryables"},
            {"rel": SORTABLES, "href": f"{url}/sortables", "type": SCHEMA, "title": "Sortables"},
        ],
    }
    return enrich(doc)  # the Sentinel family's summaries, item_assets, licence (mqs/data)


async def all_collections(
    runtime: Runtime,
    base: str,
    ids: Iterable[str] | None = None,
    hidden: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The documents of ``ids`` (default: every collection), in their order."""
    ids = list(runtime.config.collections if ids is None else ids)
    found = (collection_document(runtime, c, base, hidden) for c in ids)
    return list(await asyncio.gather(*found))
