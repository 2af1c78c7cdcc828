"""What browsers and clients see on the wire: media types, link types, CORS, compression."""

from __future__ import annotations

import gzip
from typing import Any

import brotli
import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import series

GEOJSON = "application/geo+json"
JSON = "application/json"
SCHEMA = "application/schema+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
ORIGIN = "https://browser.example.org"


@pytest.fixture(scope="module")
def fed(make_module_federation: MakeFederation) -> LiveFederation:
    return make_module_federation(
        eodc=Archive(series(12)), server={"cors_origins": [ORIGIN, "https://qgis.example.org"]}
    )


def _type(response: httpx.Response) -> str:
    return response.headers["content-type"].replace(" ", "")


def _item_id(fed: LiveFederation) -> str:
    body = httpx.get(f"{fed.url}/search", params={"limit": 1}).json()
    return str(body["features"][0]["id"])


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/", JSON),
        ("/conformance", JSON),
        ("/collections", JSON),
        ("/collections/sentinel-2-l2a", JSON),
        ("/collections/sentinel-2-l2a/items?limit=2", GEOJSON),
        ("/search?limit=2", GEOJSON),
        ("/queryables", SCHEMA),
        ("/collections/sentinel-2-l2a/queryables", SCHEMA),
        ("/sortables", SCHEMA),
        ("/api", OPENAPI),
    ],
)
def test_each_resource_has_its_media_type(fed: LiveFederation, path: str, media_type: str) -> None:
    r = httpx.get(fed.url + path)
    assert r.status_code == 200
    assert _type(r) == media_type


def test_single_item_and_post_search_are_geojson(fed: LiveFederation) -> None:
    item = httpx.get(f"{fed.url}/collections/sentinel-2-l2a/items/{_item_id(fed)}")
    assert item.status_code == 200 and _type(item) == GEOJSON
    post = httpx.post(f"{fed.url}/search", json={"limit": 2})
    assert post.status_code == 200 and _type(post) == GEOJSON


def test_errors_are_json_stac_errors(fed: LiveFederation) -> None:
    r = httpx.get(f"{fed.url}/search", params={"bbox": "1,2"})
    assert r.status_code == 400 and _type(r) == JSON
    assert set(r.json()) == {"code", "description"}


def _links(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {ln["rel"]: ln for ln in body["links"]}


def test_links_name_the_media_type_their_target_answers_with(fed: LiveFederation) -> None:
    landing = _links(httpx.get(f"{fed.url}/").json())
    assert landing["service-desc"]["type"] == OPENAPI
    assert landing["service-doc"]["type"] == "text/html"
    assert landing["search"]["type"] == GEOJSON
    assert landing["data"]["type"] == JSON
    assert landing["conformance"]["type"] == JSON
    assert landing["http://www.opengis.net/def/rel/ogc/1.0/queryables"]["type"] == SCHEMA
    collection = _links(httpx.get(f"{fed.url}/collections/sentinel-2-l2a").json())
    assert collection["items"]["type"] == GEOJSON
    assert collection["license"]["type"] == "application/pdf"
    checked = 0
    for link in [*landing.values(), *collection.values()]:
        if link["href"].startswith(fed.url):  # every gateway link: its target's media type
            r = httpx.get(link["href"])
            assert r.status_code == 200, link
            assert _type(r).split(";")[0] == link["type"].split(";")[0], link
            checked += 1
    assert checked >= 12


def test_cors_allows_configured_origins_only(fed: LiveFederation) -> None:
    r = httpx.get(f"{fed.url}/search", headers={"Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.get(f"{fed.url}/search", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers
    preflight = httpx.options(
        f"{fed.url}/search",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    denied = httpx.options(
        f"{fed.url}/search",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert denied.status_code == 400


def test_cors_wildcard_by_default(make_federation: MakeFederation) -> None:
    fed = make_federation(eodc=Archive(series(1)))
    r = httpx.get(f"{fed.url}/collections", headers={"Origin": "https://anywhere.example"})
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("accept", "encoding", "decode"),
    [("br", "br", brotli.decompress), ("gzip", "gzip", gzip.decompress)],
)
def test_responses_are_compressed_when_the_client_accepts_it(
    fed: LiveFederation, accept: str, encoding: str, decode: Any
) -> None:
    url = f"{fed.url}/search?limit=10"
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    # read the raw bytes: httpx would decode them itself
    with httpx.stream("GET", url, headers={"Accept-Encoding": accept}) as r:
        raw = b"".join(r.iter_raw())
        assert r.headers["content-encoding"] == encoding
        assert _type(r) == GEOJSON
    assert len(raw) < len(plain.content) / 3
    body = decode(raw)
    assert [f["id"] for f in httpx.Response(200, content=body).json()["features"]] == [
        f["id"] for f in plain.json()["features"]
    ]
