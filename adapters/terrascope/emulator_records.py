"""STAC items -> the product records a Terrascope catalogue holds, and their GeoJSON form.

A record is what Terrascope's index knows of one product: collection URN, title, acquisition
interval, footprint, acquisition and product information, and its files. :func:`feature`
renders it as the recorded ``/products`` answers do (``tests/fixtures/terrascope``, 2023
services.terrascope.be form): key names and order, ``acquisitionInformation`` as a list,
``links`` groups of files with ``href``/``type``/``length``/``title``/``category``, instants
with milliseconds only when there is a fraction, numbers as JSON numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from adapters.terrascope.collections import DEFAULT_COLLECTIONS

Item = dict[str, Any]
INSPIRE = "application/vnd.iso.19139+xml"
_ROLE_GROUPS = {"data": "data", "thumbnail": "previews", "overview": "previews"}
_ROLE_GROUPS |= {"metadata": "alternates"}
_SUFFIXES = (".SAFE.zip", ".SAFE", ".zip")


def load_items(source: list[Item] | Path | str) -> list[Item]:
    """Items from a list, a JSON list file or a GeoJSON FeatureCollection file."""
    if isinstance(source, str | Path):
        data = orjson.loads(Path(source).read_bytes())
        return list(data["features"] if isinstance(data, dict) else data)
    return list(source)


def iso(value: datetime) -> str:
    """``2018-08-14T10:50:19.024Z``, or ``2022-09-13T09:54:05Z`` without a fraction."""
    value = value.astimezone(UTC)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def unit(*parts: object) -> float:
    """A stable number in [0, 1) from ``parts``."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def default_urn(collection: str) -> str:
    """The URN the emulator files a STAC collection under when it knows none."""
    known = DEFAULT_COLLECTIONS.get(collection)
    return known.urn if known else "urn:eop:VITO:" + collection.upper().replace("-", "_")


@dataclass(frozen=True)
class File:
    """One file of a product, as listed in one of the feature's ``links`` groups."""

    group: str  # data | previews | alternates | related
    name: str
    type: str
    length: int | None
    title: str | None = None
    category: str | None = None
    service: str | None = None  # a service URL (a WMS preview) kept as it is, not a file


@dataclass(frozen=True)
class Record:
    """One product as Terrascope's index holds it."""

    urn: str
    title: str
    begin: datetime
    end: datetime
    shape: BaseGeometry
    geometry: dict[str, Any]
    platform: dict[str, Any]
    params: dict[str, Any]
    info: dict[str, Any]
    files: tuple[File, ...]
    published: datetime
    updated: datetime
    order: float  # the index's own order (ties of a sort come out in it)

    @property
    def identifier(self) -> str:
        return f"{self.urn}:{self.title}"

    def folder(self) -> str:
        """``TERRASCOPE_S2_TOC_V2/2018/08/14/<title>``: where its files lie."""
        return f"{self.urn.rsplit(':', 1)[-1]}/{self.begin:%Y/%m/%d}/{self.title}"


def title_of(item: Item) -> str:
    """The product's title: its Sentinel product name (``s2:product_uri``) or its id."""
    uri = (item.get("properties") or {}).get("s2:product_uri")
    name = str(uri) if uri else str(item["id"])
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def _platform(props: Item) -> dict[str, Any]:
    platform = str(props.get("platform") or "")
    if len(platform) == 11 and platform.startswith("sentinel-"):
        mission = f"S{platform[9]}{platform[10].upper()}"
        return {"platformShortName": f"Sentinel-{platform[9]}", "platformSerialIdentifier": mission}
    return {}


def _params(props: Item, begin: datetime, end: datetime) -> dict[str, Any]:
    params: dict[str, Any] = {"acquisitionType": "NOMINAL"}
    if props.get("sat:orbit_state"):
        params["orbitDirection"] = str(props["sat:orbit_state"]).upper()
    for name, prop in (
        ("orbitNumber", "sat:absolute_orbit"),
        ("relativeOrbitNumber", "sat:relative_orbit"),
    ):
        if isinstance(props.get(prop), int):
            params[name] = props[prop]
    params |= {"beginningDateTime": iso(begin), "endingDateTime": iso(end)}
    tile = str(props.get("grid:code") or props.get("s2:mgrs_tile") or "").removeprefix("MGRS-")
    if tile:
        params["tileId"] = tile
    if props.get("sar:instrument_mode"):
        params["operationalMode"] = props["sar:instrument_mode"]
    if props.get("sar:polarizations"):
        params["polarisationChannels"] = ", ".join(props["sar:polarizations"])
    return params


def _info(props: Item, published: datetime, updated: datetime) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if isinstance(props.get("eo:cloud_cover"), int | float):
        info["cloudCover"] = props["eo:cloud_cover"]
    info["productType"] = props.get("product:type") or props.get("sar:product_type") or "UNKNOWN"
    info["availabilityTime"] = iso(published)
    if props.get("processing:version"):
        info["productVersion"] = str(props["processing:version"])
    info |= {"processingCenter": "VITO", "processingDate": iso(updated)}
    return info


def _file(key: str, asset: dict[str, Any], title: str) -> File:
    roles = asset.get("roles") or []
    group = next((_ROLE_GROUPS[r] for r in roles if r in _ROLE_GROUPS), "related")
    href = str(asset.get("href", key))
    label = asset.get("title") if group == "previews" else asset.get("title") or key
    name = href.rsplit("/", 1)[-1] or key
    if key == "product":
        name, label = f"{title}.zip", title
    kind = str(asset.get("type") or "application/octet-stream")
    category = "QUICKLOOK" if group == "previews" else None
    if group == "related" and roles:
        category = str(roles[0]).upper()
    if "?" in href:  # a map service, not a file of the product: no length
        return File(group, name, kind, None, label, category, href)
    size = asset.get("file:size")
    scale = 9e8 if group == "data" else 9e5
    length = size if isinstance(size, int) else 10_000 + int(scale * unit(title, key))
    return File(group, name, kind, length, label, category)


def _files(item: Item, title: str) -> tuple[File, ...]:
    """The item's assets as Terrascope files; a bare item gets a product archive."""
    files = [_file(key, asset, title) for key, asset in (item.get("assets") or {}).items()]
    if not any(f.group == "data" for f in files):
        files.append(File("data", f"{title}.zip", "application/zip", 10**8, title))
    if not any(f.group == "alternates" for f in files):
        files.append(File("alternates", f"{title}.xml", INSPIRE, 39_000, "Inspire metadata"))
    return tuple(files)


def record_from_item(item: Item, urn: str) -> Record:
    """The record Terrascope would hold for ``item`` in collection ``urn``."""
    props = item.get("properties") or {}
    title = title_of(item)
    begin = parse_iso(str(props.get("start_datetime") or props["datetime"]))
    end = parse_iso(str(props.get("end_datetime") or props.get("datetime") or iso(begin)))
    published = parse_iso(str(props["created"])) if props.get("created") else begin
    updated = parse_iso(str(props["updated"])) if props.get("updated") else published
    geometry = item["geometry"]
    return Record(
        urn, title, begin, end, shape(geometry), geometry, _platform(props),
        _params(props, begin, end), _info(props, published, updated), _files(item, title),
        published, updated, unit("index", urn, title),
    )  # fmt: skip


def _link(record: Record, file: File, root: str) -> dict[str, Any]:
    href = file.service or f"{root}/{record.folder()}/{file.name}"
    link: dict[str, Any] = {"href": href, "type": file.type}
    if file.length is not None:
        link["length"] = file.length
    if file.title is not None:
        link["title"] = file.title
    if file.category is not None:
        link["category"] = file.category
    return link


def feature(record: Record, root: str) -> dict[str, Any]:
    """The product as a ``/products`` feature; file hrefs below ``root``."""
    links: dict[str, list[dict[str, Any]]] = {}
    for group in ("previews", "alternates", "related", "data"):
        found = [_link(record, f, root) for f in record.files if f.group == group]
        if found:
            links[group] = found
    acquisition: dict[str, Any] = {"platform": record.platform} if record.platform else {}
    acquisition["acquisitionParameters"] = record.params
    properties = {
        "date": iso(record.begin),
        "updated": iso(record.updated),
        "available": iso(record.published),
        "published": iso(record.published),
        "status": "ARCHIVED",
        "parentIdentifier": record.urn,
        "title": record.title,
        "identifier": record.identifier,
        "acquisitionInformation": [acquisition],
        "productInformation": record.info,
        "links": links,
    }
    bbox = list(record.shape.bounds)
    return {
        "type": "Feature",
        "id": record.identifier,
        "geometry": record.geometry,
        "bbox": bbox,
        "properties": properties,
    }


def file_of(records: list[Record], path: str) -> File | None:
    """The file a download path (``<folder>/<name>``) names, if any."""
    folder, _, name = path.rpartition("/")
    for record in records:
        if record.folder() == folder:
            return next((f for f in record.files if f.name == name and not f.service), None)
    return None
