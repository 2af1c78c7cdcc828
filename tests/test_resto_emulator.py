"""The resto emulator against the recorded CDSE answers in ``fixtures/resto`` and resto semantics.

Structure tests compare the emulator's answers with the real recordings (keys, key order, value
types, date formats, paging links); the others check the search parameters on a known
catalogue: dates, areas, intervals, product types, LIKE patterns, paging, ordering, errors.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from factories import BASE_TIME, s2_item, s2_name, series

from adapters.resto.emulator import create_emulator
from mqs.demodata import generate_catalogue, write_catalogue

FIXTURES = Path(__file__).parent / "fixtures" / "resto"
S1_PAGE = "cdsetool__cdse-resto-s1-paging__0{}_search.json"
S2_PAGE = "openeo-httpcache__Sentinel2__L2A-2023-04-19__f64b8bdf__01_search.json"
S1_GRD = "S1A_IW_GRDH_1SDV_20211020T051723_20211020T051748_040183_04B6F1_1A2B"
DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
S2 = series(6, tiles=("33UXQ", "33UWQ"))  # 12 products, tiles of a datatake share a datetime


def recorded(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def s1_item(name: str = S1_GRD, cloud: float | None = None) -> dict[str, Any]:
    begin = datetime.strptime(name[17:32], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    end = datetime.strptime(name[33:48], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    props: dict[str, Any] = {
        "datetime": begin.isoformat().replace("+00:00", "Z"),
        "start_datetime": begin.isoformat().replace("+00:00", "Z"),
        "end_datetime": end.isoformat().replace("+00:00", "Z"),
        "sat:orbit_state": "descending",
        "sat:relative_orbit": 22,
    }
    ring = [[14.0, 49.0], [17.0, 49.0], [17.0, 51.0], [14.0, 51.0], [14.0, 49.0]]
    return {
        "type": "Feature",
        "id": name,
        "collection": "sentinel-1-grd",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": props,
        "assets": {"product": {"href": "x", "file:size": 1_700_000_000}},
    }


@asynccontextmanager
async def resto(items: list[dict[str, Any]] | None = None, **options: Any) -> AsyncIterator[Any]:
    app = create_emulator([*S2, s1_item()] if items is None else items, **options)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="https://resto.test") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def search(client: Any, collection: str = "Sentinel2", **params: Any) -> dict[str, Any]:
    response = await client.get(f"/collections/{collection}/search.json", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def titles(body: dict[str, Any]) -> list[str]:
    return [f["properties"]["title"].removesuffix(".SAFE") for f in body["features"]]


def rels(body: dict[str, Any]) -> list[str]:
    return [link["rel"] for link in body["properties"]["links"]]


# --- envelopes and records against the recordings -------------------------------------------
async def test_the_envelope_is_the_recorded_one() -> None:
    real = [recorded(S1_PAGE.format(n)) for n in (1, 2, 5)]
    async with resto() as client:
        first = await search(client, maxRecords=5, exactCount=1)
        second = await search(client, maxRecords=5, exactCount=0, page=2)
        last = await search(client, maxRecords=5, exactCount=0, page=3)
    for mine, theirs in zip((first, second, last), real, strict=True):
        assert list(mine) == list(theirs) == ["type", "properties", "features"]
        assert list(mine["properties"]) == list(theirs["properties"])
        assert list(mine["properties"]["query"]) == list(theirs["properties"]["query"])
        assert rels(mine) == rels(theirs)
        assert [list(x) for x in mine["properties"]["links"]] == [
            list(x) for x in theirs["properties"]["links"]
        ]
    assert (first["properties"]["totalResults"], first["properties"]["exactCount"]) == (12, 1)
    assert (second["properties"]["totalResults"], second["properties"]["exactCount"]) == (None, 0)
    assert [b["properties"]["startIndex"] for b in (first, second, last)] == [1, 6, 11]
    assert last["properties"]["itemsPerPage"] == 5 and len(last["features"]) == 2
    assert first["properties"]["id"] == second["properties"]["id"]  # as recorded: per query
    assert first["properties"]["query"]["originalFilters"] == {"collection": "SENTINEL-2"}


async def test_paging_links_move_page_to_the_end_as_recorded() -> None:
    async with resto() as client:
        body = await search(client, sortParam="startDate", page=2, maxRecords=4, productType="L2A")
    links = {x["rel"]: x["href"] for x in body["properties"]["links"]}
    base = "https://resto.test/collections/Sentinel2/search.json?"
    assert links["self"] == f"{base}sortParam=startDate&page=2&maxRecords=4&productType=L2A"
    assert links["first"] == f"{base}sortParam=startDate&maxRecords=4&productType=L2A&page=1"
    assert links["next"] == f"{base}sortParam=startDate&maxRecords=4&productType=L2A&page=3"
    assert links["search"] == "https://resto.test/collections/Sentinel2/describe.xml"
    filters = body["properties"]["query"]["appliedFilters"]
    assert filters == {"productType": "L2A", "collection": "SENTINEL-2"}
    async with resto() as client:
        small = await search(client, maxRecords=100)
    assert rels(small) == ["self", "search"]  # as the recorded one-page answers


async def test_records_have_the_recorded_keys_order_and_formats() -> None:
    s2_real = recorded(S2_PAGE)["features"][0]
    s1_real = recorded(S1_PAGE.format(1))["features"][0]
    async with resto() as client:
        s2 = (await search(client, maxRecords=1))["features"][0]
        s1 = (await search(client, "SENTINEL-1"))["features"][0]
    assert list(s2) == list(s2_real) == ["type", "id", "geometry", "properties"]
    assert list(s2["properties"]) == list(s2_real["properties"])
    assert list(s1["properties"]) == list(s1_real["properties"])
    for real, mine in ((s2_real, s2), (s1_real, s1)):
        for key in ("services", "centroid", "license"):
            assert list(mine["properties"][key]) == list(real["properties"][key])
        assert list(mine["properties"]["links"][0]) == list(real["properties"]["links"][0])
    p = s2["properties"]
    assert DATE.match(p["startDate"]) and p["completionDate"] == p["startDate"]
    assert p["productType"] == p["processingLevel"] == "S2MSI2A" and p["platform"] == "S2A"
    assert p["title"].endswith(".SAFE") and p["productIdentifier"].startswith(
        "/eodata/Sentinel-2/MSI/L2A/"
    )
    assert isinstance(p["processingBaseline"], float) and p["orbitDirection"] is None
    assert p["services"]["download"]["url"] == f"https://resto.test/download/{s2['id']}"
    assert p["gmlgeometry"].startswith('<gml:Polygon srsName="EPSG:4326">')
    q = s1["properties"]
    assert (q["productType"], q["polarisation"], q["sensorMode"]) == ("IW_GRDH_1S", "VV&VH", "IW")
    assert q["startDate"] == "2021-10-20T05:17:23.000000Z"
    assert q["completionDate"] == "2021-10-20T05:17:48.000000Z"
    assert q["orbitDirection"] == "DESCENDING" and q["orbitNumber"] == 40183
    assert q["services"]["download"]["size"] == 1_700_000_000


async def test_describe_document_and_single_features() -> None:
    real = ET.fromstring((FIXTURES / "cdsetool__cdse-resto-describe__01_describe.xml").read_bytes())
    async with resto() as client:
        response = await client.get("/collections/Sentinel1/describe.xml")
        body = await search(client, "Sentinel1")
        own = body["features"][0]["properties"]["links"][0]["href"]
        single = await client.get(own.removeprefix("https://resto.test"))
        missing = await client.get(
            "/collections/SENTINEL-2/00000000-0000-0000-0000-000000000000.json"
        )
    assert response.headers["content-type"].startswith("application/opensearchdescription+xml")
    mine = ET.fromstring(response.content)
    assert mine.tag == real.tag
    template = mine.find("{http://a9.com/-/spec/opensearch/1.1/}Url").get("template")  # type: ignore[union-attr]
    assert template.startswith("https://resto.test/collections/Sentinel1/search.json?")
    assert "startDate={time:start?}" in template and "box={geo:box?}" in template
    assert single.json() == body["features"][0]
    assert missing.status_code == 404 and missing.json() == {
        "ErrorMessage": "Not Found",
        "ErrorCode": 404,
    }


# --- search semantics --------------------------------------------------------------------------
async def test_dates_bound_the_start_of_a_product() -> None:
    grd = s1_item()
    async with resto([grd]) as client:
        inside = await search(client, "Sentinel1", startDate="2021-10-20T05:17:23Z")
        after_start = await search(client, "Sentinel1", startDate="2021-10-20T05:17:30Z")
        before_end = await search(client, "Sentinel1", completionDate="2021-10-20T05:17:30Z")
        day = await search(client, "Sentinel1", startDate="2021-10-20", completionDate="2021-10-21")
    assert titles(inside) == titles(before_end) == titles(day) == [S1_GRD]
    assert titles(after_start) == []  # the product still runs then: resto does not overlap


async def test_areas_intersect_footprints() -> None:
    async with resto() as client:
        east = await search(client, box="16.4,49.6,16.6,49.7", maxRecords=100)
        west = await search(client, box="13.0,49.6,13.7,49.7", maxRecords=100)
        wkt = await search(client, geometry="POINT (15.05 50)", maxRecords=100)
        around = await search(client, box="170,0,-170,10", maxRecords=100)
    assert {t.split("_")[5] for t in titles(east)} == {"T33UXQ"}
    assert {t.split("_")[5] for t in titles(west)} == {"T33UWQ"}
    assert len(titles(wkt)) == 12  # on the overlap of both tiles
    assert titles(around) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("[0,20]", {0, 10, 20}), ("]0,20[", {10}), ("[40", {40, 50}), ("20[", {0, 10}), ("50", {50})],
)
async def test_numeric_intervals(value: str, expected: set[float]) -> None:
    cloud = {f"{n}": float(n) for n in range(0, 60, 10)}
    items = [
        s2_item(s2_name(BASE_TIME - timedelta(days=i)), BASE_TIME - timedelta(days=i), cloud=c)
        for i, c in enumerate(cloud.values())
    ]
    async with resto(items) as client:
        body = await search(client, cloudCover=value, maxRecords=100)
    assert {f["properties"]["cloudCover"] for f in body["features"]} == expected


async def test_product_types_terms_and_like_patterns() -> None:
    name = S2[0]["id"]
    async with resto() as client:
        l2a = await search(client, productType="L2A", maxRecords=100)
        exact = await search(client, productType="S2MSI2A", maxRecords=100)
        l1c = await search(client, productType="S2MSI1C", maxRecords=100)
        grd = await search(client, "Sentinel1", productType="GRD")
        like = await search(client, productIdentifier=f"%{name}%")
        either = await search(client, productIdentifier=f"%{name}%|%{S2[1]['id']}%")
        wild = await search(client, productIdentifier=f"%{name[:-1]}_%")
        literal = await search(client, productIdentifier=name)
        direction = await search(client, "Sentinel1", orbitDirection="DESCENDING")
        lower = await search(client, "Sentinel1", orbitDirection="descending")
        short = await client.get("/collections/Sentinel2/search.json?productIdentifier=S2%")
    assert len(titles(l2a)) == len(titles(exact)) == 12 and titles(l1c) == []
    assert titles(grd) == [S1_GRD] == titles(direction)
    assert titles(like) == titles(wild) == [name] and titles(literal) == []
    assert sorted(titles(either)) == sorted([name, S2[1]["id"]])
    assert titles(lower) == []  # most queries are case-sensitive
    assert short.status_code == 400
    assert short.json()["ErrorMessage"] == "% is only allowed for string with 3+ characters"


async def test_ordering_and_paging() -> None:
    async with resto() as client:
        index = await search(client, maxRecords=100)
        newest = await search(client, sortParam="startDate", sortOrder="descending", maxRecords=100)
        oldest = await search(client, sortParam="startDate", sortOrder="ascending", maxRecords=100)
        by_index = await search(client, sortParam="startDate", maxRecords=3, index=4)
        page = await search(client, sortParam="startDate", maxRecords=3, page=2)
    starts = [f["properties"]["startDate"] for f in newest["features"]]
    assert starts == sorted(starts, reverse=True)
    assert [f["properties"]["startDate"] for f in oldest["features"]] == sorted(starts)
    assert [f["id"] for f in index["features"]] == sorted(f["id"] for f in index["features"])
    assert titles(by_index) == titles(page) == titles(newest)[3:6]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("maxRecords=2001", "Invalid maxRecords: 2001"),
        ("maxRecords=x", "Invalid maxRecords: x"),
        ("page=0", "Invalid page: 0"),
        ("startDate=yesterday", "Invalid startDate: yesterday"),
        ("cloudCover=[1,", "Invalid cloudCover: [1,"),
        ("geometry=POLYGON((1 2", "Invalid geometry"),
        ("box=1,2,3", "Invalid box"),
        ("sortParam=cloudCover", "Invalid sortParam: cloudCover"),
        ("sortParam=startDate&sortOrder=up", "Invalid sortOrder: up"),
    ],
)
async def test_invalid_parameters_are_resto_errors(query: str, message: str) -> None:
    async with resto() as client:
        response = await client.get(f"/collections/Sentinel2/search.json?{query}")
    assert response.status_code == 400
    assert response.json() == {"ErrorMessage": message, "ErrorCode": 400}


async def test_collections_counters_and_sources() -> None:
    async with resto() as client:
        every = await client.get("/collections/search.json", params={"maxRecords": 100})
        unknown = await client.get("/collections/Sentinel3/search.json")
        await search(client, "SENTINEL-2", cloudCover="[0,10]")
        app = client.app
    assert len(every.json()["features"]) == 13 and unknown.status_code == 404
    assert app.state.requests == 3
    assert app.state.queries[-1] == {"cloudCover": "[0,10]", "collection": "SENTINEL-2"}


async def test_items_come_from_files_and_unknown_products_are_refused(tmp_path: Path) -> None:
    items = generate_catalogue()["grnet"][:20]
    paths = write_catalogue(tmp_path, {"a": items})
    (tmp_path / "list.json").write_bytes(orjson.dumps(items))
    for source in (paths["a"], str(tmp_path / "list.json")):
        app = create_emulator(source)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="https://r.test") as client:
            body = (await client.get("/collections/search.json?maxRecords=100")).json()
        assert sorted(titles(body)) == sorted(i["id"] for i in items)
    with pytest.raises(ValueError, match="not a Sentinel-1/2 product name"):
        create_emulator([s2_item("LC08_L2SP_199024_20220117", BASE_TIME)])
