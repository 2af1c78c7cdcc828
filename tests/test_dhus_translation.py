"""DHuS query translation: a STAC search -> the exact OpenSearch ``q`` / OData ``$filter``."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.dhus import odata, solr
from adapters.dhus.collections import DEFAULT_COLLECTIONS, ProductSet, product_set
from mqs.errors import InvalidRequest
from mqs.query import build_query

S2L2A = [DEFAULT_COLLECTIONS["sentinel-2-l2a"]]
COLLECTION = '(platformname:"Sentinel-2" AND (producttype:"S2MSI2A"))'


def q_of(params: dict[str, Any], sets: list[ProductSet] = S2L2A) -> str:
    query = build_query(params, DEFAULT_COLLECTIONS, 10, 1000)
    return solr.build_q(query, sets)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, COLLECTION, id="collection"),
        pytest.param(
            {"ids": ["S2A_MSIL2A_20211024T095031_N0301_R079_T33UXQ_20211024T121234"]},
            f'{COLLECTION} AND (identifier:"S2A_MSIL2A_20211024T095031_N0301_R079_T33UXQ_'
            '20211024T121234")',
            id="ids",
        ),
        pytest.param(
            {"bbox": [15, 49.5, 16.5, 50]},
            f'{COLLECTION} AND footprint:"Intersects(POLYGON ((16.5 49.5, 16.5 50, 15 50, '
            '15 49.5, 16.5 49.5)))"',
            id="bbox",
        ),
        pytest.param(
            {"bbox": [170, -10, -170, 10]},
            f'{COLLECTION} AND (footprint:"Intersects(POLYGON ((180 -10, 180 10, 170 10, 170 -10, '
            '180 -10)))" OR footprint:"Intersects(POLYGON ((-170 -10, -170 10, -180 10, -180 -10, '
            '-170 -10)))")',
            id="bbox-antimeridian",
        ),
        pytest.param(
            {"intersects": {"type": "Point", "coordinates": [14.2, 59.96]}},
            f'{COLLECTION} AND footprint:"Intersects(POINT (14.2 59.96))"',
            id="intersects-point",
        ),
        pytest.param(
            {
                "intersects": {
                    "type": "Polygon",
                    "coordinates": [[[15, 49], [15, 50], [16, 50], [16, 49], [15, 49]]],
                }
            },
            f'{COLLECTION} AND footprint:"Intersects(POLYGON ((15 49, 16 49, 16 50, 15 50, '
            '15 49)))"',
            id="intersects-clockwise-polygon-reoriented",
        ),
        pytest.param(
            {"datetime": "2021-10-01T00:00:00Z/2021-10-31T23:59:59.999Z"},
            f"{COLLECTION} AND beginposition:[* TO 2021-10-31T23:59:59.999Z] "
            "AND endposition:[2021-10-01T00:00:00Z TO *]",
            id="datetime-interval",
        ),
        pytest.param(
            {"datetime": "../2021-10-31T00:00:00Z"},
            f"{COLLECTION} AND beginposition:[* TO 2021-10-31T00:00:00Z]",
            id="datetime-open-start",
        ),
        pytest.param(
            {"datetime": "2021-10-24T09:50:31.024Z"},
            f"{COLLECTION} AND beginposition:[* TO 2021-10-24T09:50:31.024Z] "
            "AND endposition:[2021-10-24T09:50:31.024Z TO *]",
            id="datetime-instant",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"lte": 20}}},
            f"{COLLECTION} AND cloudcoverpercentage:[* TO 20]",
            id="cloud-lte",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"gt": 5.5, "lt": 20}}},
            f"{COLLECTION} AND cloudcoverpercentage:{{5.5 TO *}} "
            "AND cloudcoverpercentage:{* TO 20}",
            id="cloud-open-range",
        ),
        pytest.param(
            {"query": {"sat:relative_orbit": {"in": [79, 22]}}},
            f"{COLLECTION} AND (relativeorbitnumber:[79 TO 79] OR relativeorbitnumber:[22 TO 22])",
            id="relative-orbit-in",
        ),
        pytest.param(
            {"query": {"sat:orbit_state": {"eq": "descending"}}},
            f'{COLLECTION} AND (orbitdirection:"DESCENDING")',
            id="orbit-state",
        ),
        pytest.param(
            {"query": {"platform": {"eq": "sentinel-2b"}}},
            f'{COLLECTION} AND (platformserialidentifier:"Sentinel-2B" OR '
            "(identifier:S2B_* AND NOT platformserialidentifier:[* TO *]))",
            id="platform",
        ),
        pytest.param(
            {"query": {"sar:instrument_mode": {"eq": "IW"}}},
            f'{COLLECTION} AND (sensoroperationalmode:"IW")',
            id="instrument-mode",
        ),
        pytest.param(
            {"query": {"grid:code": {"eq": "MGRS-33UXQ"}}},
            f"{COLLECTION} AND identifier:*_T33UXQ_*",
            id="grid-code",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"neq": 0}}},
            f"{COLLECTION} AND "
            "(cloudcoverpercentage:[* TO *] AND NOT cloudcoverpercentage:[0 TO 0])",
            id="cloud-neq",
        ),
    ],
)
def test_stac_search_becomes_the_exact_q(params: dict[str, Any], expected: str) -> None:
    assert q_of(params) == expected


def test_clauses_the_backend_cannot_express_exactly_stay_with_the_gateway() -> None:
    query = build_query(
        {
            "query": {
                "eo:cloud_cover": {"lt": 10},
                "sat:orbit_state": {"eq": "Descending"},  # DHuS is case-blind: not exact
                "platform": {"startsWith": "sentinel-2"},
                "s2:mgrs_tile": {"eq": "33UXQ"},
            }
        },
        DEFAULT_COLLECTIONS,
        10,
        100,
    )
    q = solr.build_q(query, S2L2A)
    assert q == f"{COLLECTION} AND cloudcoverpercentage:{{* TO 10}}"
    pushed = [c for c in (query.filter or {})["args"] if solr.pushable(c)]
    assert len(pushed) == 1


def test_polarisations_push_down_as_array_operators() -> None:
    contains = {"op": "a_contains", "args": [{"property": "sar:polarizations"}, ["VV", "VH"]]}
    overlaps = {"op": "a_overlaps", "args": [{"property": "sar:polarizations"}, ["HH", "HV"]]}
    assert solr.filter_clause(contains) == '(polarisationmode:"VV" AND polarisationmode:"VH")'
    assert solr.filter_clause(overlaps) == '(polarisationmode:"HH" OR polarisationmode:"HV")'
    bad = {"op": "a_contains", "args": [{"property": "sar:polarizations"}, ['VV" OR *:*']]}
    assert solr.filter_clause(bad) is None


def test_several_collections_and_sentinel_5p_platform_names_are_quoted() -> None:
    sets = [DEFAULT_COLLECTIONS["sentinel-1-grd"], DEFAULT_COLLECTIONS["sentinel-5p-l2-no2"]]
    assert q_of({}, sets) == (
        '((platformname:"Sentinel-1" AND (producttype:"GRD")) OR '
        '(platformname:"Sentinel-5 Precursor" AND (producttype:"L2__NO2___")))'
    )


def test_sort_keys_become_orderby() -> None:
    query = build_query({}, DEFAULT_COLLECTIONS, 10, 100)
    assert solr.orderby(query) == "beginposition desc"
    assert odata.orderby(query) == "ContentDate/Start desc"


def test_sort_keys_the_hub_orders_exactly_become_orderby() -> None:
    s2 = [DEFAULT_COLLECTIONS["sentinel-2-l1c"], DEFAULT_COLLECTIONS["sentinel-2-l2a"]]
    mixed = [*s2, DEFAULT_COLLECTIONS["sentinel-1-grd"]]
    everything = {"datetime", "created", "id", "eo:cloud_cover", "sat:relative_orbit"}
    assert solr.sortable(s2) == everything
    # Solr sorts a product without cloud cover (Sentinel-1) as 0: not claimed for such hubs
    assert solr.sortable(mixed) == everything - {"eo:cloud_cover"}
    assert solr.sortable([DEFAULT_COLLECTIONS["sentinel-5p-l2-no2"]]) == {
        "datetime",
        "created",
        "id",
    }
    query = build_query({"sortby": "+eo:cloud_cover,-created,id"}, DEFAULT_COLLECTIONS, 10, 100)
    assert solr.orderby(query) == "cloudcoverpercentage asc,ingestiondate desc,identifier asc"
    assert solr.orderby(query, solr.sortable(mixed)) == "beginposition desc"
    later = build_query({"sortby": "-sat:relative_orbit,+datetime"}, DEFAULT_COLLECTIONS, 10, 100)
    assert solr.orderby(later) == "relativeorbitnumber desc,beginposition asc"
    assert odata.orderby(build_query({"sortby": "+created"}, DEFAULT_COLLECTIONS, 10, 100)) == (
        "IngestionDate asc"
    )


@pytest.mark.parametrize(
    "hostile",
    [
        'x") OR (*:*',
        'S2A_MSIL2A" OR identifier:*',
        'x\\") OR (*:*',
        "S2A*",
        "a) OR platformname:(*",
    ],
)
def test_ids_can_never_widen_the_solr_query(hostile: str) -> None:
    q = q_of({"ids": [hostile]})
    clause = q.removeprefix(f"{COLLECTION} AND ")
    assert clause.startswith('(identifier:"') and clause.endswith('")')
    inner = clause[len('(identifier:"') : -2]
    # The id sits inside one quoted phrase: every quote in it is escaped, so none closes it.
    unescaped = inner.replace("\\\\", "").replace('\\"', "")
    assert '"' not in unescaped
    assert inner.replace('\\"', '"').replace("\\\\", "\\") == hostile


def test_hostile_values_in_query_are_not_pushed_down() -> None:
    for prop, value in [
        ("sat:orbit_state", 'descending") OR (*:*'),
        ("sar:instrument_mode", 'IW" OR *:*'),
        ("platform", "sentinel-2a OR *:*"),
        ("grid:code", 'MGRS-33UXQ" OR "x'),
    ]:
        query = build_query({"query": {prop: {"eq": value}}}, DEFAULT_COLLECTIONS, 10, 100)
        assert solr.build_q(query, S2L2A) == COLLECTION, prop


def test_unknown_collection_and_bad_query_are_rejected_at_the_edge() -> None:
    with pytest.raises(InvalidRequest, match="unknown collection"):
        build_query({"collections": ['x") OR (*:*']}, DEFAULT_COLLECTIONS, 10, 100)
    with pytest.raises(InvalidRequest, match="unknown operator"):
        build_query({"query": {"eo:cloud_cover": {"drop": 1}}}, DEFAULT_COLLECTIONS, 10, 100)
    with pytest.raises(InvalidRequest, match="operands"):
        build_query({"query": {"eo:cloud_cover": {"eq": {"$ne": 1}}}}, DEFAULT_COLLECTIONS, 10, 100)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param(
            {},
            "(startswith(Name,'S2') and substringof('_MSIL2A_',Name))",
            id="collection",
        ),
        pytest.param(
            {"ids": ["O'Brien') or true or ('"]},
            "(startswith(Name,'S2') and substringof('_MSIL2A_',Name)) and "
            "(Name eq 'O''Brien'') or true or (''')",
            id="ids-quotes-doubled",
        ),
        pytest.param(
            {"datetime": "2021-10-01T00:00:00Z/2021-10-31T12:00:00.5Z"},
            "(startswith(Name,'S2') and substringof('_MSIL2A_',Name)) and "
            "ContentDate/Start le datetime'2021-10-31T12:00:00.500' and "
            "ContentDate/End ge datetime'2021-10-01T00:00:00.000'",
            id="datetime",
        ),
    ],
)
def test_odata_filter(params: dict[str, Any], expected: str) -> None:
    query = build_query(params, DEFAULT_COLLECTIONS, 10, 100)
    assert odata.build_filter(query, S2L2A) == expected


def test_collection_mapping_can_be_overridden_in_the_config() -> None:
    assert product_set("sentinel-2-l2a", "Sentinel-2/S2MSI2A,S2MSI2Ap") == ProductSet(
        "Sentinel-2", ("S2MSI2A", "S2MSI2Ap")
    )
    configured = {"platformname": "Sentinel-1", "producttype": ["GRD", "GRD-COG"]}
    assert product_set("s1-any", configured) == ProductSet("Sentinel-1", ("GRD", "GRD-COG"))
    assert product_set("my-own", "") is None
    assert product_set("sentinel-1-grd", "") == ProductSet("Sentinel-1", ("GRD",))
