"""Deterministic demo catalogue: Sentinel-1/2 products over Czechia spread over emulated archives.

Everything derives from the seed (``random.Random`` seeded by strings, SHA-256 for archive
membership): no network, no clock. The same arguments give the same catalogue in any process.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import pathlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

__all__ = [
    "COLLECTIONS",
    "DEMO_ARCHIVES",
    "ArchiveSpec",
    "demo_deletions",
    "generate_catalogue",
    "generate_products",
    "write_catalogue",
]

Item = dict[str, Any]


@dataclass(frozen=True)
class ArchiveSpec:
    """One emulated archive: which collections it holds and how it serves them."""

    id: str
    collections: tuple[str, ...]
    share: float
    id_style: str = "product"
    asset_host: str = "$BASE"


COLLECTIONS = ("sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c", "sentinel-2-l2a")

DEMO_ARCHIVES: tuple[ArchiveSpec, ...] = (
    ArchiveSpec("eodc", COLLECTIONS, 0.9),
    ArchiveSpec("element84", ("sentinel-2-l2a",), 0.8, id_style="earth-search"),
    ArchiveSpec("cesnet", COLLECTIONS, 0.6),
    ArchiveSpec("grnet", ("sentinel-1-grd", "sentinel-2-l1c", "sentinel-2-l2a"), 0.5),
    ArchiveSpec("cdse", COLLECTIONS, 0.7),
    ArchiveSpec("creodias", ("sentinel-1-grd", "sentinel-2-l1c", "sentinel-2-l2a"), 0.4),
    ArchiveSpec("vito", ("sentinel-1-grd", "sentinel-2-l1c"), 0.4),
)

_EXT = "https://stac-extensions.github.io/{}/schema.json"
_S1_EXTENSIONS = ("sar/v1.0.0", "sat/v1.0.0", "processing/v1.2.0", "product/v0.1.0")
_S2_EXTENSIONS = (
    *("eo/v1.1.0", "sat/v1.0.0", "grid/v1.1.0", "processing/v1.2.0"),
    "product/v0.1.0",
)
_FILE_EXTENSION = _EXT.format("file/v2.1.0")
_COG = "image/tiff; application=geotiff; profile=cloud-optimized"

# --- UTM zone -> lon/lat (Krueger series, WGS 84) and MGRS 100 km squares -------------------
_FLAT = 1 / 298.257223563
_N = _FLAT / (2 - _FLAT)
_RECT = 6378137.0 / (1 + _N) * (1 + _N**2 / 4 + _N**4 / 64)
_K0 = 0.9996
_BETA = (_N / 2 - 2 * _N**2 / 3 + 37 * _N**3 / 96, _N**2 / 48 + _N**3 / 15, 17 * _N**3 / 480)
_DELTA = (2 * _N - 2 * _N**2 / 3 - 2 * _N**3, 7 * _N**2 / 3 - 8 * _N**3 / 5, 56 * _N**3 / 15)
_MGRS_ROWS = "ABCDEFGHJKLMNPQRSTUV"
_MGRS_COLUMNS = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")
_TILE_SIZE = 109_800.0

# --- Acquisition plans ------------------------------------------------------------------------
# Sentinel-2: day in the 10-day cycle of a satellite on which its R079 pass falls.
_S2_ANCHORS = {"S2A": date(2021, 10, 24), "S2B": date(2021, 10, 19)}
# relative orbit, day after the R079 pass, datatake sensing start (UTC), MGRS tiles covered.
_S2_ORBITS = (
    (79, 0, time(9, 50, 31), ("33UWQ", "33UWR", "33UXQ", "33UXR")),
    (122, 3, time(10, 0, 21), ("33UVQ", "33UVR", "33UWQ", "33UWR")),
    (22, 6, time(10, 10, 21), ("33UUQ", "33UVQ", "33UVR")),
    (36, 7, time(9, 40, 31), ("33UXQ", "33UXR", "33UYQ")),
)
# Sentinel-1: 175 orbits in 12 days; per satellite the offset of the relative-orbit formula, a
# reference absolute orbit, its ascending pass over Czechia, and the end of operations.
_S1_ORBIT = timedelta(days=12) / 175
_S1_SATELLITES = {
    "S1A": (73, 39520, datetime(2021, 9, 4, 16, 50, 20, tzinfo=UTC), date(9999, 1, 1)),
    "S1B": (27, 28449, datetime(2021, 9, 10, 16, 50, 14, tzinfo=UTC), date(2021, 12, 23)),
}
_S1_DATATAKES = {"S1A": 0x04A5C0, "S1B": 0x037F10}  # datatake ids at the reference orbits
_S1_DESCENDING_DELAY = timedelta(minutes=23)
# relative orbit -> orbit state, longitude of the track over Czechia (at ~49.9N).
_S1_TRACKS = {
    73: ("ascending", 15.2),
    146: ("ascending", 13.4),
    175: ("ascending", 17.0),
    22: ("descending", 13.4),
    51: ("descending", 17.0),
    124: ("descending", 15.2),
}


@dataclass(frozen=True)
class _Take:
    """One acquisition (a Sentinel-2 datatake or a Sentinel-1 pass) shared by its products."""

    mission: str
    orbit: int
    sensing: datetime
    rng: random.Random


def _iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) from a stable hash of ``parts``."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _utm_to_lonlat(zone: int, easting: float, northing: float) -> tuple[float, float]:
    """Inverse transverse Mercator (northern hemisphere) to (lon, lat) in degrees."""
    xi = northing / (_K0 * _RECT)
    eta = (easting - 500_000.0) / (_K0 * _RECT)
    xi_p, eta_p = xi, eta
    for j, beta in enumerate(_BETA, 1):
        xi_p -= beta * math.sin(2 * j * xi) * math.cosh(2 * j * eta)
        eta_p -= beta * math.cos(2 * j * xi) * math.sinh(2 * j * eta)
    chi = math.asin(math.sin(xi_p) / math.cosh(eta_p))
    lat = chi + sum(d * math.sin(2 * j * chi) for j, d in enumerate(_DELTA, 1))
    lon = zone * 6 - 183 + math.degrees(math.atan2(math.sinh(eta_p), math.cos(xi_p)))
    return lon, math.degrees(lat)


def _tile_origin(tile: str) -> tuple[int, float, float]:
    """Zone and lower-left UTM corner of an MGRS tile in latitude band U, e.g. ``33UXQ``."""
    zone, column, row = int(tile[:2]), tile[3], tile[4]
    easting = (_MGRS_COLUMNS[(zone - 1) % 3].index(column) + 1) * 100_000.0
    row_index = (_MGRS_ROWS.index(row) - (0 if zone % 2 else 5)) % 20
    northing = 4_000_000.0 + row_index * 100_000.0
    if northing < 5_200_000.0:  # band U spans northings ~5.3-6.2 Mm
        northing += 2_000_000.0
    return zone, easting, northing


def _polygon(points: list[tuple[float, float]]) -> dict[str, Any]:
    """A closed, counter-clockwise GeoJSON polygon, coordinates rounded to 6 decimals."""
    ring = [[round(lon, 6), round(lat, 6)] for lon, lat in points]
    area = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:] + ring[:1], strict=True))
    if area < 0:
        ring.reverse()
    return {"type": "Polygon", "coordinates": [[*ring, list(ring[0])]]}


def _bbox(geometry: dict[str, Any]) -> list[float]:
    ring = geometry["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return [min(lons), min(lats), max(lons), max(lats)]


def _tile_footprint(tile: str) -> dict[str, Any]:
    zone, east, north = _tile_origin(tile)
    corners = ((0, 0), (1, 0), (1, 1), (0, 1))
    return _polygon(
        [
            _utm_to_lonlat(zone, east + dx * _TILE_SIZE, north + dy * _TILE_SIZE)
            for dx, dy in corners
        ]
    )


def _swath_footprint(lon: float, lat: float, heading: float) -> dict[str, Any]:
    """A 250 km (across) x 170 km (along track) IW frame centred at (lon, lat)."""
    h = math.radians(heading)
    points = []
    for across, along in ((-125, -85), (125, -85), (125, 85), (-125, 85)):
        east = across * math.cos(h) + along * math.sin(h)
        north = -across * math.sin(h) + along * math.cos(h)
        points.append((lon + east / (111.32 * math.cos(math.radians(lat))), lat + north / 111.32))
    return _polygon(points)


def _item(
    name: str, collection: str, geometry: dict[str, Any], props: Item, extensions: tuple[str, ...]
) -> Item:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": sorted(_EXT.format(e) for e in extensions),
        "id": name,
        "collection": collection,
        "geometry": geometry,
        "bbox": _bbox(geometry),
        "properties": props,
        "links": [],
        "assets": {},
    }


def _zip_assets(item: Item, base: str, size: int) -> dict[str, Any]:
    """A product zip and a quick-look below ``base``/collection/yyyy/mm/dd/."""
    folder = f"{base}/{item['collection']}/{item['properties']['datetime'][:10].replace('-', '/')}"
    name = item["id"]
    product: Item = {"href": f"{folder}/{name}.zip", "type": "application/zip", "title": "Product"}
    thumbnail: Item = {"href": f"{folder}/{name}.jpg", "type": "image/jpeg", "title": "Quick-look"}
    product.update({"roles": ["data"], "file:size": size})
    thumbnail["roles"] = ["thumbnail"]
    return {"product": product, "thumbnail": thumbnail}


def _with_zip(item: Item, size: int) -> Item:
    item["assets"] = _zip_assets(item, "$BASE", size)
    item["stac_extensions"] = sorted([*item["stac_extensions"], _FILE_EXTENSION])
    return item


# --- Sentinel-2 ---------------------------------------------------------------------------------
def _s2_baseline(day: date) -> str:
    """Processing baseline of products sensed on ``day`` (as reprocessed at the time)."""
    for until, baseline in ((date(2021, 3, 30), "0209"), (date(2021, 6, 30), "0300")):
        if day < until:
            return baseline
    return "0301" if day < date(2022, 1, 25) else "0400"


def _s2_item(take: _Take, tile: str, level: str, processed: datetime, cloud: float) -> Item:
    baseline = _s2_baseline(take.sensing.date())
    name = f"{take.mission}_MSI{level}_{_stamp(take.sensing)}_N{baseline}_R{take.orbit:03d}"
    name += f"_T{tile}_{_stamp(processed)}"
    version = f"{baseline[:2]}.{baseline[2:]}"
    props: Item = {"datetime": _iso(take.sensing), "created": _iso(processed)}
    props.update(platform=f"sentinel-2{take.mission[-1].lower()}", constellation="sentinel-2")
    props.update({"instruments": ["msi"], "eo:cloud_cover": cloud, "gsd": 10})
    props.update({"grid:code": f"MGRS-{tile}", "sat:orbit_state": "descending"})
    props.update({"sat:relative_orbit": take.orbit, "processing:level": level})
    props.update({"processing:version": version, "s2:processing_baseline": version})
    props["product:type"] = f"S2MSI{level[1:]}"
    collection = f"sentinel-2-{level.lower()}"
    item = _item(name, collection, _tile_footprint(tile), props, _S2_EXTENSIONS)
    low, high = (600, 800) if level == "L1C" else (800, 1100)
    return _with_zip(item, take.rng.randint(low * 2**20, high * 2**20))


def _s2_datatake(
    seed: int, mission: str, day: date, orbit: int, start: time, tiles: tuple[str, ...]
) -> list[Item]:
    rng = random.Random(f"{seed}:{mission}:{day.isoformat()}:{orbit}")
    sensing = datetime.combine(day, start, UTC)
    sensing += timedelta(seconds=rng.randint(-20, 20), milliseconds=rng.randint(0, 999))
    take = _Take(mission, orbit, sensing, rng)
    l1c = sensing + timedelta(minutes=rng.randint(75, 160), seconds=rng.randint(0, 59))
    l2a = l1c + timedelta(minutes=rng.randint(15, 100), seconds=rng.randint(0, 59))
    overall = rng.betavariate(1.1, 0.6) * 100  # autumn in Central Europe: mostly cloudy
    items = []
    for tile in tiles:
        cloud = round(min(100.0, max(0.0, overall + rng.gauss(0, 10))), 2)
        items.append(_s2_item(take, tile, "L1C", l1c.replace(microsecond=0), cloud))
        items.append(_s2_item(take, tile, "L2A", l2a.replace(microsecond=0), cloud))
    return items


def _s2_products(seed: int, start: date, end: date) -> list[Item]:
    items = []
    for offset in range((end - start).days):
        day = start + timedelta(days=offset)
        for mission, anchor in _S2_ANCHORS.items():
            for orbit, cycle_day, sensing, tiles in _S2_ORBITS:
                if (day - anchor).days % 10 == cycle_day:
                    items += _s2_datatake(seed, mission, day, orbit, sensing, tiles)
    return items


# --- Sentinel-1 ---------------------------------------------------------------------------------
def _s1_item(take: _Take, kind: str, geometry: dict[str, Any], datatake: int) -> Item:
    rng, grd = take.rng, kind == "GRD"
    begin = take.sensing - timedelta(seconds=0 if grd else 1)
    stop = begin + timedelta(seconds=25 if grd else 27)
    rel = (take.orbit - _S1_SATELLITES[take.mission][0]) % 175 + 1
    name = f"{take.mission}_IW_{'GRDH' if grd else 'SLC_'}_1SDV_{_stamp(begin)}_{_stamp(stop)}"
    name += f"_{take.orbit:06d}_{datatake:06X}_{rng.randrange(0x10000):04X}"
    created = begin + timedelta(hours=3, minutes=rng.randint(-40, 40), seconds=rng.randint(0, 59))
    props: Item = {"datetime": _iso(begin), "start_datetime": _iso(begin)}
    props.update({"end_datetime": _iso(stop), "created": _iso(created.replace(microsecond=0))})
    props.update(platform=f"sentinel-1{take.mission[-1].lower()}", constellation="sentinel-1")
    props.update({"instruments": ["sar"], "sar:instrument_mode": "IW", "sar:frequency_band": "C"})
    props.update({"sar:center_frequency": 5.405, "sar:polarizations": ["VV", "VH"]})
    props.update({"sar:product_type": kind, "product:type": kind, "processing:level": "L1"})
    props.update({"sat:orbit_state": _S1_TRACKS[rel][0], "sat:relative_orbit": rel})
    props["sat:absolute_orbit"] = take.orbit
    item = _item(name, f"sentinel-1-{kind.lower()}", geometry, props, _S1_EXTENSIONS)
    low, high = (1600, 1800) if grd else (4000, 8000)
    return _with_zip(item, rng.randint(low * 2**20, high * 2**20))


def _s1_pass(seed: int, mission: str, orbit: int, passing: datetime) -> list[Item]:
    rng = random.Random(f"{seed}:{mission}:{orbit}")
    shift = rng.randint(-8000, 8000)  # ms along track, ~6.8 km/s
    sensing = passing + timedelta(milliseconds=shift)
    state, lon = _S1_TRACKS[(orbit - _S1_SATELLITES[mission][0]) % 175 + 1]
    heading = math.radians(-10.0 if state == "ascending" else -170.0)
    along = 6.8 * shift / 1000 / 111.32  # degrees of latitude travelled
    lon += along * math.sin(heading) / math.cos(math.radians(49.9))
    geometry = _swath_footprint(lon, 49.9 + along * math.cos(heading), math.degrees(heading))
    ref_orbit, ref_datatake = _S1_SATELLITES[mission][1], _S1_DATATAKES[mission]
    datatake = (ref_datatake + 7 * (orbit - ref_orbit) + rng.randint(0, 3)) % 0x1000000
    take = _Take(mission, orbit, sensing, rng)
    return [_s1_item(take, kind, geometry, datatake) for kind in ("GRD", "SLC")]


def _s1_products(seed: int, start: date, end: date) -> list[Item]:
    items = []
    first_day = datetime.combine(start, time(), UTC) - timedelta(days=1)
    for mission, (offset, ref_orbit, ref_pass, retired) in _S1_SATELLITES.items():
        first = ref_orbit + math.floor((first_day - ref_pass) / _S1_ORBIT)
        count = math.ceil((end - start + timedelta(days=2)) / _S1_ORBIT)
        for orbit in range(first, first + count):
            rel = (orbit - offset) % 175 + 1
            if rel not in _S1_TRACKS:
                continue
            passing = ref_pass + (orbit - ref_orbit) * _S1_ORBIT
            if _S1_TRACKS[rel][0] == "descending":
                passing += _S1_DESCENDING_DELAY
            if start <= passing.date() < min(end, retired):
                items += _s1_pass(seed, mission, orbit, passing.replace(microsecond=0))
    return items


def generate_products(
    seed: int = 42, start: date = date(2021, 9, 1), end: date = date(2021, 12, 1)
) -> list[Item]:
    """The archive-independent product list: one STAC item dict per product, id = product name."""
    items = _s1_products(seed, start, end) + _s2_products(seed, start, end)
    return sorted(items, key=lambda item: (item["properties"]["datetime"], item["id"]))


# --- Archives -------------------------------------------------------------------------------------
def _earth_search_id(product: Item) -> str:
    props = product["properties"]
    tile = props["grid:code"].removeprefix("MGRS-")
    day = props["datetime"][:10].replace("-", "")
    return f"{product['id'][:3]}_{tile}_{day}_0_{props['processing:level']}"


def _cog_assets(item: Item, archive: ArchiveSpec) -> dict[str, Any]:
    """Earth Search-style band COGs, a true-colour COG and a thumbnail."""
    tile, level = item["properties"]["grid:code"][5:], item["properties"]["processing:level"]
    year, month = item["properties"]["datetime"][:4], int(item["properties"]["datetime"][5:7])
    folder = f"{archive.asset_host}/{archive.id}/sentinel-s2-{level.lower()}-cogs"
    folder += f"/{tile[:2]}/{tile[2]}/{tile[3:]}/{year}/{month}/{item['id']}"
    bands = {"red": ("B04", 0.665), "green": ("B03", 0.56), "blue": ("B02", 0.49)}
    bands["nir"] = ("B08", 0.842)
    assets: dict[str, Any] = {}
    for key, (band, wavelength) in bands.items():
        eo = [{"name": band, "common_name": key, "center_wavelength": wavelength}]
        assets[key] = {"href": f"{folder}/{band}.tif", "type": _COG, "eo:bands": eo}
        assets[key].update({"title": f"{key.title()} ({band})", "roles": ["data"], "gsd": 10})
    assets["visual"] = {"href": f"{folder}/TCI.tif", "type": _COG, "roles": ["visual"]}
    assets["thumbnail"] = {"href": f"{folder}/thumbnail.jpg", "type": "image/jpeg"}
    assets["thumbnail"]["roles"] = ["thumbnail"]
    return assets


def _archive_item(product: Item, archive: ArchiveSpec, seed: int) -> Item:
    """The product as ``archive`` serves it: own id style, asset hrefs and ingestion time."""
    item = copy.deepcopy(product)
    props = item["properties"]
    created = datetime.fromisoformat(props["created"])
    delay = timedelta(minutes=int(20 + 4000 * _unit(seed, "updated", archive.id, product["id"])))
    props["updated"] = _iso(created + delay)
    if archive.id_style == "earth-search" and item["collection"].startswith("sentinel-2"):
        item["id"] = _earth_search_id(product)
        props.update({"s2:product_uri": f"{product['id']}.SAFE", "s2:mgrs_tile": item["id"][4:9]})
        item["assets"] = _cog_assets(item, archive)
        item["stac_extensions"].remove(_FILE_EXTENSION)
    else:
        size = product["assets"]["product"]["file:size"]
        item["assets"] = _zip_assets(item, f"{archive.asset_host}/{archive.id}", size)
    return item


def _holders(product: Item, archives: tuple[ArchiveSpec, ...], seed: int) -> list[ArchiveSpec]:
    """Archives holding ``product``: by share, and at least the first eligible one."""
    eligible = [a for a in archives if product["collection"] in a.collections]
    chosen = [a for a in eligible if _unit(seed, a.id, product["id"]) < a.share]
    return chosen or eligible[:1]


def generate_catalogue(
    archives: tuple[ArchiveSpec, ...] = DEMO_ARCHIVES,
    seed: int = 42,
    start: date = date(2021, 9, 1),
    end: date = date(2021, 12, 1),
) -> dict[str, list[Item]]:
    """archive id -> that archive's STAC items (as that archive would serve them)."""
    catalogue: dict[str, list[Item]] = {archive.id: [] for archive in archives}
    for product in generate_products(seed, start, end):
        for archive in _holders(product, archives, seed):
            catalogue[archive.id].append(_archive_item(product, archive, seed))
    return catalogue


# Real DeletionCause strings (tests/fixtures/deletions) published by the demo's DHuS and CDSE
# archives for withdrawn predecessors of demo products (None: a null cause).
DEMO_DELETION_CAUSES: tuple[str | None, ...] = (
    "Obsolete: replaced by 0reprocessed product",
    "Obsolete replaced by reprocessed product",
    "Duplicate Products",
    "Invalid generated with wrong TCI",
    "Corrupted products",
    "Automatic Eviction",
    "Products with degraded quality",
    None,
)
DELETING_ARCHIVES = ("cesnet", "grnet", "cdse")


def _predecessor(item: Item) -> Item:
    """The item of an earlier version of ``item``'s product (S2: the previous baseline)."""
    old = copy.deepcopy(item)
    name = str(item["id"])
    if name.startswith("S2") and "_N0" in name:
        head, tail = name.split("_N0", 1)
        old["id"] = f"{head}_N0{int(tail[:3]) - 1:03d}{tail[3:]}"
    else:
        old["id"] = name[:-4] + hashlib.sha256(name.encode()).hexdigest()[:4].upper()
    return old


def demo_deletions(
    catalogue: dict[str, list[Item]], every: int = 40
) -> dict[str, list[tuple[Item, str | None, datetime]]]:
    """archive id -> withdrawn products (item, DeletionCause, DeletionDate) its feed lists.

    They are earlier versions of demo products, absent from every catalogue: the demo's
    ``/deletions`` report has content while its searches stay those of the catalogue.
    """
    withdrawn: dict[str, list[tuple[Item, str | None, datetime]]] = {}
    start = datetime(2021, 11, 1, 6, 0, tzinfo=UTC)
    for archive in DELETING_ARCHIVES:
        chosen = catalogue.get(archive, [])[::every]
        withdrawn[archive] = [
            (
                _predecessor(item),
                DEMO_DELETION_CAUSES[i % len(DEMO_DELETION_CAUSES)],
                start + timedelta(hours=7 * i),
            )
            for i, item in enumerate(chosen)
        ]
    return withdrawn


def write_catalogue(
    directory: pathlib.Path, catalogue: dict[str, list[Item]]
) -> dict[str, pathlib.Path]:
    """Write one JSON file per archive (a GeoJSON FeatureCollection, sorted keys, compact),
    return archive id -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, pathlib.Path] = {}
    for archive_id, items in catalogue.items():
        collection = {"type": "FeatureCollection", "features": items}
        path = directory / f"{archive_id}.json"
        path.write_text(json.dumps(collection, sort_keys=True, separators=(",", ":")) + "\n")
        paths[archive_id] = path
    return paths
