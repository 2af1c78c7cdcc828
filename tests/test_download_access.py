"""Downloads obey the access policy: signed-in users (real tokens of a local OIDC issuer) get
only the collections and backends their entitlements open.

``sentinel-2-l2a`` needs the ``vo.example.eu`` member entitlement; the DHuS backend's copies
are for the ``vo.vault.eu`` members only, the CDSE copies for every entitled user.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from conftest import Archive, MakeFederation
from factories import series
from oidc_issuer import VO_MEMBER, TestIssuer, serving_issuers

from adapters.cdse_odata.emulator import TOKEN_PATH

ITEMS = series(1)
NAME = ITEMS[0]["id"]
VAULT_ROLE = "urn:mace:egi.eu:group:vo.vault.eu:role=member#aai.egi.eu"
DHUS_PASSWORD, CDSE_PASSWORD = "dhus-access-Pa55-7b", "cdse-access-Pa55-7b"
SIZE = 100_000


@dataclass
class World:
    issuer: TestIssuer
    url: str

    def bearer(self, *entitlements: str) -> dict[str, str]:
        sub = self.issuer.user(entitlements=list(entitlements)).sub
        return {"Authorization": f"Bearer {self.issuer.token(sub)}"}

    def get(self, headers: dict[str, str], query: str = "") -> httpx.Response:
        url = f"{self.url}/download/sentinel-2-l2a/{NAME}/product{query}"
        response = httpx.get(url, headers=headers | {"Range": "bytes=0-99"}, timeout=30)
        assert DHUS_PASSWORD not in response.text and CDSE_PASSWORD not in response.text
        return response


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert DHUS_PASSWORD not in caplog.text and CDSE_PASSWORD not in caplog.text


@pytest.fixture(scope="module")
def world(make_module_federation: MakeFederation) -> Iterator[World]:
    with serving_issuers(1) as (issuer,), pytest.MonkeyPatch.context() as env:
        env.setenv("T7B_A_DHUS_USER", "robot")
        env.setenv("T7B_A_DHUS_PASS", DHUS_PASSWORD)
        env.setenv("T7B_A_CDSE_USER", "robot@example.eu")
        env.setenv("T7B_A_CDSE_PASS", CDSE_PASSWORD)
        auth = {
            "issuers": [{"url": issuer.url, "audience": "mqs", "userinfo": True}],
            "collections": {"sentinel-2-l2a": {"entitlements": [VO_MEMBER]}},
            "backends": {"dhus": {"entitlements": [VAULT_ROLE]}},
        }
        fed = make_module_federation(
            auth=auth,
            dhus=Archive(
                ITEMS,
                kind="dhus",
                priority=5,
                emulator={"credentials": ("robot", DHUS_PASSWORD), "product_size": SIZE},
                auth={
                    "type": "basic",
                    "username_env": "T7B_A_DHUS_USER",
                    "password_env": "T7B_A_DHUS_PASS",
                },
            ),
            cdse=Archive(
                ITEMS,
                kind="cdse-odata",
                emulator={"users": {"robot@example.eu": CDSE_PASSWORD}, "product_size": SIZE},
                auth={
                    "type": "oauth2",
                    "token_url": "{url}" + TOKEN_PATH,
                    "client_id": "cdse-public",
                    "username_env": "T7B_A_CDSE_USER",
                    "password_env": "T7B_A_CDSE_PASS",
                },
            ),
        )
        yield World(issuer, fed.url)


def test_without_a_token_a_ruled_download_is_401(world: World) -> None:
    response = world.get({})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert set(response.json()) >= {"code", "description"}


def test_without_the_entitlement_it_is_403(world: World) -> None:
    assert world.get(world.bearer()).status_code == 403


def test_an_entitled_user_gets_the_copies_of_the_backends_they_may_see(world: World) -> None:
    member = world.bearer(VO_MEMBER)
    response = world.get(member)
    assert response.status_code == 206 and response.headers["x-mqs-backend"] == "cdse"
    assert world.get(member, "?backend=dhus").status_code == 404  # hidden from this user
    vault = world.bearer(VO_MEMBER, VAULT_ROLE)
    preferred = world.get(vault)
    assert preferred.status_code == 206 and preferred.headers["x-mqs-backend"] == "dhus"
    assert preferred.content == response.content  # one product, the same bytes
