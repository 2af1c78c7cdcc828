"""resto translation: a STAC search -> the exact ``search.json`` parameters, and the merge of
several request streams into one (pure parts, no HTTP)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from adapters.resto import query as rq
from adapters.resto.collections import (
    DEFAULT_COLLECTIONS,
    ProductSet,
    Source,
    family,
    product_set,
    resolve,
    serves,
    sources_of,
)
from adapters.resto.streams import Fetched, initial_state, merge, read_state
from mqs.query import SortField, build_query

L2A = Source("Sentinel2", "S2MSI2A")
GRD = Source("Sentinel1", "GRD")
SORT = [("sortParam", "startDate"), ("sortOrder", "descending")]
PAGE = [("maxRecords", "10"), ("page", "1"), ("exactCount", "1")]
NAME = "S2A_MSIL2A_20211024T095031_N0301_R079_T33UXQ_20211024T121234"


def query_of(params: dict[str, Any]) -> Any:
    return build_query(params, DEFAULT_COLLECTIONS, 10, 1000)


def params_of(
    params: dict[str, Any], source: Source = L2A, page: tuple[int, int] = (1, 10), **kw: Any
) -> list[tuple[str, str]]:
    query = query_of(params)
    shared = rq.translate(query, kw.get("margin", 3600.0), kw.get("max_wkt", 4000))
    return rq.source_params(query, shared, source, page, kw.get("count", True), kw.get("status"))


def middle(params: dict[str, Any], **kw: Any) -> list[tuple[str, str]]:
    """The parameters between productType and the sort/paging tail."""
    found = params_of(params, **kw)
    assert found[0] == ("productType", "S2MSI2A")
    assert found[-5:] == SORT + PAGE
    return found[1:-5]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, [], id="collection-only"),
        pytest.param({"ids": [NAME]}, [("productIdentifier", f"%{NAME}%")], id="ids-like-pattern"),
        pytest.param(
            {"ids": [f"{NAME}.SAFE", "S1A_X_Y"]},
            [("productIdentifier", f"%{NAME}%|%S1A_X_Y%")],
            id="ids-suffix-dropped-alternatives",
        ),
        pytest.param({"bbox": [15, 49.5, 16.5, 50]}, [("box", "15,49.5,16.5,50")], id="bbox"),
        pytest.param(
            {"bbox": [170, -10, -170, 10]},
            [
                (
                    "geometry",
                    "MULTIPOLYGON (((180 -10, 180 10, 170 10, 170 -10, 180 -10)), "
                    "((-170 -10, -170 10, -180 10, -180 -10, -170 -10)))",
                )
            ],
            id="bbox-antimeridian-as-wkt",
        ),
        pytest.param(
            {"intersects": {"type": "Point", "coordinates": [14.2, 49.123456789]}},
            [("geometry", "POINT (14.2 49.123456789)")],
            id="intersects-full-precision",
        ),
        pytest.param(
            {"datetime": "2021-10-01T00:00:00Z/2021-10-31T23:59:59.999Z"},
            [("startDate", "2021-09-30T23:00:00Z"), ("completionDate", "2021-11-01T00:59:59.999Z")],
            id="datetime-widened-by-the-margin",
        ),
        pytest.param(
            {"datetime": "../2021-10-31T00:00:00Z"},
            [("completionDate", "2021-10-31T01:00:00Z")],
            id="datetime-open-start",
        ),
        pytest.param(
            {"datetime": "2021-10-24T09:50:31.024Z"},
            [
                ("startDate", "2021-10-24T08:50:31.024Z"),
                ("completionDate", "2021-10-24T10:50:31.024Z"),
            ],
            id="datetime-instant",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"lte": 20}}}, [("cloudCover", "[0,20]")], id="cloud-lte"
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"gte": 12.5}}},
            [("cloudCover", "[12.5,100]")],
            id="cloud-gte",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"gt": 5, "lt": 30}}},
            [("cloudCover", "[5,30]")],
            id="cloud-strict-superset",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"gte": -5, "lte": 200}}},
            [("cloudCover", "[0,100]")],
            id="cloud-clamped-to-valid-values",
        ),
        pytest.param(
            {"query": {"sat:relative_orbit": {"eq": 79}}},
            [("relativeOrbitNumber", "79")],
            id="relative-orbit-eq",
        ),
        pytest.param(
            {"query": {"sat:relative_orbit": {"lt": 80, "gt": 10}}},
            [("relativeOrbitNumber", "[11,79]")],
            id="relative-orbit-integer-bounds",
        ),
        pytest.param(
            {"query": {"sat:relative_orbit": {"in": [146, 73]}}},
            [("relativeOrbitNumber", "[73,146]")],
            id="relative-orbit-in-superset",
        ),
        pytest.param(
            {"query": {"sat:absolute_orbit": {"gte": 33000}}},
            [("orbitNumber", "[33000,99999999]")],
            id="absolute-orbit",
        ),
        pytest.param(
            {"query": {"sat:orbit_state": {"eq": "descending"}}},
            [("orbitDirection", "DESCENDING")],
            id="orbit-state",
        ),
        pytest.param(
            {"query": {"sar:instrument_mode": {"in": ["IW"]}}},
            [("sensorMode", "IW")],
            id="instrument-mode",
        ),
        pytest.param(
            {"query": {"grid:code": {"eq": "MGRS-33UXQ"}}}, [("tileId", "33UXQ")], id="tile"
        ),
        pytest.param(
            {"query": {"processing:version": {"eq": "03.01"}, "platform": {"eq": "sentinel-2a"}}},
            [],
            id="not-expressible-left-to-the-gateway",
        ),
    ],
)
def test_translation_table(params: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert middle(params) == expected


def test_paging_sorting_count_and_status() -> None:
    later = params_of({}, page=(3, 25), status="ALL")
    assert later == [
        ("productType", "S2MSI2A"),
        ("status", "ALL"),
        *SORT,
        ("maxRecords", "25"),
        ("page", "3"),
    ]  # exactCount only on first pages
    assert ("exactCount", "1") not in params_of({}, count=False)
    whole = params_of({}, source=Source("Sentinel1RTC"))
    assert whole[0] == ("sortParam", "startDate")  # a whole collection: no productType
    ascending = replace(query_of({}), sortby=(SortField("datetime", "asc"),))
    assert rq.sort_order(ascending) == ("startDate", False)


def test_datetime_margin_zero_and_extremes() -> None:
    assert middle({"datetime": "2021-10-01T00:00:00Z/.."}, margin=0) == [
        ("startDate", "2021-10-01T00:00:00Z")
    ]
    assert middle({"datetime": "0001-01-01T00:00:00Z/.."}) == []  # no earlier bound exists


def test_a_long_geometry_is_sent_as_its_box_and_checked_locally() -> None:
    ring = [[15 + k / 1000, 49.5] for k in range(300)] + [[15.3, 50], [15, 50], [15, 49.5]]
    query = query_of({"intersects": {"type": "Polygon", "coordinates": [ring]}})
    shared = rq.translate(query, 0, 1000)
    assert shared.params == [("box", "15,49.5,15.3,50")]
    assert shared.local_geometry is query.geometry
    assert rq.translate(query, 0, 100_000).local_geometry is None


@pytest.mark.parametrize(
    "params",
    [
        {"query": {"eo:cloud_cover": {"lte": -1}}},
        {"query": {"sat:relative_orbit": {"eq": 7.5}}},
        {"query": {"sat:relative_orbit": {"gt": 100, "lt": 50}}},
        {"query": {"grid:code": {"eq": "MGRS-33UXQ"}, "sat:orbit_state": {"in": ["ascending"]}}},
    ],
    ids=["cloud-below-zero", "fractional-orbit", "contradiction", "satisfiable"],
)
def test_impossible_filters_ask_nobody(params: dict[str, Any]) -> None:
    shared = rq.translate(query_of(params), 3600, 4000)
    assert shared.empty is ("grid:code" not in params["query"])


@pytest.mark.parametrize(
    ("clause", "exact"),
    [
        ({"op": "<=", "args": [{"property": "eo:cloud_cover"}, 10]}, True),
        ({"op": "=", "args": [{"property": "eo:cloud_cover"}, 10]}, True),
        ({"op": "between", "args": [{"property": "eo:cloud_cover"}, 1, 10]}, True),
        ({"op": "<", "args": [{"property": "eo:cloud_cover"}, 10]}, False),
        ({"op": "in", "args": [{"property": "eo:cloud_cover"}, [1, 2]]}, False),
        ({"op": "<", "args": [{"property": "sat:relative_orbit"}, 10]}, True),
        ({"op": "in", "args": [{"property": "sat:relative_orbit"}, [1, 2]]}, False),
        ({"op": "=", "args": [{"property": "sat:orbit_state"}, "ascending"]}, True),
        ({"op": "=", "args": [{"property": "sat:orbit_state"}, "Ascending"]}, False),
        ({"op": "=", "args": [{"property": "sar:instrument_mode"}, "IW"]}, True),
        ({"op": "=", "args": [{"property": "grid:code"}, "MGRS-33UXQ"]}, True),
        ({"op": "<>", "args": [{"property": "sat:orbit_state"}, "ascending"]}, False),
        ({"op": "=", "args": [{"property": "eo:cloud_cover"}, True]}, False),
        ({"op": "like", "args": [{"property": "grid:code"}, "MGRS-33%"]}, False),
    ],
)
def test_only_exact_translations_are_claimed(clause: dict[str, Any], exact: bool) -> None:
    assert rq.pushable(clause) is exact


@pytest.mark.parametrize(
    "hostile",
    ["%", "S2A%", "a|b", "x&status=ALL", "x,y", "*", "_", "S2A_%_T33UXQ", "../etc", "a b"],
)
def test_hostile_ids_never_reach_the_backend(hostile: str) -> None:
    shared = rq.translate(query_of({"ids": [hostile]}), 3600, 4000)
    sent = dict(shared.params)
    assert "productIdentifier" not in sent
    assert shared.empty  # no valid id: nothing can match, nobody is asked


@pytest.mark.parametrize(
    "query",
    [
        {"sat:orbit_state": {"eq": "ascending&status=ALL"}},
        {"sar:instrument_mode": {"eq": "IW|EW"}},
        {"grid:code": {"eq": "MGRS-33UXQ&x=1"}},
        {"grid:code": {"eq": "MGRS-33UXQ|34UXQ"}},
        {"eo:cloud_cover": {"lte": "10],[0,100"}},
    ],
)
def test_hostile_values_are_not_pushed(query: dict[str, Any]) -> None:
    assert middle({"query": query}) == []


def test_a_cloud_clause_leaves_radar_sources_out() -> None:
    query = query_of({"query": {"eo:cloud_cover": {"lte": 10}}})
    assert rq.translate(query, 0, 4000).optical_only
    plain = query_of({"query": {"sat:relative_orbit": {"eq": 10}}})
    assert not rq.translate(plain, 0, 4000).optical_only
    assert GRD.sar and not L2A.sar


# --- collections -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("", ProductSet("Sentinel2", ("S2MSI2A",))),
        ("Sentinel2/L2A", ProductSet("Sentinel2", ("L2A",))),
        ("Sentinel1/IW_GRDH_1S, EW_GRDM_1S", ProductSet("Sentinel1", ("IW_GRDH_1S", "EW_GRDM_1S"))),
        ("SENTINEL-1-RTC", ProductSet("SENTINEL-1-RTC", ())),
        (
            {"collection": "Sentinel2", "productType": "S2MSI2A"},
            ProductSet("Sentinel2", ("S2MSI2A",)),
        ),
        (
            {"collection": "Sentinel2", "productType": ["A", "B"]},
            ProductSet("Sentinel2", ("A", "B")),
        ),
        ("Sentinel2/S2MSI2A&status=ALL", None),
        ("../odata/S2MSI2A", None),
        ("Sentinel 2", None),
        ({"collection": "Sentinel2", "other": 1}, None),
        ({"productType": "S2MSI2A"}, None),
    ],
)
def test_collection_mappings(configured: Any, expected: ProductSet | None) -> None:
    assert product_set("sentinel-2-l2a", configured) == expected


def test_unknown_mappings_are_config_errors() -> None:
    with pytest.raises(ValueError, match=r"collections\.my-own: no resto collection known"):
        resolve({"my-own": ""})
    assert resolve({"sentinel-1-grd": ""})["sentinel-1-grd"] == ProductSet("Sentinel1", ("GRD",))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("IW_GRDH_1S", "GRD"),
        ("EW_GRDM_1S", "GRD"),
        ("IW_SLC__1S", "SLC"),
        ("GRD", "GRD"),
        ("L2A", "S2MSI2A"),
        ("LEVEL1C", "S2MSI1C"),
        ("S2MSI2A", "S2MSI2A"),
        ("GRD-COG", "GRD-COG"),
        ("AUX_POEORB", "AUX_POEORB"),
    ],
)
def test_product_type_families(name: str, expected: str) -> None:
    assert family(name) == expected


def test_sources_of_a_search_and_what_they_serve() -> None:
    sets = DEFAULT_COLLECTIONS | {"mine": ProductSet("Sentinel2", ("S2MSI2A",))}
    plan = sources_of(sets, ("sentinel-2-l2a", "sentinel-1-grd", "mine", "unknown"))
    assert plan == {GRD: ["sentinel-1-grd"], L2A: ["sentinel-2-l2a", "mine"]}
    assert serves(GRD, "IW_GRDH_1S") and not serves(GRD, "IW_SLC__1S")
    assert serves(L2A, "L2A") and not serves(L2A, None)
    assert serves(Source("Sentinel1RTC"), "anything")


# --- streams ---------------------------------------------------------------------------------


def record(start: str, name: str) -> dict[str, Any]:
    return {"properties": {"title": name, "startDate": start}}


def test_streams_merge_in_start_order_and_stop_where_a_source_runs_dry() -> None:
    s1 = [record("2021-10-05T00:00:00Z", "a"), record("2021-10-03T00:00:00Z", "c")]
    s2 = [record("2021-10-04T00:00:00Z", "b"), record("2021-10-01T00:00:00Z", "d")]
    fetched = [Fetched(GRD, (1, 0), s1, True), Fetched(L2A, (1, 0), s2, False)]
    out, state = merge(fetched, 2, descending=True)
    assert [r["properties"]["title"] for _, r in out] == ["a", "b"]
    assert state == {"n": 2, "c": {GRD.key: [1, 1], L2A.key: [1, 1]}}
    out, state = merge([Fetched(GRD, (1, 1), s1, True), Fetched(L2A, (1, 1), s2, False)], 2, True)
    assert [r["properties"]["title"] for _, r in out] == ["c"]  # GRD's next page may sort first
    assert state == {"n": 2, "c": {GRD.key: [2, 0], L2A.key: [1, 1]}}


def test_created_sorts_by_published_in_requests_and_in_the_merge() -> None:
    query = build_query({"sortby": "+created"}, DEFAULT_COLLECTIONS, 10, 100)
    assert rq.sort_order(query) == ("published", False)
    params = dict(rq.source_params(query, rq.Translation(), L2A, (1, 5), False, None))
    assert (params["sortParam"], params["sortOrder"]) == ("published", "ascending")
    assert rq.sort_order(build_query({"sortby": "-datetime"}, DEFAULT_COLLECTIONS, 10, 100)) == (
        "startDate",
        True,
    )

    def row(published: str, name: str) -> dict[str, Any]:
        return {
            "properties": {
                "title": name,
                "startDate": "2021-10-01T00:00:00Z",
                "published": published,
            }
        }

    s1 = [row("2021-10-02T00:00:00Z", "a"), row("2021-10-05T00:00:00Z", "c")]
    s2 = [row("2021-10-03T00:00:00Z", "b")]
    fetched = [Fetched(GRD, (1, 0), s1, False), Fetched(L2A, (1, 0), s2, False)]
    out, state = merge(fetched, 5, False, "published")
    assert [r["properties"]["title"] for _, r in out] == ["a", "b", "c"] and state is None


def test_records_without_a_start_are_skipped_and_exhausted_sources_close() -> None:
    rows = [{"properties": {}}, record("2021-10-05T00:00:00Z", "a")]
    out, state = merge([Fetched(L2A, (4, 0), rows, False)], 10, True)
    assert [r["properties"]["title"] for _, r in out] == ["a"] and state is None


@pytest.mark.parametrize(
    "state",
    [
        {"n": 0, "c": {}},
        {"n": 5000, "c": {}},
        {"n": 10, "c": {"Other/X": [1, 0]}},
        {"n": 10, "c": {L2A.key: [0, 0]}},
        {"n": 10, "c": {L2A.key: [1, 10]}},
        {"n": 10, "c": {L2A.key: ["1", 0]}},
        {"n": 10, "c": []},
    ],
)
def test_foreign_states_are_refused(state: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        read_state(state, [L2A], 1000)
    size, cursors = read_state(initial_state([L2A, GRD], 10), [L2A, GRD], 1000)
    assert size == 10 and cursors == {L2A: (1, 0), GRD: (1, 0)}
