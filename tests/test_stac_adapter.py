"""The ``stac`` adapter: translation tables (query, filter pushdown, sort), golden tests on
recorded real STAC answers, and the emulator's Sort and Filter extensions as a server has them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from factories import BASE_TIME, as_earth_search, s2_item, s2_name

from adapters.base import BadBackendResponse
from adapters.stac import mapping
from adapters.stac.adapter import StacAdapter
from adapters.stac.emulator import create_emulator
from adapters.stac.pushdown import pushable_for
from adapters.stac.query import get_params, search_body
from mqs.config import BackendConfig
from mqs.cqlfilter import parse_filter
from mqs.identity import product_name
from mqs.literals import bbox_geometry
from mqs.query import SearchQuery, SortField

RECORDED = Path(__file__).parent / "fixtures" / "stac"
NAMES = {"sentinel-2-l2a": "SENTINEL2_L2A", "sentinel-1-grd": "sentinel-1-grd"}
T0 = datetime(2021, 10, 1, tzinfo=UTC)
T1 = datetime(2021, 10, 31, 23, 59, 59, tzinfo=UTC)


def _recorded(name: str) -> Any:
    return orjson.loads((RECORDED / f"{name}.json").read_bytes())


def _query(**kwargs: Any) -> SearchQuery:
    if "bbox" in kwargs:
        kwargs["geometry"] = bbox_geometry(kwargs["bbox"])
    return SearchQuery(**{"collections": ("sentinel-2-l2a",), **kwargs})


@pytest.mark.parametrize(
    ("query", "options", "expected"),
    [
        pytest.param(_query(), {}, {}, id="collections-renamed"),
        pytest.param(_query(bbox=(14, 49, 16, 50)), {}, {"bbox": [14, 49, 16, 50]}, id="bbox"),
        pytest.param(
            _query(bbox=(170, -10, -170, 10)), {}, {"bbox": [170, -10, -170, 10]}, id="antimeridian"
        ),
        pytest.param(
            _query(intersects={"type": "Point", "coordinates": [15, 50]}),
            {},
            {"intersects": {"type": "Point", "coordinates": [15, 50]}},
            id="intersects",
        ),
        pytest.param(
            _query(datetime=(T0, T1)),
            {},
            {"datetime": "2021-10-01T00:00:00Z/2021-10-31T23:59:59Z"},
            id="interval",
        ),
        pytest.param(
            _query(datetime=(T0, None)), {}, {"datetime": "2021-10-01T00:00:00Z/.."}, id="open-end"
        ),
        pytest.param(
            _query(datetime=(T0, T0)), {}, {"datetime": "2021-10-01T00:00:00Z"}, id="instant"
        ),
        pytest.param(_query(ids=("S2A_X",)), {}, {"ids": ["S2A_X"]}, id="ids"),
        pytest.param(
            _query(ids=("S2A_X",)),
            {"product_id_property": "s2:product_uri"},
            {"query": {"s2:product_uri": {"in": ["S2A_X", "S2A_X.SAFE", "S2A_X.SEN3"]}}},
            id="ids-through-product-property",
        ),
    ],
)
def test_search_body(query: SearchQuery, options: dict[str, Any], expected: dict[str, Any]) -> None:
    body = search_body(query, NAMES, 25, options.get("product_id_property"), sort=True)
    assert body == {
        "collections": ["SENTINEL2_L2A"],
        "limit": 25,
        "sortby": [{"field": "properties.datetime", "direction": "desc"}],
        **expected,
    }


def test_get_params_encode_the_same_search() -> None:
    query = _query(bbox=(14, 49, 16, 50), ids=("a", "b"), datetime=(T0, T1))
    params = get_params(search_body(query, NAMES, 5, None, sort=True))
    assert str(params) == (
        "collections=SENTINEL2_L2A&limit=5&bbox=14%2C49%2C16%2C50"
        "&datetime=2021-10-01T00%3A00%3A00Z%2F2021-10-31T23%3A59%3A59Z&ids=a%2Cb"
        "&sortby=-properties.datetime"
    )


@pytest.mark.parametrize(
    ("name", "collection", "expected_ids", "matched"),
    [
        pytest.param(
            "eodag__earth-search-v1__01_items",
            "sentinel-2-l1c",
            ["S2B_MSIL1C_20240206T131259_N0510_R081_T27VWK_20240206T133903"],
            25898765,
            id="earth-search-v1-s2",
        ),
        pytest.param(
            "openeo-opensearch-client__earth-search-v0-items__01_search",
            "sentinel-s2-l2a-cogs",
            ["S2A_MSIL2A_20201218T050601_N0214_R076_T44NML_20201218T061723"],
            12123719,
            id="earth-search-v0-context",
        ),
        pytest.param(
            "pystac-client__TestItemSearch.test_ids_results__01_search",
            "naip",
            ["fl_m_2608004_nw_17_060_20191215_20200113"],
            None,
            id="planetary-computer-non-sentinel",
        ),
    ],
)
def test_recorded_pages_become_hits(
    name: str, collection: str, expected_ids: list[str], matched: int | None
) -> None:
    body = _recorded(name)
    original_self = next(ln["href"] for ln in body["features"][0]["links"] if ln["rel"] == "self")
    hits = mapping.page_hits(body, {collection: "canonical"}, None)
    assert [h.product_id for h in hits] == expected_ids
    assert all(h.item["collection"] == "canonical" for h in hits)
    assert mapping.matched(body) == matched
    rels = [(ln["rel"], ln["href"]) for ln in hits[0].item["links"]]
    assert ("via", original_self) in rels
    assert not {r for r, _ in rels} & {"self", "root", "parent", "collection"}


def test_earth_search_s1_names_come_from_product_identifier() -> None:
    body = _recorded("pystac-client__TestCLISearch.test_filter-inprocess__01_search")
    canonical = {"sentinel-1-grd": "sentinel-1-grd", "sentinel-2-c1-l2a": "sentinel-2-l2a"}
    hits = mapping.page_hits(body, canonical, None)
    assert [h.item["collection"] for h in hits] == ["sentinel-1-grd"] * 3 + ["sentinel-2-l2a"] * 3
    first = hits[0]
    assert first.item["id"] == "S1A_IW_GRDH_1SSH_20250731T135702_20250731T135722_060328_077F7E"
    assert first.product_id == first.item["id"] + "_0C44"


def test_items_of_unmapped_collections_are_dropped() -> None:
    body = _recorded("pystac-client__TestItemSearch.test_result_paging__01_search")
    assert mapping.page_hits(body, {"sentinel-2-l2a": "sentinel-2-l2a"}, None) == []
    assert len(mapping.page_hits(body, {"naip": "naip"}, None)) == 10


def _replay(name: str, seen: list[httpx.Request]) -> httpx.AsyncClient:
    """A client whose backend answers with a recorded real response."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=(RECORDED / f"{name}.json").read_bytes())

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _backend(url: str, collections: dict[str, str]) -> BackendConfig:
    return BackendConfig(id="pc", kind="stac", url=url, collections=collections)


async def test_recorded_post_next_link_becomes_page_state() -> None:
    seen: list[httpx.Request] = []
    name = "pystac-client__TestItemSearch.test_result_paging__01_search"
    url = "https://planetarycomputer.microsoft.com/api/stac/v1"
    async with _replay(name, seen) as client:
        adapter = StacAdapter(_backend(url, {"naip": "naip"}), client)
        page = await adapter.search(SearchQuery(collections=("naip",)), None, 10)
        assert len(page.hits) == 10 and page.next_state is not None
        assert page.next_state["m"] == "POST"
        assert page.next_state["b"]["token"].startswith("next:")
        await adapter.search(SearchQuery(collections=("naip",)), page.next_state, 10)
    assert orjson.loads(seen[1].content)["token"] == page.next_state["b"]["token"]
    assert str(seen[1].url) == f"{url}/search"


async def test_next_link_to_another_host_is_refused() -> None:
    seen: list[httpx.Request] = []
    name = "pystac-client__TestItemSearch.test_result_paging__01_search"
    async with _replay(name, seen) as client:
        adapter = StacAdapter(_backend("https://stac.example.org/api", {"naip": "naip"}), client)
        with pytest.raises(BadBackendResponse, match="leaves the backend"):
            await adapter.search(SearchQuery(collections=("naip",)), None, 10)


def _cql(text: str) -> dict[str, Any]:
    """CQL2 text as the gateway's edge normalises it (``mqs.cqlfilter``)."""
    parsed = parse_filter(text, "cql2-text")
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    ("text", "id_property", "pushed"),
    [
        pytest.param("eo:cloud_cover < 10", None, True, id="comparison"),
        pytest.param("platform IN ('a', 'b') OR NOT (gsd = 10)", None, True, id="or-not-in"),
        pytest.param("\"grid:code\" LIKE 'MGRS-33U%'", None, True, id="like"),
        pytest.param("eo:cloud_cover BETWEEN 1 AND 2", None, True, id="between"),
        pytest.param("A_OVERLAPS(instruments, ('msi', 'sar'))", None, True, id="array"),
        pytest.param("created > TIMESTAMP('2021-01-01T00:00:00Z')", None, True, id="instant"),
        pytest.param("sat:absolute_orbit IS NULL", None, True, id="is-null"),
        pytest.param("id LIKE 'S2B%'", None, True, id="id-is-the-product-name"),
        pytest.param("id LIKE 'S2B%'", "s2:product_uri", False, id="id-renamed"),
        pytest.param("collection <> 'x'", None, False, id="collection-names-differ"),
        pytest.param("datetime > TIMESTAMP('2021-01-01T00:00:00Z')", None, False, id="datetime"),
        pytest.param("S_WITHIN(geometry, BBOX(1, 2, 3, 4))", None, False, id="spatial"),
        pytest.param(
            "T_AFTER(created, TIMESTAMP('2021-01-01T00:00:00Z'))", None, False, id="temporal"
        ),
        pytest.param("CASEI(platform) = CASEI('X')", None, False, id="casei"),
        pytest.param("eo:cloud_cover < 1 OR collection <> 'x'", None, False, id="or-with-local"),
    ],
)
def test_pushable_clauses(text: str, id_property: str | None, pushed: bool) -> None:
    assert pushable_for(id_property)(_cql(text)) is pushed


def test_filter_sends_the_pushable_clauses_only() -> None:
    text = "eo:cloud_cover < 10 AND CASEI(platform) = 'X' AND gsd = 10"
    query = _query(filter=_cql(text))
    body = search_body(query, NAMES, 5, None, sort=False, cql2=True)
    assert body["filter"] == _cql("eo:cloud_cover < 10 AND gsd = 10")
    assert body["filter-lang"] == "cql2-json"
    assert "filter" not in search_body(query, NAMES, 5, None, sort=False)  # no Filter extension
    local = _query(filter=_cql("CASEI(platform) = 'X'"))
    assert "filter" not in search_body(local, NAMES, 5, None, sort=False, cql2=True)


def test_ids_through_the_product_property_go_into_the_filter() -> None:
    """pgstac refuses ``query`` and ``filter`` together: with CQL2 the ids are a clause."""
    query = _query(ids=("S2A_X",), filter=_cql("eo:cloud_cover < 10"))
    body = search_body(query, NAMES, 5, "s2:product_uri", sort=False, cql2=True)
    names = ["S2A_X", "S2A_X.SAFE", "S2A_X.SEN3"]
    ids = {"op": "in", "args": [{"property": "s2:product_uri"}, names]}
    assert body["filter"] == {"op": "and", "args": [ids, _cql("eo:cloud_cover < 10")]}
    assert "query" not in body and "ids" not in body


@pytest.mark.parametrize(
    ("id_property", "fields"),
    [
        (None, ["properties.eo:cloud_cover", "id", "collection", "properties.created"]),
        (
            "s2:product_uri",
            [
                "properties.eo:cloud_cover",
                "properties.s2:product_uri",
                "collection",
                "properties.created",
            ],
        ),
    ],
)
def test_every_sort_key_is_sent(id_property: str | None, fields: list[str]) -> None:
    sortby = (
        SortField("eo:cloud_cover", "desc"),
        SortField("id", "asc"),
        SortField("collection", "asc"),
        SortField("created", "desc"),
    )
    body = search_body(_query(sortby=sortby), NAMES, 5, id_property, sort=True)
    assert [s["field"] for s in body["sortby"]] == fields
    assert [s["direction"] for s in body["sortby"]] == ["desc", "asc", "asc", "desc"]


def test_get_params_carry_the_filter_as_cql2_json_text() -> None:
    sortby = (SortField("eo:cloud_cover", "desc"), SortField("id", "asc"))
    query = _query(filter=_cql("eo:cloud_cover < 10"), sortby=sortby)
    params = get_params(search_body(query, NAMES, 5, None, sort=True, cql2=True))
    assert orjson.loads(params["filter"]) == _cql("eo:cloud_cover < 10")
    assert params["filter-lang"] == "cql2-json"
    assert params["sortby"] == "-properties.eo:cloud_cover,+id"


async def test_adapter_filters_on_a_get_only_backend_through_its_product_property() -> None:
    """GET fallback, ids as a CQL2 clause on the product property, the rest of the filter."""
    items = [
        as_earth_search(s2_item(s2_name(BASE_TIME - timedelta(days=n)), BASE_TIME))
        for n in range(6)
    ]
    for n, item in enumerate(items):
        item["properties"]["eo:cloud_cover"] = n * 10.0
    wanted = [product_name(i["properties"]["s2:product_uri"]) for i in items[:4]]
    app = create_emulator(items, post_search=False)
    backend = BackendConfig(
        id="es",
        kind="stac",
        url="http://es.test",
        collections={"sentinel-2-l2a": "sentinel-2-l2a"},
        options={"product_id_property": "s2:product_uri", "filter_extension": True},
    )
    query = SearchQuery(
        collections=("sentinel-2-l2a",), ids=tuple(wanted), filter=_cql("eo:cloud_cover >= 20")
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        page = await StacAdapter(backend, client).search(query, None, 10)
    assert sorted(h.product_id for h in page.hits) == sorted(wanted[2:])
    assert app.state.filters and all("s2:product_uri" in f for f in app.state.filters)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(_query(ids=("S2A_X,S2B_Y",)), id="id"),
        pytest.param(_query(sortby=(SortField("a,-b", "asc"),)), id="sort-field"),
    ],
)
def test_a_comma_inside_a_get_list_value_is_refused(query: SearchQuery) -> None:
    """GET lists have no escape: ``ids=S2A_X,S2B_Y`` would ask for two other products."""
    with pytest.raises(ValueError, match="comma"):
        get_params(search_body(query, NAMES, 5, None, sort=True))
