"""Tests of the deterministic demo catalogue generator."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
from collections import Counter
from datetime import date
from functools import cache
from typing import Any

import pystac
from shapely.geometry import shape

from mqs.demodata import (
    COLLECTIONS,
    DEMO_ARCHIVES,
    ArchiveSpec,
    generate_catalogue,
    generate_products,
    write_catalogue,
)

S2_NAME = re.compile(
    r"^S2[AB]_MSIL(1C|2A)_(\d{8}T\d{6})_N0(300|301)_R(022|036|079|122)"
    r"_T33U(VR|WR|XR|VQ|WQ|XQ|UQ|YQ)_(\d{8}T\d{6})$"
)
S1_NAME = re.compile(
    r"^S1[AB]_IW_(GRDH|SLC_)_1SDV_(\d{8}T\d{6})_(\d{8}T\d{6})_(\d{6})_([0-9A-F]{6})_([0-9A-F]{4})$"
)
EARTH_SEARCH_ID = re.compile(r"^S2[AB]_33U[A-Z]{2}_\d{8}_0_L(1C|2A)$")


@cache
def _products() -> list[dict[str, Any]]:
    return generate_products()


@cache
def _catalogue() -> dict[str, list[dict[str, Any]]]:
    return generate_catalogue()


def _product_name(item: dict[str, Any]) -> str:
    uri = item["properties"].get("s2:product_uri")
    return str(uri).removesuffix(".SAFE") if uri else str(item["id"])


def _holders() -> Counter[str]:
    return Counter(_product_name(i) for items in _catalogue().values() for i in items)


def test_deterministic_in_process_and_across_processes() -> None:
    dump = json.dumps(generate_catalogue(), sort_keys=True)
    assert dump == json.dumps(_catalogue(), sort_keys=True)
    code = "import json; from mqs.demodata import generate_catalogue as g; "
    code += "print(json.dumps(g(), sort_keys=True))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=pathlib.Path(__file__).resolve().parents[1],
    ).stdout.strip()
    assert other == dump


def test_seed_changes_catalogue() -> None:
    assert generate_products(seed=1) != _products()


def test_product_count_and_unique_ids() -> None:
    ids = [p["id"] for p in _products()]
    assert 400 <= len(ids) <= 700
    assert len(set(ids)) == len(ids)
    assert {p["collection"] for p in _products()} == set(COLLECTIONS)


def test_product_names_follow_conventions() -> None:
    for product in _products():
        props, name = product["properties"], product["id"]
        if product["collection"].startswith("sentinel-2"):
            match = S2_NAME.match(name)
            assert match, name
            assert match.group(2) < match.group(6)  # discriminator after sensing
            assert props["datetime"].startswith(_iso_prefix(match.group(2)))
            assert props["grid:code"] == f"MGRS-{name.split('_')[5][1:]}"
        else:
            match = S1_NAME.match(name)
            assert match, name
            assert props["datetime"] == props["start_datetime"]
            assert props["start_datetime"].startswith(_iso_prefix(match.group(2)))
            assert int(match.group(4)) == props["sat:absolute_orbit"]
            offset = 73 if name.startswith("S1A") else 27
            assert (props["sat:absolute_orbit"] - offset) % 175 + 1 == props["sat:relative_orbit"]


def _iso_prefix(stamp: str) -> str:
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"


def test_l1c_and_l2a_pairs_share_datatake() -> None:
    names = {p["id"] for p in _products()}
    for name in names:
        if "_MSIL1C_" in name:
            parts = name.split("_")
            pairs = [n for n in names if n.startswith("_".join([parts[0], "MSIL2A", *parts[2:6]]))]
            assert len(pairs) == 1 and pairs[0].split("_")[6] > parts[6]


def test_datatake_tiles_share_datetime() -> None:
    times = Counter(p["properties"]["datetime"] for p in _products())
    assert max(times.values()) >= 6


def test_footprints_valid_and_over_czechia() -> None:
    for product in _products():
        geometry = product["geometry"]
        ring = geometry["coordinates"][0]
        assert ring[0] == ring[-1]
        polygon = shape(geometry)
        assert polygon.is_valid and polygon.exterior.is_ccw
        west, south, east, north = polygon.bounds
        assert west >= 11 and east <= 20 and south >= 47.5 and north <= 52
        assert product["bbox"] == [west, south, east, north]
        assert polygon.intersects(shape(_CZECHIA_CORE))


_CZECHIA_CORE = {
    "type": "Polygon",
    "coordinates": [[[12.5, 49.0], [18.5, 49.0], [18.5, 50.8], [12.5, 50.8], [12.5, 49.0]]],
}


def test_items_parse_with_pystac() -> None:
    for items in _catalogue().values():
        for item in items:
            parsed = pystac.Item.from_dict(item)
            assert parsed.datetime is not None


def test_every_product_held_and_overlap_one_to_four() -> None:
    holders = _holders()
    assert set(holders) == {p["id"] for p in _products()}
    # Seven archives, the S2 L1C ones held by up to six of them: every overlap occurs.
    assert set(holders.values()) == {1, 2, 3, 4, 5, 6}


def test_archives_hold_only_their_collections() -> None:
    for archive in DEMO_ARCHIVES:
        assert {i["collection"] for i in _catalogue()[archive.id]} <= set(archive.collections)


def test_same_datetime_and_geometry_across_archives() -> None:
    seen: dict[str, tuple[str, Any]] = {}
    for items in _catalogue().values():
        for item in items:
            key = (item["properties"]["datetime"], item["geometry"])
            assert seen.setdefault(_product_name(item), key) == key
    by_id = {p["id"]: p for p in _products()}
    for name, (when, geometry) in seen.items():
        assert (when, geometry) == (by_id[name]["properties"]["datetime"], by_id[name]["geometry"])


def test_earth_search_ids_carry_product_uri() -> None:
    items = _catalogue()["element84"]
    assert items
    for item in items:
        assert EARTH_SEARCH_ID.match(item["id"]), item["id"]
        uri = item["properties"]["s2:product_uri"]
        assert uri.endswith(".SAFE") and S2_NAME.match(uri.removesuffix(".SAFE"))
        assert item["id"] != uri.removesuffix(".SAFE")
        assert {"red", "green", "blue", "nir", "visual", "thumbnail"} <= set(item["assets"])
    assert len({i["id"] for i in items}) == len(items)


def test_asset_hosts_and_sizes() -> None:
    archive = ArchiveSpec("x", ("sentinel-1-grd",), 1.0, asset_host="https://x.example")
    items = generate_catalogue((archive,), end=date(2021, 9, 15))["x"]
    assert items and all(i["collection"] == "sentinel-1-grd" for i in items)
    for item in items:
        asset = item["assets"]["product"]
        assert asset["href"].startswith("https://x.example/x/")
        assert 1600 * 2**20 <= asset["file:size"] <= 1800 * 2**20


def test_write_catalogue(tmp_path: pathlib.Path) -> None:
    catalogue = generate_catalogue(end=date(2021, 9, 10))
    paths = write_catalogue(tmp_path / "out", catalogue)
    assert set(paths) == set(catalogue)
    for archive_id, path in paths.items():
        collection = json.loads(path.read_text())
        assert collection["type"] == "FeatureCollection"
        assert collection["features"] == catalogue[archive_id]
