"""The Terrascope emulator against the recorded answers in ``fixtures/terrascope``.

Structure tests seed the emulator with the items the adapter reads from a recording, send
the recorded request and compare the answer with the recorded one (envelope, echoed query,
links, feature layout). The others check selection, ordering, paging and errors on known
catalogues.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import yaml
from factories import BASE_TIME, s2_item, s2_name, series

from adapters.terrascope.collections import DEFAULT_COLLECTIONS
from adapters.terrascope.emulator import create_emulator
from adapters.terrascope.items import to_hit
from adapters.terrascope.mapping import parse_page

FIXTURES = Path(__file__).parent / "fixtures" / "terrascope"
HOST = "https://terrascope.test/"
REAL_ROOT = "https://services.terrascope.be/catalogue/"
PORTUGAL = "openeo-geotrellis__opensearch_result_portugal__01_products"
ISSUE6 = "openeo-opensearch-client__oscarsIssue6__01_products"
EMPTY = "openeo-opensearch-client__oscarsNoProductsResponse__01_products"
COLLECTIONS = "openeo-opensearch-client__oscarsCollectionsResponse__01_collections"
L2A_URN = "urn:eop:VITO:SENTINEL_2_L2A"


def recorded(name: str) -> Any:
    return orjson.loads((FIXTURES / f"{name}.json").read_bytes())


def recorded_request(name: str) -> str:
    """The recorded request's path and query, relative to the catalogue root."""
    sidecar = yaml.safe_load((FIXTURES / f"{name}.request.txt").read_text())
    url = urlsplit(sidecar["url"])
    return f"{url.path.removeprefix('/catalogue')}?{url.query}"


def items_of(name: str, cid: str) -> list[dict[str, Any]]:
    """The STAC items the adapter makes of a recorded answer."""
    spec = DEFAULT_COLLECTIONS[cid]
    hits = [to_hit(f, cid, spec) for f in parse_page(recorded(name)).features]
    return [h.item for h in hits if h is not None]


@asynccontextmanager
async def catalogue(items: list[dict[str, Any]], **options: Any) -> AsyncIterator[Any]:
    app = create_emulator(items, **options)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=HOST) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def products(client: Any, **params: Any) -> dict[str, Any]:
    response = await client.get("/products", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    body: dict[str, Any] = response.json()
    return body


def local(href: str) -> str:
    return href.replace(REAL_ROOT, HOST)


def file_names(links: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Each group's file names (a preview service URL is kept whole)."""
    return {g: [f["href"].rsplit("/", 1)[-1] for f in fs] for g, fs in links.items()}


def without_hrefs(links: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {g: [{k: v for k, v in f.items() if k != "href"} for f in fs] for g, fs in links.items()}


# --- the recorded answers ------------------------------------------------------------------
@pytest.mark.parametrize("name", [PORTUGAL, ISSUE6])
async def test_a_recorded_request_gets_the_recorded_answer(name: str) -> None:
    real = recorded(name)
    async with catalogue(items_of(name, "terrascope-s2-toc-v2")) as client:
        response = await client.get(recorded_request(name))
    body = response.json()
    assert list(body) == list(real)
    assert body["id"] == local(real["id"])
    for key in ("@context", "type", "totalResults", "startIndex", "itemsPerPage", "queries"):
        assert body[key] == real[key], key
    props, real_props = body["properties"], real["properties"]
    assert list(props) == list(real_props)
    assert {k: v for k, v in props.items() if k not in ("updated", "links")} == {
        k: v for k, v in real_props.items() if k not in ("updated", "links")
    }
    assert props["links"] == {
        rel: [{**link, "href": local(link["href"])} for link in links]
        for rel, links in real_props["links"].items()
    }
    datetime.strptime(props["updated"], "%Y-%m-%dT%H:%M:%SZ")
    for mine, theirs in zip(body["features"], real["features"], strict=True):
        assert list(mine) == ["type", "id", "geometry", "bbox", "properties"]
        assert set(mine) == set(theirs)
        assert {k: mine[k] for k in ("id", "geometry", "bbox")} == {
            k: theirs[k] for k in ("id", "geometry", "bbox")
        }
        p, q = mine["properties"], theirs["properties"]
        assert set(p) == set(q)
        assert {k: v for k, v in p.items() if k != "links"} == {
            k: v for k, v in q.items() if k != "links"
        }
        assert without_hrefs(p["links"]) == without_hrefs(q["links"])
        assert file_names(p["links"]) == file_names(q["links"])


async def test_accessed_from_mep_gives_file_paths_else_downloads_that_answer() -> None:
    items = items_of(PORTUGAL, "terrascope-s2-toc-v2")
    async with catalogue(items) as client:
        mep = await products(
            client, collection=DEFAULT_COLLECTIONS["terrascope-s2-toc-v2"].urn, accessedFrom="MEP"
        )
        web = await products(client, collection=DEFAULT_COLLECTIONS["terrascope-s2-toc-v2"].urn)
        data = web["features"][0]["properties"]["links"]["data"][0]
        head = await client.head(data["href"])
        missing = await client.head(data["href"] + "x")
    assert mep["features"][0]["properties"]["links"]["data"][0]["href"].startswith(
        "file:///data/MTDA/TERRASCOPE_S2_TOC_V2/2022/02/11/"
    )
    assert data["href"].startswith(f"{HOST}download/TERRASCOPE_S2_TOC_V2/2022/02/11/")
    assert head.status_code == 200 and head.headers["content-length"] == str(data["length"])
    assert head.headers["content-type"] == data["type"]
    assert missing.status_code == 404


async def test_a_page_past_the_end_is_empty_with_the_recorded_links() -> None:
    real = recorded(EMPTY)
    start = datetime(2019, 10, 3, 10, 30, tzinfo=UTC)
    items = []
    for n in range(404):  # 404 products in the recorded bbox and interval
        when = start + timedelta(hours=5 * n)
        item = s2_item(
            f"S2A_{when:%Y%m%dT%H%M%S}Z_31UFS_FAPAR_10M_V102_{n:03d}",
            when,
            collection="terrascope-s2-fapar-v2",
            bbox=(3.0, 50.8, 4.0, 51.3),
        )
        items.append(item)
    async with catalogue(items) as client:
        body = (await client.get(recorded_request(EMPTY))).json()
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (404, 405, 0)
    assert body["features"] == real["features"] == []
    # The same echo, but for accessedFrom: the 2020 service did not echo it, the 2023 one does.
    (echo,) = body["queries"]["request"]
    assert echo.pop("referrer:accessedFrom") == "MEP"
    assert body["queries"] == real["queries"]
    links, real_links = body["properties"]["links"], real["properties"]["links"]
    assert list(links) == list(real_links) == ["previous", "last", "first", "search", "profiles"]
    for rel in ("previous", "last", "first"):  # last at totalResults - count: the quirk
        assert links[rel][0]["href"] == local(real_links[rel][0]["href"])


async def test_the_collections_answer_has_the_recorded_envelope() -> None:
    real = recorded(COLLECTIONS)
    async with catalogue(series(3) + items_of(PORTUGAL, "terrascope-s2-toc-v2")) as client:
        body = (await client.get("/collections")).json()
    assert list(body) == list(real)
    assert body["queries"] == real["queries"] and body["id"] == f"{HOST}collections"
    assert list(body["properties"]) == list(real["properties"])
    assert [f["id"] for f in body["features"]] == [L2A_URN, "urn:eop:VITO:TERRASCOPE_S2_TOC_V2"]
    real_feature = real["features"][0]
    for feature in body["features"]:
        assert list(feature) == list(real_feature)
        assert set(feature["properties"]) <= set(real_feature["properties"])
        assert feature["properties"]["date"].endswith("/")
    boxes = [f["bbox"] for f in recorded(f"{PORTUGAL}")["features"]]
    expected = [min(b[0] for b in boxes), min(b[1] for b in boxes)]
    expected += [max(b[2] for b in boxes), max(b[3] for b in boxes)]
    assert body["features"][1]["bbox"] == pytest.approx(expected)


# --- selection -----------------------------------------------------------------------------
def s1_item(begin: datetime, seconds: int, name: str) -> dict[str, Any]:
    stamp = begin.strftime("%Y%m%dT%H%M%S")
    stop = (begin + timedelta(seconds=seconds)).strftime("%Y%m%dT%H%M%S")
    item = s2_item(
        f"S1A_IW_GRDH_1SDV_{stamp}_{stop}_040183_04B6F1_{name}", begin, collection="sentinel-1-grd"
    )
    props = item["properties"]
    props["start_datetime"] = props["datetime"]
    props["end_datetime"] = (begin + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    props |= {"sat:orbit_state": "ascending", "sat:relative_orbit": 146, "platform": "sentinel-1a"}
    return item


T = datetime(2021, 10, 20, 5, 17, 0, tzinfo=UTC)
S1 = [s1_item(T, 30, "AAAA"), s1_item(T + timedelta(minutes=1), 30, "BBBB")]
GRD = DEFAULT_COLLECTIONS["sentinel-1-grd"].urn


def titles(body: dict[str, Any]) -> list[str]:
    return [f["properties"]["title"][-4:] for f in body["features"]]


@pytest.mark.parametrize(
    ("start", "end", "during", "intersects", "date"),
    [
        pytest.param("05:16:00", "05:19:00", ["AAAA", "BBBB"], ["AAAA", "BBBB"], ["AAAA", "BBBB"]),
        pytest.param("05:17:10", "05:19:00", ["BBBB"], ["AAAA", "BBBB"], ["BBBB"], id="mid-first"),
        pytest.param("05:16:00", "05:18:10", ["AAAA"], ["AAAA", "BBBB"], ["AAAA", "BBBB"]),
        pytest.param("05:17:10", "05:17:20", [], ["AAAA"], [], id="inside-first"),
        pytest.param("05:18:30.5", "05:18:30.9", [], ["BBBB"], [], id="truncated"),
    ],
)
async def test_time_relations(
    start: str, end: str, during: list[str], intersects: list[str], date: list[str]
) -> None:
    for relation, expected in (("during", during), ("intersects", intersects), ("date", date)):
        async with catalogue(S1, time_relation=relation) as client:
            body = await products(
                client,
                collection=GRD,
                start=f"2021-10-20T{start}Z",
                end=f"2021-10-20T{end}Z",
                sortKeys="start",
            )
        assert titles(body) == expected, relation


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"cloudCover": "[10,30]"}, [10.0, 20.0, 30.0], id="cloud-inclusive"),
        pytest.param({"cloudCover": "20"}, [20.0], id="cloud-number"),
        pytest.param({"tileId": "33UVQ"}, None, id="tile"),
        pytest.param({"bbox": "13.0,49.0,13.5,49.6"}, None, id="bbox"),
        pytest.param({"geometry": "POINT (13.3 49.7)"}, None, id="geometry"),
    ],
)
async def test_filters(params: dict[str, str], expected: list[float] | None) -> None:
    items = series(7, tiles=("33UXQ", "33UVQ"))
    for item in items:
        item["properties"]["grid:code"] = f"MGRS-{item['id'].split('_')[5][1:]}"
    async with catalogue(items) as client:
        body = await products(client, collection=L2A_URN, count=100, **params)
    found = body["features"]
    if expected is not None:
        clouds = sorted({f["properties"]["productInformation"]["cloudCover"] for f in found})
        assert clouds == expected
    else:
        tiles = {
            f["properties"]["acquisitionInformation"][0]["acquisitionParameters"]["tileId"]
            for f in found
        }
        assert tiles == {"33UVQ"} and len(found) == 7
    assert body["totalResults"] == len(found)


async def test_orbit_title_and_uid_select_exactly() -> None:
    async with catalogue(S1) as client:
        by_direction = await products(client, collection=GRD, orbitDirection="ascending")
        by_other = await products(client, collection=GRD, orbitDirection="DESCENDING")
        by_orbit = await products(client, collection=GRD, relativeOrbitNumber="146")
        name = S1[0]["id"]
        by_title = await products(client, collection=GRD, title=name)
        by_prefix = await products(client, collection=GRD, title=name[:20])
        by_uid = await products(client, collection=GRD, uid=f"{GRD}:{name}")
    assert len(by_direction["features"]) == 2 and by_other["features"] == []
    assert len(by_orbit["features"]) == 2
    assert titles(by_title) == ["AAAA"] and by_prefix["features"] == []
    assert titles(by_uid) == ["AAAA"]


async def test_pages_cover_every_product_once_in_start_order_with_next_links() -> None:
    items = series(5, tiles=("33UXQ", "33UWQ", "33UVQ"))  # 15 products, 3 per datatake
    async with catalogue(items) as client:
        seen: list[dict[str, Any]] = []
        index = 1
        while True:
            body = await products(
                client, collection=L2A_URN, sortKeys="start,,0", count=4, startIndex=index
            )
            seen += body["features"]
            links = body["properties"]["links"]
            if "next" not in links:
                break
            index = int(links["next"][0]["href"].rsplit("startIndex=", 1)[1])
            assert index == body["startIndex"] + 4
        again = await products(client, collection=L2A_URN, sortKeys="start,,0", count=15)
        ascending = await products(client, collection=L2A_URN, sortKeys="start,,1", count=15)
    assert [f["id"] for f in seen] == [f["id"] for f in again["features"]]
    assert len({f["id"] for f in seen}) == 15
    dates = [f["properties"]["date"] for f in seen]
    assert dates == sorted(dates, reverse=True)
    assert [f["properties"]["date"] for f in ascending["features"]] == sorted(dates)
    assert again["queries"]["request"][0]["sru:sortKeys"] == "start,,0,0,highValue"


async def test_ties_come_in_the_index_order_not_by_title() -> None:
    when = BASE_TIME
    tiles = [f"{n:02d}UXQ" for n in range(10, 22)]
    items = [s2_item(s2_name(when, t), when, bbox=(15, 49, 16, 50)) for t in tiles]
    async with catalogue(items) as client:
        first = await products(client, collection=L2A_URN, sortKeys="start,,0")
        second = await products(client, collection=L2A_URN, sortKeys="start,,0")
    order = [f["properties"]["title"] for f in first["features"]]
    assert order == [f["properties"]["title"] for f in second["features"]]  # stable
    assert order != sorted(order) and order != sorted(order, reverse=True)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({}, "collection parameter is mandatory", id="no-collection"),
        pytest.param({"collection": GRD, "bbox": "1,2,3"}, "invalid bbox", id="bbox"),
        pytest.param({"collection": GRD, "sortKeys": "colour,,0"}, "invalid sortKeys", id="sort"),
        pytest.param({"collection": GRD, "count": "1001"}, "count within", id="count"),
        pytest.param({"collection": GRD, "startIndex": "0"}, "startIndex", id="start-index"),
        pytest.param({"collection": GRD, "start": "soon"}, "invalid date", id="date"),
        pytest.param({"collection": GRD, "cloudCover": "[a,b]"}, "cloudCover", id="cloud"),
        pytest.param(
            {"collection": GRD, "startIndex": "9950", "count": "100"}, "Result window", id="window"
        ),
    ],
)
async def test_invalid_requests_are_400(params: dict[str, str], message: str) -> None:
    async with catalogue(S1) as client:
        response = await client.get("/products", params=params)
        assert client.app.state.queries[-1] == params
        assert client.app.state.requests == 1
    assert response.status_code == 400 and message in response.text


async def test_an_unknown_collection_is_empty_and_sources_may_be_files(tmp_path: Path) -> None:
    listing = tmp_path / "items.json"
    listing.write_bytes(orjson.dumps(S1))
    collection = tmp_path / "items.geojson"
    collection.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": S1}))
    for source in (listing, str(collection)):
        async with catalogue(source) as client:  # type: ignore[arg-type]
            assert len((await products(client, collection=GRD))["features"]) == 2
            empty = await products(client, collection="urn:eop:VITO:NOTHING")
            assert empty["totalResults"] == 0 and empty["itemsPerPage"] == 0
    async with catalogue(S1, collections={"sentinel-1-grd": "urn:eop:VITO:MY_GRD"}) as client:
        assert (await products(client, collection="urn:eop:VITO:MY_GRD"))["totalResults"] == 2
