"""``/queryables`` and ``/sortables``: what a filter or a sort may name, as JSON Schema.

Queryables are the properties the federation's items carry, per collection family (a
Sentinel-1 collection has SAR properties, a Sentinel-2 one cloud cover and a grid code). Any
other property may still be named (``additionalProperties``): it is evaluated by the gateway.
Sortables are the fields every backend serving the collection can order by, since the merge
needs each backend's own stream in that order.
"""

from __future__ import annotations

from typing import Any

import attr
from fastapi import Request
from stac_fastapi.extensions.fields.fields import FieldsConformanceClasses
from stac_fastapi.extensions.filter.client import AsyncBaseFiltersClient
from stac_fastapi.extensions.filter.filter import FilterConformanceClasses as F
from stac_fastapi.extensions.sort.client import AsyncBaseSortablesClient
from stac_fastapi.extensions.sort.sort import SortConformanceClasses

from mqs.auth import require_collection, visible_collections
from mqs.errors import NotFound
from mqs.links import base_url
from mqs.runtime import Runtime

FILTER_CONFORMANCE: list[str] = [
    F.FILTER,
    F.SEARCH,
    F.ITEMS,
    F.CQL2_TEXT,
    F.CQL2_JSON,
    F.BASIC_CQL2,
    F.ADVANCED_COMPARISON_OPERATORS,
    F.BASIC_SPATIAL_FUNCTIONS,
    F.SPATIAL_FUNCTIONS,
    F.TEMPORAL_FUNCTIONS,
    F.ARRAY_FUNCTIONS,
    F.CASE_INSENSITIVE_COMPARISON,
    F.ACCENT_INSENSITIVE_COMPARISON,
]
SORT_CONFORMANCE: list[str] = [
    "https://api.stacspec.org/v1.0.0/item-search#sort",  # the URI pystac-client (QGIS) knows
    SortConformanceClasses.ITEM_SEARCH_SORT,
    SortConformanceClasses.ITEM_SEARCH_SORTABLES,
    SortConformanceClasses.FEATURES_SORT,
    SortConformanceClasses.FEATURES_SORTABLES,
]
FIELDS_CONFORMANCE: list[str] = [FieldsConformanceClasses.SEARCH, FieldsConformanceClasses.ITEMS]

_INSTANT = {"type": "string", "format": "date-time"}
_TEXT = {"type": "string"}

COMMON: dict[str, dict[str, Any]] = {
    "id": {"title": "Product name", **_TEXT},
    "collection": {"title": "Collection", **_TEXT},
    "geometry": {"title": "Footprint", "$ref": "https://geojson.org/schema/Geometry.json"},
    "datetime": {"title": "Acquisition time", **_INSTANT},
    "start_datetime": {"title": "Acquisition start", **_INSTANT},
    "end_datetime": {"title": "Acquisition end", **_INSTANT},
    "created": {"title": "Published by the archive", **_INSTANT},
    "updated": {"title": "Metadata updated", **_INSTANT},
    "platform": {"title": "Satellite", **_TEXT},
    "constellation": {"title": "Constellation", **_TEXT},
    "instruments": {"title": "Instruments", "type": "array", "items": _TEXT},
    "product:type": {"title": "Product type", **_TEXT},
    "processing:level": {"title": "Processing level", **_TEXT},
    "sat:orbit_state": {"title": "Orbit direction", "enum": ["ascending", "descending"]},
    "sat:relative_orbit": {"title": "Relative orbit", "type": "integer", "minimum": 1},
    "sat:absolute_orbit": {"title": "Absolute orbit", "type": "integer", "minimum": 1},
}
FAMILIES: dict[str, dict[str, dict[str, Any]]] = {
    "sentinel-1": {
        "sar:instrument_mode": {"title": "Acquisition mode", "enum": ["IW", "EW", "SM", "WV"]},
        "sar:polarizations": {
            "title": "Polarisations",
            "type": "array",
            "items": {"enum": ["HH", "HV", "VV", "VH"]},
        },
    },
    "sentinel-2": {
        "eo:cloud_cover": {"title": "Cloud cover (%)", "type": "number", "minimum": 0},
        "grid:code": {"title": "MGRS tile (MGRS-33UXQ)", **_TEXT},
    },
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.mqs
    return runtime


def collection_queryables(collection_id: str) -> dict[str, dict[str, Any]]:
    """The properties items of ``collection_id`` carry (by its Sentinel family)."""
    properties = dict(COMMON)
    for family, extra in FAMILIES.items():
        if collection_id.startswith(family):
            properties.update(extra)
    return properties


def _schema(url: str, title: str, properties: dict[str, Any], more: bool = True) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": title,
        "properties": properties,
        "additionalProperties": more,
    }


async def _known(request: Request, collection_id: str | None) -> list[str]:
    """The collections the answer covers: ``collection_id`` (401/403 when the user may not see
    it, :mod:`mqs.auth`), else every collection the user may see (never another's names)."""
    runtime = _runtime(request)
    if collection_id is None:
        return list(await visible_collections(request, runtime.config.collections))
    if collection_id not in runtime.config.collections:
        raise NotFound(f"collection {collection_id[:100]!r} not found")
    await require_collection(request, collection_id)
    return [collection_id]


def queryables(base: str, collection_id: str | None, known: list[str]) -> dict[str, Any]:
    """The queryables of ``collection_id`` (None: of all ``known`` collections)."""
    properties: dict[str, Any] = {}
    for cid in known:
        properties.update(collection_queryables(cid))
    properties["collection"] = {**COMMON["collection"], "enum": known}
    where = f"collections/{collection_id}/" if collection_id else ""
    return _schema(f"{base}{where}queryables", "Queryables", properties)


def sortable_fields(runtime: Runtime, collection_ids: list[str]) -> dict[str, Any]:
    """Scalar queryables every backend serving ``collection_ids`` can order by."""
    properties = {
        name: spec
        for cid in collection_ids
        for name, spec in collection_queryables(cid).items()
        if spec.get("type") != "array" and name not in ("geometry", "collection")
    }
    for member, _ in runtime.federation.members_for(tuple(collection_ids)):
        sortable = member.adapter.capabilities.sortable
        if sortable is not None:
            properties = {k: v for k, v in properties.items() if k in sortable}
    return properties


def sortables(
    runtime: Runtime, base: str, collection_id: str | None, known: list[str]
) -> dict[str, Any]:
    """The sortables of ``collection_id`` (None: of all ``known`` collections)."""
    properties = sortable_fields(runtime, known)
    where = f"collections/{collection_id}/" if collection_id else ""
    return _schema(f"{base}{where}sortables", "Sortables", properties, more=False)


@attr.s
class FederationQueryables(AsyncBaseFiltersClient):
    async def get_queryables(
        self, collection_id: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        request: Request = kwargs["request"]
        return queryables(base_url(request), collection_id, await _known(request, collection_id))


@attr.s
class FederationSortables(AsyncBaseSortablesClient):
    async def get_sortables(self, request: Request | None = None, **kwargs: Any) -> dict[str, Any]:
        assert request is not None
        known = await _known(request, None)
        return sortables(_runtime(request), base_url(request), None, known)

    async def get_collection_sortables(
        self, collection_id: str, request: Request | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        assert request is not None
        known = await _known(request, collection_id)
        return sortables(_runtime(request), base_url(request), collection_id, known)

    async def get_collections_sortables(
        self, request: Request | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Collection search takes no ``sortby``: collections come in their configured order."""
        assert request is not None
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{base_url(request)}collections-sortables",
            "type": "object",
            "title": "Sortables of collection search",
            "description": "GET /collections takes no sortby: collections come in the "
            "order of the federation's configuration.",
            "properties": {},
            "additionalProperties": False,
        }
