"""resto product records: what the CDSE OpenSearch catalogue holds for each STAC item it is given.

A record is rendered like the recorded CDSE answers (``tests/fixtures/resto``): the key order of
the Sentinel-1 pages (2024, with ``polarisation`` and ``swath``) and of the Sentinel-2 pages
(2023-2024, with ``missionTakeId``), ``startDate``/``completionDate`` with 6 fraction digits (CDSE
since September 2024), Sentinel-2 ``completionDate`` equal to ``startDate``, ``productType``
``S2MSI2A``/``IW_GRDH_1S``, ``processingBaseline`` a number, the archive path as
``productIdentifier``, ``gmlgeometry`` in lon,lat order, ``geometry`` ``null`` when there is none.
Everything derives from the item and its name: the same product gets the same uuid everywhere.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

Item = dict[str, Any]

NAMESPACE = uuid.UUID("0e1b4b7e-5c39-5b57-9d35-0f52f6f0a0c1")
_S2 = re.compile(
    r"^(?P<mission>S2[A-D])_MSI(?P<level>L1C|L2A)_(?P<sensing>\d{8}T\d{6})_N(?P<baseline>\d{4})"
    r"_R(?P<rel>\d{3})_T(?P<tile>\d{2}[A-Z]{3})_\d{8}T\d{6}$"
)
_S1 = re.compile(
    r"^(?P<mission>S1[A-D])_(?P<mode>IW|EW|SM|WV|S[1-6])_(?P<type>GRD|SLC|RAW|OCN)(?P<res>[HMF_])"
    r"_(?P<level>\d)(?P<cls>[SA])(?P<pol>SV|SH|DV|DH)_\d{8}T\d{6}_\d{8}T\d{6}_(?P<orbit>\d{6})_"
)
_POLARISATIONS = {"SV": "VV", "SH": "HH", "DV": "VV&VH", "DH": "HH&HV"}
_S1_LEVELS = {"RAW": "LEVEL0", "GRD": "LEVEL1", "SLC": "LEVEL1", "OCN": "LEVEL2"}
LICENSE = {
    "licenseId": "unlicensed",
    "hasToBeSigned": "never",
    "grantedCountries": None,
    "grantedOrganizationCountries": None,
    "grantedFlags": None,
    "viewService": "public",
    "signatureQuota": -1,
    "description": {"shortName": "No license"},
}
DESCRIPTIONS = {
    "SENTINEL-1": "The Sentinel-1 mission is the European Radar Observatory for the Copernicus "
    "joint initiative of the European Commission (EC) and the European Space Agency (ESA).",
    "SENTINEL-2": "The Copernicus Sentinel-2 mission consists of two polar-orbiting satellites "
    "that are positioned in the same sun-synchronous orbit, with a phase difference of 180\u00b0.",
}


@dataclass(frozen=True, eq=False)
class Product:
    """One catalogued product: its searchable values and its rendered feature (``$BASE``)."""

    uuid: str
    collection: str  # SENTINEL-1 | SENTINEL-2
    title: str
    start: datetime
    fields: dict[str, Any]  # the feature's properties, in order; URLs start with $BASE
    geometry: BaseGeometry | None
    geojson: Any

    def feature(self, base: str) -> dict[str, Any]:
        props = orjson.loads(orjson.dumps(self.fields).replace(b"$BASE", base.encode()))
        return {"type": "Feature", "id": self.uuid, "geometry": self.geojson, "properties": props}


def load_items(source: list[Item] | Path | str) -> list[Item]:
    """A list of STAC items, or a JSON file holding a list or a FeatureCollection."""
    if isinstance(source, list):
        return source
    data = orjson.loads(Path(source).read_bytes())
    return list(data["features"] if isinstance(data, dict) else data)


def instant(moment: datetime) -> str:
    """CDSE's form since September 2024: 6 fraction digits and ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _gml(geometry: BaseGeometry) -> str:
    ring = getattr(geometry, "exterior", None) or geometry.envelope.exterior
    coords = " ".join(f"{x},{y}" for x, y in ring.coords)
    return (
        '<gml:Polygon srsName="EPSG:4326"><gml:outerBoundaryIs><gml:LinearRing><gml:coordinates>'
        f"{coords}</gml:coordinates></gml:LinearRing></gml:outerBoundaryIs></gml:Polygon>"
    )


def _sensing(item: Item) -> tuple[datetime, datetime]:
    props = item["properties"]
    start = _moment(props.get("start_datetime") or props["datetime"])
    end = _moment(props.get("end_datetime") or props.get("datetime")) or start
    assert start is not None and end is not None
    return start, end


def _common(item: Item, name: str, collection: str, path: str | None = None) -> dict[str, Any]:
    """The leading fields; Sentinel-1 records list ``productIdentifier`` right after license."""
    start, end = _sensing(item)
    fields: dict[str, Any] = {"collection": collection, "status": "ONLINE", "license": LICENSE}
    if path is not None:
        fields["productIdentifier"] = f"/eodata{path}"
    return fields | {
        "parentIdentifier": None,
        "title": f"{name}.SAFE",
        "description": DESCRIPTIONS[collection],
        "organisationName": None,
        "startDate": instant(start),
        "completionDate": instant(end if collection == "SENTINEL-1" else start),
    }


def _tail(item: Item, geometry: BaseGeometry | None) -> dict[str, Any]:
    props = item["properties"]
    created = _moment(props.get("created")) or _moment(props["datetime"])
    updated = _moment(props.get("updated")) or created
    assert created is not None and updated is not None
    centroid = geometry.centroid if geometry is not None else None
    return {
        "updated": instant(updated),
        "published": instant(created),
        "snowCover": 0,
        "cloudCover": props.get("eo:cloud_cover", 0),
        "gmlgeometry": _gml(geometry) if geometry is not None else None,
        "centroid": {
            "type": "Point" if centroid else None,
            "coordinates": [centroid.x, centroid.y] if centroid else None,
        },
    }


def _services(uid: str, size: int) -> dict[str, Any]:
    url = f"$BASE/download/{uid}"
    return {"download": {"url": url, "mimeType": "application/octet-stream", "size": size}}


def _s2_fields(item: Item, found: re.Match[str], geometry: Any, uid: str) -> dict[str, Any]:
    props, name = item["properties"], item["id"]
    level, mission = found["level"], found["mission"]
    baseline = f"{found['baseline'][:2]}.{found['baseline'][2:]}"
    orbit = int(props.get("sat:absolute_orbit", 0))
    day = found["sensing"]
    path = f"/Sentinel-2/MSI/{level}/{day[:4]}/{day[4:6]}/{day[6:8]}/{name}.SAFE"
    fields = _common(item, name, "SENTINEL-2")
    fields.update(productType=f"S2MSI{level[1:]}", processingLevel=f"S2MSI{level[1:]}")
    fields.update(platform=mission, instrument="MSI", resolution=0, sensorMode=None)
    fields.update(orbitNumber=orbit, quicklook=None)
    fields["thumbnail"] = f"$BASE/get-object?path={path}/{name}-ql.jpg"
    fields |= _tail(item, geometry)
    fields["productIdentifier"] = f"/eodata{path}"
    state = props.get("sat:orbit_state")
    fields.update(orbitDirection=state.upper() if state else None, timeliness=None)
    fields["relativeOrbitNumber"] = int(props.get("sat:relative_orbit", int(found["rel"])))
    fields["processingBaseline"] = float(baseline)
    fields["missionTakeId"] = f"G{mission}_{day}_{orbit:06d}_N{baseline}"
    return fields | {"services": _services(uid, _size(item))}


def _s1_fields(item: Item, found: re.Match[str], geometry: Any, uid: str) -> dict[str, Any]:
    props, name = item["properties"], item["id"]
    product_type = f"{found['mode']}_{found['type']}{found['res']}_{found['level']}{found['cls']}"
    day = _sensing(item)[0].strftime("%Y/%m/%d")
    path = f"/Sentinel-1/SAR/{product_type}/{day}/{name}.SAFE"
    fields = _common(item, name, "SENTINEL-1", path)
    fields.update(productType=product_type, processingLevel=_S1_LEVELS[found["type"]])
    fields.update(platform=found["mission"], instrument="SAR", resolution=0)
    fields.update(sensorMode=found["mode"], orbitNumber=int(found["orbit"]))
    fields.update(quicklook=None, thumbnail=None)
    fields |= _tail(item, geometry)
    state = props.get("sat:orbit_state")
    fields.update(orbitDirection=state.upper() if state else None, timeliness=None)
    fields["relativeOrbitNumber"] = int(props.get("sat:relative_orbit", 0))
    fields["processingBaseline"] = 0
    pols = props.get("sar:polarizations")
    fields["polarisation"] = "&".join(pols) if pols else _POLARISATIONS[found["pol"]]
    fields["swath"] = found["mode"]
    return fields | {"services": _services(uid, _size(item))}


def _size(item: Item) -> int:
    asset = (item.get("assets") or {}).get("product") or {}
    size = asset.get("file:size")
    return size if isinstance(size, int) else 0


def product_from_item(item: Item) -> Product:
    """The record CDSE would hold for ``item``; ValueError for a product it cannot represent."""
    name = str(item["id"])
    for key in ("s2:product_uri", "s1:product_identifier"):
        value = item["properties"].get(key)
        if isinstance(value, str) and value:
            name = value.removesuffix(".SAFE")
    item = {**item, "id": name}
    uid = str(uuid.uuid5(NAMESPACE, name))
    geojson = item.get("geometry") or None
    geometry = shape(geojson) if geojson else None
    if found := _S2.match(name):
        fields, collection = _s2_fields(item, found, geometry, uid), "SENTINEL-2"
    elif found := _S1.match(name):
        fields, collection = _s1_fields(item, found, geometry, uid), "SENTINEL-1"
    else:
        raise ValueError(f"not a Sentinel-1/2 product name: {name!r}")
    fields["links"] = [
        {
            "rel": "self",
            "type": "application/json",
            "title": f"GeoJSON link for {uid}",
            "href": f"$BASE/collections/{collection}/{uid}.json",
        }
    ]
    start = _moment(fields["startDate"])
    assert start is not None
    return Product(uid, collection, fields["title"], start, fields, geometry, geojson)
