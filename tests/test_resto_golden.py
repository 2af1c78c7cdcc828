"""Golden tests: real recorded resto answers (tests/fixtures/resto) -> the expected STAC items."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import httpx
import orjson
import pystac
import pytest
from shapely.geometry import shape
from stac_schema import item_errors

from adapters.resto.adapter import RestoAdapter
from adapters.resto.collections import Source, serves
from adapters.resto.items import to_item
from adapters.resto.mapping import AnswerError, has_more, parse_answer
from mqs.config import BackendConfig
from mqs.links import add_item_links
from mqs.query import SearchQuery

FIXTURES = Path(__file__).parent / "fixtures" / "resto"
S1_PAGES = [f"cdsetool__cdse-resto-s1-paging__0{n}_search.json" for n in range(1, 6)]
L2A_2023 = "openeo-httpcache__Sentinel2__L2A-2023-04-19__f64b8bdf__01_search.json"
L2A_2021 = "openeo-httpcache__Sentinel2__L2A-2021-05-09__edf5238a__01_search.json"
FINDER = "openeo-opensearch-client__creodiasPhoebus__01_search.json"


def recorded(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def items_of(name: str, collection: str = "sentinel-2-l2a") -> list[dict[str, Any]]:
    items = [to_item(r, collection) for r in parse_answer(recorded(name)).records]
    return [i for i in items if i is not None]


def errors(item: dict[str, Any]) -> list[str]:
    """Schema errors of the item as the gateway serves it (with its links)."""
    return item_errors(add_item_links(copy.deepcopy(item), "http://mqs.test/"))


def test_cdse_s2_page_parses_into_valid_items_with_the_recorded_values() -> None:
    answer = parse_answer(recorded(L2A_2023))
    assert answer.total is None and answer.next_link is False and len(answer.records) == 7
    items = items_of(L2A_2023)
    first = items[0]
    assert first["id"] == "S2B_MSIL2A_20230420T122659_N0509_R052_T33XWG_20230420T133717"
    props = first["properties"]
    assert props["datetime"] == "2023-04-20T12:26:59.025Z"  # recorded with 6 digits
    assert "start_datetime" not in props  # completionDate == startDate for Sentinel-2
    assert props["eo:cloud_cover"] == 58.821601
    assert props["sat:absolute_orbit"] == 31967 and props["sat:relative_orbit"] == 52
    assert "sat:orbit_state" not in props  # recorded as null
    assert props["grid:code"] == "MGRS-33XWG" and props["processing:version"] == "05.09"
    assert props["platform"] == "sentinel-2b" and props["instruments"] == ["msi"]
    assert props["product:type"] == "S2MSI2A" and props["processing:level"] == "L2A"
    assert props["created"] == "2023-04-20T17:44:56.015161Z"
    product = first["assets"]["product"]
    assert product["href"] == (
        "https://catalogue.dataspace.copernicus.eu/download/035a7579-9090-41ce-b2b2-eb537ae3166d"
    )
    assert product["file:size"] == 956033321
    assert first["assets"]["thumbnail"]["href"].endswith(
        "S2B_MSIL2A_20230420T122659_N0509_R052_T33XWG_20230420T133717-ql.jpg"
    )
    assert first["links"][0]["rel"] == "via" and first["links"][0]["href"].endswith(
        "SENTINEL-2/035a7579-9090-41ce-b2b2-eb537ae3166d.json"
    )
    assert first["bbox"] == pytest.approx(
        [14.9991110565, 77.3514755269, 19.8679037020, 78.3730256713]
    )
    for item in items:
        assert errors(item) == []
        assert pystac.Item.from_dict(item).id == item["id"]


def test_unknown_values_are_dropped_and_invalid_footprints_repaired() -> None:
    items = {i["id"]: i for i in items_of(L2A_2021)}
    assert len(items) == 13
    item = items["S2B_MSIL2A_20210923T110659_N0301_R137_T30TVN_20210923T125657"]
    assert item["properties"]["sat:orbit_state"] == "descending"
    assert "file:size" not in item["assets"]["product"]  # recorded size 0: unknown
    repaired = items["S2B_MSIL2A_20211010T105859_N0500_R094_T30TVN_20230113T165940"]
    footprint = shape(repaired["geometry"])  # recorded self-intersecting
    assert footprint.is_valid and footprint.geom_type in ("Polygon", "MultiPolygon")
    assert all(errors(i) == [] for i in items.values())


def test_finder_answers_have_their_own_spellings() -> None:
    answer = parse_answer(recorded(FINDER))
    assert answer.total == 2  # exactCount true and a count
    items = items_of(FINDER)
    names = [i["id"] for i in items]
    assert names == [
        "S2A_MSIL2A_20180911T105621_N9999_R094_T30SVH_20220925T100056",  # no .SAFE recorded
        "S2A_MSIL2A_20180911T105621_N0208_R094_T30SVH_20180911T141131",
    ]
    assert items[1]["properties"]["sat:orbit_state"] == "descending"  # recorded lower-case
    assert items[1]["assets"]["product"]["href"].startswith("https://zipper.creodias.eu/download/")
    assert all(
        serves(Source("Sentinel2", "S2MSI2A"), r["properties"]["productType"])
        for r in answer.records
    )
    assert all(errors(i) == [] for i in items)


def test_cdse_s1_pages_count_on_the_first_and_link_the_next() -> None:
    answers = [parse_answer(recorded(name)) for name in S1_PAGES]
    assert [a.total for a in answers] == [48, None, None, None, None]
    assert [has_more(a, n, 10) for n, a in enumerate(answers, 1)] == [True] * 4 + [False]
    records = [r for a in answers for r in a.records]
    items = [to_item(r, "sentinel-1-aux") for r in records]
    assert len({i["id"] for i in items if i}) == 48
    first = items[0]
    assert first is not None and first["geometry"] is None and "bbox" not in first  # "[]"
    assert first["properties"]["start_datetime"] == "2014-06-29T00:00:05.000Z"
    assert first["properties"]["end_datetime"] == "2014-06-29T23:59:55.000Z"
    assert not any(k.startswith(("sar:", "eo:")) for k in first["properties"])  # auxiliary files
    assert all(errors(i) == [] for i in items if i)
    grd = Source("Sentinel1", "GRD")
    assert not any(serves(grd, r["properties"]["productType"]) for r in records)


def test_other_collections_and_empty_pages() -> None:
    mosaics = parse_answer(
        recorded("openeo-httpcache__GLOBAL-MOSAICS__2020-01-01__6e721bf5__01_search.json")
    )
    assert not serves(Source("Sentinel1", "GRD"), mosaics.records[0]["properties"]["productType"])
    empty = parse_answer(
        recorded("openeo-httpcache__Sentinel2__L1C-2016-06-15__93cf9d75__01_search.json")
    )
    assert empty.records == [] and not has_more(empty, 2, 1000)
    l1c = items_of(
        "openeo-httpcache__Sentinel2__L1C-2017-05-03__1a1740fc__01_search.json", "sentinel-2-l1c"
    )
    assert [i["properties"]["product:type"] for i in l1c] == ["S2MSI1C", "S2MSI1C"]
    tile = parse_answer(recorded("openeo-opensearch-client__creoDiasTileIdPattern__01_search.json"))
    assert tile.total == 1
    assert (
        items_of("openeo-opensearch-client__creoDiasTileIdPattern__01_search.json")[0][
            "properties"
        ]["grid:code"]
        == "MGRS-31UFS"
    )  # the recorded request's tileId


@pytest.mark.parametrize(
    "body",
    [
        {"ErrorMessage": "Invalid cloudCover", "ErrorCode": 400},
        [],
        {"type": "FeatureCollection"},
        {"type": "Feature", "features": []},
    ],
)
def test_answers_that_are_not_results_are_errors(body: Any) -> None:
    with pytest.raises(AnswerError):
        parse_answer(body)


def test_the_adapter_pages_through_recorded_cdse_pages() -> None:
    """The recorded S1 pages served by page number: the adapter reads all 48 products once."""
    seen: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen.append(params)
        page = int(params.get("page", "1"))
        return httpx.Response(200, content=(FIXTURES / S1_PAGES[page - 1]).read_bytes())

    backend = BackendConfig(
        id="cdse",
        kind="resto",
        url="https://catalogue.dataspace.copernicus.eu/resto/api",
        collections={"sentinel-1-aux": "Sentinel1"},
        options={"max_records": 10},
    )

    async def run() -> tuple[list[str], int | None]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            adapter = RestoAdapter(backend, client)
            query = SearchQuery(collections=("sentinel-1-aux",), limit=10)
            page = await adapter.search(query, None, 10)
            names, matched = [h.product_id for h in page.hits], page.matched
            while page.next_state is not None:
                page = await adapter.search(query, page.next_state, 10)
                names += [h.product_id for h in page.hits]
            return names, matched

    names, matched = asyncio.run(run())
    assert len(names) == len(set(names)) == matched == 48
    assert [s["page"] for s in seen] == ["1", "2", "3", "4", "5"]
    assert seen[0]["exactCount"] == "1" and "exactCount" not in seen[1]
    assert seen[0]["sortParam"] == "startDate" and seen[0]["sortOrder"] == "descending"
    assert "productType" not in seen[0]  # the whole resto collection was configured
