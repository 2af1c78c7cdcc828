"""The ``stac`` adapter: translation table, and golden tests on recorded real STAC answers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from adapters.base import BadBackendResponse
from adapters.stac import mapping
from adapters.stac.adapter import StacAdapter
from adapters.stac.query import get_params, search_body
from mqs.config import BackendConfig
from mqs.literals import bbox_geometry
from mqs.query import SearchQuery

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
