"""The DHuS emulator against the recorded DHuS answers in ``fixtures/dhus`` and DHuS semantics.

Structure tests compare the emulator's answers with the real recordings (keys, key order,
nesting, string-typed values, the single-result and empty-feed quirks); the others check the
Solr and OData query languages, paging, ordering, nodes and downloads on known catalogues.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from factories import BASE_TIME, as_earth_search, s2_item, s2_name, series

from adapters.dhus.emulator import create_emulator
from mqs.demodata import generate_catalogue, write_catalogue

FIXTURES = Path(__file__).parent / "fixtures" / "dhus"
S1_GRD = "S1A_IW_GRDH_1SDV_20211020T051723_20211020T051748_040183_04B6F1_1A2B"
S1_SLC = "S1B_IW_SLC__1SDH_20211021T165012_20211021T165039_029228_037CF1_9F3E"
ATOM = "{http://www.w3.org/2005/Atom}"
XFDU = "{urn:ccsds:schema:xfdu:1}"
S2_NAMES = [i["id"] for i in series(6, tiles=("33UXQ", "33UWQ"))]
CLOUD = {i["id"]: i["properties"]["eo:cloud_cover"] for i in series(6, tiles=("33UXQ", "33UWQ"))}


def recorded(pattern: str) -> Any:
    """The recorded JSON body whose path below ``fixtures/dhus`` matches ``pattern``."""
    return json.loads(fixture(pattern).read_bytes())


def fixture(pattern: str) -> Path:
    (path,) = FIXTURES.glob(pattern)
    return path


def sidecar(name: str, folder: str = "") -> dict[str, Any]:
    """The recorded request, status and headers of a body file (its ``.request.txt``)."""
    data: dict[str, Any] = yaml.safe_load((FIXTURES / folder / name).read_text())
    return data


def s1_item(name: str, bbox: tuple[float, float, float, float], **props: Any) -> dict[str, Any]:
    """A Sentinel-1 item with only what a minimal archive serves (plus ``props``)."""
    west, south, east, north = bbox
    begin = datetime.strptime(name[17:32], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    when = begin.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": name,
        "collection": f"sentinel-1-{name[7:10].lower()}",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": list(bbox),
        "properties": {"datetime": when, "platform": f"sentinel-1{name[2].lower()}", **props},
        "links": [],
        "assets": {},
    }


def catalogue() -> list[dict[str, Any]]:
    """12 S2 L2A items (6 datatakes x 2 tiles), a descending S1 GRD over Czechia and an S1 SLC
    over Spain (polarisations from its name only)."""
    grd = s1_item(S1_GRD, (14.0, 49.0, 17.0, 51.0), **{"sat:orbit_state": "descending"}) | {
        "assets": {"product": {"href": "x", "file:size": 1_700_000_000}}
    }
    slc = s1_item(S1_SLC, (-5.0, 40.0, -2.0, 42.0), **{"sat:orbit_state": "ascending"})
    return [*series(6, tiles=("33UXQ", "33UWQ")), grd, slc]


@asynccontextmanager
async def hub(items: list[dict[str, Any]] | None = None, **options: Any) -> AsyncIterator[Any]:
    app = create_emulator(catalogue() if items is None else items, **options)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="https://hub.test") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def search(client: Any, q: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/search", params={"q": q, "format": "json", **params})
    assert response.status_code == 200
    feed: dict[str, Any] = response.json()["feed"]
    return feed


def entries(feed: dict[str, Any]) -> list[dict[str, Any]]:
    entry = feed.get("entry", [])
    return entry if isinstance(entry, list) else [entry]


def names(feed: dict[str, Any]) -> list[str]:
    return [e["title"] for e in entries(feed)]


def group_names(entry: dict[str, Any]) -> dict[str, list[str]]:
    out = {}
    for group in ("date", "int", "double", "str"):
        if group in entry:
            values = entry[group] if isinstance(entry[group], list) else [entry[group]]
            out[group] = [v["name"] for v in values]
    return out


# --- OpenSearch envelopes against the recordings -------------------------------------------------
async def test_paged_feed_envelope_is_the_recorded_one() -> None:
    real = recorded("opensearch/sentinelsat-2023__node_test_products__01_search.json")["feed"]
    async with hub() as client:
        feed = await search(client, "platformname:Sentinel-2", rows=3)
    assert list(feed) == list(real)
    assert list(feed["opensearch:Query"]) == list(real["opensearch:Query"])
    assert [link["rel"] for link in feed["link"]] == [link["rel"] for link in real["link"]]
    assert [list(link) for link in feed["link"]] == [list(link) for link in real["link"]]
    assert all(
        isinstance(feed[k], str) for k in feed if k.startswith("opensearch:") and "Q" not in k
    )
    assert feed["opensearch:totalResults"] == "12" and feed["opensearch:itemsPerPage"] == "3"
    assert re.fullmatch(
        r"Displaying 0 to 2 of 12 total results\. Request done in [\d.]+ seconds\.",
        feed["subtitle"],
    )
    assert feed["link"][0]["href"] == (
        "https://hub.test/search?q=platformname:Sentinel-2&start=0&rows=3&format=json"
    )
    assert feed["link"][3]["href"].endswith("&start=11&rows=3&format=json")  # last = total - 1
    assert (
        feed["title"] == "Sentinels Scientific Data Hub search results for: platformname:Sentinel-2"
    )


async def test_s1_entry_is_shaped_like_the_recorded_grd_entry() -> None:
    real = recorded("opensearch/sentinelsat-2023__node_test_products__01_search.json")
    real_entry = real["feed"]["entry"][0]
    async with hub() as client:
        feed = await search(client, f"identifier:{S1_GRD}")
    entry = feed["entry"]
    assert isinstance(entry, dict)  # one result: an object, not a list
    assert list(entry) == list(real_entry)
    assert group_names(entry) == group_names(real_entry)
    assert [list(link) for link in entry["link"]] == [list(link) for link in real_entry["link"]]
    uuid = entry["id"]
    assert entry["link"][0]["href"] == f"https://hub.test/odata/v1/Products('{uuid}')/$value"
    contents = {v["name"]: v["content"] for g in ("date", "int", "str") for v in entry[g]}
    assert all(isinstance(v, str) for v in contents.values())
    assert contents["polarisationmode"] == "VV VH" and contents["orbitnumber"] == "40183"
    assert contents["relativeorbitnumber"] == "36" and contents["orbitdirection"] == "DESCENDING"
    assert contents["missiondatatakeid"] == str(0x04B6F1) and contents["size"] == "1.58 GB"
    assert contents["beginposition"] == "2021-10-20T05:17:23Z"  # Solr drops zero milliseconds
    assert contents["footprint"] == (
        "POLYGON ((14.000000 49.000000,17.000000 49.000000,17.000000 51.000000,"
        "14.000000 51.000000,14.000000 49.000000))"
    )
    assert "<gml:coordinates>49.000000,14.000000 49.000000,17.000000" in contents["gmlfootprint"]
    assert entry["summary"] == (
        "Date: 2021-10-20T05:17:23Z, Instrument: SAR-C SAR, Mode: VV VH, Satellite: Sentinel-1, "
        "Size: 1.58 GB"
    )


@pytest.mark.parametrize(
    ("level", "fixture", "index"),
    [
        pytest.param("L1C", "sentinelsat-2023__test_large_query__01_search.json", 0, id="l1c"),
        pytest.param("L2A", "sentinelsat-2023__test_s2_cloudcover__01_search.json", 1, id="l2a"),
    ],
)
async def test_s2_entries_have_the_recorded_fields_in_order(
    level: str, fixture: str, index: int
) -> None:
    real_entry = recorded(f"opensearch/{fixture}")["feed"]["entry"][index]
    assert real_entry["title"][4:10] == f"MSI{level}"
    name = s2_name(BASE_TIME, level=level)
    async with hub([s2_item(name, BASE_TIME, cloud=3.6476)]) as client:
        entry = (await search(client, "*"))["entry"]
    assert list(entry) == list(real_entry)
    expected = group_names(real_entry)
    if level == "L2A":  # the item has no scene-classification shares: cloud cover only
        expected["double"] = ["cloudcoverpercentage"]
    assert group_names(entry) == expected
    # a type group with a single element is an object, as recorded for L1C
    assert isinstance(entry["double"], dict)
    assert entry["double"] == {"name": "cloudcoverpercentage", "content": "3.6476"}
    assert entry["summary"] == (
        "Date: 2021-10-24T09:51:01.024Z, Instrument: MSI, Satellite: Sentinel-2, "
        f"Size: {next(v['content'] for v in entry['str'] if v['name'] == 'size')}"
    )


async def test_empty_feed_has_no_entry_like_the_recording() -> None:
    real = recorded("opensearch/sentinelsat-2023__test_SentinelAPI_connection__01_search.json")
    real_feed = real["feed"]
    query = real_feed["opensearch:Query"]["searchTerms"]
    async with hub() as client:
        feed = await search(client, query, rows=100, start=0)
    assert list(feed) == list(real_feed) and "entry" not in feed
    recorded_root = "https://apihub.copernicus.eu/apihub/"
    for key in ("title", "id", "opensearch:totalResults", "opensearch:itemsPerPage"):
        assert feed[key] == real_feed[key].replace(recorded_root, "https://hub.test/")
    assert feed["link"] == [
        link | {"href": link["href"].replace(recorded_root, "https://hub.test/")}
        for link in real_feed["link"]
    ]  # self and first at start=0, last at start=-1 (total - 1)
    assert feed["subtitle"].startswith("Displaying 0 results. Request done in ")


@pytest.mark.parametrize(
    ("query", "fixture"),
    [
        pytest.param("xxx:yyy", "sentinelsat-2023__test_invalid_query__01_search.json", id="field"),
        pytest.param(
            "õäöüÿ(", "sentinelsat-2023__test_unicode_support__01_search.json", id="syntax"
        ),
    ],
)
async def test_query_errors_are_the_recorded_envelopes(query: str, fixture: str) -> None:
    real = recorded(f"opensearch/{fixture}")
    async with hub() as client:
        response = await client.get("/search", params={"q": query, "format": "json", "rows": 0})
    assert response.status_code == 200  # DHuS reports query errors inside a 200 feed
    assert response.headers["content-type"] == "application/json"
    assert response.json() == real


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param("producttype:(GRD", "Cannot parse 'producttype:(GRD'", id="unbalanced"),
        pytest.param('identifier:"open', "Cannot parse", id="open-quote"),
        pytest.param(
            "beginposition:[yesterday TO NOW]", "Invalid Date String:'yesterday'", id="date"
        ),
        pytest.param("FOO:1", "undefined field foo", id="field-case"),
        pytest.param(
            'footprint:"Intersects(POLYGON((0 0,1 1)))"', "Unable to parse shape", id="wkt"
        ),
    ],
)
async def test_invalid_queries_name_the_problem(query: str, message: str) -> None:
    async with hub() as client:
        feed = await search(client, query)
    assert set(feed) == {"xmlns:opensearch", "xmlns", "error"}
    assert feed["error"]["code"] == "400" and message in feed["error"]["message"]


async def test_rows_above_the_maximum_is_the_dhus_500() -> None:
    async with hub(max_rows=5) as client:
        response = await client.get("/search", params={"q": "*", "rows": 6})
    assert response.status_code == 500
    assert "parameter `rows` exceeds the maximum value (5)" in response.text
    assert response.headers["cause-message"].startswith("IllegalArgumentException")


# --- Solr semantics ------------------------------------------------------------------------------
def xq(name: str) -> bool:
    return "T33UXQ" in name


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("platformname:Sentinel-1", [S1_GRD, S1_SLC]),
        ("platformName:sentinel-2", S2_NAMES),  # field names and text values: any case
        ("cloudcoverpercentage:[0 TO 20]", [n for n in S2_NAMES if CLOUD[n] <= 20]),
        ('cloudcoverpercentage:{"0" TO "20"}', [n for n in S2_NAMES if CLOUD[n] == 10]),
        ("cloudcoverpercentage:[30 TO *]", [n for n in S2_NAMES if CLOUD[n] >= 30]),
        ("beginPosition:[2021-10-22T09:51:01.024Z TO 2021-10-24T09:51:01.024Z]", S2_NAMES[:6]),
        ('beginposition:{"2021-10-22T09:51:01.024Z" TO 2021-10-24T09:51:01.024Z}', S2_NAMES[2:4]),
        (
            "beginposition:[NOW-100YEARS TO NOW] AND endposition:[* TO 2021-10-21T00:00:00Z]",
            [n for n in S2_NAMES if n[11:19] <= "20211020"] + [S1_GRD],
        ),
        ("ingestiondate:[2021-10-24T00:00:00Z/DAY+12HOURS TO *]", S2_NAMES[:2]),
        (r"identifier:S2A\_MSIL2A\_*T33UXQ*", [n for n in S2_NAMES if xq(n)]),
        ("filename:*IW_GRDH*", [S1_GRD]),
        ("identifier:S1?_IW*", [S1_GRD, S1_SLC]),
        ("identifier:s1a_iw*", []),  # identifiers are exact, case included
        (
            'identifier:"' + S1_GRD.replace("_", "\\_") + '"',  # escapes inside quotes
            [S1_GRD],
        ),
        (r'identifier:"a\"b" OR producttype:SLC', [S1_SLC]),  # \" does not end the phrase
        ("polarisationmode:VH", [S1_GRD]),
        ('polarisationmode:"HH HV"', [S1_SLC]),
        (
            "platformname:Sentinel-2 AND NOT (cloudcoverpercentage:0 OR cloudcoverpercentage:10)",
            [n for n in S2_NAMES if CLOUD[n] >= 20],
        ),
        ("-identifier:*T33UXQ* platformname:Sentinel-2", [n for n in S2_NAMES if not xq(n)]),
        ("+producttype:S2MSI2A +identifier:*T33UWQ*", [n for n in S2_NAMES if not xq(n)]),
        ("(producttype:GRD OR producttype:SLC) AND orbitdirection:descending", [S1_GRD]),
        ("producttype:(GRD OR SLC) sensoroperationalmode:IW swathidentifier:IW2", [S1_SLC]),
        ("orbitnumber:40183 relativeorbitnumber:36", [S1_GRD]),
        ("tileid:33UXQ", []),  # L2A records do not index the tile, as recorded
        (
            'footprint:"Intersects(POLYGON((15.9 49.9,16.1 49.9,16.1 50.1,15.9 50.1,15.9 49.9)))"',
            [*[n for n in S2_NAMES if xq(n)], S1_GRD],
        ),
        (
            'footprint:"Intersects(MULTIPOLYGON(((13.7 49.7,13.8 49.7,13.8 49.8,13.7 49.7)),'
            '((-3 41,-2.9 41,-2.9 41.1,-3 41))))"',
            [*[n for n in S2_NAMES if not xq(n)], S1_SLC],
        ),
        (
            'footprint:"Intersects(ENVELOPE(13.7, 13.9, 50.2, 49.8))"',
            [n for n in S2_NAMES if not xq(n)],
        ),
        ('footprint:"Intersects(GEOMETRYCOLLECTION(POINT(-3 41)))"', [S1_SLC]),
        ('footprint:"Intersects(41.0, -3.0)"', [S1_SLC]),  # lat, lon
        ('footprint:"IsWithin(POLYGON((10 45,20 45,20 55,10 55,10 45)))"', [*S2_NAMES, S1_GRD]),
        (S1_SLC, [S1_SLC]),  # a bare term is a product name
        ("*:*", [*S2_NAMES, S1_GRD, S1_SLC]),
    ],
)
async def test_solr_queries_select_the_right_products(query: str, expected: list[str]) -> None:
    async with hub() as client:
        feed = await search(client, query, rows=100)
        assert client.app.state.queries == [query]
    assert sorted(names(feed)) == sorted(expected)
    assert feed["opensearch:totalResults"] == str(len(expected))


async def test_post_form_queries_answer_like_get() -> None:
    query = "cloudcoverpercentage:[0 TO 20] AND platformname:Sentinel-2"
    async with hub() as client:
        got = await search(client, query, rows=100)
        response = await client.post(
            "/search", params={"format": "json", "rows": 100, "start": 0}, data={"q": query}
        )
        assert client.app.state.queries == [query, query]
        assert client.app.state.requests == 2
    assert names(response.json()["feed"]) == names(got)


# --- paging and ordering -------------------------------------------------------------------------
async def test_pages_cover_the_result_once_with_dhus_subtitles_and_links() -> None:
    real = recorded("opensearch/sentinelsat-2023__test_large_query__07_search.json")["feed"]
    async with hub() as client:
        pages = [
            await search(client, "platformname:Sentinel-2", rows=5, start=s) for s in (0, 5, 10)
        ]
        everything = await search(client, "platformname:Sentinel-2", rows=100)
    assert [n for p in pages for n in names(p)] == names(everything)
    subtitles = [p["subtitle"].split(". Request")[0] for p in pages]
    assert subtitles == [
        "Displaying 0 to 4 of 12 total results",
        "Displaying 5 to 9 of 12 total results",
        "Displaying 10 to 11 of 12 total results",
    ]
    rels = [[link["rel"] for link in p["link"]] for p in pages]
    assert rels[0] == rels[1] == ["self", "first", "next", "last", "search"]
    assert rels[2] == [link["rel"] for link in real["link"]]  # self first previous last search
    assert pages[1]["link"][2]["href"].endswith("&start=10&rows=5&format=json")
    assert pages[2]["link"][2]["href"].endswith("&start=5&rows=5&format=json")
    assert [p["opensearch:startIndex"] for p in pages] == ["0", "5", "10"]


async def test_orderby_sorts_by_each_key_and_breaks_ties_by_uuid() -> None:
    async with hub() as client:
        feed = await search(
            client,
            "platformname:Sentinel-2",
            rows=100,
            orderby="cloudcoverpercentage asc,beginposition desc",
        )
        by_name = create_emulator(catalogue(), tie_order="name")
        transport = httpx.ASGITransport(by_name)
        async with httpx.AsyncClient(transport=transport, base_url="https://hub.test") as other:
            named = await search(
                other,
                "platformname:Sentinel-2",
                rows=100,
                orderby="cloudcoverpercentage asc,beginposition desc",
            )
    keys = [(CLOUD[e["title"]], e["date"][1]["content"]) for e in entries(feed)]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    ties = [
        (a, b)
        for a, b in zip(entries(feed), entries(feed)[1:], strict=False)
        if CLOUD[a["title"]] == CLOUD[b["title"]]
    ]
    assert ties and all(a["date"][1]["content"] >= b["date"][1]["content"] for a, b in ties)
    assert all(a["id"] < b["id"] for a, b in ties if a["date"][1] == b["date"][1])
    assert any(a["title"] > b["title"] for a, b in ties)  # uuid order is not the name order
    assert [e["title"] for e in entries(named)] != names(feed)
    assert all(
        a["title"] < b["title"]
        for a, b in zip(entries(named), entries(named)[1:], strict=False)
        if CLOUD[a["title"]] == CLOUD[b["title"]]
    )


async def test_default_order_is_ingestiondate_descending_and_bad_orderby_is_an_error() -> None:
    async with hub() as client:
        feed = await search(client, "*", rows=100)
        error = await search(client, "*", orderby="foo desc")
    dates = [
        next(d["content"] for d in e["date"] if d["name"] == "ingestiondate") for e in entries(feed)
    ]
    assert dates == sorted(dates, reverse=True)
    assert error["error"]["message"] == "sort param field can't be found: foo"


async def test_atom_feed_has_the_json_feeds_entries() -> None:
    async with hub() as client:
        feed = await search(client, "platformname:Sentinel-1", rows=10)
        response = await client.get("/search", params={"q": "platformname:Sentinel-1", "rows": 10})
    assert response.headers["content-type"] == "application/atom+xml"
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    ns = "{http://a9.com/-/spec/opensearch/1.1/}"
    assert root.findtext(f"{ns}totalResults") == feed["opensearch:totalResults"]
    assert root.find(f"{ns}Query").attrib == feed["opensearch:Query"]  # type: ignore[union-attr]
    subtitle = root.findtext(f"{ATOM}subtitle") or ""
    assert subtitle.startswith("Displaying 2 results")
    atom = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in atom] == [e["id"] for e in entries(feed)]
    for xml_entry, json_entry in zip(atom, entries(feed), strict=True):
        assert [link.attrib for link in xml_entry.findall(f"{ATOM}link")] == json_entry["link"]
        for group in ("date", "int", "str"):
            pairs = [(v.get("name"), v.text) for v in xml_entry.findall(f"{ATOM}{group}")]
            assert pairs == [(v["name"], v["content"]) for v in json_entry[group]]


# --- OData ---------------------------------------------------------------------------------------
async def uuid_of(client: Any, name: str) -> str:
    feed = await search(client, f"identifier:{name}")
    uuid: str = feed["entry"]["id"]
    return uuid


def millis(value: str) -> int:
    match = re.fullmatch(r"/Date\((\d+)\)/", value)
    assert match, value
    return int(match.group(1))


async def test_product_entity_is_shaped_like_the_recorded_one() -> None:
    real = recorded("odata/sentinelsat-2023__node_test_products__04_Products-1e2f27fc.json")["d"]
    async with hub() as client:
        uuid = await uuid_of(client, S1_GRD)
        response = await client.get(f"/odata/v1/Products('{uuid}')", params={"$format": "json"})
    assert response.headers["dataserviceversion"] == "2.0"
    entity = response.json()["d"]
    assert list(entity) == list(real)
    for key in ("__metadata", "ContentDate", "Checksum", "Products", "Attributes"):
        assert list(entity[key]) == list(real[key])
    assert {k: type(v) for k, v in entity.items()} == {k: type(v) for k, v in real.items()}
    url = f"https://hub.test/odata/v1/Products('{uuid}')"
    assert entity["__metadata"]["media_src"] == f"{url}/$value"
    assert entity["Nodes"] == {"__deferred": {"uri": f"{url}/Nodes"}}
    assert entity["Name"] == S1_GRD and entity["ContentLength"] == "1700000000"
    assert millis(entity["ContentDate"]["Start"]) == 1634707043000  # 2021-10-20T05:17:23Z
    assert millis(entity["IngestionDate"]) == 1634707043000 + 3 * 3600 * 1000
    assert millis(entity["CreationDate"]) > millis(entity["IngestionDate"])
    assert re.fullmatch(r"[0-9a-f]{32}", entity["Checksum"]["Value"])


async def test_expanded_attributes_are_shaped_and_named_like_the_recorded_ones() -> None:
    real = recorded("odata/sentinelsat-2018__test_get_product_odata_full__01_*.json")
    real_attribute = real["d"]["Attributes"]["results"][0]
    async with hub() as client:
        s1 = await uuid_of(client, S1_GRD)
        s2 = await uuid_of(client, S2_NAMES[0])
        params = {"$format": "json", "$expand": "Attributes"}
        grd = (await client.get(f"/odata/v1/Products('{s1}')", params=params)).json()["d"]
        l2a = (await client.get(f"/odata/v1/Products('{s2}')", params=params)).json()["d"]
    recorded_names = {a["Name"] for a in real["d"]["Attributes"]["results"]}
    for entity in (grd, l2a):
        attributes = entity["Attributes"]["results"]
        assert [list(a) for a in attributes] == [list(real_attribute)] * len(attributes)
        assert [a["Name"] for a in attributes] == sorted(a["Name"] for a in attributes)
        assert all(a["ContentLength"] == str(len(a["Value"])) for a in attributes)
    values = {a["Name"]: a["Value"] for a in grd["Attributes"]["results"]}
    assert {"Polarisation", "Pass direction", "Relative orbit (start)", "Sensing start"} <= set(
        values
    )
    assert set(values) <= recorded_names
    assert (
        values["Polarisation"] == "VV VH" and values["Sensing start"] == "2021-10-20T05:17:23.000Z"
    )
    s2_values = {a["Name"]: a["Value"] for a in l2a["Attributes"]["results"]}
    assert s2_values["Cloud cover percentage"] == "0.0" and s2_values["Tile Identifier"] == "33UXQ"
    assert s2_values["Processing level"] == "Level-2A"


async def test_unknown_keys_answer_the_recorded_errors() -> None:
    real_json = fixture("odata/sentinelsat-2023__test_get_product_info_bad_key__01_*.json")
    real_xml = fixture("odata/sentinelsat-2023__test_is_online__01_*.xml")
    meta = sidecar(real_json.name.replace(".json", ".request.txt"), "odata")
    async with hub() as client:
        as_json = await client.get("/odata/v1/Products('invalid-xyz')", params={"$format": "json"})
        as_xml = await client.get(
            "/odata/v1/Products('98ca202b-2155-4181-be88-xxxxxxxxxxxx')/Online/$value"
        )
    assert as_json.status_code == meta["status"] == 404
    assert as_json.content == real_json.read_bytes()
    assert as_json.headers["cause-message"] == meta["response_headers"]["cause-message"]
    assert as_xml.status_code == 404 and as_xml.content == real_xml.read_bytes()
    assert as_xml.headers["content-type"] == "application/xml"


async def test_online_value_is_the_recorded_text() -> None:
    real = fixture(
        "odata/sentinelsat-2023__test_check_existing__01_*-Online-value.txt"
    ).read_bytes()
    async with hub() as client:
        uuid = await uuid_of(client, S1_SLC)
        response = await client.get(f"/odata/v1/Products('{uuid}')/Online/$value")
    assert (
        response.content == real and response.headers["content-type"] == "text/plain;charset=utf-8"
    )


async def test_filters_select_orders_counts_and_pages() -> None:
    real = recorded("odata/sentinelsat-2021-05__smallest_online_products__01_Products.json")
    text = (
        "Online eq true and CreationDate lt datetime'2021-10-23T00:00:00.000' "
        "and not startswith(Name, 'S1B') and ContentLength ne 0"
    )
    expected = [S1_GRD, *[n for n in S2_NAMES if n[11:19] <= "20211022"]]
    async with hub() as client:
        plain = await client.get(
            "/odata/v1/Products",
            params={"$format": "json", "$filter": text, "$orderby": "ContentLength"},
        )
        counted = await client.get(
            "/odata/v1/Products",
            params={
                "$format": "json",
                "$filter": text,
                "$orderby": "IngestionDate desc,Name",
                "$top": "3",
                "$skip": "2",
                "$inlinecount": "allpages",
            },
        )
        assert client.app.state.queries == [text, text]
    assert list(plain.json()["d"]) == list(real["d"]) == ["results"]
    found = plain.json()["d"]["results"]
    assert sorted(p["Name"] for p in found) == sorted(expected)
    assert [int(p["ContentLength"]) for p in found] == sorted(
        int(p["ContentLength"]) for p in found
    )
    body = counted.json()["d"]
    assert list(body) == ["__count", "results"] and body["__count"] == str(len(expected))
    by_ingestion = sorted(found, key=lambda p: (-millis(p["IngestionDate"]), p["Name"]))
    assert [p["Name"] for p in body["results"]] == [p["Name"] for p in by_ingestion][2:5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Name eq 'O''Brien'", ["O'Brien"], id="quote-doubling"),
        pytest.param("substringof('''B', Name)", ["O'Brien"], id="substringof"),
        pytest.param("endswith(Name,'1A2B') or Id eq 'none'", [S1_GRD], id="or"),
        pytest.param(
            "ContentDate/Start ge datetime'2021-10-24T00:00:00' and "
            "ContentDate/End le datetime'2021-10-25T00:00:00'",
            S2_NAMES[:2],
            id="dates",
        ),
        pytest.param("(tolower(Name) eq 'o''brien')", ["O'Brien"], id="tolower"),
    ],
)
async def test_filter_literals_and_functions(text: str, expected: list[str]) -> None:
    odd = s2_item("O'Brien", BASE_TIME - timedelta(days=30), collection="sentinel-2-l1c")
    async with hub([*catalogue(), odd]) as client:
        response = await client.get(
            "/odata/v1/Products", params={"$format": "json", "$filter": text}
        )
    assert response.status_code == 200, response.text
    assert sorted(p["Name"] for p in response.json()["d"]["results"]) == sorted(expected)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"$filter": "Name eq"}, id="incomplete"),
        pytest.param({"$filter": "Colour eq 'red'"}, id="unknown-property"),
        pytest.param({"$filter": "Name eq 3"}, id="types"),
        pytest.param({"$top": "101"}, id="top"),
        pytest.param({"$orderby": "Size desc"}, id="orderby"),
    ],
)
async def test_invalid_odata_requests_are_400_with_the_dhus_error_body(
    params: dict[str, str],
) -> None:
    real = recorded("odata/sentinelsat-2023__test_get_product_info_bad_key__01_*.json")
    async with hub() as client:
        response = await client.get("/odata/v1/Products", params={"$format": "json", **params})
    assert response.status_code == 400
    body = response.json()
    assert list(body["error"]) == list(real["error"]) and body["error"]["code"] is None
    assert list(body["error"]["message"]) == ["lang", "value"] and body["error"]["message"]["value"]


# --- nodes, manifest and downloads ---------------------------------------------------------------
def manifest_files(manifest: bytes) -> dict[str, tuple[ET.Element, ET.Element]]:
    """href (without ./) -> (dataObject, byteStream) of every file the manifest lists."""
    root = ET.fromstring(manifest)
    assert root.tag == f"{XFDU}XFDU"
    out = {}
    for data_object in root.iter("dataObject"):
        stream = data_object.find("byteStream")
        assert stream is not None
        location = stream.find("fileLocation")
        assert location is not None
        out[location.attrib["href"].removeprefix("./")] = (data_object, stream)
    return out


def node_path(uuid: str, name: str, path: str) -> str:
    parts = [f"{name}.SAFE", *path.split("/")] if path else [f"{name}.SAFE"]
    return f"/odata/v1/Products('{uuid}')" + "".join(f"/Nodes('{p}')" for p in parts)


async def test_manifest_node_is_shaped_like_the_recorded_one() -> None:
    real = recorded("odata/sentinelsat-2023__test_download_product_nodes__01_*.json")["d"]
    async with hub() as client:
        uuid = await uuid_of(client, S1_GRD)
        url = node_path(uuid, S1_GRD, "manifest.safe")
        node = (await client.get(url, params={"$format": "json"})).json()["d"]
        content = (await client.get(f"{url}/$value")).content
    assert list(node) == list(real) and list(node["__metadata"]) == list(real["__metadata"])
    assert {k: type(v) for k, v in node.items()} == {k: type(v) for k, v in real.items()}
    assert (node["Id"], node["ContentType"], node["ChildrenNumber"]) == (
        real["Id"],
        real["ContentType"],
        real["ChildrenNumber"],
    )
    assert node["ContentLength"] == str(len(content))
    assert node["__metadata"]["uri"] == f"https://hub.test{url}"


async def test_s1_manifest_lists_measurements_annotations_and_previews_that_download() -> None:
    async with hub() as client:
        uuid = await uuid_of(client, S1_GRD)
        manifest = (await client.get(node_path(uuid, S1_GRD, "manifest.safe") + "/$value")).content
        files = manifest_files(manifest)
        stem = "s1a-iw-grd-{}-20211020t051723-20211020t051748-040183-04b6f1-00{}"
        vv, vh = stem.format("vv", 1), stem.format("vh", 2)
        assert {
            f"measurement/{vv}.tiff",
            f"measurement/{vh}.tiff",
            f"annotation/{vv}.xml",
            f"annotation/calibration/calibration-{vh}.xml",
            "preview/quick-look.png",
        } <= set(files)
        measurement, _ = files[f"measurement/{vv}.tiff"]
        assert measurement.attrib == {
            "ID": vv.replace("-", ""),
            "repID": "s1Level1MeasurementSchema",
        }
        assert files[f"annotation/{vv}.xml"][0].attrib["repID"] == "s1Level1ProductSchema"
        assert files[f"annotation/{vv}.xml"][0].attrib["ID"] == "product" + vv.replace("-", "")
        for path, (_, stream) in files.items():
            response = await client.get(node_path(uuid, S1_GRD, path) + "/$value")
            assert response.status_code == 200
            assert int(stream.attrib["size"]) == len(response.content)
            assert stream.findtext("checksum") == hashlib.md5(response.content).hexdigest()
        tiff = await client.get(node_path(uuid, S1_GRD, f"measurement/{vv}.tiff") + "/$value")
    assert tiff.headers["content-type"] == "image/tiff" and tiff.content.startswith(b"II*\x00")


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        pytest.param(
            "L2A",
            [
                "IMG_DATA/R10m/T33UXQ_20211024T095101_B02_10m.jp2",
                "IMG_DATA/R20m/T33UXQ_20211024T095101_SCL_20m.jp2",
                "IMG_DATA/R60m/T33UXQ_20211024T095101_B09_60m.jp2",
                "MTD_TL.xml",
            ],
            id="l2a",
        ),
        pytest.param(
            "L1C",
            [
                "IMG_DATA/T33UXQ_20211024T095101_B01.jp2",
                "IMG_DATA/T33UXQ_20211024T095101_B8A.jp2",
                "IMG_DATA/T33UXQ_20211024T095101_TCI.jp2",
                "MTD_TL.xml",
            ],
            id="l1c",
        ),
    ],
)
async def test_s2_manifest_lists_the_granule_bands(level: str, expected: list[str]) -> None:
    name = s2_name(BASE_TIME, level=level)
    async with hub([s2_item(name, BASE_TIME)]) as client:
        uuid = await uuid_of(client, name)
        manifest = (await client.get(node_path(uuid, name, "manifest.safe") + "/$value")).content
        files = manifest_files(manifest)
        granule = next(p.split("/")[1] for p in files if p.startswith("GRANULE/"))
        listing = await client.get(
            node_path(uuid, name, f"GRANULE/{granule}/IMG_DATA") + "/Nodes",
            params={"$format": "json"},
        )
        band = await client.get(
            node_path(uuid, name, f"GRANULE/{granule}/{expected[0]}") + "/$value"
        )
    assert granule.startswith(f"{level}_T33UXQ_A")
    assert {f"GRANULE/{granule}/{p}" for p in expected} | {f"MTD_MSI{level}.xml"} <= set(files)
    data_object, stream = files[f"GRANULE/{granule}/{expected[0]}"]
    assert data_object.attrib["ID"].startswith("IMG_DATA_Band_")
    assert stream.attrib["mimeType"] == "application/octet-stream"
    assert band.headers["content-type"] == "image/jp2" and len(band.content) == int(
        stream.attrib["size"]
    )
    children = [n["Name"] for n in listing.json()["d"]["results"]]
    assert children and all(
        n["__metadata"]["type"] == "DHuS.Node" for n in listing.json()["d"]["results"]
    )
    assert ("R10m" in children) == (level == "L2A")


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("{name}.SAFE')/Nodes('nothing.xml", id="file"),
        pytest.param("other.SAFE", id="root"),
        pytest.param("{name}.SAFE')/Nodes('manifest.safe')/Nodes('deeper", id="below-file"),
    ],
)
async def test_unknown_nodes_are_404(path: str) -> None:
    async with hub() as client:
        uuid = await uuid_of(client, S1_SLC)
        url = f"/odata/v1/Products('{uuid}')/Nodes('{path.format(name=S1_SLC)}')"
        response = await client.get(url, params={"$format": "json"})
    assert response.status_code == 404
    assert response.json()["error"]["message"]["value"].startswith("Invalid key (")


async def test_product_value_is_a_zip_with_the_manifest_and_honours_range_and_head() -> None:
    async with hub() as client:
        uuid = await uuid_of(client, S1_SLC)
        url = f"/odata/v1/Products('{uuid}')/$value"
        full = await client.get(url)
        part = await client.get(url, headers={"Range": "bytes=10-19"})
        tail = await client.get(url, headers={"Range": "bytes=-5"})
        beyond = await client.get(url, headers={"Range": f"bytes={len(full.content)}-"})
        head = await client.head(url)
        manifest = await client.get(node_path(uuid, S1_SLC, "manifest.safe") + "/$value")
    assert full.headers["content-disposition"] == f'attachment; filename="{S1_SLC}.zip"'
    assert full.headers["content-type"] == "application/octet-stream"
    with zipfile.ZipFile(io.BytesIO(full.content)) as archive:
        assert archive.namelist() == [f"{S1_SLC}.SAFE/manifest.safe"]
        assert archive.read(f"{S1_SLC}.SAFE/manifest.safe") == manifest.content
    size = len(full.content)
    assert (part.status_code, part.content) == (206, full.content[10:20])
    assert part.headers["content-range"] == f"bytes 10-19/{size}"
    assert (tail.status_code, tail.content) == (206, full.content[-5:])
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(size)
    measurements = [p for p in manifest_files(manifest.content) if p.startswith("measurement/")]
    assert len(measurements) == 6 and all("-iw" in p and "-slc-h" in p for p in measurements)


async def test_quicklook_is_a_jpeg() -> None:
    async with hub() as client:
        uuid = await uuid_of(client, S2_NAMES[0])
        response = await client.get(f"/odata/v1/Products('{uuid}')/Products('Quicklook')/$value")
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content[:3] == b"\xff\xd8\xff" and response.content.endswith(b"\xff\xd9")


# --- authentication, sources, identity -----------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "fixture", "authorised"),
    [
        pytest.param(
            "/search?q=*&format=json",
            "opensearch/sentinelsat-2023__test_SentinelAPI_wrong_credentials__01_search",
            200,
            id="opensearch",
        ),
        pytest.param(  # the recorded product is not in this catalogue: DHuS's 404 once let in
            "/odata/v1/Products('8df46c9e-a20c-43db-a19a-4240c2ed3b8b')?$format=json",
            "odata/sentinelsat-2018__test_SentinelAPI_wrong_credentials__01_Products-8df46c9e",
            404,
            id="odata",
        ),
    ],
)
async def test_basic_auth_answers_the_recorded_401_and_accepts_credentials(
    url: str, fixture: str, authorised: int
) -> None:
    meta = sidecar(f"{fixture}.request.txt")
    good = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    bad = "Basic " + base64.b64encode(b"alice:wrong").decode()
    async with hub(credentials=("alice", "s3cret")) as client:
        anonymous = await client.get(url)
        wrong = await client.get(url, headers={"Authorization": bad})
        right = await client.get(url, headers={"Authorization": good})
        assert client.app.state.requests == 3
    for denied in (anonymous, wrong):
        assert denied.status_code == meta["status"] == 401
        assert denied.content == (FIXTURES / f"{fixture}.html").read_bytes()
        headers = meta["response_headers"]
        assert denied.headers["www-authenticate"] == headers["www-authenticate"]
        assert denied.headers["content-type"] == headers["content-type"]
    assert right.status_code == authorised
    assert right.headers["content-type"] == "application/json"


async def test_a_catalogue_file_serves_every_item_with_mirror_independent_uuids(
    tmp_path: Path,
) -> None:
    files = write_catalogue(tmp_path, generate_catalogue())
    held = {a: {i["id"] for i in json.loads(files[a].read_text())["features"]} for a in files}
    shared = sorted(held["eodc"] & held["cesnet"])
    assert shared
    uuids = []
    for archive in ("eodc", "cesnet"):
        async with hub(files[archive]) as client:  # type: ignore[arg-type]
            total = (await search(client, "*:*", rows=0))["opensearch:totalResults"]
            assert total == str(len(held[archive]))
            uuids.append([await uuid_of(client, name) for name in (shared[0], shared[-1])])
    assert uuids[0] == uuids[1] and uuids[0][0] != uuids[0][1]


async def test_items_named_otherwise_are_served_under_their_product_name() -> None:
    item = series(1)[0]
    async with hub([as_earth_search(item)]) as client:
        feed = await search(client, f"identifier:{item['id']}")
    assert feed["entry"]["title"] == item["id"]
    assert [v["content"] for v in feed["entry"]["str"] if v["name"] == "filename"] == [
        f"{item['id']}.SAFE"
    ]
