"""The demo federation as a user meets it: pystac-client over seven overlapping archives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pystac_client import Client
from shapely.geometry import box, shape
from stac_schema import item_errors

from mqs.app import create_app
from mqs.config import Settings
from mqs.demo import demo_federation
from mqs.demodata import generate_catalogue
from mqs.identity import product_name_of_item
from mqs.serving import bound_socket, serving_in_thread


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config, apps = demo_federation(Path(tmp_path_factory.mktemp("demo")))
    gateway = bound_socket()
    app = create_app(config, Settings(token_secret="demo-test"))
    with serving_in_thread([*apps, (app, gateway)]) as urls:
        yield urls[-1]


def _brute_force(collection: str, bbox: list[float], start: str, end: str) -> dict[str, set[str]]:
    """Product name -> archives holding it, straight from the generated catalogue."""
    area = box(*bbox)
    low = datetime.fromisoformat(start).replace(tzinfo=UTC)
    high = datetime.fromisoformat(end).replace(tzinfo=UTC)
    found: dict[str, set[str]] = {}
    for archive, items in generate_catalogue().items():
        for item in items:
            when = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
            wanted = item["collection"] == collection and low <= when <= high
            if wanted and shape(item["geometry"]).intersects(area):
                found.setdefault(product_name_of_item(item), set()).add(archive)
    return found


def test_readme_search_returns_merged_deduplicated_items(demo: str) -> None:
    # stac-client search URL -c sentinel-2-l2a --bbox 14 49 16 50 --datetime 2021-10-01/2021-10-31
    search = Client.open(demo).search(
        collections=["sentinel-2-l2a"],
        bbox=[14, 49, 16, 50],
        datetime="2021-10-01/2021-10-31",
        max_items=10_000,
    )
    items = list(search.items())
    expected = _brute_force("sentinel-2-l2a", [14, 49, 16, 50], "2021-10-01", "2021-10-31T23:59:59")
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids)) == len(expected) > 20
    assert set(ids) == set(expected)
    for item in items:
        assert set(item.properties["federation:backends"]) == expected[item.id]
    assert any(len(v) >= 3 for v in expected.values())
    times = [(i.properties["datetime"], i.id) for i in items]
    assert times == sorted(times, key=lambda t: (-datetime.fromisoformat(t[0]).timestamp(), t[1]))


@pytest.mark.parametrize(
    "collection", ["sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c", "sentinel-2-l2a"]
)
def test_every_item_is_valid_stac(demo: str, collection: str) -> None:
    page = httpx.get(f"{demo}/search", params={"collections": collection, "limit": 100}).json()
    assert len(page["features"]) >= 90
    for item in page["features"]:
        assert item_errors(item) == [], (item["id"], item_errors(item)[:3])


def test_earth_search_copies_merge_with_product_named_ones(demo: str) -> None:
    items = Client.open(demo).search(collections=["sentinel-2-l2a"], max_items=200).items()
    merged = [i for i in items if "element84" in i.properties["federation:backends"]]
    assert merged
    for item in merged:
        assert item.id.startswith(("S2A_MSIL2A_", "S2B_MSIL2A_"))
    both = [i for i in merged if len(i.properties["federation:backends"]) > 1]
    assert both and all(
        any("alternate" in asset.extra_fields for asset in i.assets.values()) for i in both
    )
