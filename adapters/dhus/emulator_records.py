"""DHuS product records: what a Data Hub holds natively for each STAC item it is given.

A record is the product as DHuS indexes it: its Solr fields (typed: dates, ints, doubles,
strings), the order in which an OpenSearch entry lists them (the recordings in
``tests/fixtures/dhus`` fix that order per mission and level), its footprint and the OData
properties (size, checksum, creation date). Everything derives from the item and the product
name, so every emulated mirror gives a product the same uuid and the same values.
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
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

Item = dict[str, Any]
Layout = tuple[tuple[str, tuple[str, ...]], ...]

NAMESPACE = uuid.UUID("61d388f9-14a5-588c-8842-bc4f87d7da19")  # uuid5 namespace of products

_L2A_SHARES = {
    "vegetationpercentage": "s2:vegetation_percentage",
    "notvegetatedpercentage": "s2:not_vegetated_percentage",
    "waterpercentage": "s2:water_percentage",
    "unclassifiedpercentage": "s2:unclassified_percentage",
    "mediumprobacloudspercentage": "s2:medium_proba_clouds_percentage",
    "highprobacloudspercentage": "s2:high_proba_clouds_percentage",
    "snowicepercentage": "s2:snow_ice_percentage",
}
_S1_INTS: tuple[str, ...] = ("missiondatatakeid", "slicenumber", "orbitnumber", "lastorbitnumber")
_S1_INTS += ("relativeorbitnumber", "lastrelativeorbitnumber")
_S1_STRS: tuple[str, ...] = ("filename", "format", "identifier", "size", "status", "timeliness")
_S1_STRS += ("sensoroperationalmode", "swathidentifier", "orbitdirection", "producttype")
_S1_STRS += ("platformname", "platformidentifier", "instrumentname", "instrumentshortname")
_S1_STRS += ("productclass", "polarisationmode", "acquisitiontype", "gmlfootprint")
_S1_STRS += ("footprint", "uuid")
S1_LAYOUT: Layout = (
    ("date", ("beginposition", "endposition", "ingestiondate")),
    ("int", _S1_INTS),
    ("str", _S1_STRS),
)
_L1C_STRS: tuple[str, ...] = (
    "gmlfootprint",
    "format",
    "instrumentshortname",
    "sensoroperationalmode",
)
_L1C_STRS += ("instrumentname", "footprint", "s2datatakeid", "platformidentifier")
_L1C_STRS += ("orbitdirection", "platformserialidentifier", "processingbaseline")
_L1C_STRS += ("processinglevel", "producttype", "platformname", "size", "tileid")
_L1C_STRS += ("hv_order_tileid", "filename", "identifier", "uuid", "level1cpdiidentifier")
_L1C_STRS += ("granuleidentifier", "datastripidentifier")
S2_L1C_LAYOUT: Layout = (
    ("date", ("datatakesensingstart", "beginposition", "endposition", "ingestiondate")),
    ("int", ("orbitnumber", "relativeorbitnumber")),
    ("double", ("cloudcoverpercentage",)),
    ("str", _L1C_STRS),
)
_L2A_STRS: tuple[str, ...] = ("filename", "gmlfootprint", "format", "identifier")
_L2A_STRS += ("instrumentshortname", "instrumentname", "footprint", "s2datatakeid")
_L2A_STRS += ("platformidentifier", "orbitdirection", "platformserialidentifier")
_L2A_STRS += ("processingbaseline", "processinglevel", "producttype", "platformname", "size")
S2_L2A_LAYOUT: Layout = (  # as recorded: no tileid, no sensoroperationalmode for L2A
    ("date", ("ingestiondate", "beginposition", "endposition")),
    ("int", ("orbitnumber", "relativeorbitnumber")),
    ("double", ("cloudcoverpercentage", *sorted(_L2A_SHARES))),
    ("str", (*_L2A_STRS, "uuid")),
)

DATE_FIELDS = frozenset({"beginposition", "endposition", "ingestiondate", "datatakesensingstart"})
INT_FIELDS = frozenset(_S1_INTS)
DOUBLE_FIELDS = frozenset({*_L2A_SHARES, "cloudcoverpercentage"})
# Every field the Solr schema knows (a query on any other one is "undefined field").
KNOWN_FIELDS = frozenset(
    {n for layout in (S1_LAYOUT, S2_L1C_LAYOUT, S2_L2A_LAYOUT) for _, ns in layout for n in ns}
    | {"creationdate", "generationdate", "productlevel", "mode", "collection", "ondemand"}
    | {"productconsolidation", "platformshortname", "platformnumber", "lastorbitdirection"}
)
_NSSDC = {"S1A": "2014-016A", "S1B": "2016-025A", "S1C": "2024-235A"}
_NSSDC |= {"S2A": "2015-028A", "S2B": "2017-013A", "S2C": "2024-157A"}
_S1_NAME = re.compile(
    r"^(?P<mission>S1[A-D])_(?P<mode>[A-Z0-9]{2})_(?P<type>GRD|SLC|RAW|OCN)[HMF_]_"
    r"\d[SA](?P<pol>[SD][HV]|HH|VV|HV|VH)_(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})_"
    r"(?P<orbit>\d{6})_(?P<take>[0-9A-F]{6})_[0-9A-F]{4}$"
)
_S2_NAME = re.compile(
    r"^(?P<mission>S2[A-D])_MSI(?P<level>L1C|L2A)_(?P<sensing>\d{8}T\d{6})_N(?P<baseline>\d{4})"
    r"_R(?P<rel>\d{3})_T(?P<tile>\w{5})_(?P<processed>\d{8}T\d{6})$"
)
_POLARISATIONS = {"DV": "VV VH", "DH": "HH HV", "SV": "VV", "SH": "HH"}
# S2: 143 orbits in 10 days; (reference time, absolute orbit, offset of relative = (abs+off)%143+1)
_S2_ORBIT_S = 10 * 86400 / 143
_S2_REFERENCE = {
    "S2A": (datetime(2015, 12, 23, 14, 29, 42, tzinfo=UTC), 2624, 2),
    "S2B": (datetime(2017, 3, 7, 1, 49, tzinfo=UTC), 1, 70),
}


@dataclass(frozen=True, eq=False)
class Product:
    """One archived product: Solr fields in entry order, footprint and OData properties."""

    name: str
    uuid: str
    mission: str  # S1A, S2B, ...
    fields: dict[str, Any]  # Solr field -> datetime | int | float | str
    layout: Layout
    geometry: BaseGeometry
    content_length: int
    md5: str
    created: datetime  # OData CreationDate and ModificationDate
    tile: str  # S2 MGRS tile (also for L2A, whose records do not index it)

    @property
    def family(self) -> str:
        return self.mission[:2]

    @property
    def begin(self) -> datetime:
        value: datetime = self.fields["beginposition"]
        return value

    @property
    def end(self) -> datetime:
        value: datetime = self.fields["endposition"]
        return value

    @property
    def ingestion(self) -> datetime:
        value: datetime = self.fields["ingestiondate"]
        return value


# --- value formats ---------------------------------------------------------------------------
def solr_date(moment: datetime) -> str:
    """Solr's date form: milliseconds without trailing zeros (``...42.03Z``, ``...29Z``)."""
    ms = f"{moment.microsecond // 1000:03d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms}" if ms else "") + "Z"


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def solr_text(value: Any) -> str:
    """A field value as DHuS prints it (every value is a string in its answers)."""
    if isinstance(value, datetime):
        return solr_date(value)
    if isinstance(value, float):
        return repr(value)  # Java's Double.toString for the values met here: 10.0, 0.0082
    return str(value)


def size_text(size: int) -> str:
    """``1.59 GB``, ``233.95 MB``: binary units, two decimals."""
    value, unit = float(size), "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            break
        value /= 1024
    return f"{value:.2f} {unit}"


def parse_instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [Polygon(box(*geometry.bounds).exterior)]


def wkt_footprint(geometry: BaseGeometry, family: str) -> str:
    """S1: ``POLYGON ((x y,x y))`` with 6 decimals; S2: ``MULTIPOLYGON (((x y, x y)))``."""
    if family == "S1":
        rings = [
            ",".join(f"{x:.6f} {y:.6f}" for x, y in p.exterior.coords) for p in _polygons(geometry)
        ]
        if len(rings) == 1:
            return f"POLYGON (({rings[0]}))"
        return "MULTIPOLYGON (" + ",".join(f"(({r}))" for r in rings) + ")"
    parts = [
        ", ".join(f"{_number(x)} {_number(y)}" for x, y in orient(p).exterior.coords)
        for p in _polygons(geometry)
    ]
    return "MULTIPOLYGON (" + ", ".join(f"(({r}))" for r in parts) + ")"


def gml_footprint(geometry: BaseGeometry, family: str) -> str:
    """The GML polygon DHuS shows (``lat,lon`` pairs; S2 rings clockwise as in MTD files)."""
    polygon = _polygons(geometry)[0]
    if family == "S1":
        coords = " ".join(f"{y:.6f},{x:.6f}" for x, y in polygon.exterior.coords)
    else:
        ring = list(orient(polygon).exterior.coords)[::-1]
        coords = " ".join(f"{_number(y)},{_number(x)}" for x, y in ring)
    return (
        '<gml:Polygon srsName="http://www.opengis.net/gml/srs/epsg.xml#4326" '
        'xmlns:gml="http://www.opengis.net/gml">\n   <gml:outerBoundaryIs>\n'
        f"      <gml:LinearRing>\n         <gml:coordinates>{coords}</gml:coordinates>\n"
        "      </gml:LinearRing>\n   </gml:outerBoundaryIs>\n</gml:Polygon>"
    )


def _unit(*parts: object) -> float:
    """A stable number in [0, 1) from ``parts``."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


# --- STAC item -> record -----------------------------------------------------------------------
def product_name(item: Item) -> str:
    """The product name: ``s2:product_uri`` without ``.SAFE`` when present, else the item id."""
    uri = item.get("properties", {}).get("s2:product_uri")
    name = str(uri) if uri else str(item["id"])
    return name.removesuffix(".SAFE").removesuffix(".zip")


def _mission(item: Item, name: str) -> str:
    if re.match(r"^S[12][A-D]_", name):
        return name[:3]
    props = item.get("properties", {})
    platform = str(props.get("platform") or props.get("constellation") or "")
    family = "S1" if "1" in platform or "sentinel-1" in str(item.get("collection")) else "S2"
    suffix = platform[-1:].upper() if platform[-1:].lower() in "abcd" and platform else "A"
    return family + suffix


def _times(props: Item) -> tuple[datetime, datetime, datetime]:
    begin = parse_instant(props.get("start_datetime") or props["datetime"])
    end = parse_instant(props.get("end_datetime") or props.get("datetime") or begin.isoformat())
    created = props.get("created")
    return begin, end, parse_instant(created) if created else begin + timedelta(hours=3)


def _asset_size(item: Item, name: str, family: str, level: str) -> int:
    for key in ("product", *item.get("assets", {})):
        size = item.get("assets", {}).get(key, {}).get("file:size")
        if isinstance(size, int) and size > 0:
            return size
    low, high = {"S1GRD": (1600, 1800), "S1SLC": (4000, 8000), "S2L1C": (600, 800)}.get(
        family + level, (800, 1100)
    )
    return int((low + (high - low) * _unit("size", name)) * 2**20)


def _asset_md5(item: Item, name: str) -> str:
    for asset in item.get("assets", {}).values():
        checksum = str(asset.get("file:checksum", ""))
        if checksum.startswith("d50110") and len(checksum) == 38:
            return checksum[6:].lower()
    return hashlib.md5(name.encode()).hexdigest()


def _common(item: Item, name: str, mission: str) -> dict[str, Any]:
    props = item.get("properties", {})
    begin, end, ingestion = _times(props)
    geometry = item.get("geometry")
    geom = shape(geometry) if geometry else box(*item["bbox"][:2], *item["bbox"][-2:])
    fields: dict[str, Any] = {"beginposition": begin, "endposition": end}
    fields |= {"ingestiondate": ingestion, "identifier": name, "filename": f"{name}.SAFE"}
    fields |= {"uuid": str(uuid.uuid5(NAMESPACE, name)), "format": "SAFE"}
    fields |= {"platformname": f"Sentinel-{mission[1]}", "platformidentifier": _NSSDC.get(mission)}
    fields["footprint"] = wkt_footprint(geom, mission[:2])
    fields["gmlfootprint"] = gml_footprint(geom, mission[:2])
    fields["_geometry"] = geom
    if props.get("sat:orbit_state"):
        fields["orbitdirection"] = str(props["sat:orbit_state"]).upper()
    if props.get("sat:absolute_orbit") is not None:
        fields["orbitnumber"] = int(props["sat:absolute_orbit"])
    if props.get("sat:relative_orbit") is not None:
        fields["relativeorbitnumber"] = int(props["sat:relative_orbit"])
    return fields


def _s1_fields(item: Item, name: str, fields: dict[str, Any]) -> str:
    props = item.get("properties", {})
    parts = m.groupdict() if (m := _S1_NAME.match(name)) else {}
    mode = str(props.get("sar:instrument_mode") or parts.get("mode") or "IW")
    kind = str(parts.get("type") or props.get("sar:product_type") or "GRD")
    pols = props.get("sar:polarizations")
    pol = " ".join(pols) if pols else _POLARISATIONS.get(parts.get("pol", ""), "VV VH")
    orbit = fields.get("orbitnumber", int(parts.get("orbit", 0)))
    offset = 27 if name.startswith("S1B") else 73
    rel = fields.get("relativeorbitnumber", (orbit - offset) % 175 + 1)
    hour = fields["beginposition"].hour
    if parts and not props.get("end_datetime"):  # the name holds the stop time
        fields["endposition"] = max(fields["beginposition"], _stamp(parts["stop"]))
    fields.setdefault("orbitdirection", "ASCENDING" if hour >= 12 else "DESCENDING")
    fields |= {"orbitnumber": orbit, "lastorbitnumber": orbit, "relativeorbitnumber": rel}
    fields |= {"lastrelativeorbitnumber": rel, "producttype": kind, "polarisationmode": pol}
    fields |= {"missiondatatakeid": int(parts.get("take", "0"), 16)}
    fields |= {"slicenumber": 1 + int(20 * _unit("slice", name)), "status": "ARCHIVED"}
    fields |= {"sensoroperationalmode": mode, "timeliness": "Fast-24h", "productclass": "S"}
    fields |= {"swathidentifier": f"{mode}1 {mode}2 {mode}3" if kind == "SLC" else mode}
    fields |= {"acquisitiontype": "NOMINAL", "instrumentshortname": "SAR-C SAR"}
    fields["instrumentname"] = "Synthetic Aperture Radar (C-band)"
    return kind


def _s2_orbit(mission: str, begin: datetime, rel: int | None) -> int:
    ref_time, ref_orbit, offset = _S2_REFERENCE.get(mission, _S2_REFERENCE["S2A"])
    orbit = ref_orbit + round((begin - ref_time).total_seconds() / _S2_ORBIT_S)
    if rel is not None:
        orbit += ((rel - ((orbit + offset) % 143 + 1)) + 71) % 143 - 71
    return orbit


def _s2_names(fields: dict[str, Any], parts: dict[str, str], mission: str) -> None:
    sensing = parts.get("sensing") or fields["beginposition"].strftime("%Y%m%dT%H%M%S")
    processed = parts.get("processed") or fields["ingestiondate"].strftime("%Y%m%dT%H%M%S")
    baseline, orbit = fields["processingbaseline"], fields["orbitnumber"]
    tail = f"A{orbit:06d}_T{fields['tileid']}_N{baseline}"
    tile_id = f"{mission}_OPER_MSI_L1C_TL_EPAE_{processed}_{tail}"
    fields |= {"s2datatakeid": f"G{mission}_{sensing}_{orbit:06d}_N{baseline}"}
    fields |= {"level1cpdiidentifier": tile_id, "granuleidentifier": tile_id}
    fields["datastripidentifier"] = (
        f"{mission}_OPER_MSI_L1C_DS_EPAE_{processed}_S{sensing}_N{baseline}"
    )


def _s2_fields(item: Item, name: str, fields: dict[str, Any], mission: str) -> str:
    props = item.get("properties", {})
    parts = m.groupdict() if (m := _S2_NAME.match(name)) else {}
    level = parts.get("level") or str(props.get("processing:level") or "L2A").upper()
    tile = str(props.get("grid:code") or props.get("s2:mgrs_tile") or parts.get("tile") or "")
    tile = tile.removeprefix("MGRS-") or "33UXQ"
    digits = parts.get("baseline") or str(props.get("s2:processing_baseline", "05.00"))
    baseline = digits if "." in digits else f"{digits[:2]}.{digits[2:]}"
    rel = fields.get("relativeorbitnumber", int(parts["rel"]) if parts else None)
    orbit = fields.get("orbitnumber") or _s2_orbit(mission, fields["beginposition"], rel)
    fields |= {"orbitnumber": orbit, "relativeorbitnumber": rel if rel else orbit % 143 + 1}
    fields.setdefault("orbitdirection", "DESCENDING")
    fields |= {"tileid": tile, "hv_order_tileid": tile[2] + tile[4] + tile[:2] + tile[3]}
    fields |= {"processingbaseline": baseline, "processinglevel": f"Level-{level[1:]}"}
    fields |= {
        "producttype": f"S2MSI{level[1:]}",
        "platformserialidentifier": f"Sentinel-{mission[1:]}",
    }
    fields |= {"sensoroperationalmode": "INS-NOBS", "instrumentshortname": "MSI"}
    fields |= {
        "instrumentname": "Multi-Spectral Instrument",
        "datatakesensingstart": fields["beginposition"],
    }
    if props.get("eo:cloud_cover") is not None:
        fields["cloudcoverpercentage"] = float(props["eo:cloud_cover"])
    for field, prop in _L2A_SHARES.items():
        if level == "L2A" and props.get(prop) is not None:
            fields[field] = float(props[prop])
    _s2_names(fields, parts, mission)
    return level


def product_from_item(item: Item) -> Product:
    """The record DHuS would hold for ``item`` (any S1/S2 item, even a minimal one)."""
    name = product_name(item)
    mission = _mission(item, name)
    fields = _common(item, name, mission)
    if mission.startswith("S1"):
        level, layout = _s1_fields(item, name, fields), S1_LAYOUT
    else:
        level = _s2_fields(item, name, fields, mission)
        layout = S2_L1C_LAYOUT if level == "L1C" else S2_L2A_LAYOUT
    size = _asset_size(item, name, mission[:2], level)
    fields["size"] = size_text(size)
    geometry, tile = fields.pop("_geometry"), str(fields.get("tileid", ""))
    indexed = {n for _, names in layout for n in names}  # what DHuS's Solr holds for the kind
    fields = {k: v for k, v in fields.items() if v is not None and k in indexed}
    created = fields["ingestiondate"] + timedelta(seconds=30 + int(570 * _unit("created", name)))
    md5 = _asset_md5(item, name)
    return Product(
        name, fields["uuid"], mission, fields, layout, geometry, size, md5, created, tile
    )


def load_items(source: list[Item] | Path | str) -> list[Item]:
    """Items from a list, a JSON list file or a GeoJSON FeatureCollection file."""
    if isinstance(source, str | Path):
        data = orjson.loads(Path(source).read_bytes())
        return list(data["features"] if isinstance(data, dict) else data)
    return list(source)
