"""The demo downloads through the gateway: its emulated CDSE wants a Keycloak token, as CDSE does.

``mqs demo`` gives the gateway an account of its own on the emulated CDSE (made up at start, no
user account needed), so the demo's CDSE copies are served by ``/download`` with the gateway's
OAuth2 token, and a visitor sees bytes, ranges and never the account.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.cdse_odata.emulator import TOKEN_PATH
from mqs.app import create_app
from mqs.config import Settings
from mqs.demo import DEMO_CDSE_PASSWORD_ENV, DEMO_CDSE_USER_ENV, demo_federation
from mqs.serving import bound_socket, serving_in_thread


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(gateway URL, the emulated CDSE's URL)."""
    config, apps = demo_federation(Path(tmp_path_factory.mktemp("demo-download")))
    cdse = next(b for b in config.backends if b.id == "cdse")
    assert cdse.auth is not None and cdse.auth.type == "oauth2"
    app = create_app(config, Settings(token_secret="demo-test"))
    with serving_in_thread([*apps, (app, bound_socket())]) as urls:
        yield urls[-1], cdse.url


@pytest.fixture(scope="module")
def grd_items(demo: tuple[str, str]) -> list[dict[str, Any]]:
    page = httpx.get(
        f"{demo[0]}/search", params={"collections": "sentinel-1-grd", "limit": 500}, timeout=60
    )
    assert page.status_code == 200
    features: list[dict[str, Any]] = page.json()["features"]
    return features


def _direct_bytes(cdse: str, product: str) -> bytes:
    """The product as the emulated CDSE serves it to a holder of the demo's account."""
    with httpx.Client(base_url=cdse, timeout=30) as client:
        found = client.get("/odata/v1/Products", params={"$filter": f"Name eq '{product}.SAFE'"})
        value = f"/odata/v1/Products({found.json()['value'][0]['Id']})/$value"
        assert client.get(value).status_code == 401  # the archive wants a token
        grant = {
            "grant_type": "password",
            "client_id": "cdse-public",
            "username": os.environ[DEMO_CDSE_USER_ENV],
            "password": os.environ[DEMO_CDSE_PASSWORD_ENV],
        }
        token = client.post(TOKEN_PATH, data=grant).json()["access_token"]
        answer = client.get(value, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        return answer.content


def test_cdse_copies_point_at_the_gateway(demo: tuple[str, str], grd_items: list[Any]) -> None:
    gateway, cdse = demo
    held = [i for i in grd_items if "cdse" in i["properties"]["federation:backends"]]
    assert held
    for item in held:
        product = item["assets"]["product"]
        hrefs = [product["href"], *(a["href"] for a in product.get("alternate", {}).values())]
        assert not any(h.startswith(cdse) for h in hrefs), item["id"]
        if item["properties"]["federation:backends"][0] == "cdse":
            assert product["href"] == f"{gateway}/download/sentinel-1-grd/{item['id']}/product"
        else:
            assert product["alternate"]["cdse"]["href"].endswith("/product?backend=cdse")


def test_download_streams_the_archive_bytes_with_ranges(
    demo: tuple[str, str], grd_items: list[Any]
) -> None:
    item = next(i for i in grd_items if i["properties"]["federation:backends"][0] == "cdse")
    href = item["assets"]["product"]["href"]
    expected = _direct_bytes(demo[1], item["id"])
    whole = httpx.get(href, timeout=30)
    assert whole.status_code == 200 and whole.headers["x-mqs-backend"] == "cdse"
    assert whole.content == expected and int(whole.headers["content-length"]) == len(expected)
    part = httpx.get(href, headers={"Range": "bytes=2-11"}, timeout=30)
    assert part.status_code == 206 and part.content == expected[2:12]
    assert part.headers["content-range"] == f"bytes 2-11/{len(expected)}"
    head = httpx.head(href, timeout=30)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(expected))


def test_alternate_copy_is_downloaded_from_that_backend(
    demo: tuple[str, str], grd_items: list[Any]
) -> None:
    item = next(
        i
        for i in grd_items
        if i["properties"]["federation:backends"][0] != "cdse"
        and "cdse" in i["properties"]["federation:backends"]
    )
    answer = httpx.get(item["assets"]["product"]["alternate"]["cdse"]["href"], timeout=30)
    assert answer.status_code == 200 and answer.headers["x-mqs-backend"] == "cdse"
    assert answer.content == _direct_bytes(demo[1], item["id"])


def test_the_demo_account_never_shows(demo: tuple[str, str], grd_items: list[Any]) -> None:
    gateway = demo[0]
    password = os.environ[DEMO_CDSE_PASSWORD_ENV]
    item = next(i for i in grd_items if i["properties"]["federation:backends"][0] == "cdse")
    answers = [
        httpx.get(f"{gateway}/search", params={"collections": "sentinel-1-grd", "limit": 100}),
        httpx.get(f"{gateway}/backends"),
        httpx.get(f"{gateway}/collections/sentinel-1-grd/items/{item['id']}"),
        httpx.get(item["assets"]["product"]["href"]),
        httpx.get(f"{gateway}/download/sentinel-1-grd/{item['id']}/nope"),
    ]
    for answer in answers:
        assert password.encode() not in answer.content, answer.url
        assert password not in str(answer.headers), answer.url
