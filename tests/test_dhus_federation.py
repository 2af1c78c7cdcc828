"""DHuS archives as federation members: live DHuS emulators behind the live gateway."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from conftest import Archive, MakeFederation
from factories import TILE_BBOX, series
from searching import all_pages, expected_order, ids
from stac_schema import item_errors

from mqs.demodata import generate_catalogue

S2 = series(8, tiles=("33UXQ", "33UWQ", "33UVQ"))  # 24 products; tiles share datetimes
DEMO = generate_catalogue()["cesnet"]  # S1 GRD/SLC and S2 L1C/L2A products over Czechia


def test_a_product_in_a_dhus_and_a_stac_archive_is_one_item_with_both_downloads(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(
        cesnet=Archive(S2[:12], kind="dhus", priority=8),
        eodc=Archive(S2[6:], priority=10),
    )
    features = all_pages(fed.url, {"collections": ["sentinel-2-l2a"], "limit": 5})
    assert ids(features) == expected_order(S2)
    both = next(f for f in features if f["id"] == S2[8]["id"])
    assert both["properties"]["federation:backends"] == ["eodc", "cesnet"]
    product = both["assets"]["product"]
    assert product["href"].startswith(fed.backend_urls["eodc"])  # eodc has the higher priority
    dhus_href = product["alternate"]["cesnet"]["href"]
    assert dhus_href.startswith(f"{fed.backend_urls['cesnet']}/odata/v1/Products('")
    assert dhus_href.endswith("')/$value")
    with httpx.Client() as client:  # the DHuS download link really answers the product
        assert client.head(dhus_href).status_code == 200
    only_dhus = next(f for f in features if f["id"] == S2[0]["id"])
    assert only_dhus["properties"]["federation:backends"] == ["cesnet"]
    assert only_dhus["assets"]["manifest"]["href"].endswith("/Nodes('manifest.safe')/$value")


@pytest.mark.parametrize("limit", [1, 4, 10, 100])
def test_paging_is_exact_when_the_hub_orders_ties_its_own_way(
    make_federation: MakeFederation, limit: int
) -> None:
    # Three tiles per datatake share beginposition; the hub orders them by uuid, pages of 2.
    fed = make_federation(
        cesnet=Archive(S2, kind="dhus", options={"max_rows": 2}),
        grnet=Archive(S2[::2], kind="dhus", options={"max_rows": 3, "response_format": "atom"}),
    )
    features = all_pages(fed.url, {"collections": ["sentinel-2-l2a"], "limit": limit})
    assert ids(features) == expected_order(S2)


SEARCHES = [
    pytest.param({"collections": ["sentinel-1-grd"]}, id="s1-grd"),
    pytest.param({"collections": ["sentinel-2-l1c", "sentinel-2-l2a"]}, id="s2-both"),
    pytest.param({"bbox": [14.0, 49.0, 15.0, 50.0]}, id="bbox"),
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
]


@pytest.mark.parametrize("body", SEARCHES)
def test_odata_atom_and_opensearch_modes_agree_with_a_stac_archive(
    make_federation: MakeFederation, body: dict[str, Any]
) -> None:
    fed = make_federation(
        opensearch=Archive(DEMO, kind="dhus"),
        atom=Archive(DEMO, kind="dhus", options={"response_format": "atom"}),
        odata=Archive(DEMO, kind="dhus", options={"search_api": "odata"}),
        stac=Archive(DEMO),
    )
    found = {}
    for bid in ("opensearch", "atom", "odata", "stac"):
        single = make_federation(**{bid: _archive_for(bid)})
        found[bid] = ids(all_pages(single.url, {**body, "limit": 50}))
    assert found["stac"], "the search must match something"
    assert found["opensearch"] == found["stac"]
    assert found["atom"] == found["stac"]
    assert found["odata"] == found["stac"]
    merged = all_pages(fed.url, {**body, "limit": 50})
    assert ids(merged) == found["stac"]
    assert all(f["properties"]["federation:backends"] for f in merged)


def _archive_for(bid: str) -> Archive:
    options = {
        "opensearch": {},
        "atom": {"response_format": "atom"},
        "odata": {"search_api": "odata"},
    }
    if bid == "stac":
        return Archive(DEMO)
    return Archive(DEMO, kind="dhus", options=options[bid])


def test_query_clauses_are_pushed_into_q_and_the_rest_filtered_by_the_gateway(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(cesnet=Archive(DEMO, kind="dhus"))
    hub = fed.emulators["cesnet"]
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
    sent = hub.state.queries[-1]
    assert "cloudcoverpercentage:[* TO 40]" in sent  # pushed down: exact in Solr
    assert "03.01" not in sent  # not expressible exactly: evaluated by the gateway


@pytest.mark.parametrize(
    "hostile",
    ['x") OR (*:*', 'x" OR identifier:*', "*", "S2A*", 'x\\") OR (*:*'],
)
def test_ids_cannot_widen_the_hub_query(make_federation: MakeFederation, hostile: str) -> None:
    fed = make_federation(cesnet=Archive(DEMO, kind="dhus"))
    response = httpx.post(f"{fed.url}/search", json={"ids": [hostile], "limit": 100})
    assert response.status_code == 200
    assert response.json()["features"] == []
    assert "federation:missing" not in response.json()


def test_long_queries_are_posted_as_a_form(make_federation: MakeFederation) -> None:
    fed = make_federation(cesnet=Archive(DEMO, kind="dhus"))
    west, south, east, north = TILE_BBOX["33UWQ"]
    ring = [[west + (east - west) * k / 400, south] for k in range(400)]
    ring += [[east, north], [west, north], [west, south]]
    body = {"intersects": {"type": "Polygon", "coordinates": [ring]}, "limit": 100}
    features = all_pages(fed.url, body)
    assert len(fed.emulators["cesnet"].state.queries[-1]) > 4000  # the hub got all of q
    stac = make_federation(eodc=Archive(DEMO))
    assert ids(features) == ids(all_pages(stac.url, body))
    assert features


def test_credentials_come_from_the_environment_and_never_leak(
    make_federation: MakeFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CESNET_USER", "mqs-robot")
    monkeypatch.setenv("CESNET_PASSWORD", "s3cr3t-Pa55")
    auth = {"type": "basic", "username_env": "CESNET_USER", "password_env": "CESNET_PASSWORD"}
    hub = {"credentials": ("mqs-robot", "s3cr3t-Pa55")}
    fed = make_federation(
        good=Archive(S2, kind="dhus", emulator=hub, auth=auth),
        bad=Archive(S2, kind="dhus", emulator={"credentials": ("mqs-robot", "other")}, auth=auth),
    )
    response = httpx.post(f"{fed.url}/search", json={"limit": 100})
    body = response.json()
    assert ids(body["features"]) == expected_order(S2)
    assert body["federation:missing"] == ["bad"]
    text = response.text + httpx.get(f"{fed.url}/backends").text
    text += httpx.get(f"{fed.url}/collections/sentinel-2-l2a/items/{S2[0]['id']}").text
    assert "s3cr3t" not in text and "mqs-robot" not in text
    only_bad = make_federation(
        bad=Archive(S2, kind="dhus", emulator={"credentials": ("u", "p")}, auth=auth)
    )
    failed = httpx.post(f"{only_bad.url}/search", json={})
    assert failed.status_code == 502
    assert "s3cr3t" not in failed.text


def test_single_item_has_per_file_assets_from_the_manifest(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(cesnet=Archive(DEMO, kind="dhus"))
    s2 = next(i for i in DEMO if i["collection"] == "sentinel-2-l2a")
    s1 = next(i for i in DEMO if i["collection"] == "sentinel-1-grd")
    with httpx.Client(timeout=20) as client:
        item = client.get(f"{fed.url}/collections/sentinel-2-l2a/items/{s2['id']}").json()
        assets = item["assets"]
        assert {"B02_10m", "B04_10m", "B08_10m", "TCI_10m", "SCL_20m", "product_metadata"} <= set(
            assets
        )
        assert assets["B04_10m"]["eo:bands"][0]["common_name"] == "red"
        assert assets["B04_10m"]["gsd"] == 10 and assets["B04_10m"]["type"] == "image/jp2"
        assert assets["TCI_10m"]["roles"] == ["visual"]
        band = client.get(assets["B04_10m"]["href"])
        assert band.status_code == 200 and band.content
        assert item_errors(item) == []
        radar = client.get(f"{fed.url}/collections/sentinel-1-grd/items/{s1['id']}").json()
        assert {"vv", "vh", "annotation-vv", "calibration-vv", "noise-vh"} <= set(radar["assets"])
        assert radar["assets"]["vv"]["sar:polarizations"] == ["VV"]
        assert client.get(radar["assets"]["vv"]["href"]).status_code == 200
        assert item_errors(radar) == []
        search = client.post(f"{fed.url}/search", json={"ids": [s2["id"]]}).json()
        assert "B04_10m" not in search["features"][0]["assets"]  # searches stay cheap


def test_hub_errors_become_backend_failures_not_crashes(make_federation: MakeFederation) -> None:
    fed = make_federation(
        cesnet=Archive(S2, kind="dhus", options={"max_rows": 500}, emulator={"max_rows": 100}),
        eodc=Archive(S2),
    )
    response = httpx.post(f"{fed.url}/search", json={"limit": 200})
    assert response.status_code == 200
    body = response.json()
    assert body["federation:missing"] == ["cesnet"]
    assert ids(body["features"]) == expected_order(S2)
    assert "Traceback" not in orjson.dumps(body).decode()


def test_the_manifest_is_read_once_then_served_from_the_cache(
    make_federation: MakeFederation,
) -> None:
    fed = make_federation(cesnet=Archive(S2, kind="dhus"))
    hub = fed.emulators["cesnet"]
    url = f"{fed.url}/collections/sentinel-2-l2a/items/{S2[3]['id']}"
    with httpx.Client(timeout=20) as client:
        first = client.get(url).json()
        before = hub.state.requests
        second = client.get(url).json()
    assert hub.state.requests - before == 1  # the id search only; the manifest came from cache
    assert first["assets"] == second["assets"] and "B04_10m" in second["assets"]


def test_a_collection_without_a_known_product_type_is_a_config_error() -> None:
    from mqs.config import ConfigError, parse_config

    raw = {
        "collections": {"my-own": {"title": "mine"}, "sentinel-2-l2a": {"title": "L2A"}},
        "backends": [
            {
                "id": "cesnet",
                "kind": "dhus",
                "url": "https://dhr1.cesnet.cz",
                "collections": {"sentinel-2-l2a": "", "my-own": ""},
            }
        ],
    }
    with pytest.raises(ConfigError, match=r"backends\[0\].*my-own: no DHuS product type"):
        parse_config(raw)
    raw["backends"][0]["collections"]["my-own"] = "Sentinel-2/S2MSI2Ap"  # type: ignore[index]
    assert parse_config(raw).backends[0].kind == "dhus"
