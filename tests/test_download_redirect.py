"""Downloads that the backend redirects, as CDSE's catalogue does for ``$value``.

The real catalogue (catalogue.dataspace.copernicus.eu) answers a product download with a 301
to its download host, which wants the same bearer token. The gateway follows a redirect only
to the backend's own URL or an origin listed in ``auth.download_origins``; anywhere else that
copy fails and neither the request nor the credentials go there.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import series

from adapters.cdse_odata.emulator import TOKEN_PATH
from mqs.serving import bound_socket, serving_in_thread, url_of

ITEMS = series(1)
NAME = ITEMS[0]["id"]
USER, PASSWORD = "robot@mqs.example.eu", "cdse-redirect-Pa55"
SIZE = 256 * 1024 + 7


class Host:
    """The CDSE emulator's download host: the same app on another origin, counting requests."""

    def __init__(self) -> None:
        self.sock = bound_socket()
        self.url = url_of(self.sock)
        self.paths: list[str] = []
        self.authorized: list[bool] = []

    def counting(self, app: Any) -> Any:
        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.paths.append(scope["path"])
                headers = dict(scope["headers"])
                self.authorized.append(b"authorization" in headers)
            await app(scope, receive, send)

        return asgi


@pytest.fixture
def host() -> Iterator[Host]:
    yield Host()


def _federation(
    make: MakeFederation, host: Host, origins: list[str], monkeypatch: pytest.MonkeyPatch
) -> LiveFederation:
    monkeypatch.setenv("REDIR_CDSE_USER", USER)
    monkeypatch.setenv("REDIR_CDSE_PASS", PASSWORD)
    auth = {
        "type": "oauth2",
        "token_url": "{url}" + TOKEN_PATH,
        "client_id": "cdse-public",
        "username_env": "REDIR_CDSE_USER",
        "password_env": "REDIR_CDSE_PASS",
        "download_origins": origins,
    }
    fed = make(
        cdse=Archive(
            ITEMS,
            kind="cdse-odata",
            emulator={"users": {USER: PASSWORD}, "product_size": SIZE},
            auth=auth,
        ),
    )
    emulator = fed.emulators["cdse"]
    emulator.state.catalogue.download_host = host.url
    return fed


def _direct(fed: LiveFederation, host: Host) -> bytes:
    """The product as a CDSE user gets it: token, catalogue, 301, download host."""
    root = fed.backend_urls["cdse"]
    form = {"grant_type": "password", "client_id": "cdse-public"}
    token = httpx.post(f"{root}{TOKEN_PATH}", data=form | {"username": USER, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    product = httpx.get(f"{root}/odata/v1/Products", params={"$filter": f"Name eq '{NAME}.SAFE'"})
    url = f"{root}/odata/v1/Products({product.json()['value'][0]['Id']})/$value"
    first = httpx.get(url, headers=headers)
    assert first.status_code == 301 and first.headers["location"].startswith(host.url)
    return httpx.get(first.headers["location"], headers=headers).content


def test_a_redirect_to_a_listed_download_origin_is_followed_with_the_credentials(
    make_federation: MakeFederation,
    host: Host,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fed = _federation(make_federation, host, [host.url], monkeypatch)
    with serving_in_thread([(host.counting(fed.emulators["cdse"]), host.sock)]):
        url = f"{fed.url}/download/sentinel-2-l2a/{NAME}/product"
        answer = httpx.get(url, timeout=30)
        ranged = httpx.get(url, headers={"Range": "bytes=1000-1999"}, timeout=30)
        expected = _direct(fed, host)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-mqs-backend"] == "cdse"
    assert len(answer.content) == SIZE
    assert hashlib.sha256(answer.content).digest() == hashlib.sha256(expected).digest()
    assert ranged.status_code == 206 and ranged.content == expected[1000:2000]
    assert host.paths[:2] and all(p.endswith("/$value") for p in host.paths)
    assert all(host.authorized)  # the download host got the token, as real CDSE requires
    assert PASSWORD not in caplog.text and PASSWORD not in answer.headers.get("location", "")


def test_a_redirect_elsewhere_fails_that_copy_and_sends_nothing_there(
    make_federation: MakeFederation, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = _federation(make_federation, host, [], monkeypatch)  # the host is not listed
    with serving_in_thread([(host.counting(fed.emulators["cdse"]), host.sock)]):
        answer = httpx.get(f"{fed.url}/download/sentinel-2-l2a/{NAME}/product", timeout=30)
    assert answer.status_code == 502, answer.text
    body = answer.json()
    assert body["code"] and body["federation:backends"] == {"cdse": "bad-response"}
    assert host.paths == []  # neither the request nor the token went to the unlisted origin
    assert host.url not in answer.text


def test_download_origins_must_be_origins() -> None:
    from mqs.config import BackendAuth

    with pytest.raises(ValueError, match="must be an origin"):
        BackendAuth(type="bearer", token_env="T", download_origins=["https://h.eu/path"])
    with pytest.raises(ValueError, match="must be an origin"):
        BackendAuth(type="bearer", token_env="T", download_origins=["ftp://h.eu"])
    ok = BackendAuth(type="bearer", token_env="T", download_origins=["https://Download.EU:8443"])
    assert ok.download_origins == ["https://download.eu:8443"]
