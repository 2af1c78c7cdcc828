"""A DHuS product record -> a STAC 1.x Item (pure).

Geometry comes from the WKT ``footprint`` (lon lat) or else the GML footprint (lat,lon pairs);
assets are built from the backend's OData paths without asking it anything: the product zip
(``$value``), the SAFE ``manifest.safe`` node and the quick-look.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import orjson
import shapely

from adapters.dhus.collections import ProductSet, collection_of
from adapters.dhus.mapping import Record
from adapters.stacitem import stac_extensions

_GML_COORDS = re.compile(r"<gml:coordinates>([^<]*)</gml:coordinates>")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_UUID = re.compile(r"^[0-9a-fA-F-]{8,64}$")
# DHuS indexes ``tileid`` for Level-1C only; every Sentinel-2 name carries the MGRS tile.
_S2_TILE = re.compile(r"^S2[A-D]_MSIL(?:1C|2A)_\d{8}T\d{6}_N\d{4}_R\d{3}_T(\d{2}[C-X][A-Z]{2})_")
_LEVELS = {"Level-1C": "L1C", "Level-2A": "L2A", "Level-1": "L1", "Level-2": "L2", "Level-0": "L0"}
_INSTRUMENTS = {"S1": "sar", "S2": "msi", "S3": None, "S5": "tropomi"}
_PRODUCT_TYPES = (
    (re.compile(r"^S2[A-D]_MSIL1C_"), "Sentinel-2", "S2MSI1C"),
    (re.compile(r"^S2[A-D]_MSIL2A_"), "Sentinel-2", "S2MSI2A"),
    (re.compile(r"^S1[A-D]_[A-Z0-9]{2}_(GRD|SLC|RAW|OCN)"), "Sentinel-1", None),
    (re.compile(r"^S3[A-D]_(.{11})_"), "Sentinel-3", None),
    (re.compile(r"^S5P_[A-Z]{4}_(.{10})_"), "Sentinel-5 Precursor", None),
)
MD5_MULTIHASH = "d50110"  # multihash: md5 (code 0xd5 as the varint d501), 16 bytes (0x10)


def name_facts(name: str) -> tuple[str | None, str | None]:
    """(platformname, producttype) read off a Sentinel product name, when it tells."""
    for pattern, platform, product_type in _PRODUCT_TYPES:
        found = pattern.match(name)
        if found:
            return platform, product_type or found[1]
    return None, None


def footprint(record: Record) -> Any:
    """The product's footprint as a valid shapely shape, or None."""
    wkt = record.fields.get("footprint")
    try:
        if wkt:
            shape = shapely.from_wkt(wkt)
        elif gml := record.fields.get("gmlfootprint"):
            shape = _gml_polygon(gml)
        else:
            return None
    except (shapely.errors.GEOSException, ValueError):
        return None
    if shape is None or shape.is_empty:
        return None
    if isinstance(shape, shapely.MultiPolygon) and len(shape.geoms) == 1:
        shape = shape.geoms[0]
    return shape if shape.is_valid else shapely.make_valid(shape)


def _gml_polygon(gml: str) -> Any:
    rings = []
    for text in _GML_COORDS.findall(gml):
        pairs = [p.split(",") for p in text.split()]
        rings.append([(float(lon), float(lat)) for lat, lon in pairs])
    if not rings:
        return None
    return shapely.Polygon(rings[0], rings[1:])


def _number(value: str | None, kind: type[int] | type[float]) -> Any:
    try:
        return kind(float(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _platform(record: Record) -> str | None:
    serial = record.fields.get("platformserialidentifier", "")
    found = re.match(r"^Sentinel-(\d)([A-D])$", serial)
    if found:
        return f"sentinel-{found[1]}{found[2].lower()}"
    found = re.match(r"^S(\d)([A-D])_", record.name)
    return f"sentinel-{found[1]}{found[2].lower()}" if found else None


def _properties(record: Record) -> dict[str, Any]:
    f = record.fields
    begin, end = f.get("beginposition"), f.get("endposition")
    props: dict[str, Any] = {"datetime": begin}
    if end and end != begin:
        props.update(start_datetime=begin, end_datetime=end)
    if f.get("ingestiondate"):
        props["created"] = f["ingestiondate"]
    platform = _platform(record)
    if platform:
        props["platform"] = platform
        props["constellation"] = platform[:-1]
        instrument = _INSTRUMENTS.get(f"S{platform[9]}")
        instrument = instrument or f.get("instrumentshortname", "").split(" ")[0].lower() or None
        if instrument:
            props["instruments"] = [instrument]
    if (cloud := _number(f.get("cloudcoverpercentage"), float)) is not None:
        props["eo:cloud_cover"] = cloud
    _sat(f, props)
    _sar(f, props)
    _grid(record, props)
    if f.get("processinglevel"):
        props["processing:level"] = _LEVELS.get(f["processinglevel"], f["processinglevel"])
    if f.get("processingbaseline"):
        props["processing:version"] = f["processingbaseline"]
    if f.get("producttype"):
        props["product:type"] = f["producttype"]
    return props


def _grid(record: Record, props: dict[str, Any]) -> None:
    """``grid:code`` from ``tileid``, else from a Sentinel-2 name (``..._T33UXQ_...``)."""
    tile = record.fields.get("tileid")
    if not tile and (found := _S2_TILE.match(record.name)):
        tile = found[1]
    if tile:
        props["grid:code"] = f"MGRS-{tile}"


def _sat(f: dict[str, str], props: dict[str, Any]) -> None:
    found = {
        "sat:absolute_orbit": _number(f.get("orbitnumber"), int),
        "sat:relative_orbit": _number(f.get("relativeorbitnumber"), int),
        "sat:orbit_state": f.get("orbitdirection", "").lower() or None,
    }
    props.update({k: v for k, v in found.items() if v is not None})


def _sar(f: dict[str, str], props: dict[str, Any]) -> None:
    if f.get("platformname") != "Sentinel-1" and not f.get("polarisationmode"):
        return
    props["sar:frequency_band"] = "C"
    props["sar:center_frequency"] = 5.405
    props["sar:polarizations"] = f.get("polarisationmode", "").split() or ["VV"]
    props["sar:instrument_mode"] = f.get("sensoroperationalmode") or "IW"
    if f.get("producttype"):
        props["sar:product_type"] = f["producttype"]


def odata_product_url(odata_root: str, uuid: str) -> str:
    return f"{odata_root}/Products('{quote(uuid, safe='-')}')"


def _assets(record: Record, odata_root: str) -> dict[str, Any]:
    if not _UUID.match(record.uuid):
        return {}
    product = odata_product_url(odata_root, record.uuid)
    data: dict[str, Any] = {
        "href": f"{product}/$value",
        "type": "application/zip",
        "title": "Product (SAFE zip)",
        "roles": ["data"],
    }
    if record.size is not None:
        data["file:size"] = record.size
    if record.md5 and re.fullmatch(r"[0-9a-fA-F]{32}", record.md5):
        data["file:checksum"] = MD5_MULTIHASH + record.md5.lower()
    assets = {"product": data}
    filename = record.fields.get("filename") or ""
    if _SAFE_NAME.match(filename) and filename.endswith(".SAFE"):
        assets["manifest"] = {
            "href": f"{product}/Nodes('{filename}')/Nodes('manifest.safe')/$value",
            "type": "application/xml",
            "title": "SAFE manifest",
            "roles": ["metadata"],
        }
    assets["thumbnail"] = {
        "href": f"{product}/Products('Quicklook')/$value",
        "type": "image/jpeg",
        "title": "Quick-look",
        "roles": ["thumbnail"],
    }
    return assets


def to_item(record: Record, sets: dict[str, ProductSet], odata_root: str) -> dict[str, Any] | None:
    """The STAC item of ``record``, or None when it is not a product of a served collection."""
    name = record.name
    platform, product_type = record.fields.get("platformname"), record.fields.get("producttype")
    if not platform or not product_type:
        guessed = name_facts(name)
        platform, product_type = platform or guessed[0], product_type or guessed[1]
    collection = collection_of(platform or "", product_type or "", sets)
    shape = footprint(record)
    if collection is None or not name or not record.fields.get("beginposition"):
        return None
    props = _properties(record)
    assets = _assets(record, odata_root)
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": stac_extensions(props, assets),
        "id": name,
        "collection": collection,
        "geometry": None,
        "properties": props,
        "links": [],
        "assets": assets,
    }
    if shape is not None:
        item["geometry"] = orjson.loads(shapely.to_geojson(shape))
        item["bbox"] = list(shape.bounds)
    return item
