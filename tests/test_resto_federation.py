"""resto archives as federation members: live resto emulators behind the live gateway."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from conftest import Archive, MakeFederation
from factories import TILE_BBOX, series
from searching import all_pages, expected_order, ids

from mqs.demodata import generate_catalogue

S2 = series(8, tiles=("33UXQ", "33UWQ", "33UVQ"))  # 24 products; tiles share datetimes
DEMO = generate_catalogue()["cesnet"]  # S1 GRD/SLC and S2 L1C/L2A products over Czechia
GRD = next(i for i in DEMO if i["collection"] == "sentinel-1-grd")


def test_a_product_in_a_resto_and_a_stac_archive_is_one_item_with_both_downloads(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(
        cdse=Archive(S2[:12], kind="resto", priority=8),
        eodc=Archive(S2[6:], priority=10),
    )
    features = all_pages(fed.url, {"collections": ["sentinel-2-l2a"], "limit": 5})
    assert ids(features) == expected_order(S2)
    both = next(f for f in features if f["id"] == S2[8]["id"])
    assert both["properties"]["federation:backends"] == ["eodc", "cdse"]
    product = both["assets"]["product"]
    assert product["href"].startswith(fed.backend_urls["eodc"])  # eodc has the higher priority
    assert product["alternate"]["cdse"]["href"].startswith(f"{fed.backend_urls['cdse']}/download/")
    only_resto = next(f for f in features if f["id"] == S2[0]["id"])
    assert only_resto["properties"]["federation:backends"] == ["cdse"]
    assert only_resto["assets"]["thumbnail"]["href"].endswith("-ql.jpg")
    assert only_resto["properties"]["eo:cloud_cover"] == S2[0]["properties"]["eo:cloud_cover"]


@pytest.mark.parametrize("limit", [1, 4, 25])
def test_paging_is_exact_across_collections_merged_by_the_adapter(
    make_federation: MakeFederation, limit: int
) -> None:
    # Four sources (S1 GRD, S1 SLC, S2 L1C, S2 L2A) merged into one stream, resto pages of 3.
    fed = make_federation(cdse=Archive(DEMO[:100], kind="resto", options={"max_records": 3}))
    features = all_pages(fed.url, {"limit": limit})
    assert ids(features) == expected_order(DEMO[:100])
    requested = {q["collection"] for q in fed.emulators["cdse"].state.queries}
    assert requested == {"Sentinel1", "Sentinel2"}
    assert all(q["sortParam"] == "startDate" for q in fed.emulators["cdse"].state.queries)


def test_tiles_sharing_a_start_page_exactly(make_federation: MakeFederation) -> None:
    fed = make_federation(
        cdse=Archive(S2, kind="resto", options={"max_records": 2}),
        other=Archive(S2[::2], kind="resto", options={"max_records": 3}),
    )
    features = all_pages(fed.url, {"collections": ["sentinel-2-l2a"], "limit": 4})
    assert ids(features) == expected_order(S2)


SEARCHES = [
    pytest.param({"collections": ["sentinel-1-grd"]}, id="s1-grd"),
    pytest.param({"collections": ["sentinel-2-l1c", "sentinel-2-l2a"]}, id="s2-both"),
    pytest.param({"bbox": [14.0, 49.0, 15.0, 50.0]}, id="bbox"),
    pytest.param({"intersects": {"type": "Point", "coordinates": [16.9, 50.6]}}, id="intersects"),
    pytest.param({"datetime": "2021-09-05T00:00:00Z/2021-09-20T00:00:00Z"}, id="datetime"),
    pytest.param({"datetime": "../2021-09-10T00:00:00Z"}, id="datetime-open"),
    pytest.param({"ids": [GRD["id"], DEMO[5]["id"], "S2A_nothing"]}, id="ids"),
    pytest.param(
        {"collections": ["sentinel-2-l2a"], "query": {"eo:cloud_cover": {"lt": 30}}}, id="cloud"
    ),
    pytest.param({"query": {"eo:cloud_cover": {"gte": 50}}}, id="cloud-all-collections"),
    pytest.param(
        {
            "collections": ["sentinel-1-grd"],
            "query": {
                "sat:orbit_state": {"eq": "ascending"},
                "sat:relative_orbit": {"in": [73, 146]},
            },
        },
        id="orbit",
    ),
    pytest.param(
        {"query": {"sat:absolute_orbit": {"gt": 40000}, "sar:instrument_mode": {"eq": "IW"}}},
        id="absolute-orbit-mode",
    ),
    pytest.param(
        {"collections": ["sentinel-2-l2a"], "query": {"grid:code": {"eq": "MGRS-33UWQ"}}},
        id="tile",
    ),
]


@pytest.mark.parametrize("body", SEARCHES)
def test_a_resto_archive_agrees_with_a_stac_archive(
    make_federation: MakeFederation, body: dict[str, Any]
) -> None:
    resto = make_federation(cdse=Archive(DEMO, kind="resto", options={"max_records": 7}))
    stac = make_federation(eodc=Archive(DEMO))
    expected = ids(all_pages(stac.url, {**body, "limit": 50}))
    assert expected, "the search must match something"
    assert ids(all_pages(resto.url, {**body, "limit": 50})) == expected
    both = make_federation(cdse=Archive(DEMO, kind="resto"), eodc=Archive(DEMO))
    merged = all_pages(both.url, {**body, "limit": 50})
    assert ids(merged) == expected
    assert all(f["properties"]["federation:backends"] == ["cdse", "eodc"] for f in merged)


def test_exact_clauses_are_pushed_and_the_rest_filtered_by_the_gateway(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(cdse=Archive(DEMO, kind="resto"))
    resto = fed.emulators["cdse"]
    body = {
        "limit": 100,
        "query": {"eo:cloud_cover": {"lte": 40}, "processing:version": {"eq": "03.01"}},
    }
    features = all_pages(fed.url, body)
    expected = [
        i
        for i in DEMO
        if i["properties"].get("eo:cloud_cover", 101) <= 40
        and i["properties"].get("processing:version") == "03.01"
    ]
    assert ids(features) == expected_order(expected)
    sent = resto.state.queries
    assert {q["collection"] for q in sent} == {"Sentinel2"}  # radar items have no cloud cover
    assert all(q["cloudCover"] == "[0,40]" for q in sent)  # exact in resto
    assert not any("03.01" in str(q) for q in sent)  # not expressible: the gateway's


def test_datetime_is_widened_because_resto_selects_on_the_start(
    make_federation: MakeFederation,
) -> None:
    start = datetime.fromisoformat(GRD["properties"]["start_datetime"])  # runs for 25 s
    later = (start + timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
    body = {"collections": ["sentinel-1-grd"], "datetime": f"{later}/..", "limit": 100}
    stac = ids(all_pages(make_federation(eodc=Archive(DEMO)).url, body))
    assert GRD["id"] in stac  # STAC: [start, end] overlaps the interval
    fed = make_federation(cdse=Archive(DEMO, kind="resto"))
    assert ids(all_pages(fed.url, body)) == stac
    narrow = make_federation(cdse=Archive(DEMO, kind="resto", options={"datetime_margin_s": 0}))
    assert GRD["id"] not in ids(all_pages(narrow.url, body))  # why the margin exists


def test_the_count_is_given_only_when_exact(make_federation: MakeFederation) -> None:
    fed = make_federation(cdse=Archive(DEMO, kind="resto"))
    l2a = [i for i in DEMO if i["collection"] == "sentinel-2-l2a"]
    with httpx.Client(timeout=30) as client:
        counted = client.post(f"{fed.url}/search", json={"collections": ["sentinel-2-l2a"]})
        dated = client.post(
            f"{fed.url}/search",
            json={"collections": ["sentinel-2-l2a"], "datetime": "2021-10-01T00:00:00Z/.."},
        )
    assert counted.json()["numberMatched"] == len(l2a)
    assert "numberMatched" not in dated.json()  # datetime is evaluated by the gateway


@pytest.mark.parametrize(
    "hostile", ["%", "S2A%", "x|%S2A%", "*", "S2A_MSIL2A_%", "a&status=ALL", "../x", "' OR 1=1"]
)
def test_ids_cannot_widen_the_backend_query(make_federation: MakeFederation, hostile: str) -> None:
    fed = make_federation(cdse=Archive(DEMO, kind="resto"))
    response = httpx.post(f"{fed.url}/search", json={"ids": [hostile], "limit": 100}, timeout=30)
    assert response.status_code == 200
    assert response.json()["features"] == []
    assert "federation:missing" not in response.json()
    assert fed.emulators["cdse"].state.requests == 0  # no valid id: nobody was asked


def test_a_long_geometry_is_sent_as_a_box_and_checked_by_the_adapter(
    make_federation: MakeFederation,
) -> None:
    west, south, east, _ = TILE_BBOX["33UWQ"]
    ring = [[west + (east - west) * k / 400, south] for k in range(400)]
    ring += [[east, south + 0.1], [west, south + 0.1], [west, south]]
    body = {"intersects": {"type": "Polygon", "coordinates": [ring]}, "limit": 100}
    fed = make_federation(cdse=Archive(DEMO, kind="resto"))
    features = all_pages(fed.url, body)
    sent = fed.emulators["cdse"].state.queries
    assert all("box" in q and "geometry" not in q for q in sent)
    assert features and ids(features) == ids(all_pages(make_federation(e=Archive(DEMO)).url, body))


def test_single_items_and_backend_errors(make_federation: MakeFederation) -> None:
    fed = make_federation(
        cdse=Archive(S2, kind="resto", options={"max_records": 500}, emulator={"max_records": 100}),
        eodc=Archive(S2),
    )
    with httpx.Client(timeout=30) as client:
        item = client.get(f"{fed.url}/collections/sentinel-2-l2a/items/{S2[3]['id']}").json()
        failed = client.post(f"{fed.url}/search", json={"limit": 200}).json()
    assert item["id"] == S2[3]["id"]  # the lookup asks for 50: within the limit
    assert item["properties"]["federation:backends"] == ["cdse", "eodc"]
    assert failed["federation:missing"] == ["cdse"]  # maxRecords=200 refused by resto
    assert ids(failed["features"]) == expected_order(S2)


def test_a_collection_without_a_known_resto_collection_is_a_config_error() -> None:
    from mqs.config import ConfigError, parse_config

    raw: dict[str, Any] = {
        "collections": {"my-own": {"title": "mine"}, "sentinel-2-l2a": {"title": "L2A"}},
        "backends": [
            {
                "id": "cdse",
                "kind": "resto",
                "url": "https://catalogue.dataspace.copernicus.eu/resto/api",
                "collections": {"sentinel-2-l2a": "", "my-own": ""},
            }
        ],
    }
    with pytest.raises(ConfigError, match=r"backends\[0\].*my-own: no resto collection known"):
        parse_config(raw)
    raw["backends"][0]["collections"]["my-own"] = "Sentinel2/S2MSI2A&status=ALL"
    with pytest.raises(ConfigError):
        parse_config(raw)
    raw["backends"][0]["collections"]["my-own"] = {"collection": "Sentinel2", "productType": "L2A"}
    raw["backends"][0]["options"] = {"status": "ALL", "datetime_margin_s": 600}
    assert parse_config(raw).backends[0].kind == "resto"
    raw["backends"][0]["options"] = {"status": "ALL&x=1"}
    with pytest.raises(ConfigError, match="status"):
        parse_config(raw)
