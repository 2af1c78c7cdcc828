"""pystac-client against a live gateway over live emulated archives that overlap."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import as_earth_search, series
from pystac_client import Client

ALL = series(10, tiles=("33UXQ", "33UWQ", "33UVQ"))  # 30 products, 10 datatakes


def _eodc(i: int) -> bool:
    return i % 3 != 0


def _cesnet(i: int) -> bool:
    return i % 2 == 0


def _element84(i: int) -> bool:
    return i % 4 in (0, 1)


PRODUCTS = [p for i, p in enumerate(ALL) if _eodc(i) or _cesnet(i) or _element84(i)]


def _expected(products: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(products, key=lambda i: i["id"])
    ordered.sort(key=lambda i: i["properties"]["datetime"], reverse=True)
    return [i["id"] for i in ordered]


@pytest.fixture
def overlap(make_federation: MakeFederation) -> LiveFederation:
    """eodc holds 2/3 of the products, cesnet every other, element84 (other ids) half."""
    eodc = [p for i, p in enumerate(ALL) if _eodc(i)]
    cesnet = [p for i, p in enumerate(ALL) if _cesnet(i)]
    element84 = [as_earth_search(p) for i, p in enumerate(ALL) if _element84(i)]
    return make_federation(
        eodc=Archive(eodc, priority=10, emulator={"max_page_size": 4}),
        cesnet=Archive(cesnet, priority=5, emulator={"max_page_size": 3}),
        element84=Archive(
            element84,
            priority=1,
            collections={"sentinel-2-l2a": "sentinel-2-l2a"},
            options={"product_id_property": "s2:product_uri"},
            emulator={"max_page_size": 5, "post_search": False},
        ),
    )


@pytest.mark.parametrize("limit", [1, 4, 7, 100])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_paging_returns_every_product_once_in_order(
    overlap: LiveFederation, limit: int, method: str
) -> None:
    client = Client.open(overlap.url)
    search = client.search(
        collections=["sentinel-2-l2a"], limit=limit, max_items=1000, method=method
    )
    ids = [item.id for item in search.items()]
    assert ids == _expected(PRODUCTS)


def test_max_items_stops_exactly(overlap: LiveFederation) -> None:
    search = Client.open(overlap.url).search(limit=4, max_items=9)
    assert [i.id for i in search.items()] == _expected(PRODUCTS)[:9]


def test_product_in_three_archives_is_one_item_with_two_alternates(overlap: LiveFederation) -> None:
    three = ALL[4]["id"]
    assert _eodc(4) and _cesnet(4) and _element84(4)
    items = list(Client.open(overlap.url).search(ids=[three]).items())
    assert len(items) == 1
    item = items[0]
    assert item.id == three
    assert item.properties["federation:backends"] == ["eodc", "cesnet", "element84"]
    alternates = item.assets["product"].extra_fields["alternate"]
    assert set(alternates) == {"cesnet", "element84"}
    assert item.assets["product"].href.startswith(overlap.backend_urls["eodc"])
    assert alternates["cesnet"]["href"].startswith(overlap.backend_urls["cesnet"])
    assert any("alternate-assets" in ext for ext in item.stac_extensions)
    hosts = [p["name"] for p in item.properties["providers"]]
    assert hosts == ["eodc", "cesnet", "element84"]


def test_bbox_selects_tiles(overlap: LiveFederation) -> None:
    search = Client.open(overlap.url).search(bbox=[15.2, 49.6, 16.0, 50.0], max_items=100)
    ids = [i.id for i in search.items()]
    assert ids == [i for i in _expected(PRODUCTS) if "_T33UXQ_" in i]


def test_intersects_selects_tiles(overlap: LiveFederation) -> None:
    point = {"type": "Point", "coordinates": [12.5, 50.0]}
    ids = [i.id for i in Client.open(overlap.url).search(intersects=point, max_items=100).items()]
    assert ids == [i for i in _expected(PRODUCTS) if "_T33UVQ_" in i]


def test_datetime_interval(overlap: LiveFederation) -> None:
    search = Client.open(overlap.url).search(datetime="2021-10-20/2021-10-22", max_items=100)
    ids = [i.id for i in search.items()]
    days = {"20211020", "20211021", "20211022"}
    assert ids == [i for i in _expected(PRODUCTS) if i.split("_")[2][:8] in days]
    assert {i.split("_")[2][:8] for i in ids} == days


def test_ids_reach_archives_with_other_item_ids(overlap: LiveFederation) -> None:
    only_element84 = ALL[9]["id"]
    assert not _eodc(9) and not _cesnet(9) and _element84(9)
    items = list(Client.open(overlap.url).search(ids=[only_element84, "S2B_NOT_A_PRODUCT"]).items())
    assert [i.id for i in items] == [only_element84]
    assert items[0].properties["federation:backends"] == ["element84"]


def test_limit_is_page_size(overlap: LiveFederation) -> None:
    page = httpx.get(f"{overlap.url}/search", params={"limit": 5}).json()
    assert page["numberReturned"] == 5 == len(page["features"])
    assert [ln["rel"] for ln in page["links"]].count("next") == 1


def test_unknown_collection_filter_returns_only_that_collection(overlap: LiveFederation) -> None:
    ids = [i.id for i in Client.open(overlap.url).search(collections=["sentinel-1-grd"]).items()]
    assert ids == []


def test_number_matched_only_when_exact(make_federation: MakeFederation) -> None:
    fed = make_federation(one=Archive(ALL[:12]), two=Archive(ALL[6:]))
    both = httpx.get(f"{fed.url}/search", params={"limit": 3}).json()
    assert "numberMatched" not in both  # overlapping backends: no exact count
    fed_one = make_federation(solo=Archive(ALL[:12]))
    solo = httpx.get(f"{fed_one.url}/search", params={"limit": 3}).json()
    assert solo["numberMatched"] == 12


def test_item_endpoint_merges_and_links_back(overlap: LiveFederation) -> None:
    pid = ALL[4]["id"]
    collection = Client.open(overlap.url).get_collection("sentinel-2-l2a")
    item = collection.get_item(pid)
    assert item is not None and item.id == pid
    assert item.properties["federation:backends"] == ["eodc", "cesnet", "element84"]
    links = {ln.rel: ln.href for ln in item.links}
    assert links["self"] == f"{overlap.url}/collections/sentinel-2-l2a/items/{pid}"
    assert links["collection"] == f"{overlap.url}/collections/sentinel-2-l2a"
    vias = [ln.href for ln in item.links if ln.rel == "via"]
    assert len(vias) == 1  # the primary copy's own URL
    assert vias[0].startswith(overlap.backend_urls["eodc"])
    safe = httpx.get(f"{overlap.url}/collections/sentinel-2-l2a/items/{pid}.SAFE").json()
    assert safe["id"] == pid


def test_items_endpoint_pages_one_collection(overlap: LiveFederation) -> None:
    collection = Client.open(overlap.url).get_collection("sentinel-2-l2a")
    ids = [i.id for i in collection.get_items()]
    assert ids == _expected(PRODUCTS)


def test_collections_carry_extent_and_providers(overlap: LiveFederation) -> None:
    doc = httpx.get(f"{overlap.url}/collections/sentinel-2-l2a").json()
    hosts = [p["name"] for p in doc["providers"] if p["roles"] == ["host"]]
    assert hosts == ["eodc", "cesnet", "element84"]  # after the producer and licensor
    west, south, east, north = doc["extent"]["spatial"]["bbox"][0]
    assert (west, south, east, north) == (12.2, 49.5, 16.5, 50.5)
    start, end = doc["extent"]["temporal"]["interval"][0]
    assert start.startswith("2021-10-15") and end.startswith("2021-10-24")


def test_backends_endpoint_lists_members(overlap: LiveFederation) -> None:
    landing = httpx.get(overlap.url).json()
    href = next(ln["href"] for ln in landing["links"] if ln["rel"] == "federation")
    members = httpx.get(href).json()["backends"]
    assert [m["id"] for m in members] == ["eodc", "cesnet", "element84"]
    assert members[2]["collections"] == ["sentinel-2-l2a"]
    assert members[0]["url"] == overlap.backend_urls["eodc"]
