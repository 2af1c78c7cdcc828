"""CDSE as a federation member: live CDSE emulators behind the live gateway."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import yaml
from conftest import Archive, MakeFederation
from factories import BASE_TIME, TILE_BBOX, s2_item, s2_name, series
from searching import all_pages, expected_order, ids
from stac_schema import item_errors

from adapters.cdse_odata.emulator import TOKEN_PATH
from mqs.config import ConfigError, parse_config
from mqs.demodata import generate_catalogue

S2 = series(8, tiles=("33UXQ", "33UWQ", "33UVQ"))  # 24 products; tiles share datetimes
DEMO = generate_catalogue()["cesnet"]  # S1 GRD/SLC and S2 L1C/L2A products over Czechia
CDSE = "cdse-odata"


def test_a_product_in_cdse_and_a_stac_archive_is_one_item_with_both_downloads(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(
        cdse=Archive(S2[:12], kind=CDSE, priority=8, emulator={"users": {"u": "p"}}),
        eodc=Archive(S2[6:], priority=10),
    )
    features = all_pages(fed.url, {"collections": ["sentinel-2-l2a"], "limit": 5})
    assert ids(features) == expected_order(S2)
    both = next(f for f in features if f["id"] == S2[8]["id"])
    assert both["properties"]["federation:backends"] == ["eodc", "cdse"]
    product = both["assets"]["product"]
    assert product["href"].startswith(fed.backend_urls["eodc"])  # eodc has the higher priority
    cdse_href = product["alternate"]["cdse"]["href"]
    assert cdse_href.startswith(f"{fed.backend_urls['cdse']}/odata/v1/Products(")
    assert cdse_href.endswith(")/$value")
    with httpx.Client() as client:  # the CDSE download answers, with a token of its realm
        assert client.head(cdse_href).status_code == 401
        token_url = f"{fed.backend_urls['cdse']}{TOKEN_PATH}"
        form = {
            "client_id": "cdse-public",
            "grant_type": "password",
            "username": "u",
            "password": "p",
        }
        token = client.post(token_url, data=form).json()["access_token"]
        assert (
            client.head(cdse_href, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
    only_cdse = next(f for f in features if f["id"] == S2[0]["id"])
    assert only_cdse["properties"]["federation:backends"] == ["cdse"]
    s3 = only_cdse["assets"]["product"]["alternate"]["s3"]["href"]
    assert s3 == f"s3://eodata/Sentinel-2/MSI/L2A/2021/10/24/{S2[0]['id']}.SAFE"
    assert item_errors(only_cdse) == [] and item_errors(both) == []


@pytest.mark.parametrize("limit", [1, 4, 10, 100])
def test_paging_is_exact_with_small_backend_pages(
    make_federation: MakeFederation, limit: int
) -> None:
    # Three tiles per datatake share ContentDate/Start; the catalogue orders ties by its Ids.
    fed = make_federation(
        cdse=Archive(S2, kind=CDSE, options={"max_page_size": 2}),
        other=Archive(S2[::2], kind=CDSE, options={"max_page_size": 3}),
    )
    features = all_pages(fed.url, {"collections": ["sentinel-2-l2a"], "limit": limit})
    assert ids(features) == expected_order(S2)


SEARCHES = [
    pytest.param({"collections": ["sentinel-1-grd"]}, id="s1-grd"),
    pytest.param({"collections": ["sentinel-1-slc", "sentinel-2-l1c"]}, id="slc-and-l1c"),
    pytest.param({"bbox": [14.0, 49.0, 15.0, 50.0]}, id="bbox"),
    pytest.param(
        {
            "intersects": {
                "type": "Polygon",
                "coordinates": [[[15.5, 49.2], [16.8, 49.9], [15.2, 50.4], [15.5, 49.2]]],
            },
            "collections": ["sentinel-2-l2a"],
        },
        id="intersects",
    ),
    pytest.param(
        {
            "datetime": "2021-09-05T00:00:00Z/2021-09-20T00:00:00Z",
            "collections": ["sentinel-2-l2a"],
        },
        id="datetime",
    ),
    pytest.param(
        {"collections": ["sentinel-2-l2a"], "query": {"eo:cloud_cover": {"lt": 30}}}, id="cloud"
    ),
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
        {"collections": ["sentinel-2-l2a"], "query": {"grid:code": {"eq": "MGRS-33UWQ"}}},
        id="tile",
    ),
    pytest.param(
        {"collections": ["sentinel-1-slc"], "query": {"sar:polarizations": {"eq": "VH"}}},
        id="polarisation",
    ),
    pytest.param({"query": {"platform": {"in": ["sentinel-1b", "sentinel-2b"]}}}, id="platform"),
    pytest.param({"ids": [i["id"] for i in DEMO[::40]]}, id="ids"),
]


@pytest.mark.parametrize("body", SEARCHES)
def test_cdse_agrees_with_a_stac_archive(
    make_federation: MakeFederation, body: dict[str, Any]
) -> None:
    stac = ids(all_pages(make_federation(stac=Archive(DEMO)).url, {**body, "limit": 50}))
    cdse = ids(all_pages(make_federation(cdse=Archive(DEMO, kind=CDSE)).url, {**body, "limit": 50}))
    assert stac, "the search must match something"
    assert cdse == stac
    merged = make_federation(cdse=Archive(DEMO, kind=CDSE), stac=Archive(DEMO))
    features = all_pages(merged.url, {**body, "limit": 50})
    assert ids(features) == stac
    assert all(f["properties"]["federation:backends"] == ["cdse", "stac"] for f in features)


def test_query_clauses_are_pushed_into_the_filter_and_the_rest_left_to_the_gateway(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(cdse=Archive(DEMO, kind=CDSE))
    body = {
        "collections": ["sentinel-2-l2a"],
        "limit": 100,
        "query": {"eo:cloud_cover": {"lte": 40}, "processing:version": {"eq": "03.01"}},
    }
    expected = [
        i
        for i in DEMO
        if i["collection"] == "sentinel-2-l2a"
        and i["properties"]["eo:cloud_cover"] <= 40
        and i["properties"].get("processing:version") == "03.01"
    ]
    assert ids(all_pages(fed.url, body)) == expected_order(expected)
    sent = fed.emulators["cdse"].state.queries[-1]["$filter"]
    assert "att/Name eq 'cloudCover' and att/OData.CSC.DoubleAttribute/Value le 40" in sent
    assert "03.01" not in sent  # not pushed down: evaluated by the gateway


def test_geometry_is_a_widened_prefilter_the_gateway_decides_on(
    make_federation: MakeFederation,
) -> None:
    """At 60N the great-circle edges of CDSE's geography differ from planar lon/lat."""
    near_edge = s2_item(s2_name(BASE_TIME, "34VEK"), BASE_TIME, bbox=(19.9, 60.05, 20.1, 60.1))
    outside = s2_item(s2_name(BASE_TIME, "34VEJ"), BASE_TIME, bbox=(19.9, 59.8, 20.1, 59.95))
    inside = s2_item(s2_name(BASE_TIME, "34VFL"), BASE_TIME, bbox=(25, 65, 26, 66))
    items = [near_edge, outside, inside]
    body = {"bbox": [0, 60, 40, 70], "limit": 10}
    fed = make_federation(cdse=Archive(items, kind=CDSE))
    found = ids(all_pages(fed.url, body))
    assert found == ids(all_pages(make_federation(stac=Archive(items)).url, body))
    assert sorted(found) == sorted([near_edge["id"], inside["id"]])
    sent = fed.emulators["cdse"].state.queries[-1]
    answer = httpx.get(f"{fed.backend_urls['cdse']}/odata/v1/Products", params=sent).json()
    assert len(answer["value"]) == 3  # the backend's answer is a superset: the gateway filters


def test_number_matched_only_when_cdse_evaluates_everything(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(cdse=Archive(DEMO, kind=CDSE))
    l2a = sum(1 for i in DEMO if i["collection"] == "sentinel-2-l2a")
    body = {"collections": ["sentinel-2-l2a"], "limit": 5}
    first = httpx.post(f"{fed.url}/search", json=body).json()
    assert first["numberMatched"] == l2a
    local = httpx.post(f"{fed.url}/search", json={**body, "bbox": [14, 49, 15, 50]}).json()
    assert "numberMatched" not in local  # the gateway tests the geometry itself


@pytest.mark.parametrize(
    "hostile",
    ["x' or true or 'x", "x') or (Name ne '", "*", "'", f"{S2[0]['id']}' or '1' eq '1"],
)
def test_ids_cannot_widen_the_catalogue_query(
    make_federation: MakeFederation, hostile: str
) -> None:
    fed = make_federation(cdse=Archive(S2, kind=CDSE))
    response = httpx.post(f"{fed.url}/search", json={"ids": [hostile], "limit": 100})
    assert response.status_code == 200
    assert response.json()["features"] == []
    assert "federation:missing" not in response.json()


def test_single_items_by_name_with_or_without_safe(make_federation: MakeFederation) -> None:
    fed = make_federation(cdse=Archive(S2, kind=CDSE))
    with httpx.Client(timeout=20) as client:
        for suffix in ("", ".SAFE"):
            url = f"{fed.url}/collections/sentinel-2-l2a/items/{S2[5]['id']}{suffix}"
            item = client.get(url).json()
            assert item["id"] == S2[5]["id"] and item["properties"]["federation:backends"] == [
                "cdse"
            ]
        assert (
            client.get(f"{fed.url}/collections/sentinel-2-l2a/items/S2X_nothing").status_code == 404
        )


def test_catalogue_errors_become_backend_failures_not_crashes(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(
        cdse=Archive(S2, kind=CDSE, emulator={"max_top": 50}),  # the adapter asks for $top=200
        eodc=Archive(S2),
    )
    response = httpx.post(f"{fed.url}/search", json={"limit": 200})
    assert response.status_code == 200
    body = response.json()
    assert body["federation:missing"] == ["cdse"]
    assert ids(body["features"]) == expected_order(S2)
    assert "Traceback" not in orjson.dumps(body).decode()


def test_paging_past_the_skip_limit_fails_instead_of_ending_silently(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(
        cdse=Archive(
            S2, kind=CDSE, options={"max_page_size": 2, "max_skip": 4}, emulator={"max_skip": 4}
        )
    )
    response = httpx.post(f"{fed.url}/search", json={"limit": 100}).json()
    assert response["federation:missing"] == ["cdse"]
    assert ids(response["features"]) == expected_order(S2)[: len(response["features"])]
    assert len(response["features"]) == 6  # $skip 0, 2 and 4 were answered


README_EXAMPLE = """
collections:
  sentinel-1-grd: {title: S1 GRD}
  sentinel-2-l2a: {title: S2 L2A}
  sentinel-3-olci-l1-efr: {title: S3 OLCI EFR}
backends:
  - id: cdse
    kind: cdse-odata
    url: https://catalogue.dataspace.copernicus.eu
    priority: 6
    timeout_s: 20
    collections:
      sentinel-1-grd: ""
      sentinel-2-l2a: "SENTINEL-2/S2MSI2A"
      sentinel-3-olci-l1-efr: {collection: SENTINEL-3, productType: [OL_1_EFR___]}
    options: {max_page_size: 100, geometry_margin_deg: 0.5, quicklooks: true}
    auth:
      type: oauth2
      token_url: https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token
      client_id: cdse-public
      username_env: CDSE_USER
      password_env: CDSE_PASSWORD
"""


def test_the_documented_configuration_is_valid_and_bad_mappings_are_rejected() -> None:
    raw = yaml.safe_load(README_EXAMPLE)
    config = parse_config(raw)
    assert config.backends[0].kind == CDSE
    raw["backends"][0]["collections"]["sentinel-3-olci-l1-efr"] = ""  # no built-in mapping
    with pytest.raises(ConfigError, match=r"sentinel-3-olci-l1-efr: no CDSE collection"):
        parse_config(raw)
    raw = yaml.safe_load(README_EXAMPLE)
    raw["backends"][0]["options"] = {"max_page_size": 5000}
    with pytest.raises(ConfigError, match=r"options.max_page_size"):
        parse_config(raw)


def test_tiles_share_datetimes_and_still_come_once(make_federation: MakeFederation) -> None:
    tiles = [s2_item(s2_name(BASE_TIME, t), BASE_TIME, bbox=TILE_BBOX[t]) for t in TILE_BBOX]
    fed = make_federation(cdse=Archive(tiles, kind=CDSE, options={"max_page_size": 1}))
    assert ids(all_pages(fed.url, {"limit": 1})) == sorted(t["id"] for t in tiles)


@pytest.mark.parametrize("pushdown", [True, False])
def test_a_sentinel_1_product_type_means_the_same_on_cdse_as_elsewhere(
    make_federation: MakeFederation, pushdown: bool
) -> None:
    """CDSE's productType is IW_GRDH_1S where DHuS and STAC APIs say GRD: its items say GRD,
    so ``product:type = 'GRD'`` finds the products only CDSE holds too, pushed down or not."""
    grd = [i for i in DEMO if i["collection"] == "sentinel-1-grd"][:12]
    assert grd and all(i["properties"]["product:type"] == "GRD" for i in grd)
    fed = make_federation(
        cdse=Archive(grd[:8], kind=CDSE, filter_pushdown=pushdown),
        eodc=Archive(grd[4:], priority=10),
    )
    query = {"collections": ["sentinel-1-grd"], "limit": 5}
    everything = all_pages(fed.url, query)
    assert ids(everything) == expected_order(grd)
    cdse_only = [f for f in everything if f["properties"]["federation:backends"] == ["cdse"]]
    assert cdse_only and all(f["properties"]["product:type"] == "GRD" for f in cdse_only)
    for text, expected in (("product:type = 'GRD'", grd), ("product:type = 'IW_GRDH_1S'", [])):
        found = all_pages(fed.url, query | {"filter": text, "filter-lang": "cql2-text"})
        assert ids(found) == expected_order(expected), text
