"""CDSE OData answers -> products (pure): the collection envelope, attributes, footprints.

A page is ``{"@odata.context", "@odata.count"?, "value": [...], "@odata.nextLink"?}``; the
count is only there on a first page that asked for it (``$count=true`` without ``$skip``), the
next link only while more products follow. Each product carries ``Name`` (with its ``.SAFE``
suffix), ``ContentDate``, ``Footprint`` (``geography'SRID=4326;<WKT>'``) and ``GeoFootprint``
(GeoJSON; both null for auxiliary files), ``Checksum`` (a list of MD5 and BLAKE3), ``S3Path``,
``Online``/``EvictionDate`` and, with ``$expand=Attributes``, a typed attribute list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_GEOGRAPHY = re.compile(r"^geography'SRID=4326;(?P<wkt>[^']*)'$", re.IGNORECASE)
# multihash prefixes (unsigned-varint code, then digest length): md5 0xd5 -> d5 01, blake3 0x1e
MULTIHASH = {"MD5": ("d50110", 32), "BLAKE3": ("1e20", 64)}


class ODataError(ValueError):
    """The backend answered something else than an OData collection of products."""


@dataclass
class Page:
    products: list[dict[str, Any]]
    count: int | None
    next_link: str | None


def error_message(body: Any) -> str | None:
    """The message of an error body: OData's ``{"error": {...}}`` or FastAPI's ``{"detail"}``."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        return str(message.get("value") if isinstance(message, dict) else message)[:300]
    detail = body.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        detail = detail[0].get("msg")
    elif isinstance(detail, dict):
        detail = detail.get("message", detail)
    return str(detail)[:300] if detail is not None else None


def parse_page(body: Any) -> Page:
    """One ``/Products`` answer; :class:`ODataError` when it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise ODataError(error_message(body) or "not an OData collection of products")
    products = [p for p in body["value"] if isinstance(p, dict)]
    count = body.get("@odata.count")
    link = body.get("@odata.nextLink")
    return Page(
        products,
        count if isinstance(count, int) and not isinstance(count, bool) else None,
        link if isinstance(link, str) and link else None,
    )


def attributes(product: dict[str, Any]) -> dict[str, Any]:
    """``{Name: Value}`` of the product's expanded attributes (first one of a name wins)."""
    found: dict[str, Any] = {}
    for entry in product.get("Attributes") or []:
        if isinstance(entry, dict) and isinstance(entry.get("Name"), str):
            found.setdefault(entry["Name"], entry.get("Value"))
    return found


def footprint(product: dict[str, Any]) -> BaseGeometry | None:
    """The product's footprint as a valid shapely shape: ``GeoFootprint``, else ``Footprint``."""
    try:
        geo = product.get("GeoFootprint")
        if isinstance(geo, dict) and geo.get("type"):
            found = shape(geo)
        elif isinstance(text := product.get("Footprint"), str) and (m := _GEOGRAPHY.match(text)):
            found = shapely.from_wkt(m["wkt"])
        else:
            return None
    except (shapely.errors.GEOSException, ValueError, TypeError, AttributeError, KeyError):
        return None
    if found is None or found.is_empty:
        return None
    if isinstance(found, shapely.MultiPolygon) and len(found.geoms) == 1:
        found = found.geoms[0]
    return found if found.is_valid else shapely.make_valid(found)


def checksum(product: dict[str, Any]) -> str | None:
    """A multihash of the product's file: MD5 when CDSE has one, else BLAKE3."""
    given = {
        str(c.get("Algorithm", "")).upper(): str(c.get("Value", "")).lower()
        for c in product.get("Checksum") or []
        if isinstance(c, dict)
    }
    for algorithm, (prefix, length) in MULTIHASH.items():
        value = given.get(algorithm, "")
        if re.fullmatch(rf"[0-9a-f]{{{length}}}", value):
            return prefix + value
    return None


def quicklook_id(product: dict[str, Any]) -> str | None:
    """The asset id of the product's quick-look (listed only with ``$expand=Assets``)."""
    for asset in product.get("Assets") or []:
        if isinstance(asset, dict) and str(asset.get("Type", "")).upper() == "QUICKLOOK":
            asset_id = str(asset.get("Id", ""))
            return asset_id if UUID.match(asset_id) else None
    return None
