"""The download endpoint over a Basic-auth DHuS and a Keycloak-protected CDSE (live emulators).

Each federation holds the same products in a DHuS mirror (HTTP Basic), the CDSE catalogue
(downloads need a bearer token from its Keycloak) and a public STAC API. Every answer the
tests get and every log line captured is scanned for the backends' secrets at the end of each
test (``no_secret_leaks``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import series

from adapters.cdse_odata.emulator import TOKEN_PATH
from adapters.faults import Faults

ITEMS = series(2)
NAME = ITEMS[0]["id"]
COLLECTION = "sentinel-2-l2a"
SIZE = 3 * 1024 * 1024 + 12345  # not a multiple of any block or chunk size
DHUS_USER, DHUS_PASSWORD = "mqs-robot", "dhus-Pa55-w0rd-7b"
CDSE_USER, CDSE_PASSWORD = "robot@mqs.example.eu", "cdse-Pa55-w0rd-7b"
DHUS_AUTH = {"type": "basic", "username_env": "T7B_DHUS_USER", "password_env": "T7B_DHUS_PASS"}
CDSE_AUTH = {
    "type": "oauth2",
    "token_url": "{url}" + TOKEN_PATH,
    "client_id": "cdse-public",
    "username_env": "T7B_CDSE_USER",
    "password_env": "T7B_CDSE_PASS",
}
SECRETS = (
    DHUS_PASSWORD,
    CDSE_PASSWORD,
    base64.b64encode(f"{DHUS_USER}:{DHUS_PASSWORD}".encode()).decode(),
)
PRODUCT_VALUE = r"/Products\('[^']+'\)/\$value$"  # DHuS product downloads (not manifests)
SEEN: list[bytes] = []  # every answer of the current test: headers and body
FEDERATIONS: list[LiveFederation] = []  # every one made here (their realms' tokens)


@pytest.fixture(autouse=True)
def no_secret_leaks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Backend credentials in the environment; afterwards none may be in an answer or log."""
    monkeypatch.setenv("T7B_DHUS_USER", DHUS_USER)
    monkeypatch.setenv("T7B_DHUS_PASS", DHUS_PASSWORD)
    monkeypatch.setenv("T7B_CDSE_USER", CDSE_USER)
    monkeypatch.setenv("T7B_CDSE_PASS", CDSE_PASSWORD)
    caplog.set_level(logging.DEBUG)
    SEEN.clear()
    yield
    assert SEEN, "the test made no request through the gateway"
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    tokens = [t for f in FEDERATIONS for t in f.emulators["cdse"].state.catalogue.keycloak.issued]
    for secret in (*SECRETS, *tokens):
        assert secret not in logged
        assert not any(secret.encode() in seen for seen in SEEN)


def call(method: str, url: str, **options: Any) -> httpx.Response:
    response = httpx.request(method, url, timeout=30, **options)
    SEEN.append(str(list(response.headers.raw)).encode() + response.content)
    return response


def federation(
    make: MakeFederation,
    *,
    dhus_faults: Faults | None = None,
    cdse_first: bool = False,
    size: int = SIZE,
) -> LiveFederation:
    fed = make(
        dhus=Archive(
            ITEMS,
            kind="dhus",
            priority=5,
            emulator={"credentials": (DHUS_USER, DHUS_PASSWORD), "product_size": size},
            auth=DHUS_AUTH,
            faults=dhus_faults,
        ),
        cdse=Archive(
            ITEMS,
            kind="cdse-odata",
            priority=9 if cdse_first else 3,
            emulator={"users": {CDSE_USER: CDSE_PASSWORD}, "product_size": size},
            auth=CDSE_AUTH,
        ),
        public=Archive(ITEMS + series(1, tiles=("33UWQ",)), kind="stac", priority=1),
    )
    FEDERATIONS.append(fed)
    return fed


def product_url(fed: LiveFederation, backend: str | None = None) -> str:
    url = f"{fed.url}/download/{COLLECTION}/{NAME}/product"
    return f"{url}?backend={backend}" if backend else url


def direct_bytes(fed: LiveFederation, backend: str) -> bytes:
    """The product as the backend itself serves it, fetched through its own API."""
    root = fed.backend_urls[backend]
    if backend == "dhus":
        auth = (DHUS_USER, DHUS_PASSWORD)
        params = {"$filter": f"Name eq '{NAME}'", "$format": "json"}
        found = httpx.get(f"{root}/odata/v1/Products", params=params, auth=auth).json()
        uuid = found["d"]["results"][0]["Id"]
        return httpx.get(f"{root}/odata/v1/Products('{uuid}')/$value", auth=auth).content
    params = {"$filter": f"Name eq '{NAME}.SAFE'"}
    product = httpx.get(f"{root}/odata/v1/Products", params=params).json()["value"][0]
    form = {"grant_type": "password", "client_id": "cdse-public"}
    form |= {"username": CDSE_USER, "password": CDSE_PASSWORD}
    token = httpx.post(f"{root}{TOKEN_PATH}", data=form).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{root}/odata/v1/Products({product['Id']})/$value", headers=headers).content


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def shared(make_module_federation: MakeFederation) -> LiveFederation:
    """One federation for the module's read-only tests."""
    return federation(make_module_federation)


@pytest.fixture(scope="module")
def full(shared: LiveFederation) -> dict[str, bytes]:
    """The product as each credentialed backend serves it directly."""
    return {backend: direct_bytes(shared, backend) for backend in ("dhus", "cdse")}


def test_credentialed_hrefs_point_at_the_gateway_and_public_ones_stay_direct(
    make_federation: MakeFederation,
) -> None:
    fed = federation(make_federation)
    page = call("GET", f"{fed.url}/search", params={"collections": COLLECTION}).json()
    items = {item["id"]: item for item in page["features"]}
    merged = items[NAME]
    assert merged["properties"]["federation:backends"] == ["dhus", "cdse", "public"]
    product = merged["assets"]["product"]
    assert product["href"] == product_url(fed)
    assert product["alternate"]["cdse"]["href"] == product_url(fed, "cdse")
    public = product["alternate"]["public"]["href"]
    assert public.startswith(fed.backend_urls["public"])  # a public copy stays direct
    assert merged["assets"]["thumbnail"]["href"].startswith(f"{fed.url}/download/")
    only_public = next(
        i for i in page["features"] if i["properties"]["federation:backends"] == ["public"]
    )
    assert only_public["assets"]["product"]["href"].startswith(fed.backend_urls["public"])
    single = call("GET", f"{fed.url}/collections/{COLLECTION}/items/{NAME}").json()
    hrefs = [a["href"] for a in single["assets"].values()]
    assert single["assets"]["product"]["href"] == product_url(fed)
    assert not any(h.startswith(fed.backend_urls["dhus"]) for h in hrefs)


def streamed_bytes(fed: LiveFederation, backend: str) -> float:
    """What the gateway's ``/metrics`` says it streamed of ``backend``'s copies."""
    text = call("GET", f"{fed.url}/metrics").text
    label = f'mqs_download_bytes_total{{backend="{backend}",collection="{COLLECTION}"}}'
    found = [line.split()[-1] for line in text.splitlines() if line.startswith(label)]
    return float(found[0]) if found else 0.0


def test_a_download_from_the_basic_auth_dhus_is_the_backends_own_bytes(
    make_federation: MakeFederation,
) -> None:
    fed = federation(make_federation)
    expected = direct_bytes(fed, "dhus")
    before = streamed_bytes(fed, "dhus")
    response = call("GET", product_url(fed), headers={"Origin": "https://portal.example.eu"})
    assert response.status_code == 200
    assert response.headers["x-mqs-backend"] == "dhus"
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == f'attachment; filename="{NAME}.zip"'
    assert response.headers["accept-ranges"] == "bytes"
    assert "content-encoding" not in response.headers  # bytes as the backend sent them
    exposed = response.headers["access-control-expose-headers"].lower()
    assert {"content-disposition", "x-mqs-backend"} <= set(exposed.replace(" ", "").split(","))
    assert sha(response.content) == sha(expected) and len(expected) == SIZE
    for _ in range(100):  # counted once the stream has ended, just after its last byte
        if streamed_bytes(fed, "dhus") - before == SIZE:
            break
        threading.Event().wait(0.01)
    assert streamed_bytes(fed, "dhus") - before == SIZE


def test_a_download_from_the_keycloak_cdse_uses_one_token(make_federation: MakeFederation) -> None:
    fed = federation(make_federation)
    expected = direct_bytes(fed, "cdse")
    realm = fed.emulators["cdse"].state
    asked_before = realm.token_requests
    for _ in range(3):
        response = call("GET", product_url(fed, "cdse"))
        assert response.status_code == 200 and response.headers["x-mqs-backend"] == "cdse"
        assert response.headers["content-type"] == "application/zip"
        assert f'filename="{NAME}.SAFE.zip"' in response.headers["content-disposition"]
        assert sha(response.content) == sha(expected)
    assert realm.token_requests - asked_before == 1  # one grant, kept for later downloads
    assert sha(expected) == sha(direct_bytes(fed, "dhus"))  # one product, the same bytes


@pytest.mark.parametrize("backend", ["dhus", "cdse"])
@pytest.mark.parametrize(
    "header, first, last",
    [
        pytest.param("bytes=0-0", 0, 0, id="first-byte"),
        pytest.param("bytes=1000-70000", 1000, 70000, id="middle"),
        pytest.param(f"bytes={SIZE - 10}-", SIZE - 10, SIZE - 1, id="open-end"),
        pytest.param("bytes=-100", SIZE - 100, SIZE - 1, id="suffix"),
        pytest.param(f"bytes=5-{SIZE * 2}", 5, SIZE - 1, id="past-the-end"),
    ],
)
def test_a_range_is_the_exact_slice(
    shared: LiveFederation, full: dict[str, bytes], backend: str, header: str, first: int, last: int
) -> None:
    response = call("GET", product_url(shared, backend), headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.content == full[backend][first : last + 1]


@pytest.mark.parametrize("backend", ["dhus", "cdse"])
def test_an_unsatisfiable_range_is_a_clear_416(shared: LiveFederation, backend: str) -> None:
    response = call("GET", product_url(shared, backend), headers={"Range": f"bytes={SIZE}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.json()["code"] == "RangeNotSatisfiable"


@pytest.mark.parametrize("backend", ["dhus", "cdse"])
def test_head_answers_the_headers_without_the_bytes(shared: LiveFederation, backend: str) -> None:
    response = call("HEAD", product_url(shared, backend))
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["x-mqs-backend"] == backend
    assert NAME in response.headers["content-disposition"]
    ranged = call("HEAD", product_url(shared, backend), headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.headers["content-length"] == "100"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_downloaded_bytes_never_run_as_a_page_of_the_gateway(
    shared: LiveFederation, method: str
) -> None:
    # whatever type a backend gives an asset, a browser neither sniffs nor runs it
    response = call(method, product_url(shared, "dhus"))
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"mode": "status", "status": 503}, id="503"),
        pytest.param({"mode": "status", "status": 500}, id="500"),
        pytest.param({"mode": "status", "status": 401}, id="401"),
        pytest.param({"mode": "status", "status": 403}, id="403"),
    ],
)
def test_a_copy_refused_before_the_first_byte_falls_back_to_the_next(
    make_federation: MakeFederation, fault: dict[str, Any]
) -> None:
    faults = Faults()
    fed = federation(make_federation, dhus_faults=faults)
    expected = direct_bytes(fed, "dhus")
    faults.set(**fault, only=PRODUCT_VALUE)  # DHuS searches still work; its downloads fail
    response = call("GET", product_url(fed), headers={"Range": "bytes=100-199"})
    assert response.status_code == 206 and response.headers["x-mqs-backend"] == "cdse"
    assert response.content == expected[100:200]
    assert faults.faulted >= 1


def test_a_refused_token_grant_falls_back_to_the_next_copy(
    make_federation: MakeFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T7B_CDSE_PASS", "not-the-password")
    fed = federation(make_federation, cdse_first=True)
    response = call("GET", product_url(fed), headers={"Range": "bytes=0-9"})
    assert response.status_code == 206 and response.headers["x-mqs-backend"] == "dhus"
    assert fed.emulators["cdse"].state.grants == ["password"]
    assert fed.emulators["cdse"].state.downloads == 0


def test_a_token_the_backend_stopped_accepting_is_renewed_once(
    make_federation: MakeFederation,
) -> None:
    fed = federation(make_federation, cdse_first=True)
    realm = fed.emulators["cdse"].state
    assert call("GET", product_url(fed), headers={"Range": "bytes=0-9"}).status_code == 206
    realm.catalogue.keycloak.access.clear()  # the realm revoked every access token
    response = call("GET", product_url(fed), headers={"Range": "bytes=0-9"})
    assert response.status_code == 206 and response.headers["x-mqs-backend"] == "cdse"
    assert realm.grants == ["password", "refresh_token"]


def test_when_every_copy_fails_the_answer_is_a_502_naming_them(
    make_federation: MakeFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults()
    fed = federation(make_federation, dhus_faults=faults)
    monkeypatch.setenv("T7B_CDSE_PASS", "not-the-password")
    faults.set("status", status=503, only=PRODUCT_VALUE)
    response = call("GET", product_url(fed))
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "BadGateway"
    assert body["federation:backends"] == {
        "dhus": "unavailable",
        "cdse": "auth",
        "public": "not-found",
    }


@pytest.mark.parametrize(
    "path, query",
    [
        pytest.param(f"{COLLECTION}/{NAME}/nope", "", id="unknown-asset"),
        pytest.param(
            f"{COLLECTION}/S2A_MSIL2A_20000101T000000_N0301_R079_T33UXQ_2/product",
            "",
            id="unknown-item",
        ),
        pytest.param(f"no-such-collection/{NAME}/product", "", id="unknown-collection"),
        pytest.param(f"{COLLECTION}/{NAME}/product", "?backend=nobody", id="unknown-backend"),
        pytest.param(
            f"{COLLECTION}/{NAME}/product", "?backend=public", id="backend-whose-copy-is-missing"
        ),
        pytest.param(f"{COLLECTION}/{quote(NAME)}/{quote('<script>')}", "", id="bad-asset-key"),
    ],
)
def test_what_is_not_there_is_a_404_stac_error(
    shared: LiveFederation, path: str, query: str
) -> None:
    response = call("GET", f"{shared.url}/download/{path}{query}")
    assert response.status_code == 404
    assert set(response.json()) >= {"code", "description"}
    assert response.json()["code"] == "NotFound"


def test_a_client_that_goes_away_closes_the_upstream_stream(
    make_federation: MakeFederation,
) -> None:
    fed = federation(make_federation, size=1024**3)  # far more than any socket buffer holds
    hub = fed.emulators["dhus"].state
    with httpx.stream("GET", product_url(fed), timeout=30) as response:
        assert response.status_code == 200
        first = next(response.iter_raw(65536))
        assert first and hub.open_downloads == 1
    SEEN.append(str(list(response.headers.raw)).encode() + first)
    for _ in range(200):  # the gateway notices the disconnect and closes its upstream
        if hub.open_downloads == 0:
            break
        threading.Event().wait(0.025)
    assert hub.open_downloads == 0


def test_a_backend_breaking_off_mid_stream_breaks_the_download_visibly(
    make_federation: MakeFederation, caplog: pytest.LogCaptureFixture
) -> None:
    faults = Faults()
    fed = federation(make_federation, dhus_faults=faults)
    faults.set("reset", times=1, only=PRODUCT_VALUE)  # half the product, then the line drops
    with pytest.raises(httpx.TransportError):  # never a short answer that looks complete
        httpx.get(product_url(fed), timeout=30)
    assert "download from dhus broke off" in caplog.text
    again = call("GET", product_url(fed), headers={"Range": "bytes=0-9"})
    assert again.status_code == 206 and again.headers["x-mqs-backend"] == "dhus"


def test_every_credentialed_asset_downloads_not_only_the_product(shared: LiveFederation) -> None:
    item = call("GET", f"{shared.url}/collections/{COLLECTION}/items/{NAME}").json()
    manifest = item["assets"]["manifest"]["href"]
    assert manifest.startswith(f"{shared.url}/download/")
    response = call("GET", manifest)
    assert response.status_code == 200 and response.headers["x-mqs-backend"] == "dhus"
    assert response.content.startswith(b"<?xml") and b"<xfdu:XFDU" in response.content
