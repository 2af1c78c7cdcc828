"""Terrascope archives as federation members: live Terrascope emulators behind the gateway."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import httpx
import pytest
from conftest import Archive, MakeFederation
from factories import TILE_BBOX, s2_item, series
from searching import all_pages, expected_order, ids
from stac_schema import item_errors

from mqs.demodata import generate_catalogue
from mqs.literals import format_instant, parse_instant

L2A_URN = "urn:eop:VITO:SENTINEL_2_L2A"  # no such mirror at VITO: configured like a real one
COLLECTIONS = {
    "sentinel-1-grd": "",
    "sentinel-1-slc": "",
    "sentinel-2-l1c": "",
    "sentinel-2-l2a": L2A_URN,
}
TOC = {"terrascope-s2-toc-v2": {"title": "Terrascope Sentinel-2 TOC reflectance V2"}}
S2 = series(8, tiles=("33UXQ", "33UWQ", "33UVQ"))  # 24 products; tiles share datetimes
DEMO = generate_catalogue()["cesnet"]  # S1 GRD/SLC and S2 L1C/L2A products over Czechia
GRD = next(i for i in DEMO if i["collection"] == "sentinel-1-grd")


def vito(items: list[dict[str, Any]], **kwargs: Any) -> Archive:
    collections = kwargs.pop("collections", COLLECTIONS)
    return Archive(items, kind="terrascope", collections=collections, **kwargs)


def test_a_product_in_terrascope_and_a_stac_archive_is_one_item_with_both_downloads(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(vito=vito(S2[:12], priority=8), eodc=Archive(S2[6:], priority=10))
    features = all_pages(fed.url, {"collections": ["sentinel-2-l2a"], "limit": 5})
    assert ids(features) == expected_order(S2)
    both = next(f for f in features if f["id"] == S2[8]["id"])
    assert both["properties"]["federation:backends"] == ["eodc", "vito"]
    product = both["assets"]["product"]
    assert product["href"].startswith(fed.backend_urls["eodc"])  # eodc has the higher priority
    terrascope_href = product["alternate"]["vito"]["href"]
    assert terrascope_href.startswith(f"{fed.backend_urls['vito']}/download/SENTINEL_2_L2A/")
    assert terrascope_href.endswith(f"/{S2[8]['id']}.zip")
    with httpx.Client() as client:  # the Terrascope download link really answers the file
        assert client.head(terrascope_href).status_code == 200
    only_vito = next(f for f in features if f["id"] == S2[0]["id"])
    assert only_vito["properties"]["federation:backends"] == ["vito"]
    assert only_vito["assets"]["metadata"]["type"] == "application/vnd.iso.19139+xml"
    assert item_errors(only_vito) == [] and item_errors(both) == []


MIXED = S2 + DEMO[:40]  # several collections: several Terrascope request streams


@pytest.mark.parametrize("limit", [1, 4, 10, 100])
def test_paging_through_several_collection_streams_is_exact(
    make_federation: MakeFederation, limit: int
) -> None:
    fed = make_federation(
        vito=vito(MIXED, options={"max_page_size": 2}),
        vito2=vito(MIXED[::3], options={"max_page_size": 3}),
    )
    features = all_pages(fed.url, {"limit": limit})
    assert ids(features) == expected_order(MIXED)


def _cut_through(item: dict[str, Any]) -> str:
    """A datetime interval starting 10 s into ``item``'s acquisition."""
    start = parse_instant(item["properties"]["start_datetime"]) + timedelta(seconds=10)
    return f"{format_instant(start)}/{format_instant(start + timedelta(hours=30))}"


SEARCHES = [
    pytest.param({"collections": ["sentinel-1-grd"]}, id="s1-grd"),
    pytest.param({"collections": ["sentinel-2-l1c", "sentinel-2-l2a"]}, id="s2-both"),
    pytest.param({"bbox": [14.0, 49.0, 15.0, 50.0]}, id="bbox"),
    pytest.param(
        {
            "intersects": {
                "type": "Polygon",
                "coordinates": [[[14, 49], [15, 49], [14, 50], [14, 49]]],
            }
        },
        id="intersects-triangle",
    ),
    pytest.param({"intersects": {"type": "Point", "coordinates": [14.5, 49.5]}}, id="point"),
    pytest.param(
        {
            "datetime": "2021-09-05T00:00:00Z/2021-09-20T00:00:00Z",
            "collections": ["sentinel-2-l2a"],
        },
        id="datetime",
    ),
    pytest.param({"datetime": _cut_through(GRD)}, id="datetime-through-a-product"),
    pytest.param(
        {"collections": ["sentinel-2-l2a"], "query": {"eo:cloud_cover": {"lt": 30}}}, id="cloud-lt"
    ),
    pytest.param(
        {"collections": ["sentinel-2-l1c"], "query": {"eo:cloud_cover": {"lte": 40, "gte": 10}}},
        id="cloud-range",
    ),
    pytest.param(
        {
            "collections": ["sentinel-1-grd", "sentinel-1-slc"],
            "query": {"sat:orbit_state": {"eq": "ascending"}, "sat:relative_orbit": {"eq": 146}},
        },
        id="orbit",
    ),
    pytest.param(
        {"query": {"grid:code": {"eq": "MGRS-33UWQ"}, "sat:relative_orbit": {"in": [22, 79]}}},
        id="tile",
    ),
    pytest.param({"ids": [DEMO[0]["id"], DEMO[100]["id"], DEMO[300]["id"]]}, id="ids"),
    pytest.param(
        {"ids": [i["id"] for i in DEMO[:30]], "collections": ["sentinel-2-l2a", "sentinel-2-l1c"]},
        id="many-ids",
    ),
]


@pytest.mark.parametrize("body", SEARCHES)
def test_terrascope_answers_like_a_stac_archive(
    make_federation: MakeFederation, body: dict[str, Any]
) -> None:
    stac = make_federation(eodc=Archive(DEMO))
    terrascope = make_federation(vito=vito(DEMO))
    expected = ids(all_pages(stac.url, {**body, "limit": 50}))
    assert expected, "the search must match something"
    assert ids(all_pages(terrascope.url, {**body, "limit": 50})) == expected
    both = make_federation(eodc=Archive(DEMO), vito=vito(DEMO))
    merged = all_pages(both.url, {**body, "limit": 50})
    assert ids(merged) == expected
    assert all(f["properties"]["federation:backends"] == ["eodc", "vito"] for f in merged)


@pytest.mark.parametrize("relation", ["during", "intersects", "date"])
@pytest.mark.parametrize(
    "interval",
    [
        pytest.param(_cut_through(GRD), id="through-a-product"),
        pytest.param("2021-10-01T00:00:00Z/2021-10-03T12:00:00.5Z", id="days"),
        pytest.param("../2021-09-03T05:01:00Z", id="open-start"),
    ],
)
def test_whatever_terrascope_means_by_start_and_end_the_answer_is_stac_s(
    make_federation: MakeFederation, relation: str, interval: str
) -> None:
    body = {"datetime": interval, "limit": 50}
    stac = make_federation(eodc=Archive(DEMO))
    terrascope = make_federation(vito=vito(DEMO, emulator={"time_relation": relation}))
    expected = ids(all_pages(stac.url, body))
    assert expected, "the search must match something"
    assert ids(all_pages(terrascope.url, body)) == expected


def test_without_a_time_margin_a_strict_catalogue_misses_products(
    make_federation: MakeFederation,
) -> None:
    body = {"datetime": _cut_through(GRD), "collections": ["sentinel-1-grd"], "limit": 50}
    strict = {"time_relation": "during"}
    exact = make_federation(vito=vito(DEMO, emulator=strict))
    unsafe = make_federation(vito=vito(DEMO, emulator=strict, options={"datetime_margin_s": 0}))
    assert GRD["id"] in ids(all_pages(exact.url, body))
    assert GRD["id"] not in ids(all_pages(unsafe.url, body))  # why the margin exists


def test_derived_products_are_their_own_items_never_merged(
    make_federation: MakeFederation,
) -> None:
    when = parse_instant(S2[0]["properties"]["datetime"])
    toc = [
        s2_item(
            f"S2A_{when:%Y%m%dT%H%M%S}_33UXQ_TOC_V210", when, collection="terrascope-s2-toc-v2"
        ),
        # A derived product whose title could pass for the Sentinel product it was made from:
        s2_item(S2[0]["id"], when, collection="terrascope-s2-toc-v2"),
    ]
    collections = {**COLLECTIONS, "terrascope-s2-toc-v2": ""}
    fed = make_federation(
        extra_collections=TOC,
        vito=vito(S2[:3] + toc, collections=collections),
        eodc=Archive(S2[:3], priority=10),
    )
    features = all_pages(fed.url, {"limit": 2})
    by_id = {f["id"]: f for f in features}
    urn_id = f"urn:eop:VITO:TERRASCOPE_S2_TOC_V2:{S2[0]['id']}"
    assert set(by_id) == {i["id"] for i in S2[:3]} | {toc[0]["id"], urn_id}
    assert by_id[toc[0]["id"]]["collection"] == "terrascope-s2-toc-v2"
    assert by_id[urn_id]["properties"]["federation:backends"] == ["vito"]
    assert by_id[S2[0]["id"]]["properties"]["federation:backends"] == ["eodc", "vito"]
    assert by_id[S2[0]["id"]]["collection"] == "sentinel-2-l2a"
    with httpx.Client() as client:
        url = f"{fed.url}/collections/terrascope-s2-toc-v2/items/{toc[0]['id']}"
        item = client.get(url).json()
        assert item["id"] == toc[0]["id"] and item_errors(item) == []
        only = client.post(
            f"{fed.url}/search", json={"collections": ["terrascope-s2-toc-v2"], "ids": [urn_id]}
        ).json()
    assert ids(only["features"]) == [urn_id]


@pytest.mark.parametrize(
    "hostile",
    ["*", "S2A*", "x&collection=urn:eop:VITO:CGS_S1_GRD_L1", "a b", "urn:eop:VITO:CGS_S2_L1C:*"],
)
def test_hostile_ids_return_nothing_and_never_reach_terrascope(
    make_federation: MakeFederation, hostile: str
) -> None:
    fed = make_federation(vito=vito(DEMO))
    response = httpx.post(f"{fed.url}/search", json={"ids": [hostile], "limit": 100})
    assert response.status_code == 200
    assert response.json()["features"] == []
    assert "federation:missing" not in response.json()
    assert fed.emulators["vito"].state.queries == []  # nothing was worth asking
    wildcard = make_federation(vito=vito(DEMO))
    body = {"ids": [hostile, DEMO[0]["id"]], "limit": 100}
    assert ids(httpx.post(f"{wildcard.url}/search", json=body).json()["features"]) == [
        DEMO[0]["id"]
    ]
    sent = wildcard.emulators["vito"].state.queries
    assert sent and {q["title"] for q in sent} == {DEMO[0]["id"]}


def test_exact_clauses_are_sent_and_the_rest_filtered_by_the_gateway(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(vito=vito(DEMO))
    body = {
        "collections": ["sentinel-2-l2a"],
        "limit": 100,
        "query": {"eo:cloud_cover": {"lte": 40}, "processing:version": {"eq": "03.01"}},
    }
    features = all_pages(fed.url, body)
    expected = [
        i
        for i in DEMO
        if i["collection"] == "sentinel-2-l2a"
        and i["properties"]["eo:cloud_cover"] <= 40
        and i["properties"].get("processing:version") == "03.01"
    ]
    assert ids(features) == expected_order(expected)
    sent = fed.emulators["vito"].state.queries[-1]
    assert sent["cloudCover"] == "[0,40]" and sent["collection"] == L2A_URN
    assert sent["sortKeys"] == "start,,0"
    assert "03.01" not in str(sent)  # no Terrascope parameter: evaluated by the gateway


def test_number_matched_is_reported_when_nothing_is_filtered_locally(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(vito=vito(DEMO, options={"max_page_size": 7}))
    with httpx.Client() as client:
        first = client.post(f"{fed.url}/search", json={"collections": ["sentinel-2-l2a"]}).json()
        following = client.post(first["links"][-1]["href"], json=first["links"][-1]["body"])
        local = client.post(
            f"{fed.url}/search", json={"collections": ["sentinel-2-l2a"], "bbox": [14, 49, 15, 50]}
        ).json()
    l2a = sum(1 for i in DEMO if i["collection"] == "sentinel-2-l2a")
    assert first["numberMatched"] == l2a
    assert following.json()["numberMatched"] == l2a
    assert "numberMatched" not in local  # the gateway tests the geometry itself


def test_the_result_window_ends_the_stream_as_a_failure_not_silently(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(
        vito=vito(S2, options={"max_page_size": 2, "max_results": 5}, emulator={"max_results": 5}),
        eodc=Archive(S2),
    )
    response = httpx.post(f"{fed.url}/search", json={"limit": 100}).json()
    assert response["federation:missing"] == ["vito"]
    assert ids(response["features"]) == expected_order(S2)
    sent = fed.emulators["vito"].state.queries
    assert all(int(q["startIndex"]) - 1 + int(q["count"]) <= 5 for q in sent)


def test_single_items_and_collection_extents_come_from_terrascope(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(vito=vito(S2))
    with httpx.Client() as client:
        item = client.get(f"{fed.url}/collections/sentinel-2-l2a/items/{S2[5]['id']}").json()
        missing = client.get(f"{fed.url}/collections/sentinel-2-l2a/items/{S2[5]['id']}x")
        collection = client.get(f"{fed.url}/collections/sentinel-2-l2a").json()
    assert item["id"] == S2[5]["id"] and item["properties"]["federation:backends"] == ["vito"]
    assert missing.status_code == 404
    west = min(b[0] for b in TILE_BBOX.values())
    east = max(b[2] for b in TILE_BBOX.values())
    assert collection["extent"]["spatial"]["bbox"] == [[west, 49.5, east, 50.5]]
    first = min(i["properties"]["datetime"] for i in S2)
    assert collection["extent"]["temporal"]["interval"] == [[first, None]]


def test_an_item_collection_of_one_collection_pages_like_search(
    make_federation: MakeFederation,
) -> None:
    items = copy.deepcopy(DEMO[:60])
    fed = make_federation(vito=vito(items, options={"max_page_size": 4}))
    with httpx.Client(timeout=30) as client:
        page = client.get(f"{fed.url}/collections/sentinel-2-l1c/items", params={"limit": 5}).json()
        found = list(page["features"])
        while link := next((x for x in page["links"] if x["rel"] == "next"), None):
            page = client.get(link["href"]).json()
            found += page["features"]
    expected = [i for i in items if i["collection"] == "sentinel-2-l1c"]
    assert ids(found) == expected_order(expected)
