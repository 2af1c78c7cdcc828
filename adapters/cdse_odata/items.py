"""A CDSE OData product -> a STAC 1.x Item (pure).

The item id is the product ``Name`` without ``.SAFE``/``.SEN3`` (the Sentinel product name the
federation de-duplicates on); ``datetime`` is ``ContentDate/Start`` (sensing start). Properties
come from the expanded attributes only, so that the ``query`` clauses :mod:`.query` pushes down
select exactly the items that carry the property. Two CDSE-specific properties are kept:
``cdse:online`` (``Online``: in the online archive, not to be restored from tape first) and
``cdse:eviction_date`` (``EvictionDate``: when an online copy is due to leave the cache).

Assets are built from the configured URL and the product's ``Id``, never copied from the answer:
``product`` (``/odata/v1/Products(<Id>)/$value``, a zip; downloading needs a CDSE bearer
token) with ``file:size``/``file:checksum`` and the ``S3Path`` as alternate ``s3`` href, and a
``thumbnail`` (``/odata/v1/Assets(<Id>)/$value``) when the answer lists a quick-look.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson
import shapely

from adapters.cdse_odata.collections import ProductSet, collection_of
from adapters.cdse_odata.mapping import UUID, attributes, checksum, footprint, quicklook_id
from adapters.cdse_odata.query import NAME_SUFFIXES
from adapters.stacitem import stac_extensions

_PREFIXES = {"S1": "SENTINEL-1", "S2": "SENTINEL-2", "S3": "SENTINEL-3", "S5": "SENTINEL-5P"}
_INSTRUMENTS = {"SENTINEL-1": "sar", "SENTINEL-2": "msi"}
_LEVELS = {"LEVEL0": "L0", "LEVEL1": "L1", "LEVEL2": "L2", "S2MSI1C": "L1C", "S2MSI2A": "L2A"}
_S3_PATH = re.compile(r"^/eodata/[A-Za-z0-9_.+\-]+(/[A-Za-z0-9_.+\-]+)*$")
_SAR_TYPE = re.compile(r"^[A-Z0-9]{2}_(GRD|SLC|RAW|OCN)")


def product_id(name: str) -> str:
    """The Sentinel product name: the CDSE ``Name`` without its ``.SAFE``/``.SEN3`` suffix."""
    for suffix in NAME_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def cdse_collection(attrs: dict[str, Any], name: str) -> str:
    """The CDSE collection of a product: ``platformShortName``, else its name's mission."""
    platform = attrs.get("platformShortName")
    if isinstance(platform, str) and platform:
        return platform.upper()
    return _PREFIXES.get(name[:2], "")


def _instant(value: Any) -> str | None:
    """An ISO 8601 instant as CDSE gives it (kept as is), or None when it is not one."""
    if not isinstance(value, str) or not value[:4].isdigit():
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _platform(attrs: dict[str, Any], props: dict[str, Any]) -> None:
    short, serial = (
        _string(attrs.get("platformShortName")),
        _string(attrs.get("platformSerialIdentifier")),
    )
    found = re.match(r"^SENTINEL-(\d)", short or "")
    if found is None:
        return
    props["constellation"] = f"sentinel-{found[1]}"
    if serial and re.fullmatch(r"[A-Da-d]", serial):
        props["platform"] = f"sentinel-{found[1]}{serial.lower()}"
    instrument = _INSTRUMENTS.get(short or "") or (_string(attrs.get("instrumentShortName")) or "")
    if instrument:
        props["instruments"] = [instrument.lower()]


def _sat_and_eo(attrs: dict[str, Any], props: dict[str, Any]) -> None:
    cloud = attrs.get("cloudCover")
    if isinstance(cloud, int | float) and not isinstance(cloud, bool):
        props["eo:cloud_cover"] = float(cloud)
    found = {
        "sat:absolute_orbit": _int(attrs.get("orbitNumber")),
        "sat:relative_orbit": _int(attrs.get("relativeOrbitNumber")),
        "sat:orbit_state": (_string(attrs.get("orbitDirection")) or "").lower() or None,
    }
    props.update({k: v for k, v in found.items() if v is not None})


def _sar(attrs: dict[str, Any], props: dict[str, Any]) -> None:
    channels = _string(attrs.get("polarisationChannels"))
    mode = _string(attrs.get("operationalMode"))
    if attrs.get("platformShortName") != "SENTINEL-1" or not channels or not mode:
        return
    props["sar:instrument_mode"] = mode
    props["sar:frequency_band"] = "C"
    props["sar:center_frequency"] = 5.405
    props["sar:polarizations"] = [c for c in re.split(r"[&+ ,]+", channels) if c]
    found = _SAR_TYPE.match(str(attrs.get("productType", "")))
    if found:
        props["sar:product_type"] = found[1]


def _product(attrs: dict[str, Any], props: dict[str, Any]) -> None:
    if tile := _string(attrs.get("tileId")):
        props["grid:code"] = f"MGRS-{tile}"
    if level := _string(attrs.get("processingLevel")):
        props["processing:level"] = _LEVELS.get(level, level)
    if version := _string(attrs.get("processorVersion")):
        props["processing:version"] = version
    if product_type := _string(attrs.get("productType")):
        # The federation's vocabulary (DHuS, STAC APIs, resto): GRD, SLC, OCN, RAW for
        # Sentinel-1, where CDSE says IW_GRDH_1S; a filter on product:type then means the same
        # on every archive (sar:instrument_mode keeps the mode).
        sar = (
            _SAR_TYPE.match(product_type)
            if attrs.get("platformShortName") == "SENTINEL-1"
            else None
        )
        props["product:type"] = sar[1] if sar else product_type


def properties(product: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    content = product.get("ContentDate") or {}
    start, end = _instant(content.get("Start")), _instant(content.get("End"))
    props: dict[str, Any] = {"datetime": start}
    if end and end != start:
        props.update(start_datetime=start, end_datetime=end)
    for key, field in (("created", "PublicationDate"), ("updated", "ModificationDate")):
        if value := _instant(product.get(field)):
            props[key] = value
    _platform(attrs, props)
    _sat_and_eo(attrs, props)
    _sar(attrs, props)
    _product(attrs, props)
    if isinstance(product.get("Online"), bool):
        props["cdse:online"] = product["Online"]
    if eviction := _instant(product.get("EvictionDate")):
        props["cdse:eviction_date"] = eviction
    return props


def _download(product: dict[str, Any], odata_root: str) -> dict[str, Any]:
    asset: dict[str, Any] = {
        "href": f"{odata_root}/Products({product['Id']})/$value",
        "type": "application/zip",
        "title": "Product (zip; download with a CDSE access token)",
        "roles": ["data"],
    }
    size = _int(product.get("ContentLength"))
    if size:
        asset["file:size"] = size
    if digest := checksum(product):
        asset["file:checksum"] = digest
    path = product.get("S3Path")
    if isinstance(path, str) and _S3_PATH.match(path) and "/../" not in f"{path}/":
        s3 = {"href": f"s3:/{path}", "title": "CDSE S3 (eodata)", "alternate:name": "S3"}
        asset["alternate"] = {"s3": s3}
    return asset


def assets(product: dict[str, Any], odata_root: str) -> tuple[dict[str, Any], list[str]]:
    """The item's assets and the extensions they use."""
    download = _download(product, odata_root)
    found = {"product": download}
    if (asset_id := quicklook_id(product)) is not None:
        found["thumbnail"] = {
            "href": f"{odata_root}/Assets({asset_id})/$value",
            "type": "image/jpeg",
            "title": "Quick-look",
            "roles": ["thumbnail"],
        }
    extensions = ["alternate-assets/v1.2.0"] if "alternate" in download else []
    if "file:size" in download or "file:checksum" in download:
        extensions.append("file/v2.1.0")
    return found, extensions


def to_item(
    product: dict[str, Any], sets: dict[str, ProductSet], odata_root: str
) -> dict[str, Any] | None:
    """The STAC item of ``product``, or None when it is not a product of a served collection."""
    name = product.get("Name")
    if not isinstance(name, str) or not name or not UUID.match(str(product.get("Id", ""))):
        return None
    attrs = attributes(product)
    kind = attrs.get("productType")
    collection = collection_of(cdse_collection(attrs, name), str(kind or ""), sets)
    props = properties(product, attrs)
    if collection is None or props["datetime"] is None:
        return None
    found, _ = assets(product, odata_root)
    product_url = f"{odata_root}/Products({product['Id']})"
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": stac_extensions(props, found),
        "id": product_id(name),
        "collection": collection,
        "geometry": None,
        "properties": props,
        "links": [{"rel": "via", "href": product_url, "type": "application/json"}],
        "assets": found,
    }
    if (shape := footprint(product)) is not None:
        item["geometry"] = orjson.loads(shapely.to_geojson(shape))
        item["bbox"] = list(shape.bounds)
    return item
