"""A pystac-client session (the library QGIS's STAC plugin is built on) against the gateway.

The federation is demo-like: four archives of four kinds (STAC API, DHuS OpenSearch, CDSE
OData, resto) holding overlapping parts of the demo catalogue. Every answer is checked against
the catalogue itself (brute force), not against fixed numbers.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from pystac_client import Client, ConformanceClasses
from shapely.geometry import Point, box, shape

from mqs.demodata import generate_catalogue
from mqs.identity import product_name_of_item

ALL = ["sentinel-1-grd", "sentinel-1-slc", "sentinel-2-l1c", "sentinel-2-l2a"]
# archive id -> (kind, priority, collections), as in examples/demo.yaml
ARCHIVES = {
    "eodc": ("stac", 10, ALL),
    "cesnet": ("dhus", 8, ALL),
    "cdse": ("cdse-odata", 7, ALL),
    "creodias": ("resto", 4, ["sentinel-1-grd", "sentinel-2-l1c", "sentinel-2-l2a"]),
}
CATALOGUE = generate_catalogue()


@pytest.fixture(scope="module")
def fed(make_module_federation: MakeFederation) -> LiveFederation:
    archives = {
        bid: Archive(CATALOGUE[bid], kind=kind, priority=priority, collections=collections)
        for bid, (kind, priority, collections) in ARCHIVES.items()
    }
    return make_module_federation(**archives)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _products(collection: str) -> dict[str, tuple[dict[str, Any], set[str]]]:
    """Product name -> (the highest-priority archive's item, the archives holding it)."""
    found: dict[str, tuple[dict[str, Any], set[str]]] = {}
    for bid in sorted(ARCHIVES, key=lambda b: -ARCHIVES[b][1]):
        for item in CATALOGUE[bid]:
            if item["collection"] == collection:
                name = product_name_of_item(item)
                found.setdefault(name, (item, set()))[1].add(bid)
    return found


def _newest_first(products: dict[str, tuple[dict[str, Any], set[str]]]) -> list[str]:
    return [
        name
        for name, _ in sorted(
            products.items(),
            key=lambda p: (-_instant(p[1][0]["properties"]["datetime"]).timestamp(), p[0]),
        )
    ]


def test_open_and_conformance(fed: LiveFederation) -> None:
    client = Client.open(fed.url)
    for cls in (
        ConformanceClasses.CORE,
        ConformanceClasses.COLLECTIONS,
        ConformanceClasses.FEATURES,
        ConformanceClasses.ITEM_SEARCH,
        ConformanceClasses.FILTER,
        ConformanceClasses.SORT,
        ConformanceClasses.FIELDS,
        ConformanceClasses.QUERY,
        ConformanceClasses.COLLECTION_SEARCH,
    ):
        assert client.conforms_to(cls), cls
    assert client.title == "MQS federated STAC API"
    assert "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/simple-query" in (
        client.get_conforms_to()
    )


def test_collections_carry_what_browsers_and_qgis_show(fed: LiveFederation) -> None:
    client = Client.open(fed.url)
    assert sorted(c.id for c in client.get_collections()) == ALL
    s2 = client.get_collection("sentinel-2-l2a")
    bands = s2.summaries.get_list("eo:bands")
    assert bands is not None and len(bands) == 12 and "B10" not in {b["name"] for b in bands}
    assert s2.summaries.get_list("platform") == ["sentinel-2a", "sentinel-2b"]
    assert s2.summaries.get_list("gsd") == [10, 20, 60]
    assert s2.item_assets["product"].media_type == "application/zip"
    roles = {role for p in s2.providers or [] for role in p.roles or []}
    assert {"producer", "licensor", "host"} <= roles
    assert s2.get_single_link("license") is not None
    (west, south, east, north), = s2.extent.spatial.bboxes  # fmt: skip
    assert 12 < west < east < 19.5 and 48 < south < north < 51
    s1 = client.get_collection("sentinel-1-grd")
    assert s1.summaries.get_list("sar:product_type") == ["GRD"]
    assert s1.summaries.get_list("sar:frequency_band") == ["C"]


def test_search_with_bbox_datetime_filter_sortby_fields(fed: LiveFederation) -> None:
    bbox = [14.5, 49.5, 16.0, 50.2]
    start, end = "2021-10-01T00:00:00Z", "2021-10-31T23:59:59Z"
    search = Client.open(fed.url).search(
        collections=["sentinel-2-l2a"],
        bbox=bbox,
        datetime=f"{start}/{end}",
        filter="eo:cloud_cover < 40",
        filter_lang="cql2-text",
        sortby="+datetime",
        fields=["properties.datetime", "properties.eo:cloud_cover", "-assets"],
        limit=5,
    )
    got = list(search.items_as_dicts())
    expected = sorted(
        (
            (_instant(item["properties"]["datetime"]), name)
            for name, (item, _) in _products("sentinel-2-l2a").items()
            if shape(item["geometry"]).intersects(box(*bbox))
            and _instant(start) <= _instant(item["properties"]["datetime"]) <= _instant(end)
            and item["properties"]["eo:cloud_cover"] < 40
        ),
    )
    assert len(expected) > 10  # several pages
    assert [f["id"] for f in got] == [name for _, name in expected]
    for feature in got:
        assert set(feature) == {"type", "stac_version", "id", "collection", "properties"}
        assert set(feature["properties"]) == {"datetime", "eo:cloud_cover"}
        assert feature["properties"]["eo:cloud_cover"] < 40


def test_paging_with_max_items_merges_several_backends(fed: LiveFederation) -> None:
    search = Client.open(fed.url).search(collections=["sentinel-1-grd"], limit=7, max_items=40)
    items = list(search.items())
    expected = _newest_first(_products("sentinel-1-grd"))
    assert [i.id for i in items] == expected[:40]
    holders = {b for i in items for b in i.properties["federation:backends"]}
    assert holders == set(ARCHIVES)  # every kind contributed
    products = _products("sentinel-1-grd")
    for item in items:
        assert set(item.properties["federation:backends"]) == products[item.id][1]


def test_get_items_by_id_and_collection_get_items(fed: LiveFederation) -> None:
    client = Client.open(fed.url)
    s2 = _newest_first(_products("sentinel-2-l2a"))
    s1 = _newest_first(_products("sentinel-1-slc"))
    wanted = [s2[3], s2[17], s1[5]]
    assert sorted(i.id for i in client.get_items(*wanted)) == sorted(wanted)
    assert sorted(i.id for i in client.search(ids=wanted).items()) == sorted(wanted)
    collection = client.get_collection("sentinel-2-l2a")
    assert [i.id for i in collection.get_items(s2[17], s1[5])] == [s2[17]]
    first = list(itertools.islice(collection.get_items(), 25))  # pages of /items
    assert [i.id for i in first] == s2[:25]
    assert {i.collection_id for i in first} == {"sentinel-2-l2a"}


def test_a_point_bbox_finds_what_covers_the_point_in_every_archive(fed: LiveFederation) -> None:
    # "what covers this spot" (a click in QGIS): bbox west == east, south == north
    lon, lat = 15.5, 49.9
    body = {"collections": ["sentinel-1-grd"], "bbox": [lon, lat, lon, lat], "limit": 200}
    page = httpx.post(f"{fed.url}/search", json=body).json()
    assert "federation:missing" not in page, page["federation:report"]
    expected = {
        name
        for name, (item, _) in _products("sentinel-1-grd").items()
        if shape(item["geometry"]).intersects(Point(lon, lat))
    }
    assert expected and {f["id"] for f in page["features"]} == expected
    search = Client.open(fed.url).search(collections=["sentinel-2-l1c"], bbox=[lon, lat] * 2)
    found = list(search.items_as_dicts())
    assert found and all(shape(i["geometry"]).intersects(Point(lon, lat)) for i in found)
