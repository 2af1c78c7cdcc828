"""Collection documents rich enough for STAC Browser and QGIS, and true to the items.

Summaries and item_assets come from ``mqs/data/sentinel.yaml``; these tests hold that data
to the items the federation's adapters actually produce, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import COLLECTIONS, Archive, LiveFederation, MakeFederation
from stac_schema import collection_errors

from mqs.demodata import generate_catalogue
from mqs.summaries import family_metadata

CATALOGUE = generate_catalogue()


@pytest.fixture(scope="module")
def fed(make_module_federation: MakeFederation) -> LiveFederation:
    return make_module_federation(
        eodc=Archive(CATALOGUE["eodc"], priority=10),
        cesnet=Archive(CATALOGUE["cesnet"], kind="dhus", priority=8),
        cdse=Archive(CATALOGUE["cdse"], kind="cdse-odata", priority=7),
        extra_collections={"landsat-c2-l2": {"title": "Landsat", "license": "CC-BY-4.0"}},
    )


def _collection(fed: LiveFederation, cid: str) -> dict[str, Any]:
    r = httpx.get(f"{fed.url}/collections/{cid}")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("cid", COLLECTIONS)
def test_collection_is_valid_stac_with_its_extensions(fed: LiveFederation, cid: str) -> None:
    doc = _collection(fed, cid)
    assert collection_errors(doc) == []
    assert (
        "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"
        in (doc["stac_extensions"])
    )
    roles = [tuple(p["roles"]) for p in doc["providers"]]
    assert roles[:2] == [("producer",), ("licensor",)] and ("host",) in roles
    assert all(p["url"].startswith("http") for p in doc["providers"])
    license_link = next(ln for ln in doc["links"] if ln["rel"] == "license")
    assert license_link["href"].startswith("https://sentinels.copernicus.eu/")
    for key in ("platform", "constellation", "instruments"):
        assert doc["summaries"][key]


@pytest.mark.parametrize("cid", COLLECTIONS)
def test_summaries_and_item_assets_hold_what_the_items_carry(fed: LiveFederation, cid: str) -> None:
    summaries = _collection(fed, cid)["summaries"]
    item_assets = _collection(fed, cid)["item_assets"]
    items = httpx.get(f"{fed.url}/search", params={"collections": cid, "limit": 200}).json()
    assert len(items["features"]) >= 50
    checked = 0
    for item in items["features"]:
        for key, value in item["properties"].items():
            allowed = summaries.get(key)
            if isinstance(allowed, list) and key != "eo:bands":
                values = value if isinstance(value, list) else [value]
                assert set(values) <= set(allowed), (item["id"], key, value)
                checked += 1
            elif isinstance(allowed, dict):  # a range
                assert allowed["minimum"] <= value <= allowed["maximum"], (item["id"], key)
        for key in ("product", "thumbnail"):
            if key in item["assets"]:
                assert item["assets"][key]["type"] == item_assets[key]["type"]
                assert item["assets"][key]["roles"] == item_assets[key]["roles"]
    assert checked > 5 * len(items["features"])


def test_sentinel_2_bands_and_sentinel_1_sar_fields() -> None:
    l1c = family_metadata("sentinel-2-l1c")["summaries"]
    l2a = family_metadata("sentinel-2-l2a")["summaries"]
    assert [b["name"] for b in l1c["eo:bands"]][9:] == ["B09", "B10", "B11", "B12"]
    assert "B10" not in {b["name"] for b in l2a["eo:bands"]} and len(l2a["eo:bands"]) == 12
    assert {b["common_name"] for b in l2a["eo:bands"]} >= {"blue", "green", "red", "nir"}
    grd = family_metadata("sentinel-1-grd")
    assert grd["summaries"]["sar:product_type"] == ["GRD"]
    assert grd["summaries"]["sar:frequency_band"] == ["C"]
    assert "https://stac-extensions.github.io/sar/v1.0.0/schema.json" in grd["stac_extensions"]
    l2a["eo:bands"].clear()  # each call gets its own copy
    assert len(family_metadata("sentinel-2-l2a")["summaries"]["eo:bands"]) == 12


def test_other_collections_get_no_sentinel_metadata(fed: LiveFederation) -> None:
    doc = _collection(fed, "landsat-c2-l2")
    assert "summaries" not in doc and "item_assets" not in doc
    assert doc["license"] == "CC-BY-4.0"
    assert not any(ln["rel"] == "license" for ln in doc["links"])
    assert collection_errors(doc) == []
