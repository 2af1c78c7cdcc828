"""Terrascope query translation: a STAC search -> the exact ``/products`` parameters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from adapters.terrascope import query as tq
from adapters.terrascope.collections import (
    DEFAULT_COLLECTIONS,
    TerrascopeCollection,
    resolve,
    terrascope_collection,
)
from mqs.config import ConfigError, parse_config
from mqs.query import SearchQuery, SortField, build_query

L1C = "urn:eop:VITO:CGS_S2_L1C"
GRD = "urn:eop:VITO:CGS_S1_GRD_L1"
TOC = "urn:eop:VITO:TERRASCOPE_S2_TOC_V2"
SORT = ("sortKeys", "start,,0")
NAME = "S2A_MSIL1C_20211024T095031_N0301_R079_T33UXQ_20211024T121234"
KNOWN = {cid: {} for cid in DEFAULT_COLLECTIONS}


def query_of(params: dict[str, Any]) -> SearchQuery:
    return build_query({"collections": ["sentinel-2-l1c"], **params}, KNOWN, 10, 1000)


def plan_of(params: dict[str, Any], margin_s: float = 0, max_requests: int = 20) -> list[Any]:
    subs = tq.plan(
        query_of(params), DEFAULT_COLLECTIONS, margin_s=margin_s, max_requests=max_requests
    )
    return [(s.collection, list(s.params)) for s in subs]


def one(params: dict[str, Any], margin_s: float = 0) -> list[tuple[str, str]]:
    (only,) = plan_of(params, margin_s)
    assert only[0] == "sentinel-2-l1c"
    params_: list[tuple[str, str]] = only[1]
    assert params_[0] == ("collection", L1C) and params_[-1] == SORT
    return params_[1:-1]


@pytest.mark.parametrize(
    ("params", "margin_s", "expected"),
    [
        pytest.param({}, 0, [], id="collection-only"),
        pytest.param({"ids": [NAME]}, 0, [("title", NAME)], id="ids-as-title"),
        pytest.param(
            {"ids": [f"{TOC}:S2B_20180814T105019_31UFS_TOC_V200"]},
            0,
            [("title", "S2B_20180814T105019_31UFS_TOC_V200")],
            id="urn-qualified-id",
        ),
        pytest.param({"bbox": [15, 49.5, 16.5, 50]}, 0, [("bbox", "15,49.5,16.5,50")], id="bbox"),
        pytest.param(
            {"bbox": [170, -10, -170, 10]}, 0, [("bbox", "-180,-10,180,10")], id="antimeridian"
        ),
        pytest.param(
            {"intersects": {"type": "Point", "coordinates": [14.2, 59.96]}},
            0,
            [("bbox", "14.2,59.96,14.2,59.96")],
            id="intersects-point-envelope",
        ),
        pytest.param(
            {
                "intersects": {
                    "type": "Polygon",
                    "coordinates": [[[15, 49], [16, 49.2], [15.5, 50.25], [15, 49]]],
                }
            },
            0,
            [("bbox", "15,49,16,50.25")],
            id="intersects-polygon-envelope",
        ),
        pytest.param(
            {"datetime": "2021-10-01T00:00:00Z/2021-10-31T23:59:59.999Z"},
            0,
            [("start", "2021-10-01T00:00:00Z"), ("end", "2021-11-01T00:00:00Z")],
            id="datetime-rounded-outward",
        ),
        pytest.param(
            {"datetime": "2021-10-01T00:00:00.5Z/2021-10-31T00:00:00Z"},
            3600,
            [("start", "2021-09-30T23:00:00Z"), ("end", "2021-10-31T01:00:00Z")],
            id="datetime-margin",
        ),
        pytest.param(
            {"datetime": "../2021-10-31T00:00:00Z"},
            0,
            [("end", "2021-10-31T00:00:00Z")],
            id="datetime-open-start",
        ),
        pytest.param(
            {"datetime": "2021-10-24T09:50:31.024Z"},
            0,
            [("start", "2021-10-24T09:50:31Z"), ("end", "2021-10-24T09:50:32Z")],
            id="datetime-instant",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"lte": 20}}},
            0,
            [("cloudCover", "[0,20]")],
            id="cloud-lte",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"gte": 5.5}}},
            0,
            [("cloudCover", "[5.5,100]")],
            id="cloud-gte",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"eq": 0}}}, 0, [("cloudCover", "[0,0]")], id="cloud-eq"
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"gt": 10, "lt": 20.25}}},
            0,
            [("cloudCover", "[10,20.25]")],
            id="cloud-open-range-superset",
        ),
        pytest.param(
            {"query": {"sat:orbit_state": {"eq": "descending"}}},
            0,
            [("orbitDirection", "DESCENDING")],
            id="orbit-state",
        ),
        pytest.param(
            {"query": {"grid:code": {"eq": "MGRS-33UXQ"}}}, 0, [("tileId", "33UXQ")], id="tile"
        ),
        pytest.param(
            {"query": {"sat:relative_orbit": {"eq": 79}}},
            0,
            [("relativeOrbitNumber", "79")],
            id="relative-orbit",
        ),
        pytest.param(
            {"query": {"sat:relative_orbit": {"in": [79]}}},
            0,
            [("relativeOrbitNumber", "79")],
            id="relative-orbit-in-one",
        ),
        pytest.param(
            {
                "ids": [NAME],
                "bbox": [15, 49, 16, 50],
                "datetime": "2021-10-01T00:00:00Z/..",
                "query": {"eo:cloud_cover": {"lt": 50}, "grid:code": {"eq": "MGRS-33UXQ"}},
            },
            0,
            [
                ("title", NAME),
                ("bbox", "15,49,16,50"),
                ("start", "2021-10-01T00:00:00Z"),
                ("cloudCover", "[0,50]"),
                ("tileId", "33UXQ"),
            ],
            id="everything",
        ),
    ],
)
def test_stac_search_becomes_the_exact_parameters(
    params: dict[str, Any], margin_s: float, expected: list[tuple[str, str]]
) -> None:
    assert one(params, margin_s) == expected


def test_the_request_url_is_encoded_by_httpx() -> None:
    (sub,) = tq.plan(
        query_of({"bbox": [4.98, 51.24, 5.1, 51.29], "query": {"eo:cloud_cover": {"lte": 50}}}),
        DEFAULT_COLLECTIONS,
        margin_s=0,
        max_requests=20,
    )
    params = httpx.QueryParams([*sub.params, ("startIndex", "1"), ("count", "100")])
    assert str(params) == (
        "collection=urn%3Aeop%3AVITO%3ACGS_S2_L1C&bbox=4.98%2C51.24%2C5.1%2C51.29"
        "&cloudCover=%5B0%2C50%5D&sortKeys=start%2C%2C0&startIndex=1&count=100"
    )


def test_each_collection_and_each_id_is_its_own_request() -> None:
    other = NAME.replace("T33UXQ", "T33UWQ")
    query = build_query(
        {"collections": ["sentinel-2-l1c", "sentinel-1-grd"], "ids": [NAME, other]},
        KNOWN,
        10,
        100,
    )
    subs = tq.plan(query, DEFAULT_COLLECTIONS, margin_s=0, max_requests=4)
    assert [
        (s.collection, dict(s.params)["collection"], dict(s.params)["title"]) for s in subs
    ] == [
        ("sentinel-2-l1c", L1C, other),  # titles in sorted order
        ("sentinel-2-l1c", L1C, NAME),
        ("sentinel-1-grd", GRD, other),
        ("sentinel-1-grd", GRD, NAME),
    ]
    # More requests than allowed: one per collection, the gateway checks the ids itself.
    subs = tq.plan(query, DEFAULT_COLLECTIONS, margin_s=0, max_requests=3)
    assert [s.collection for s in subs] == ["sentinel-2-l1c", "sentinel-1-grd"]
    assert all("title" not in dict(s.params) for s in subs)


def test_no_collection_asked_means_every_configured_one() -> None:
    query = build_query({}, KNOWN, 10, 100)
    subs = tq.plan(query, DEFAULT_COLLECTIONS, margin_s=0, max_requests=20)
    assert [dict(s.params)["collection"] for s in subs] == [
        c.urn for c in DEFAULT_COLLECTIONS.values()
    ]


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"eo:cloud_cover": {"lte": -1}}, id="cloud-below-zero"),
        pytest.param({"eo:cloud_cover": {"gt": 60, "lte": 40}}, id="cloud-empty-interval"),
        pytest.param({"eo:cloud_cover": {"eq": 101}}, id="cloud-above-100"),
    ],
)
def test_queries_that_match_nothing_send_no_request(query: dict[str, Any]) -> None:
    assert plan_of({"query": query}) == []


def test_two_values_of_one_single_valued_parameter_match_nothing() -> None:
    expr = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "grid:code"}, "MGRS-33UXQ"]},
            {"op": "=", "args": [{"property": "grid:code"}, "MGRS-33UWQ"]},
        ],
    }
    assert tq.common_params(SearchQuery(filter=expr), 0) is None
    same = {"op": "and", "args": [expr["args"][0], expr["args"][0]]}
    assert tq.common_params(SearchQuery(filter=same), 0) == [("tileId", "33UXQ")]


@pytest.mark.parametrize(
    ("clause", "exact"),
    [
        pytest.param({"op": "<=", "args": [{"property": "eo:cloud_cover"}, 20]}, True, id="le"),
        pytest.param({"op": ">=", "args": [{"property": "eo:cloud_cover"}, 20]}, True, id="ge"),
        pytest.param({"op": "=", "args": [{"property": "eo:cloud_cover"}, 20]}, True, id="eq"),
        pytest.param(
            {"op": "between", "args": [{"property": "eo:cloud_cover"}, 10, 20]}, True, id="between"
        ),
        pytest.param({"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]}, False, id="lt"),
        pytest.param({"op": "<>", "args": [{"property": "eo:cloud_cover"}, 20]}, False, id="neq"),
        pytest.param(
            {"op": "in", "args": [{"property": "eo:cloud_cover"}, [10, 20]]}, False, id="in"
        ),
        pytest.param(
            {"op": "=", "args": [{"property": "sat:orbit_state"}, "ascending"]}, True, id="orbit"
        ),
        pytest.param(
            {"op": "=", "args": [{"property": "sat:orbit_state"}, "Ascending"]},
            False,
            id="orbit-other-case",
        ),
        pytest.param(
            {"op": "in", "args": [{"property": "sat:orbit_state"}, ["ascending", "descending"]]},
            False,
            id="orbit-in-two",
        ),
        pytest.param(
            {"op": "=", "args": [{"property": "grid:code"}, "MGRS-33uxq"]}, False, id="tile-case"
        ),
        pytest.param(
            {"op": "=", "args": [{"property": "sat:relative_orbit"}, 0]}, False, id="orbit-zero"
        ),
        pytest.param(
            {"op": "=", "args": [{"property": "sat:relative_orbit"}, 7.5]}, False, id="orbit-frac"
        ),
        pytest.param(
            {"op": "=", "args": [{"property": "product:type"}, "S2MSI1C"]}, False, id="type"
        ),
        pytest.param({"op": "=", "args": [{"property": "platform"}, "sentinel-2a"]}, False),
    ],
)
def test_only_exact_clauses_are_claimed(clause: dict[str, Any], exact: bool) -> None:
    assert tq.pushable(clause) is exact


@pytest.mark.parametrize(
    "hostile",
    [
        "S2A*",
        "*",
        "x&collection=urn:eop:VITO:CGS_S1_GRD_L1",
        "a b",
        "S2A_MSIL1C%2A",
        "../products",
        "urn:eop:VITO:CGS_S2_L1C:*",
    ],
)
def test_hostile_ids_never_reach_the_backend(hostile: str) -> None:
    assert plan_of({"ids": [hostile]}) == []
    # Beside a valid id, only the valid one is asked for.
    assert one({"ids": [hostile, NAME]}) == [("title", NAME)]


def test_hostile_values_in_query_are_not_pushed_down() -> None:
    for prop, value in [
        ("sat:orbit_state", "descending&tileId=33UXQ"),
        ("grid:code", "MGRS-33UXQ&cloudCover=[0,100]"),
        ("sat:relative_orbit", "79&title=x"),
        ("eo:cloud_cover", "20]"),
    ]:
        assert one({"query": {prop: {"eq": value}}}) == [], prop


def test_an_ascending_search_sorts_ascending() -> None:
    query = SearchQuery(sortby=(SortField("datetime", "asc"),))
    assert tq.sort_keys(query) == "start,,1"
    assert tq.sort_keys(SearchQuery()) == "start,,0"


def test_created_sorts_by_published() -> None:
    assert tq.sort_keys(SearchQuery(sortby=(SortField("created", "asc"),))) == "published,,1"
    assert tq.sort_keys(SearchQuery(sortby=(SortField("created", "desc"),))) == "published,,0"
    assert tq.sort_order(SearchQuery(sortby=(SortField("created", "asc"),))) == ("created", False)
    # a key Terrascope cannot sort by (the gateway answers 400 before asking)
    assert tq.sort_keys(SearchQuery(sortby=(SortField("eo:cloud_cover", "asc"),))) == "start,,0"


def test_collection_mapping_defaults_and_overrides() -> None:
    assert terrascope_collection("sentinel-2-l1c", "") == TerrascopeCollection(L1C, False)
    assert terrascope_collection("terrascope-s2-toc-v2", "") == TerrascopeCollection(TOC, True)
    assert terrascope_collection("sentinel-2-l2a", "urn:eop:VITO:MY_L2A") == (
        TerrascopeCollection("urn:eop:VITO:MY_L2A", False)
    )
    assert terrascope_collection("my-ndvi", "urn:eop:VITO:TERRASCOPE_S2_NDVI_V2") == (
        TerrascopeCollection("urn:eop:VITO:TERRASCOPE_S2_NDVI_V2", True)
    )
    configured = {"urn": "urn:eop:VITO:CGS_S1_GRD_SIGMA0_L1", "derived": True}
    assert terrascope_collection("sentinel-1-sigma0", configured) == (
        TerrascopeCollection("urn:eop:VITO:CGS_S1_GRD_SIGMA0_L1", True)
    )
    for bad in ("sentinel-2-l2a", "CGS_S2_L1C", "urn:eop:VITO:X Y", {"urn": L1C, "x": 1}):
        with pytest.raises(ValueError, match="no Terrascope collection known"):
            resolve({"sentinel-2-l2a": "" if bad == "sentinel-2-l2a" else bad})


def test_an_unknown_collection_is_a_config_error() -> None:
    raw: dict[str, Any] = {
        "collections": {"sentinel-2-l2a": {"title": "L2A"}, "sentinel-2-l1c": {"title": "L1C"}},
        "backends": [
            {
                "id": "vito",
                "kind": "terrascope",
                "url": "https://services.terrascope.be/catalogue",
                "collections": {"sentinel-2-l1c": "", "sentinel-2-l2a": ""},
            }
        ],
    }
    with pytest.raises(ConfigError, match=r"backends\[0\].*sentinel-2-l2a: no Terrascope"):
        parse_config(raw)
    raw["backends"][0]["collections"]["sentinel-2-l2a"] = "urn:eop:VITO:SENTINEL_2_L2A"
    raw["backends"][0]["options"] = {"max_page_size": 50}
    assert parse_config(raw).backends[0].kind == "terrascope"
    raw["backends"][0]["options"] = {"page_size": 50}
    with pytest.raises(ConfigError, match="page_size"):
        parse_config(raw)
