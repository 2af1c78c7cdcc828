"""The CDSE emulator against the recorded CDSE answers in ``fixtures/cdse`` and CDSE semantics.

Structure tests replay the recorded requests against an emulated catalogue of the same size
and compare the answers with the recordings (envelope keys and order, counts, next links
byte for byte, entity keys, value formats and types); the others check the ``$filter``
language, limits, downloads and the Keycloak token endpoint.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from factories import BASE_TIME, s2_item, s2_name, series

from adapters.cdse_odata.emulator import TOKEN_PATH, create_emulator
from adapters.cdse_odata.emulator_records import product_from_item
from mqs.demodata import generate_catalogue

FIXTURES = Path(__file__).parent / "fixtures" / "cdse"
HOST = "https://catalogue.dataspace.copernicus.eu"
INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def recorded(page: int) -> tuple[str, dict[str, Any]]:
    """(the recorded request URL, the recorded body) of page ``page`` (1-5)."""
    stem = f"cdsetool__s1-odata-paging__0{page}_Products"
    sidecar = yaml.safe_load((FIXTURES / f"{stem}.request.txt").read_text())
    return str(sidecar["url"]), orjson.loads((FIXTURES / f"{stem}.json").read_bytes())


def s1_item(when: datetime, orbit: int) -> dict[str, Any]:
    """A Sentinel-1 GRD item as a minimal archive serves it."""
    stop = when + timedelta(seconds=25)
    name = (
        f"S1A_IW_GRDH_1SDV_{when:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{orbit:06d}_"
        f"{orbit * 7 % 0xFFFFFF:06X}_{orbit % 0xFFFF:04X}"
    )
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": name,
        "collection": "sentinel-1-grd",
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[14, 49], [17, 49], [17, 51], [14, 51], [14, 49]]],
        },
        "properties": {"datetime": when.isoformat().replace("+00:00", "Z")},
        "links": [],
        "assets": {},
    }


# 47 products between 2014-04-05 and 2014-04-14, as many as the recorded query matched
APRIL_2014 = [
    s1_item(datetime(2014, 4, 5, 6, tzinfo=UTC) + timedelta(hours=4 * k), 100 + k)
    for k in range(47)
]


@asynccontextmanager
async def catalogue(
    items: list[dict[str, Any]] | None = None, **options: Any
) -> AsyncIterator[Any]:
    app = create_emulator(APRIL_2014 if items is None else items, **options)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=HOST) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def lambda_(kind: str, name: str, condition: str) -> str:
    return f"Attributes/OData.CSC.{kind}Attribute/any(att:att/Name eq '{name}' and {condition})"


async def products(client: Any, text: str, **params: Any) -> list[str]:
    """The names a ``$filter`` selects."""
    response = await client.get(
        "/odata/v1/Products", params={"$filter": text, "$top": 1000, **params}
    )
    assert response.status_code == 200, response.text
    return [p["Name"] for p in response.json()["value"]]


async def test_pages_have_the_recorded_envelopes_and_entities() -> None:
    async with catalogue() as client:
        for page in range(1, 6):
            url, body = recorded(page)
            mine = (await client.get(url)).json()
            assert list(mine) == list(body), page  # context, count (page 1 only), value, link
            assert mine["@odata.context"] == body["@odata.context"]
            assert len(mine["value"]) == len(body["value"])
            assert mine.get("@odata.count") == body.get("@odata.count")
    theirs, ours = body["value"][0], mine["value"][0]
    assert list(ours) == list(theirs)
    assert [list(c) for c in ours["Checksum"]] == [list(c) for c in theirs["Checksum"]]
    assert [c["Algorithm"] for c in ours["Checksum"]] == ["MD5", "BLAKE3"]
    for entity in (theirs, ours):
        for value in (entity["OriginDate"], entity["ContentDate"]["Start"], entity["EvictionDate"]):
            assert INSTANT.match(value)
        assert isinstance(entity["ContentLength"], int) and entity["Online"] is True
        assert entity["S3Path"].startswith("/eodata/Sentinel-1/")


async def test_attributes_are_typed_and_ordered_as_recorded() -> None:
    _, body = recorded(1)
    kinds = {
        (a["@odata.type"], a["ValueType"], type(a["Value"]))
        for p in body["value"]
        for a in p["Attributes"]
    }
    order = [a["Name"] for a in body["value"][0]["Attributes"]]
    async with catalogue() as client:
        url, _ = recorded(1)
        product = (await client.get(url)).json()["value"][0]
    for attribute in product["Attributes"]:
        assert list(attribute) == ["@odata.type", "Name", "Value", "ValueType"]
        assert attribute["@odata.type"] == f"#OData.CSC.{attribute['ValueType']}Attribute"
        kind = (attribute["@odata.type"], attribute["ValueType"], type(attribute["Value"]))
        assert kind in kinds or attribute["ValueType"] == "Double"
    names = [a["Name"] for a in product["Attributes"]]
    shared = [n for n in order if n in names]
    assert len(shared) >= 9 and [n for n in names if n in shared] == shared


async def test_next_links_are_the_recorded_ones() -> None:
    async with catalogue() as client:
        for page in range(2, 5):
            url, body = recorded(page)
            assert (await client.get(url)).json()["@odata.nextLink"] == body["@odata.nextLink"]
        url, body = recorded(1)
        link = (await client.get(url)).json()["@odata.nextLink"]
    # The first recorded link says ...T00:00:00.000000Z where the documented page-1 URL has
    # .000Z (the request CDSETool really sent had six digits); CDSE echoes what it is sent.
    assert link == body["@odata.nextLink"].replace("00.000000Z", "00.000Z")


async def test_following_next_links_returns_every_product_once_in_order() -> None:
    async with catalogue() as client:
        url, _ = recorded(1)
        names: list[str] = []
        while url:
            page = (await client.get(url)).json()
            names += [p["Name"] for p in page["value"]]
            url = page.get("@odata.nextLink")
    assert names == [f"{i['id']}.SAFE" for i in APRIL_2014]


async def test_attribute_lambdas_select_by_typed_attributes() -> None:
    items = series(6, tiles=("33UXQ", "33UWQ"))
    cloud = lambda_("Double", "cloudCover", "att/OData.CSC.DoubleAttribute/Value le 20")
    tile = lambda_("String", "tileId", "att/OData.CSC.StringAttribute/Value eq '33UWQ'")
    # an Integer lambda does not see Double attributes, whatever their name
    integer = lambda_("Integer", "cloudCover", "att/Value le 100")
    async with catalogue(items) as client:
        low = await products(client, cloud)
        assert low and sorted(low) == sorted(
            f"{i['id']}.SAFE" for i in items if i["properties"]["eo:cloud_cover"] <= 20
        )
        assert all("_T33UWQ_" in n for n in await products(client, tile))
        assert await products(client, integer) == []
        both = await products(client, f"{cloud} and {tile}")
        assert set(both) == set(low) & set(await products(client, tile))


async def test_content_dates_compare_with_microseconds() -> None:
    when = BASE_TIME  # ...T09:51:01.024Z
    async with catalogue([s2_item(s2_name(when), when)]) as client:
        assert await products(client, "ContentDate/Start lt 2021-10-24T09:51:01.025Z")
        assert not await products(client, "ContentDate/Start lt 2021-10-24T09:51:01.024Z")
        assert await products(client, "ContentDate/End ge 2021-10-24T09:51:01.024000Z")
        assert await products(client, "ContentDate/Start gt 2021-10-24")


async def test_intersects_is_evaluated_on_the_sphere() -> None:
    # A tile just north of 60N at 20E, inside the planar box [0, 60, 40, 70] near its southern
    # edge: the great circle from (0, 60) to (40, 60) passes north of it (about 61.5N at 20E).
    near_edge = s2_item(s2_name(BASE_TIME, "34VEK"), BASE_TIME, bbox=(19.9, 60.05, 20.1, 60.1))
    async with catalogue([near_edge]) as client:
        box = "POLYGON((0 60, 40 60, 40 70, 0 70, 0 60))"
        assert (
            await products(client, f"OData.CSC.Intersects(area=geography'SRID=4326;{box}')") == []
        )
        dense = ", ".join(f"{x} 60" for x in range(0, 41, 2))
        ring = f"POLYGON(({dense}, 40 70, 0 70, 0 60))"
        found = await products(client, f"OData.CSC.Intersects(area=geography'SRID=4326;{ring}')")
        assert found == [f"{near_edge['id']}.SAFE"]


async def test_quoted_strings_cannot_be_escaped() -> None:
    async with catalogue(series(3)) as client:
        assert await products(client, "Name eq 'x'' or true or ''y'") == []
        assert len(await products(client, "Name eq 'x' or true")) == 3  # what unquoted text does
        assert await products(client, "Name eq 'O''Brien'") == []


async def test_invalid_requests_get_cdse_errors() -> None:
    async with catalogue(series(2)) as client:
        bad = await client.get("/odata/v1/Products", params={"$filter": "Name eq 'x"})
        assert bad.status_code == 400 and "Invalid filter" in bad.json()["detail"]
        unknown = await client.get("/odata/v1/Products", params={"$filter": "Colour eq 'red'"})
        assert unknown.status_code == 400 and unknown.json()["detail"] == "Invalid field: Colour"
        skip = await client.get("/odata/v1/Products", params={"$skip": "10001"})
        assert skip.status_code == 422
        assert skip.json() == {  # as documented in the CDSE release notes (2024-11-12)
            "detail": [
                {
                    "type": "less_than_equal",
                    "loc": ["query", "$skip"],
                    "msg": "Input should be less than or equal to 10000",
                    "input": "10001",
                    "ctx": {"le": 10000},
                }
            ]
        }
        top = await client.get("/odata/v1/Products", params={"$top": "1001"})
        assert top.status_code == 422 and top.json()["detail"][0]["ctx"] == {"le": 1000}
        text = await client.get("/odata/v1/Products", params={"$top": "ten"})
        assert text.json()["detail"][0]["type"] == "int_parsing"


async def test_entities_quicklooks_and_the_default_page() -> None:
    items = series(25)
    async with catalogue(items) as client:
        page = (
            await client.get("/odata/v1/Products", params={"$expand": "Attributes,Assets"})
        ).json()
        assert len(page["value"]) == 20 and "@odata.count" not in page  # $top defaults to 20
        assert page["@odata.context"] == "$metadata#Products(Attributes(),Assets())"
        first = page["value"][0]
        (asset,) = first["Assets"]
        assert asset["Type"] == "QUICKLOOK"
        image = await client.get(asset["DownloadLink"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        entity = (await client.get(f"/odata/v1/Products({first['Id']})")).json()
        assert entity["@odata.context"] == "$metadata#Products/$entity"
        assert entity["Name"] == first["Name"] and "Attributes" not in entity
        missing = await client.get("/odata/v1/Products(00000000-0000-0000-0000-000000000000)")
        assert missing.status_code == 404
    assert client.app.state.requests == 4
    assert client.app.state.queries == [{"$expand": "Attributes,Assets"}]


async def token(client: Any, **form: str) -> httpx.Response:
    return await client.post(TOKEN_PATH, data={"client_id": "cdse-public", **form})


async def test_downloads_need_a_token_from_the_realm() -> None:
    async with catalogue(series(1), users={"me@example.eu": "pa55"}) as client:
        product = (await client.get("/odata/v1/Products")).json()["value"][0]
        url = f"/odata/v1/Products({product['Id']})/$value"
        assert (await client.get(url)).status_code == 401
        bad = await client.head(url, headers={"Authorization": "Bearer forged"})
        assert bad.status_code == 401
        grant = await token(
            client, grant_type="password", username="me@example.eu", password="pa55"
        )
        headers = {"Authorization": f"Bearer {grant.json()['access_token']}"}
        assert (await client.head(url, headers=headers)).status_code == 200
        data = (await client.get(url, headers=headers)).content
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == [f"{product['Name']}/manifest.safe"]


KEYCLOAK = {"users": {"me@example.eu": "pa55"}, "clients": {"cdse-public": None, "robot": "s3cret"}}


async def test_the_token_endpoint_answers_like_keycloak() -> None:
    async with catalogue(series(1), **KEYCLOAK) as client:
        ok = await token(client, grant_type="password", username="me@example.eu", password="pa55")
        body = ok.json()
        assert ok.status_code == 200 and body["token_type"] == "Bearer"
        assert body["expires_in"] == 600 and body["refresh_expires_in"] == 3600
        assert {"access_token", "refresh_token", "session_state", "scope"} <= set(body)
        wrong = await token(client, grant_type="password", username="me@example.eu", password="x")
        assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_grant")
        stranger = await client.post(
            TOKEN_PATH, data={"client_id": "who", "grant_type": "password"}
        )
        assert (stranger.status_code, stranger.json()["error"]) == (401, "invalid_client")
        again = await token(client, grant_type="refresh_token", refresh_token=body["refresh_token"])
        assert again.status_code == 200 and again.json()["refresh_token"] != body["refresh_token"]
        reused = await token(
            client, grant_type="refresh_token", refresh_token=body["refresh_token"]
        )
        assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
        odd = await token(client, grant_type="implicit")
        assert (odd.status_code, odd.json()["error"]) == (400, "unsupported_grant_type")
    assert client.app.state.token_requests == 6
    assert client.app.state.grants[:2] == ["password", "password"]


async def test_client_credentials_tokens_expire() -> None:
    now = [1000.0]
    async with catalogue(series(1), clock=lambda: now[0], **KEYCLOAK) as client:
        form = {"client_id": "robot", "client_secret": "s3cret", "grant_type": "client_credentials"}
        robot = (await client.post(TOKEN_PATH, data=form)).json()
        assert "refresh_token" not in robot and robot["refresh_expires_in"] == 0
        product = (await client.get("/odata/v1/Products")).json()["value"][0]
        url = f"/odata/v1/Products({product['Id']})/$value"
        headers = {"Authorization": f"Bearer {robot['access_token']}"}
        assert (await client.head(url, headers=headers)).status_code == 200
        now[0] += 601  # the access token has expired
        assert (await client.head(url, headers=headers)).status_code == 401
        form["client_secret"] = "guess"
        assert (await client.post(TOKEN_PATH, data=form)).status_code == 401


def test_demo_items_become_cdse_products() -> None:
    for item in generate_catalogue()["eodc"]:
        product = product_from_item(item)
        assert product.name == f"{item['id']}.SAFE"
        family = "SENTINEL-1" if item["collection"].startswith("sentinel-1") else "SENTINEL-2"
        assert product.collection == family
        types = {name: kind for name, kind, _ in product.attributes}
        values = {name: value for name, _, value in product.attributes}
        assert all(isinstance(values[n], int) for n, k in types.items() if k == "Integer")
        if family == "SENTINEL-1":
            assert values["productType"] == item["id"][4:14]
            assert values["polarisationChannels"] == "&".join(
                item["properties"]["sar:polarizations"]
            )
        else:
            assert values["productType"] == item["properties"]["product:type"]
            assert values["cloudCover"] == item["properties"]["eo:cloud_cover"]


def test_items_load_from_a_list_file_or_a_feature_collection(tmp_path: Path) -> None:
    items = series(2)
    (tmp_path / "list.json").write_bytes(orjson.dumps(items))
    (tmp_path / "fc.json").write_bytes(
        orjson.dumps({"type": "FeatureCollection", "features": items})
    )
    for source in (tmp_path / "list.json", str(tmp_path / "fc.json")):
        app = create_emulator(source)
        assert len(app.state.catalogue.products) == 2


@pytest.mark.parametrize("key", ["Products('{}')", "Products({})"])
async def test_entity_keys_with_and_without_quotes(key: str) -> None:
    async with catalogue(series(1)) as client:
        product = (await client.get("/odata/v1/Products")).json()["value"][0]
        entity = await client.get(
            f"/odata/v1/{key.format(product['Id'])}", params={"$expand": "Attributes"}
        )
    assert entity.json()["@odata.context"] == "$metadata#Products(Attributes())/$entity"
