"""CDSE OData translation: a STAC search -> the exact ``/Products`` parameters and ``$filter``."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import shapely

from adapters.cdse_odata import query as odata
from adapters.cdse_odata.collections import DEFAULT_COLLECTIONS, ProductSet, product_set, resolve
from adapters.cdse_odata.emulator_filter import FilterError, compile_filter, tokenize
from mqs.literals import bbox_geometry
from mqs.query import build_query

L2A = [DEFAULT_COLLECTIONS["sentinel-2-l2a"]]
COLLECTION = (
    "(Collection/Name eq 'SENTINEL-2' and Attributes/OData.CSC.StringAttribute/any(att:att/Name "
    "eq 'productType' and att/OData.CSC.StringAttribute/Value eq 'S2MSI2A'))"
)
STRING = "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq '{}' and {})"
STRING_VALUE = "att/OData.CSC.StringAttribute/Value"
ID = "S2A_MSIL2A_20211024T095031_N0301_R079_T33UXQ_20211024T121234"


def filter_of(params: dict[str, Any], sets: list[ProductSet] = L2A, margin: float = 0.5) -> str:
    query = build_query(params, DEFAULT_COLLECTIONS, 10, 1000)
    text = odata.build_filter(query, sets, margin)
    assert text is not None
    return text


def clause_of(params: dict[str, Any]) -> str:
    """The ``$filter`` without the collection clause every case shares."""
    text = filter_of(params)
    assert text.startswith(f"{COLLECTION} and ")
    return text.removeprefix(f"{COLLECTION} and ")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param(
            {"ids": [ID]},
            f"(Name eq '{ID}.SAFE' or Name eq '{ID}.SEN3' or Name eq '{ID}')",
            id="ids",
        ),
        pytest.param(
            {"ids": [f"{ID}.SAFE"]},  # only a Name whose product id is the one asked for
            f"(Name eq '{ID}.SAFE.SAFE' or Name eq '{ID}.SAFE.SEN3')",
            id="ids-with-suffix",
        ),
        pytest.param(
            {"bbox": [15, 49.5, 16.5, 50]},
            "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((14.5 49, 14.5 50.5, "
            "15.75 50.5, 17 50.5, 17 49, 15.75 49, 14.5 49))')",
            id="bbox-widened-and-densified",
        ),
        pytest.param(
            {"intersects": {"type": "Point", "coordinates": [14.2, 49.9]}},
            "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((14.553553 49.546447, "
            "14.2 49.4, 13.846447 49.546447, 13.7 49.9, 13.846447 50.253553, 14.2 50.4, "
            "14.553553 50.253553, 14.7 49.9, 14.553553 49.546447))')",
            id="intersects-point",
        ),
        pytest.param(
            {"datetime": "2021-10-01T00:00:00Z/2021-10-31T23:59:59.999Z"},
            "ContentDate/Start lt 2021-11-01T00:00:00.000Z and "
            "ContentDate/End ge 2021-10-01T00:00:00.000Z",
            id="datetime-interval",
        ),
        pytest.param(
            {"datetime": "../2021-10-31T00:00:00.0005Z"},
            "ContentDate/Start lt 2021-10-31T00:00:00.001Z",
            id="datetime-open-start-millisecond-precision",
        ),
        pytest.param(
            {"datetime": "2021-10-01T00:00:00+02:00/.."},
            "ContentDate/End ge 2021-09-30T22:00:00.000Z",
            id="datetime-open-end-utc",
        ),
        pytest.param(
            {"datetime": "2021-10-24T09:50:31.024Z"},
            "ContentDate/Start lt 2021-10-24T09:50:31.025Z and "
            "ContentDate/End ge 2021-10-24T09:50:31.024Z",
            id="datetime-instant",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"lte": 20}}},
            "Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
            "att/OData.CSC.DoubleAttribute/Value le 20)",
            id="cloud-lte",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"gt": 5.5}}},
            "Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
            "att/OData.CSC.DoubleAttribute/Value gt 5.5)",
            id="cloud-gt-fraction",
        ),
        pytest.param(
            {"query": {"eo:cloud_cover": {"neq": 0}}},
            "Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
            "att/OData.CSC.DoubleAttribute/Value ne 0)",
            id="cloud-neq",
        ),
        pytest.param(
            {"query": {"sat:relative_orbit": {"in": [79, 22]}}},
            "Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'relativeOrbitNumber' and "
            "(att/OData.CSC.IntegerAttribute/Value eq 79 or "
            "att/OData.CSC.IntegerAttribute/Value eq 22))",
            id="relative-orbit-in",
        ),
        pytest.param(
            {"query": {"sat:absolute_orbit": {"gte": 33000}}},
            "Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'orbitNumber' and "
            "att/OData.CSC.IntegerAttribute/Value ge 33000)",
            id="absolute-orbit",
        ),
        pytest.param(
            {"query": {"sat:orbit_state": {"eq": "descending"}}},
            STRING.format("orbitDirection", f"{STRING_VALUE} eq 'DESCENDING'"),
            id="orbit-state",
        ),
        pytest.param(
            {"query": {"sar:instrument_mode": {"in": ["IW", "EW"]}}},
            STRING.format("operationalMode", f"({STRING_VALUE} eq 'IW' or {STRING_VALUE} eq 'EW')"),
            id="instrument-mode",
        ),
        pytest.param(
            {"query": {"product:type": {"eq": "S2MSI2A"}}},
            STRING.format("productType", f"{STRING_VALUE} eq 'S2MSI2A'"),
            id="product-type",
        ),
        pytest.param(
            {"query": {"grid:code": {"eq": "MGRS-33UXQ"}}},
            STRING.format("tileId", f"{STRING_VALUE} eq '33UXQ'"),
            id="grid-code",
        ),
        pytest.param(
            {"query": {"platform": {"eq": "sentinel-2b"}}},
            "("
            + STRING.format("platformShortName", f"{STRING_VALUE} eq 'SENTINEL-2'")
            + " and "
            + STRING.format("platformSerialIdentifier", f"{STRING_VALUE} eq 'B'")
            + ")",
            id="platform",
        ),
        pytest.param(
            {"query": {"sar:polarizations": {"eq": "VH"}}},
            STRING.format("polarisationChannels", f"contains({STRING_VALUE},'VH')"),
            id="polarisation",
        ),
    ],
)
def test_stac_search_becomes_the_exact_filter(params: dict[str, Any], expected: str) -> None:
    assert clause_of(params) == expected


def test_the_collection_alone_and_several_collections() -> None:
    assert filter_of({}) == COLLECTION
    sets = [DEFAULT_COLLECTIONS["sentinel-2-l1c"], ProductSet("SENTINEL-3", ())]
    assert filter_of({}, sets) == (
        "((Collection/Name eq 'SENTINEL-2' and Attributes/OData.CSC.StringAttribute/any("
        "att:att/Name eq 'productType' and att/OData.CSC.StringAttribute/Value eq 'S2MSI1C')) "
        "or Collection/Name eq 'SENTINEL-3')"
    )
    grd = filter_of({}, [DEFAULT_COLLECTIONS["sentinel-1-grd"]])
    assert "Value eq 'IW_GRDH_1S' or " in grd and "Value eq 'EW_GRDM_1S' or " in grd
    assert "COG" not in grd  # the COG copies are other products (other names)


def test_page_parameters_in_the_order_cdse_uses() -> None:
    query = build_query({"collections": ["sentinel-2-l2a"]}, DEFAULT_COLLECTIONS, 10, 100)
    first = odata.params(query, L2A, top=10, skip=0, margin=0.5)
    assert first == [
        ("$filter", COLLECTION),
        ("$top", "10"),
        ("$count", "true"),
        ("$expand", "Attributes"),
        ("$orderby", "ContentDate/Start desc"),
    ]
    later = odata.params(query, L2A, top=10, skip=30, margin=0.5, assets=True)
    assert [k for k, _ in later] == ["$filter", "$top", "$skip", "$expand", "$orderby"]
    assert dict(later)["$skip"] == "30" and dict(later)["$expand"] == "Attributes,Assets"


def test_clauses_the_backend_cannot_express_exactly_stay_with_the_gateway() -> None:
    query = build_query(
        {
            "query": {
                "eo:cloud_cover": {"lt": 10},
                "sat:orbit_state": {"eq": "Descending"},  # no item has it: CDSE has DESCENDING
                "sat:relative_orbit": {"lt": 79.5},  # an Integer attribute: whole numbers only
                "platform": {"startsWith": "sentinel-2"},
                "s2:mgrs_tile": {"eq": "33UXQ"},
                "sar:polarizations": {"neq": "VV"},
            }
        },
        DEFAULT_COLLECTIONS,
        10,
        100,
    )
    pushed = [c for c in (query.filter or {})["args"] if odata.pushable(c)]
    assert len(pushed) == 1
    assert odata.build_filter(query, L2A, 0.5) == (
        f"{COLLECTION} and Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' "
        "and att/OData.CSC.DoubleAttribute/Value lt 10)"
    )


@pytest.mark.parametrize(
    "hostile",
    [
        "x' or true or 'x",
        "x') or (Name ne '",
        "S2A_MSIL2A'",
        "''",
        "a' or contains(Name,'S') or 'b",
    ],
)
def test_ids_can_never_widen_the_filter(hostile: str) -> None:
    text = clause_of({"ids": [hostile]})
    quoted = hostile.replace("'", "''")
    assert text == f"(Name eq '{quoted}.SAFE' or Name eq '{quoted}.SEN3' or Name eq '{quoted}')"
    # In the catalogue's grammar the clause is three name comparisons with the id as a string.
    names = [hostile + ".SAFE", hostile + ".SEN3", hostile]
    expected = [("punct", "(")]
    for k, name in enumerate(names):
        expected += [("name", "or")] if k else []
        expected += [("name", "Name"), ("name", "eq"), ("str", name)]
    assert tokenize(text) == [*expected, ("punct", ")")]


def test_hostile_values_in_query_are_not_pushed_down() -> None:
    for prop, value in [
        ("sat:orbit_state", "descending' or true or '"),
        ("sar:instrument_mode", "IW' or 'x' eq 'x"),
        ("product:type", "S2MSI2A') or (true"),
        ("platform", "sentinel-2a' or true"),
        ("grid:code", "MGRS-33UXQ' or '1' eq '1"),
    ]:
        query = build_query({"query": {prop: {"eq": value}}}, DEFAULT_COLLECTIONS, 10, 100)
        assert odata.build_filter(query, L2A, 0.5) == COLLECTION, prop
    hostile = {"op": "a_contains", "args": [{"property": "sar:polarizations"}, ["VV')"]]}
    assert odata.filter_clause(hostile) is None


def test_literals_double_quotes_and_nothing_else() -> None:
    assert odata.literal("O'Brien") == "'O''Brien'"
    assert odata.literal("a''b") == "'a''''b'"
    assert odata.literal("{v} %27 \\") == "'{v} %27 \\'"


def test_the_search_area_contains_the_geometry_widened() -> None:
    for bbox in [(15, 49.5, 16.5, 50), (0, 60, 40, 70), (170, -10, -170, 10), (-5, -89, 5, -80)]:
        geometry = bbox_geometry(bbox)
        area = odata.search_area(geometry, 0.5)
        assert area is not None and area.is_valid
        assert area.covers(geometry.buffer(0.49).intersection(odata.WORLD)), bbox
        assert shapely.get_num_coordinates(area) <= odata.MAX_VERTICES


def test_edges_along_parallels_are_densified_meridians_are_not() -> None:
    area = odata.search_area(bbox_geometry((0, 60, 40, 70)), 0.0)
    assert area is not None
    coords = list(area.exterior.coords)
    assert all(abs(b[0] - a[0]) <= odata.SEGMENT_DEG for a, b in itertools.pairwise(coords))
    assert sum(1 for a, b in itertools.pairwise(coords) if a[0] == b[0]) == 2


def test_areas_too_large_for_a_geography_polygon_are_left_to_the_gateway() -> None:
    assert odata.search_area(bbox_geometry((-180, -80, 180, 80)), 0.5) is None
    assert odata.search_area(bbox_geometry((0, -50, 100, 50)), 0.5) is None
    query = build_query({"bbox": [-180, -80, 180, 80]}, DEFAULT_COLLECTIONS, 10, 100)
    assert odata.build_filter(query, L2A, 0.5) == COLLECTION


def test_a_detailed_polygon_becomes_its_convex_hull() -> None:
    ring = [[14 + k / 100, 49 + (k % 2) / 100] for k in range(300)] + [[17, 50], [14, 50], [14, 49]]
    geometry = shapely.Polygon(ring)
    area = odata.search_area(geometry, 0.1)
    assert area is not None and area.covers(geometry)
    assert shapely.get_num_coordinates(area) < 40


def test_sort_keys_become_orderby() -> None:
    query = build_query({}, DEFAULT_COLLECTIONS, 10, 100)
    assert odata.orderby(query) == "ContentDate/Start desc"
    for sortby, expected in [
        ("+created", "PublicationDate asc"),
        ("-created,+datetime", "PublicationDate desc"),  # one key is claimed, one is sent
        ("+datetime", "ContentDate/Start asc"),
        ("+eo:cloud_cover", "ContentDate/Start desc"),  # not sortable: the gateway says 400
    ]:
        query = build_query({"sortby": sortby}, DEFAULT_COLLECTIONS, 10, 100)
        assert odata.orderby(query) == expected, sortby


def test_collection_mappings_from_the_config() -> None:
    assert product_set("sentinel-2-l2a", "") == DEFAULT_COLLECTIONS["sentinel-2-l2a"]
    assert product_set("x", "SENTINEL-2/S2MSI2A,S2MSI2Ap") == ProductSet(
        "SENTINEL-2", ("S2MSI2A", "S2MSI2Ap")
    )
    assert product_set("x", "SENTINEL-3") == ProductSet("SENTINEL-3", ())
    mapping = {"collection": "SENTINEL-1", "productType": ["IW_GRDH_1S", "IW_GRDH_1S-COG"]}
    assert product_set("x", mapping) == ProductSet("SENTINEL-1", ("IW_GRDH_1S", "IW_GRDH_1S-COG"))
    assert product_set("my-own", "") is None
    assert product_set("x", "SENTINEL-2/S2MSI2A' or true or '") is None
    assert product_set("x", {"collection": "SENTINEL-2", "producttype": ["S2MSI2A"]}) is None
    with pytest.raises(ValueError, match=r"collections\.my-own: no CDSE collection"):
        resolve({"sentinel-2-l2a": "", "my-own": ""})


def test_the_emulator_parser_reads_the_translations_back() -> None:
    """Every translated filter is valid in the catalogue's grammar (the emulator's parser)."""
    params: list[dict[str, Any]] = [
        {"ids": [ID, "x' or true or 'y"]},
        {"bbox": [170, -10, -170, 10]},
        {"datetime": "2021-10-01T00:00:00Z/2021-10-31T00:00:00Z"},
        {"query": {"eo:cloud_cover": {"lte": 20}, "sat:relative_orbit": {"in": [1, 2]}}},
        {"query": {"platform": {"in": ["sentinel-2a", "sentinel-2b"]}}},
        {"query": {"sar:polarizations": {"in": ["VV", "HH"]}}},
    ]
    for p in params:
        assert callable(compile_filter(filter_of(p)))
    with pytest.raises(FilterError):
        compile_filter("Name eq 'x'' or true")
