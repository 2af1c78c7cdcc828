"""A Terrascope product (OpenSearch GeoJSON feature) -> a STAC 1.x item (pure).

The feature follows the OGC EO-product GeoJSON encoding (OGC 17-003): ``properties.title``,
``date``, ``updated``, ``acquisitionInformation`` (a list of ``platform``/``instrument``/
``acquisitionParameters`` objects, split or combined), ``productInformation`` and ``links``
(``data``, ``previews``, ``alternates``, ``related``: files with ``href``, ``type``,
``length``, ``title``, ``category``). Each file becomes one asset with ``file:size``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson
import shapely
from shapely.geometry import shape

from adapters.base import Hit
from adapters.stacitem import stac_extensions
from adapters.terrascope.collections import TerrascopeCollection
from mqs.errors import InvalidRequest
from mqs.identity import product_name
from mqs.literals import format_instant, parse_instant

SENTINEL_NAME = re.compile(
    r"^(S1[A-D]_[A-Z0-9]{2}_[A-Z0-9_]{4}_\d[A-Z_]{3}_\d{8}T\d{6}_\d{8}T\d{6}_\w{6}_\w{6}_\w{4}"
    r"|S2[A-D]_MSI(L1C|L2A)_\d{8}T\d{6}_N\d{4}_R\d{3}_T\w{5}_\d{8}T\d{6}"
    r"|S3[A-D]_\w{11}_\d{8}T\d{6}_\d{8}T\d{6}_\w+"
    r"|S5P_\w{4}_\w{10}_\d{8}T\d{6}_\d{8}T\d{6}_\w+)$"
)
_SERIAL = re.compile(r"^S(\d)([A-D])$")
_SHORT_NAME = re.compile(r"^sentinel-(\d)$", re.IGNORECASE)
_TILE = re.compile(r"^\d{1,2}[C-X][A-Z]{2}$")
_S1_NAME = re.compile(
    r"^S1[A-D]_(?P<mode>[A-Z0-9]{2})_(?P<type>GRD|SLC|RAW|OCN)._\d[SA](?P<pol>[SD][HV])_"
)
_S1_POLARISATIONS = {"SH": ["HH"], "DH": ["HH", "HV"], "SV": ["VV"], "DV": ["VV", "VH"]}
_INSTRUMENTS = {"1": "sar", "2": "msi", "3": None, "5": "tropomi"}
_KEY = re.compile(r"[^A-Za-z0-9_.\-]+")


def product_id_of(feature: dict[str, Any], title: str, spec: TerrascopeCollection) -> str:
    """The federation's key: the Sentinel product name of a mirror's copy, else the title.

    A derived product whose title could pass for a Sentinel product name is keyed by its
    Terrascope URN instead, so it is never merged with a Sentinel copy.
    """
    name = product_name(title)
    if not spec.derived:
        return name
    if SENTINEL_NAME.match(name):
        own = feature.get("id")
        return own if isinstance(own, str) and own.startswith("urn:") else f"{spec.urn}:{title}"
    return title


def _parsed(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_instant(value)
    except InvalidRequest:  # a malformed instant: the value is unusable
        return None


def _instant(value: Any) -> str | None:
    parsed = _parsed(value)
    return format_instant(parsed) if parsed is not None else None


def acquisition(props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(platform, instrument, acquisitionParameters), merged over the list's objects."""
    platform: dict[str, Any] = {}
    instrument: dict[str, Any] = {}
    params: dict[str, Any] = {}
    info = props.get("acquisitionInformation")
    for entry in info if isinstance(info, list) else [info]:
        if not isinstance(entry, dict):
            continue
        for target, key in ((platform, "platform"), (instrument, "instrument")):
            if isinstance(entry.get(key), dict):
                target.update(entry[key])
        if isinstance(entry.get("acquisitionParameters"), dict):
            params.update(entry["acquisitionParameters"])
    return platform, instrument, params


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mission(platform: dict[str, Any], props: dict[str, Any]) -> str | None:
    serial = _SERIAL.match(str(platform.get("platformSerialIdentifier", "")))
    if serial:
        props["platform"] = f"sentinel-{serial[1]}{serial[2].lower()}"
    short = _SHORT_NAME.match(str(platform.get("platformShortName", "")))
    digit = serial[1] if serial else short[1] if short else None
    if digit:
        props["constellation"] = f"sentinel-{digit}"
    return digit


def _orbit(params: dict[str, Any], props: dict[str, Any]) -> None:
    direction = params.get("orbitDirection")
    if isinstance(direction, str) and direction.lower() in ("ascending", "descending"):
        props["sat:orbit_state"] = direction.lower()
    if (absolute := _int(params.get("orbitNumber"))) is not None and absolute >= 0:
        props["sat:absolute_orbit"] = absolute
    if (relative := _int(params.get("relativeOrbitNumber"))) is not None and relative >= 1:
        props["sat:relative_orbit"] = relative
    tile = params.get("tileId")
    if isinstance(tile, str) and _TILE.match(tile):
        props["grid:code"] = f"MGRS-{tile}"


def _sar(name: str, params: dict[str, Any], info: dict[str, Any], props: dict[str, Any]) -> None:
    """The sar fields of a Sentinel-1 product: the record's own values, else its name's."""
    parts = m.groupdict() if (m := _S1_NAME.match(name)) else {}
    channels = params.get("polarisationChannels")
    pols = [p.strip() for p in channels.split(",")] if isinstance(channels, str) else []
    pols = [p for p in pols if p in ("HH", "HV", "VH", "VV")]
    pols = pols or _S1_POLARISATIONS.get(parts.get("pol", ""), [])
    mode = params.get("operationalMode") or parts.get("mode")
    product_type = parts.get("type") or info.get("productType")
    if not (pols and isinstance(mode, str) and isinstance(product_type, str)):
        return
    props["sar:instrument_mode"] = mode
    props["sar:frequency_band"] = "C"
    props["sar:center_frequency"] = 5.405
    props["sar:polarizations"] = list(dict.fromkeys(pols))
    props["sar:product_type"] = product_type


def _product_info(info: dict[str, Any], props: dict[str, Any]) -> None:
    cloud = info.get("cloudCover")
    if isinstance(cloud, int | float) and not isinstance(cloud, bool) and 0 <= cloud <= 100:
        props["eo:cloud_cover"] = float(cloud)
    if isinstance(info.get("productType"), str) and info["productType"]:
        props["product:type"] = info["productType"]
    if isinstance(info.get("productVersion"), str) and info["productVersion"]:
        props["processing:version"] = info["productVersion"]
    if isinstance(info.get("processingCenter"), str) and info["processingCenter"]:
        props["processing:facility"] = info["processingCenter"]
    if (processed := _instant(info.get("processingDate"))) is not None:
        props["processing:datetime"] = processed


def properties(name: str, props: dict[str, Any]) -> dict[str, Any] | None:
    """The STAC properties of a product; None without a usable acquisition time."""
    platform, instrument, params = acquisition(props)
    begin = _parsed(params.get("beginningDateTime")) or _parsed(props.get("date"))
    if begin is None:
        return None
    out: dict[str, Any] = {"datetime": format_instant(begin)}
    end = _parsed(params.get("endingDateTime"))
    if end is not None and end > begin:
        out.update(start_datetime=format_instant(begin), end_datetime=format_instant(end))
    created = _instant(props.get("published")) or _instant(props.get("available"))
    if created is not None:
        out["created"] = created
    if (updated := _instant(props.get("updated"))) is not None:
        out["updated"] = updated
    digit = _mission(platform, out)
    short = instrument.get("instrumentShortName")
    default = _INSTRUMENTS.get(digit or "")
    if default or (isinstance(short, str) and short):
        out["instruments"] = [default or str(short).lower()]
    _orbit(params, out)
    info = props.get("productInformation")
    info = info if isinstance(info, dict) else {}
    _product_info(info, out)
    if digit == "1":
        _sar(name, params, info, out)
    return out


def _asset_key(link: dict[str, Any], fallback: str) -> str:
    title = link.get("title")
    text = title if isinstance(title, str) and title else fallback
    return _KEY.sub("_", text).strip("_") or fallback


def _asset(link: dict[str, Any], roles: list[str]) -> dict[str, Any] | None:
    href = link.get("href")
    if not isinstance(href, str) or not href.startswith(("https://", "http://", "file:///")):
        return None
    asset: dict[str, Any] = {"href": href}
    if isinstance(link.get("type"), str):
        asset["type"] = link["type"]
    if isinstance(link.get("title"), str):
        asset["title"] = link["title"]
    asset["roles"] = roles
    if (size := _int(link.get("length"))) is not None and size >= 0:
        asset["file:size"] = size
    return asset


def _file_stem(href: str) -> str:
    return product_name(href.rsplit("/", 1)[-1])


def _link_assets(links: dict[str, Any], product_id: str, mirror: bool) -> dict[str, Any]:
    """Every file of ``links`` as an asset; a mirror's product archive is ``product``."""
    assets: dict[str, Any] = {}

    def add(key: str, asset: dict[str, Any] | None) -> None:
        if asset is None:
            return
        unique, n = key, 2
        while unique in assets:
            unique, n = f"{key}-{n}", n + 1
        assets[unique] = asset

    for i, link in enumerate(_files(links, "data")):
        asset = _asset(link, ["data"])
        whole = mirror and asset is not None and _file_stem(asset["href"]) == product_id
        add("product" if whole else _asset_key(link, f"data-{i + 1}"), asset)
    for i, link in enumerate(_files(links, "previews")):
        key = "thumbnail" if i == 0 else f"preview-{_asset_key(link, str(i + 1))}"
        add(key, _asset(link, ["thumbnail"] if i == 0 else ["overview"]))
    for link in _files(links, "alternates"):
        add("metadata", _asset(link, ["metadata"]))
    for i, link in enumerate(_files(links, "related")):
        category = link.get("category")
        roles = [category.lower()] if isinstance(category, str) and category else ["metadata"]
        add(_asset_key(link, f"related-{i + 1}"), _asset(link, roles))
    return assets


def _files(links: dict[str, Any], rel: str) -> list[dict[str, Any]]:
    found = links.get(rel)
    return [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []


def _geometry(feature: dict[str, Any]) -> Any:
    try:
        geom = shape(feature["geometry"])
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException):
        return None
    if geom.is_empty:
        return None
    return geom if geom.is_valid else shapely.make_valid(geom)


def to_hit(feature: Any, collection: str, spec: TerrascopeCollection) -> Hit | None:
    """The STAC item of one feature of ``collection``; None when it is not a usable product."""
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        return None
    props = feature["properties"]
    title = props.get("title")
    if not isinstance(title, str) or not title.strip():
        return None
    product_id = product_id_of(feature, title.strip(), spec)
    properties_ = properties(product_name(title), props)
    if properties_ is None:
        return None
    links = props.get("links") if isinstance(props.get("links"), dict) else {}
    assets = _link_assets(links, product_id, not spec.derived)
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": stac_extensions(properties_, assets),
        "id": product_id,
        "collection": collection,
        "geometry": None,
        "properties": properties_,
        "links": [],
        "assets": assets,
    }
    if (geom := _geometry(feature)) is not None:
        item["geometry"] = orjson.loads(shapely.to_geojson(geom))
        item["bbox"] = list(geom.bounds)
    return Hit(product_id, item)
