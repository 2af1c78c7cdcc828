"""The pure parts of mqs/download.py: which URLs get a backend's credentials, which hrefs move."""

from __future__ import annotations

from typing import Any

import pytest

from mqs.config import BackendConfig
from mqs.download import proxy_assets, sources, under

ROOT = "https://dhr1.cesnet.cz/dhus"
BASIC = {"type": "basic", "username_env": "U", "password_env": "P"}


@pytest.mark.parametrize(
    "href, inside",
    [
        pytest.param(f"{ROOT}/odata/v1/Products('a')/$value", True, id="below"),
        pytest.param(
            "HTTPS://DHR1.cesnet.cz:443/dhus/odata/v1/x", True, id="same-origin-spelt-out"
        ),
        pytest.param(ROOT, True, id="the-root-itself"),
        pytest.param("https://dhr1.cesnet.cz/dhus-other/x", False, id="sibling-path"),
        pytest.param("https://dhr1.cesnet.cz/x", False, id="above"),
        pytest.param("https://dhr1.cesnet.cz:8443/dhus/x", False, id="other-port"),
        pytest.param("http://dhr1.cesnet.cz/dhus/x", False, id="other-scheme"),
        pytest.param("https://dhr1.cesnet.cz.evil.eu/dhus/x", False, id="other-host"),
        pytest.param("https://u:p@dhr1.cesnet.cz/dhus/x", False, id="credentials-in-url"),
        pytest.param("https://dhr1.cesnet.cz/dhus/../admin", False, id="dot-dot"),
        pytest.param("https://dhr1.cesnet.cz/dhus/%2E%2E/admin", False, id="encoded-dot-dot"),
        pytest.param("https://dhr1.cesnet.cz/dhus/..%2fadmin", False, id="encoded-slash"),
        pytest.param("https://dhr1.cesnet.cz/dhus/..%5Cadmin", False, id="encoded-backslash"),
        pytest.param("https://dhr1.cesnet.cz/dhus/..\\admin", False, id="backslash"),
        pytest.param("https://dhr1.cesnet.cz/dhus/x\t", False, id="tab-httpx-refuses"),
        pytest.param("https://dhr1.cesnet.cz/dhus/x\r\nHost: a", False, id="crlf"),
        pytest.param("https://dhr1.cesnet.cz%2f@evil.eu/dhus/x", False, id="host-parsers-differ"),
        pytest.param(f"{ROOT}/odata/v1/Products('a')/$value?x=%2F", True, id="slash-in-query"),
        pytest.param("s3://eodata/Sentinel-2/x", False, id="s3"),
        pytest.param("https://dhr1.cesnet.cz:99999/dhus/x", False, id="bad-port"),
        pytest.param("not a url", False, id="garbage"),
    ],
)
def test_credentials_go_only_below_the_backend_url(href: str, inside: bool) -> None:
    assert under(href, ROOT) is inside


def backend(bid: str, url: str, priority: int = 0, auth: dict[str, Any] | None = None) -> Any:
    return BackendConfig(
        id=bid, kind="stac", url=url, priority=priority, collections=["c"], auth=auth
    )


DHUS = backend("dhus", ROOT, 5, BASIC)
CDSE = backend("cdse", "https://catalogue.dataspace.copernicus.eu", 3, BASIC)
EODC = backend("eodc", "https://stac.eodc.eu/api/v1", 9)
PRODUCT = f"{ROOT}/odata/v1/Products('a')/$value"
CDSE_PRODUCT = "https://catalogue.dataspace.copernicus.eu/odata/v1/Products(b)/$value"


def item(holders: list[str], **assets: Any) -> dict[str, Any]:
    props = {"federation:backends": holders}
    return {"id": "S2A_X", "collection": "c", "properties": props, "assets": assets}


def test_hrefs_of_credentialed_backends_move_and_others_stay() -> None:
    alternates = {
        "cdse": {"href": CDSE_PRODUCT, "title": "CDSE"},
        "s3": {"href": "s3://eodata/x"},  # CDSE's own S3 path: not a backend of the federation
        "eodc": {"href": "https://data.eodc.eu/x.zip"},  # a public backend's copy
    }
    given = item(["dhus", "cdse", "eodc"], product={"href": PRODUCT, "alternate": alternates})
    moved = proxy_assets(given, "https://gw/", [DHUS, CDSE, EODC])["assets"]["product"]
    assert moved["href"] == "https://gw/download/c/S2A_X/product"
    assert moved["alternate"]["cdse"] == {
        "href": "https://gw/download/c/S2A_X/product?backend=cdse",
        "title": "CDSE",
    }
    assert moved["alternate"]["s3"] == alternates["s3"]
    assert moved["alternate"]["eodc"] == alternates["eodc"]
    assert given["assets"]["product"]["href"] == PRODUCT  # the input is left as it was


def test_a_public_item_is_returned_untouched() -> None:
    given = item(["eodc"], product={"href": "https://data.eodc.eu/x.zip"})
    assert proxy_assets(given, "https://gw/", [DHUS, EODC]) == given


def test_sources_are_the_backends_copies_best_first_and_never_foreign_urls() -> None:
    alternates = {
        "cdse": {"href": CDSE_PRODUCT},
        "eodc": {"href": "https://elsewhere.example.com/x.zip"},  # not under eodc's URL
    }
    given = item(["dhus", "cdse", "eodc"], product={"href": PRODUCT, "alternate": alternates})
    found = sources(given, "product", {b.id: b for b in (DHUS, CDSE, EODC)})
    assert [(s.backend.id, s.href) for s in found] == [("dhus", PRODUCT), ("cdse", CDSE_PRODUCT)]
    assert sources(given, "missing", {"dhus": DHUS}) == []
