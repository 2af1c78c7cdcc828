"""Terrascope OpenSearch answers: envelope, echoed request, paging links, collections.

Shaped like the recordings in ``tests/fixtures/terrascope`` (2023 services.terrascope.be
form): ``totalResults``/``startIndex``/``itemsPerPage`` at the top level; the request echoed
in ``id`` and in ``queries.request`` (``geo:box``, ``referrer:accessedFrom``, ``startIndex``,
``sru:sortKeys`` normalised to ``key,,ascending,0,highValue``, ``time:start``/``time:end``
truncated to seconds); ``properties.links`` with ``previous``/``next``/``last``/``first``
carrying the request's parameters in their order and ``startIndex`` moved to the end
(``last`` is ``totalResults - count``, a quirk of the recordings) and a ``search`` link
joined with a second ``?``. Echo keys of parameters no recording shows use OGC 13-026 names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import orjson
import shapely

from adapters.terrascope.emulator_records import Record, iso

CONTEXT = "http://schemas.opengis.net/os-geojson/1.0/os-geojson.jsonld"
GEOJSON = "application/geo+json"
PROFILES = [
    {"href": "http://www.opengis.net/spec/owc-geojson/1.0/req/core"},
    {"href": "http://www.opengis.net/spec/os-geojson/1.0/req/core"},
]
DEFAULT_COUNT = 100
_ECHO = {
    "bbox": "geo:box",
    "geometry": "geo:geometry",
    "uid": "geo:uid",
    "accessedFrom": "referrer:accessedFrom",
    "startIndex": "startIndex",
    "count": "count",
    "sortKeys": "sru:sortKeys",
    "start": "time:start",
    "end": "time:end",
    "cloudCover": "eo:cloudCover",
    "productType": "eo:productType",
    "title": "eo:title",
    "tileId": "eo:tileId",
    "orbitDirection": "eo:orbitDirection",
    "relativeOrbitNumber": "eo:relativeOrbitNumber",
}
_TITLES = {
    "urn:eop:VITO:CGS_S1_GRD_L1": "SENTINEL-1 Level-1 Ground Range Detected (GRD) products",
    "urn:eop:VITO:CGS_S1_SLC_L1": "SENTINEL-1 Level-1 Single Look Complex (SLC) products.",
    "urn:eop:VITO:CGS_S2_L1C": "SENTINEL-2 Level-1C Products (tiles)",
    "urn:eop:VITO:TERRASCOPE_S2_TOC_V2": "Sentinel-2 top-of-canopy reflectance V2",
}
_FRACTION = re.compile(r"\.\d+")


class BadRequest(ValueError):
    """A request the catalogue refuses (HTTP 400)."""


def param_instant(text: str) -> datetime:
    """``2018-08-14T23:59:59.999999999Z`` -> 23:59:59 (fractions dropped), or a date."""
    try:
        value = datetime.fromisoformat(_FRACTION.sub("", text.strip()).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"invalid date: {text}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class Search:
    """One parsed ``/products`` request."""

    params: dict[str, str]
    collection: str
    where: list[Callable[[Record], bool]] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    start_index: int = 1
    count: int = DEFAULT_COUNT


def _encode(params: dict[str, str]) -> str:
    """Form-encoded as Java's URLEncoder does (``:`` -> ``%3A``, ``,`` -> ``%2C``)."""
    return "&".join(f"{k}={quote_plus(v, safe='*')}" for k, v in params.items())


def _echo(search: Search) -> dict[str, Any]:
    echo: dict[str, Any] = {}
    for name, key in _ECHO.items():
        if name not in search.params:
            continue
        value: Any = search.params[name]
        if name in ("startIndex", "count"):
            value = int(value)
        elif name in ("start", "end"):
            value = param_instant(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif name == "sortKeys":
            value = " ".join(f"{k},,{int(asc)},0,highValue" for k, asc in search.sort)
        echo[key] = value
    return echo


def _links(search: Search, total: int, base: str) -> dict[str, Any]:
    rest = {k: v for k, v in search.params.items() if k != "startIndex"}

    def link(rel: str, index: int) -> list[dict[str, str]]:
        href = f"{base}products?{_encode(rest)}&startIndex={index}"
        return [{"href": href, "type": GEOJSON, "title": rel}]

    links: dict[str, Any] = {}
    if search.start_index > 1:
        links["previous"] = link("previous", max(1, search.start_index - search.count))
    if search.start_index - 1 + search.count < total:
        links["next"] = link("next", search.start_index + search.count)
    links["last"] = link("last", max(1, total - search.count))
    links["first"] = link("first", 1)
    extra = {k: search.params[k] for k in ("clientId", "accessedFrom") if search.params.get(k)}
    description = f"{base}description.geojson?collection={search.collection}"
    description += f"?{_encode(extra)}" if extra else ""
    links["search"] = [{"href": description, "type": GEOJSON, "title": "search"}]
    links["profiles"] = PROFILES
    return links


def _head(total: int, links: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": "Product Search result",
        "subtitle": f"Number of results: {total}",
        "creator": "VITO OpenSearch Service",
        "authors": [{"type": "Agent", "name": "VITO"}],
        "updated": iso(datetime.now(UTC).replace(microsecond=0)),
        "lang": "en",
        "links": links,
    }


def products_body(
    search: Search, total: int, features: list[dict[str, Any]], url: str, base: str
) -> dict[str, Any]:
    """A ``/products`` answer: ``url`` is the request's own, ``base`` the service root."""
    return {
        "@context": CONTEXT,
        "type": "FeatureCollection",
        "id": url,
        "totalResults": total,
        "startIndex": search.start_index,
        "itemsPerPage": len(features),
        "queries": {"request": [_echo(search)]},
        "properties": _head(total, _links(search, total, base)),
        "features": features,
    }


def collection_feature(urn: str, records: list[Record], base: str) -> dict[str, Any]:
    """One collection of the ``/collections`` answer, its extent from its products."""
    west, south, east, north = shapely.union_all([r.shape for r in records]).bounds
    first = min(r.begin for r in records)
    platforms = {orjson.dumps(r.platform): r.platform for r in records if r.platform}
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    search = f"{base}description.geojson?collection={urn}"
    acquisition = {"acquisitionParameters": {"beginningDateTime": iso(first)}}
    return {
        "type": "Feature",
        "id": urn,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [west, south, east, north],
        "properties": {
            "title": _TITLES.get(urn, urn.rsplit(":", 1)[-1]),
            "identifier": urn,
            "date": f"{iso(first)}/",
            "updated": iso(max(r.updated for r in records)),
            "lang": "eng",
            "keyword": ["VITO"],
            "publisher": "VITO",
            "authors": [{"type": "Organization", "name": "VITO"}],
            "acquisitionInformation": [{"platform": p} | acquisition for p in platforms.values()],
            "links": {
                "search": [{"href": search, "type": GEOJSON, "title": "OpenSearch entry point"}]
            },
        },
    }


def collections_body(records: list[Record], url: str, base: str) -> dict[str, Any]:
    """The ``/collections`` answer: one feature per collection held."""
    held = sorted({r.urn for r in records})
    features = [collection_feature(u, [r for r in records if r.urn == u], base) for u in held]
    links = {
        "search": [{"href": f"{base}description.geojson", "type": GEOJSON, "title": "search"}],
        "profiles": PROFILES,
    }
    return {
        "@context": CONTEXT,
        "type": "FeatureCollection",
        "id": url,
        "totalResults": len(features),
        "startIndex": 1,
        "itemsPerPage": len(features),
        "queries": {"request": [{}]},
        "properties": _head(len(features), links),
        "features": features,
    }
