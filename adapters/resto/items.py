"""A resto product record -> a STAC 1.x Item (pure).

The id is the product name (``title`` without ``.SAFE``), ``datetime`` the sensing start
(``startDate``; ``start_datetime``/``end_datetime`` when ``completionDate`` differs), geometry
the feature's GeoJSON geometry (none for ``[]``/``null``). Values resto uses for "unknown" are
dropped: orbit numbers 0, cloud cover -1 (and any cloud cover of a radar product), download size
0 or -1. The download and quick-look links are the record's own (``services.download.url``,
``thumbnail``/``quicklook``), kept only when they are http(s) URLs.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson
import shapely
from shapely.geometry import shape

from adapters.resto.collections import collection_key, family
from adapters.resto.mapping import Record, as_dict, parse_instant, record_properties
from adapters.stacitem import stac_extensions
from mqs.identity import product_name

_PLATFORM = re.compile(r"^S(\d)([A-D])$")
_NAME_PLATFORM = re.compile(r"^S(\d)([A-D])_")
_S2_NAME = re.compile(r"^S2[A-D]_MSI(L1C|L2A)_\d{8}T\d{6}_N(\d{2})(\d{2})_R\d{3}_T(\d{2}[A-Z]{3})_")
_S1_NAME = re.compile(r"^S1[A-D]_(IW|EW|SM|WV|S[1-6])_(GRD|SLC|RAW|OCN)[HMF_]_\d[SA](SV|SH|DV|DH)")
_S1_POLARISATIONS = {"SV": ["VV"], "SH": ["HH"], "DV": ["VV", "VH"], "DH": ["HH", "HV"]}
_S1_LEVELS = {"RAW": "L0", "GRD": "L1", "SLC": "L1", "OCN": "L2"}
_MODES = frozenset({"IW", "EW", "SM", "WV"})


def instant(moment: datetime) -> str:
    """RFC 3339 UTC with ``Z``: milliseconds, microseconds only when they carry information."""
    spec = "microseconds" if moment.microsecond % 1000 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def _http(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
        return None
    return int(value) if float(value).is_integer() else None


def name_of(record: Record) -> str:
    """The product name: the title (or the archive path's last part) without ``.SAFE``."""
    props = record_properties(record)
    title = props.get("title")
    if not isinstance(title, str) or not title.strip():
        title = props.get("productIdentifier")
    return product_name(title) if isinstance(title, str) else ""


def is_sar(record: Record, name: str) -> bool:
    collection = record_properties(record).get("collection")
    in_s1 = isinstance(collection, str) and collection_key(collection).startswith("sentinel1")
    return in_s1 or name.startswith("S1")


def footprint(geometry: Any) -> Any:
    """The record's geometry as a valid shapely shape, or None (``[]``, ``null``, invalid)."""
    if not isinstance(geometry, dict) or not geometry.get("coordinates"):
        return None
    try:
        found = shape(geometry)
    except (ValueError, TypeError, AttributeError, shapely.errors.GEOSException):
        return None
    if found.is_empty:
        return None
    if found.is_valid:
        return found
    repaired = shapely.make_valid(found)  # may add stray lines: keep the polygons
    if isinstance(repaired, shapely.GeometryCollection):
        parts = [g for g in repaired.geoms if isinstance(g, shapely.Polygon | shapely.MultiPolygon)]
        repaired = shapely.union_all(parts) if parts else None
    return None if repaired is None or repaired.is_empty else repaired


def _times(props: dict[str, Any], start: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {"datetime": instant(start)}
    end = parse_instant(props.get("completionDate"))
    if end is not None and end > start:
        out.update(start_datetime=instant(start), end_datetime=instant(end))
    for key, target in (("published", "created"), ("updated", "updated")):
        if (moment := parse_instant(props.get(key))) is not None:
            out[target] = instant(moment)
    return out


def _platform(props: dict[str, Any], name: str) -> dict[str, Any]:
    found = _PLATFORM.match(str(props.get("platform") or "")) or _NAME_PLATFORM.match(name)
    if found is None:
        return {}
    platform = f"sentinel-{found[1]}{found[2].lower()}"
    instrument = {"1": "sar", "2": "msi"}.get(found[1])
    out: dict[str, Any] = {"platform": platform, "constellation": platform[:-1]}
    return out | ({"instruments": [instrument]} if instrument else {})


def _orbit(props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (absolute := _positive_int(props.get("orbitNumber"))) is not None:
        out["sat:absolute_orbit"] = absolute
    if (relative := _positive_int(props.get("relativeOrbitNumber"))) is not None:
        out["sat:relative_orbit"] = relative
    state = str(props.get("orbitDirection") or "").lower()
    if state in ("ascending", "descending"):
        out["sat:orbit_state"] = state
    return out


def _sentinel2(props: dict[str, Any], name: str, sar: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cloud = props.get("cloudCover")
    if not sar and isinstance(cloud, int | float) and not isinstance(cloud, bool):
        out |= {"eo:cloud_cover": cloud} if 0 <= cloud <= 100 else {}
    if found := _S2_NAME.match(name):
        out["grid:code"] = f"MGRS-{found[4]}"
        out["processing:level"] = found[1]
        out["processing:version"] = f"{found[2]}.{found[3]}"
        out["product:type"] = f"S2MSI{found[1][1:]}"
    return out


def _sentinel1(props: dict[str, Any], name: str) -> dict[str, Any]:
    found = _S1_NAME.match(name)
    kind = family(str(props.get("productType") or ""))
    if found is None or kind not in _S1_LEVELS:
        return {}
    mode = props.get("sensorMode") if props.get("sensorMode") in _MODES else found[1]
    recorded = re.split(r"[&+ ,]", str(props.get("polarisation") or ""))
    polarisations = [p for p in recorded if p in ("HH", "HV", "VH", "VV")]
    return {
        "sar:instrument_mode": mode,
        "sar:frequency_band": "C",
        "sar:center_frequency": 5.405,
        "sar:polarizations": polarisations or _S1_POLARISATIONS[found[3]],
        "sar:product_type": kind,
        "processing:level": _S1_LEVELS[kind],
        "product:type": kind,
    }


def _assets(props: dict[str, Any]) -> dict[str, Any]:
    assets: dict[str, Any] = {}
    download = as_dict(as_dict(props.get("services")).get("download"))
    if href := _http(download.get("url")):
        product: dict[str, Any] = {"href": href, "type": "application/zip", "roles": ["data"]}
        product["title"] = "Product (SAFE zip)"
        if (size := _positive_int(download.get("size"))) is not None:
            product["file:size"] = size
        assets["product"] = product
    if thumbnail := _http(props.get("thumbnail")) or _http(props.get("quicklook")):
        assets["thumbnail"] = {"href": thumbnail, "type": "image/jpeg", "title": "Quick-look"}
        assets["thumbnail"]["roles"] = ["thumbnail"]
    return assets


def _via(props: dict[str, Any]) -> list[dict[str, Any]]:
    links = props.get("links")
    if not isinstance(links, list):
        return []
    own = next(
        (x.get("href") for x in links if isinstance(x, dict) and x.get("rel") == "self"), None
    )
    return [{"rel": "via", "href": own, "type": "application/json"}] if _http(own) else []


def to_item(record: Record, collection: str) -> dict[str, Any] | None:
    """The STAC item of ``record`` in canonical ``collection``; None when it has no name or
    no readable sensing start."""
    props = record_properties(record)
    name = name_of(record)
    start = parse_instant(props.get("startDate"))
    if not name or start is None:
        return None
    sar = is_sar(record, name)
    properties = _times(props, start) | _platform(props, name) | _orbit(props)
    properties |= _sentinel1(props, name) if sar else _sentinel2(props, name, sar)
    assets = _assets(props)
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": stac_extensions(properties, assets),
        "id": name,
        "collection": collection,
        "geometry": None,
        "properties": properties,
        "links": _via(props),
        "assets": assets,
    }
    if (found := footprint(record.get("geometry"))) is not None:
        item["geometry"] = orjson.loads(shapely.to_geojson(found))
        item["bbox"] = list(found.bounds)
    return item
