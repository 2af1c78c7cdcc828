"""STAC item -> the product record CDSE's catalogue holds for it, and its OData JSON.

Entities are shaped like the recorded answers (``tests/fixtures/cdse``): key order, ``Name``
with ``.SAFE``, instants with six fraction digits and ``Z``, ``ContentLength`` an integer,
``Checksum`` a list of MD5 and BLAKE3 entries with their dates, ``EvictionDate``
``9999-12-31T23:59:59.999999Z`` for products that stay online, typed attributes
(``{"@odata.type": "#OData.CSC.StringAttribute", "Name", "Value", "ValueType"}``) with integer
and double values as JSON numbers. ``Footprint`` is ``geography'SRID=4326;<WKT>'`` and
``GeoFootprint`` the same shape as GeoJSON.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import shapely
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

Item = dict[str, Any]
Attribute = tuple[str, str, Any]  # (Name, ValueType, Value)

NAMESPACE = uuid.UUID("5d4c3b2a-1f0e-4d9c-8b7a-cd5e0d5a7a01")
NEVER = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_S1_NAME = re.compile(
    r"^(?P<mission>S1[A-D])_(?P<mode>[A-Z0-9]{2})_(?P<type>GRD[FHM]|SLC_|RAW_|OCN_)_\d[SA]"
    r"(?P<pol>[SD][HV])_(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})_(?P<orbit>\d{6})_"
    r"(?P<take>[0-9A-F]{6})_[0-9A-F]{4}$"
)
_S2_NAME = re.compile(
    r"^(?P<mission>S2[A-D])_MSI(?P<level>L1C|L2A)_(?P<sensing>\d{8}T\d{6})_N(?P<baseline>\d{4})"
    r"_R(?P<rel>\d{3})_T(?P<tile>\w{5})_(?P<processed>\d{8}T\d{6})$"
)
_POLARISATIONS = {"DV": "VV&VH", "DH": "HH&HV", "SV": "VV", "SH": "HH"}
_S2_ORBIT_S = 10 * 86400 / 143  # 143 orbits in a 10-day cycle
_S2_REFERENCE = {  # mission: (a sensing time, its absolute orbit)
    "S2A": (datetime(2015, 12, 23, 14, 29, 42, tzinfo=UTC), 2624),
    "S2B": (datetime(2017, 3, 7, 1, 49, tzinfo=UTC), 1),
}
PUBLICATION_DELAY = timedelta(minutes=20)  # processingDate -> PublicationDate
_SIZES = {"GRD": 1_700_000_000, "SLC": 4_500_000_000, "L1C": 700_000_000, "L2A": 950_000_000}


@dataclass(frozen=True, eq=False)
class Product:
    """One product of the emulated catalogue."""

    id: str
    name: str  # the CDSE Name, with .SAFE
    collection: str  # Collection/Name
    start: datetime
    end: datetime
    publication: datetime
    geometry: BaseGeometry | None
    attributes: list[Attribute]
    content_length: int
    md5: str
    s3_path: str
    quicklook: str  # asset id

    @property
    def origin(self) -> datetime:
        """OriginDate: when the product reached the ground segment's archive."""
        return self.publication - timedelta(minutes=7)

    @property
    def modification(self) -> datetime:
        return self.publication + timedelta(seconds=41)


def iso6(moment: datetime) -> str:
    """``2014-04-06T01:00:00.000000Z``: CDSE's instants (six fraction digits)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def load_items(source: list[Item] | Path | str) -> list[Item]:
    """Items from a list, a JSON list file or a GeoJSON FeatureCollection file."""
    if isinstance(source, str | Path):
        data = orjson.loads(Path(source).read_bytes())
        return list(data["features"] if isinstance(data, dict) else data)
    return list(source)


def product_name(item: Item) -> str:
    """The Sentinel product name: ``s2:product_uri`` without ``.SAFE`` when present, else the id."""
    uri = item.get("properties", {}).get("s2:product_uri")
    return str(uri or item["id"]).removesuffix(".SAFE").removesuffix(".zip")


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def _times(props: Item) -> tuple[datetime, datetime]:
    start = parse_instant(props.get("start_datetime") or props["datetime"])
    return start, parse_instant(props.get("end_datetime") or props.get("datetime") or iso6(start))


def _attributes(
    props: Item,
    mission: str,
    product_type: str,
    times: tuple[datetime, datetime],
    specific: list[Attribute],
) -> list[Attribute]:
    """The attributes every product has, in the recorded order, around the mission's own.

    The item's ``created`` is the catalogue's ``PublicationDate`` (what the adapter reads back
    as ``created``); the product was processed :data:`PUBLICATION_DELAY` before.
    """
    created = props.get("created")
    start, end = times
    published = parse_instant(created) if created else start + timedelta(hours=2, minutes=20)
    processed = published - PUBLICATION_DELAY
    s1 = mission.startswith("S1")
    return [
        ("origin", "String", "ESA"),
        ("processingDate", "DateTimeOffset", processed),
        *([("processingCenter", "String", "Production Service-SERCO")] if s1 else []),
        ("platformShortName", "String", f"SENTINEL-{mission[1]}"),
        ("productGeneration", "DateTimeOffset", processed),
        ("instrumentShortName", "String", "SAR" if s1 else "MSI"),
        ("platformSerialIdentifier", "String", mission[2]),
        *([("instrumentConfigurationID", "Integer", 7)] if s1 else []),
        *specific,
        ("productType", "String", product_type),
        ("beginningDateTime", "DateTimeOffset", start),
        ("endingDateTime", "DateTimeOffset", end),
    ]


def _s1(item: Item, name: str, mission: str) -> tuple[str, list[Attribute], datetime, datetime]:
    props = item.get("properties", {})
    parts = m.groupdict() if (m := _S1_NAME.match(name)) else {}
    kind = "SLC" if "slc" in str(item.get("collection")) or parts.get("type") == "SLC_" else "GRD"
    mode = str(props.get("sar:instrument_mode") or parts.get("mode") or "IW")
    product_type = name[4:14] if parts else f"{mode}_{'SLC_' if kind == 'SLC' else 'GRDH'}_1S"
    start, end = _times(props)
    if parts and not props.get("end_datetime"):
        end = max(start, _stamp(parts["stop"]))
    pols = props.get("sar:polarizations")
    channels = "&".join(pols) if pols else _POLARISATIONS.get(parts.get("pol", ""), "VV&VH")
    orbit = int(props.get("sat:absolute_orbit") or parts.get("orbit") or 1)
    offset = 27 if mission == "S1B" else 73
    relative = int(props.get("sat:relative_orbit") or (orbit - offset) % 175 + 1)
    state = str(props.get("sat:orbit_state") or ("ascending" if start.hour >= 12 else "descending"))
    swath = f"{mode}1 {mode}2 {mode}3" if kind == "SLC" and mode in ("IW", "EW") else mode
    specific: list[Attribute] = [
        ("datatakeID", "Integer", int(parts.get("take", "0"), 16)),
        ("timeliness", "String", "Fast-24h"),
        ("orbitNumber", "Integer", orbit),
        ("productClass", "String", "S"),
        ("orbitDirection", "String", state.upper()),
        ("operationalMode", "String", mode),
        ("processingLevel", "String", "LEVEL1"),
        ("swathIdentifier", "String", swath),
        ("processorVersion", "String", "3.40"),
        ("relativeOrbitNumber", "Integer", relative),
        ("polarisationChannels", "String", channels),
    ]
    return kind, _attributes(props, mission, product_type, (start, end), specific), start, end


def _s2_orbit(mission: str, start: datetime) -> int:
    reference, orbit = _S2_REFERENCE.get(mission, _S2_REFERENCE["S2A"])
    return orbit + round((start - reference).total_seconds() / _S2_ORBIT_S)


def _s2(item: Item, name: str, mission: str) -> tuple[str, list[Attribute], datetime, datetime]:
    props = item.get("properties", {})
    parts = m.groupdict() if (m := _S2_NAME.match(name)) else {}
    collection_level = "L1C" if "l1c" in str(item.get("collection")) else "L2A"
    level = parts.get("level") or str(props.get("processing:level") or collection_level).upper()
    tile = str(props.get("grid:code") or parts.get("tile") or "33UXQ").removeprefix("MGRS-")
    digits = parts.get("baseline") or str(props.get("s2:processing_baseline", "05.00"))
    version = digits if "." in digits else f"{digits[:2]}.{digits[2:]}"
    start, end = _times(props)
    orbit = int(props.get("sat:absolute_orbit") or _s2_orbit(mission, start))
    relative = int(props.get("sat:relative_orbit") or (parts.get("rel") or orbit % 143 + 1))
    product_type = f"S2MSI{level[1:]}"
    stamp = start.strftime("%Y%m%dT%H%M%S")
    cloud = props.get("eo:cloud_cover")
    specific: list[Attribute] = [
        ("tileId", "String", tile),
        *([("cloudCover", "Double", float(cloud))] if cloud is not None else []),
        ("orbitNumber", "Integer", orbit),
        ("productGroupId", "String", f"G{mission}_{stamp}_{orbit:06d}_N{version}"),
        ("orbitDirection", "String", str(props.get("sat:orbit_state") or "descending").upper()),
        ("operationalMode", "String", "INS-NOBS"),
        ("processingLevel", "String", product_type),
        ("processorVersion", "String", version),
        ("relativeOrbitNumber", "Integer", relative),
    ]
    return level, _attributes(props, mission, product_type, (start, end), specific), start, end


def _mission(item: Item, name: str) -> str:
    if re.match(r"^S[12][A-D]_", name):
        return name[:3]
    props = item.get("properties", {})
    platform = str(props.get("platform") or "")
    family = "S1" if "sentinel-1" in f"{platform} {item.get('collection')}" else "S2"
    return family + (platform[-1].upper() if platform[-1:] in ("a", "b", "c", "d") else "A")


def _md5(item: Item, name: str) -> str:
    for asset in item.get("assets", {}).values():
        digest = str(asset.get("file:checksum", ""))
        if re.fullmatch(r"(d50110|d510)[0-9a-f]{32}", digest):
            return digest[-32:]
    return hashlib.md5(name.encode()).hexdigest()


def _size(item: Item, kind: str) -> int:
    for asset in item.get("assets", {}).values():
        if isinstance(size := asset.get("file:size"), int) and size > 0:
            return size
    return _SIZES.get(kind, 900_000_000)


def product_from_item(item: Item) -> Product:
    """The record CDSE would hold for ``item`` (any S1/S2 item, even a minimal one)."""
    name = product_name(item)
    mission = _mission(item, name)
    if mission.startswith("S1"):
        kind, attributes, start, end = _s1(item, name, mission)
        product_type = next(v for n, _, v in attributes if n == "productType")
        folder = f"Sentinel-1/SAR/{'SLC' if kind == 'SLC' else product_type}"
    else:
        kind, attributes, start, end = _s2(item, name, mission)
        folder = f"Sentinel-2/MSI/{kind}"
    geometry = item.get("geometry")
    bbox = item.get("bbox")
    shape_ = shape(geometry) if geometry else box(*bbox[:2], *bbox[-2:]) if bbox else None
    processed = next(v for n, _, v in attributes if n == "processingDate")
    published = processed + PUBLICATION_DELAY
    return Product(
        id=str(uuid.uuid5(NAMESPACE, name)),
        name=f"{name}.SAFE",
        collection=f"SENTINEL-{mission[1]}",
        start=start,
        end=end,
        publication=published,
        geometry=shape_,
        attributes=attributes,
        content_length=_size(item, kind),
        md5=_md5(item, name),
        s3_path=f"/eodata/{folder}/{start:%Y/%m/%d}/{name}.SAFE",
        quicklook=str(uuid.uuid5(NAMESPACE, f"{name}:quicklook")),
    )


# --- JSON ------------------------------------------------------------------------------------
def attribute_json(name: str, kind: str, value: Any) -> dict[str, Any]:
    shown = iso6(value) if isinstance(value, datetime) else value
    return {
        "@odata.type": f"#OData.CSC.{kind}Attribute",
        "Name": name,
        "Value": shown,
        "ValueType": kind,
    }


def _checksums(p: Product) -> list[dict[str, str]]:
    when = p.publication + timedelta(seconds=40)
    blake3 = hashlib.sha256(p.name.encode()).hexdigest()  # a stand-in: hashlib has no BLAKE3
    return [
        {"Value": p.md5, "Algorithm": "MD5", "ChecksumDate": iso6(when)},
        {
            "Value": blake3,
            "Algorithm": "BLAKE3",
            "ChecksumDate": iso6(when + timedelta(milliseconds=21)),
        },
    ]


def _footprints(p: Product) -> tuple[str | None, dict[str, Any] | None]:
    if p.geometry is None:
        return None, None
    text = shapely.to_wkt(p.geometry, rounding_precision=6, trim=True)
    geo = orjson.loads(orjson.dumps(mapping(p.geometry)))  # tuples -> lists
    return f"geography'SRID=4326;{text}'", geo


def product_json(p: Product, service: str, expand: frozenset[str] = frozenset()) -> dict[str, Any]:
    """One product (``service`` ends with ``/odata/v1/``), with the expanded navigations."""
    footprint, geo = _footprints(p)
    entity: dict[str, Any] = {"@odata.mediaContentType": "application/octet-stream", "Id": p.id}
    entity |= {"Name": p.name, "ContentType": "application/octet-stream"}
    entity |= {
        "ContentLength": p.content_length,
        "OriginDate": iso6(p.origin),
    }
    entity |= {"PublicationDate": iso6(p.publication)}
    entity |= {"ModificationDate": iso6(p.modification)}
    entity |= {"Online": True, "EvictionDate": iso6(NEVER), "S3Path": p.s3_path}
    entity |= {
        "Checksum": _checksums(p),
        "ContentDate": {"Start": iso6(p.start), "End": iso6(p.end)},
    }
    entity |= {"Footprint": footprint, "GeoFootprint": geo}
    if "Attributes" in expand:
        entity["Attributes"] = [attribute_json(*a) for a in p.attributes]
    if "Assets" in expand:
        link = f"{service}Assets({p.quicklook})/$value"
        s3 = f"{p.s3_path.removesuffix('.SAFE')}-ql.jpg"
        entity["Assets"] = [
            {"Type": "QUICKLOOK", "Id": p.quicklook, "DownloadLink": link, "S3Path": s3}
        ]
    return entity
