"""OAuth2 tokens for CDSE downloads (adapters/oauth2.py) against the emulator's Keycloak.

The token provider runs against the CDSE emulator's token endpoint over a real HTTP seam
(``httpx.ASGITransport``); expiry is driven by an injected clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from factories import series

from adapters.base import BadBackendResponse
from adapters.cdse_odata.adapter import CdseOdataAdapter
from adapters.cdse_odata.emulator import TOKEN_PATH, create_emulator
from adapters.oauth2 import TokenError, TokenProvider
from mqs.config import BackendConfig
from mqs.query import SearchQuery

HOST = "https://catalogue.dataspace.copernicus.eu"
USER, PASSWORD, SECRET = "mqs-robot@example.eu", "s3cr3t-Pa55", "client-s3cr3t"
PASSWORD_AUTH = {
    "type": "oauth2",
    "token_url": f"{HOST}{TOKEN_PATH}",
    "client_id": "cdse-public",
    "username_env": "CDSE_USER",
    "password_env": "CDSE_PASSWORD",
}
CLIENT_AUTH = {
    "type": "oauth2",
    "token_url": f"{HOST}{TOKEN_PATH}",
    "client_id": "mqs",
    "client_secret_env": "CDSE_CLIENT_SECRET",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDSE_USER", USER)
    monkeypatch.setenv("CDSE_PASSWORD", PASSWORD)
    monkeypatch.setenv("CDSE_CLIENT_SECRET", SECRET)


def backend(auth: dict[str, Any] | None = PASSWORD_AUTH) -> BackendConfig:
    return BackendConfig(
        id="cdse",
        kind="cdse-odata",
        url=HOST,
        collections=["sentinel-2-l2a"],
        **({"auth": auth} if auth else {}),
    )


@asynccontextmanager
async def realm(**options: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A client reaching an emulated CDSE (one product) and the emulator app."""
    options = {"users": {USER: PASSWORD}, "clients": {"cdse-public": None, "mqs": SECRET}} | options
    app = create_emulator(series(1), **options)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=HOST) as client:
        yield client, app


async def downloads(client: httpx.AsyncClient, authorization: str) -> bool:
    product = (await client.get("/odata/v1/Products")).json()["value"][0]
    url = f"/odata/v1/Products({product['Id']})/$value"
    response = await client.head(url, headers={"Authorization": authorization})
    return response.status_code == 200


async def test_the_password_grant_gives_a_token_that_downloads_and_is_kept() -> None:
    clock = Clock()
    async with realm() as (client, app):
        tokens = TokenProvider(backend(), client, clock=clock)
        first = await tokens.authorization()
        assert first.startswith("Bearer ") and await downloads(client, first)
        clock.now += 500  # 600 s tokens are renewed 60 s before they expire
        assert await tokens.authorization() == first
    assert app.state.grants == ["password"]
    assert tokens.requests == 1


async def test_tokens_are_refreshed_shortly_before_expiry() -> None:
    clock = Clock()
    async with realm() as (client, app):
        tokens = TokenProvider(backend(), client, clock=clock)
        first = await tokens.token()
        clock.now += 541
        second = await tokens.token()
        assert second != first and await downloads(client, f"Bearer {second}")
        clock.now += 3601  # the refresh token is dead too: a new grant
        third = await tokens.token()
        assert third not in (first, second)
    assert app.state.grants == ["password", "refresh_token", "password"]


async def test_a_refused_refresh_falls_back_to_a_new_grant() -> None:
    clock = Clock()
    async with realm() as (client, app):
        tokens = TokenProvider(backend(), client, clock=clock)
        await tokens.token()
        app.state.catalogue.keycloak.refresh.clear()  # the realm ended the session
        clock.now += 590
        assert await downloads(client, await tokens.authorization())
    assert app.state.grants == ["password", "refresh_token", "password"]


async def test_client_credentials_without_refresh_token() -> None:
    clock = Clock()
    async with realm() as (client, app):
        tokens = TokenProvider(backend(CLIENT_AUTH), client, clock=clock)
        assert await downloads(client, await tokens.authorization())
        clock.now += 590
        assert await downloads(client, await tokens.authorization())
    assert app.state.grants == ["client_credentials", "client_credentials"]


async def test_concurrent_callers_share_one_token_request() -> None:
    clock = Clock()
    async with realm() as (client, app):
        tokens = TokenProvider(backend(), client, clock=clock)
        got = await asyncio.gather(*(tokens.token() for _ in range(25)))
        assert len(set(got)) == 1 and app.state.token_requests == 1
        clock.now += 590
        renewed = await asyncio.gather(*(tokens.token() for _ in range(25)))
        assert len(set(renewed)) == 1 and renewed[0] != got[0]
    assert app.state.grants == ["password", "refresh_token"]


async def test_wrong_credentials_are_refused_without_leaking_them(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CDSE_PASSWORD", "wr0ng-Pa55")
    async with realm() as (client, _):
        tokens = TokenProvider(backend(), client)
        with pytest.raises(BadBackendResponse) as refused:
            await tokens.token()
    assert refused.value.status == 401
    shown = f"{refused.value} {refused.value!r} {tokens!r} {caplog.text}"
    for secret in ("wr0ng-Pa55", PASSWORD, USER, SECRET):
        assert secret not in shown


async def test_tokens_never_show_in_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    async with realm() as (client, app):
        tokens = TokenProvider(backend(), client, clock=clock)
        access = await tokens.token()
        app.state.catalogue.keycloak.refresh.clear()
        clock.now += 590
        await tokens.token()
    shown = f"{tokens!r} {tokens._token!r} {caplog.text}"
    assert access not in shown and PASSWORD not in shown and "refused" in caplog.text


async def test_missing_environment_or_config_is_a_token_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CDSE_PASSWORD")
    async with realm() as (client, app):
        with pytest.raises(TokenError, match="username/password not set"):
            await TokenProvider(backend(), client).token()
        monkeypatch.delenv("CDSE_CLIENT_SECRET")
        with pytest.raises(TokenError, match="client secret not set"):
            await TokenProvider(backend(CLIENT_AUTH), client).token()
        with pytest.raises(TokenError, match="no oauth2 auth"):
            TokenProvider(backend(None), client)
    assert app.state.token_requests == 0


@pytest.mark.parametrize(
    "answer",
    [
        {"token_type": "Bearer", "expires_in": 300},
        {"access_token": "abc", "token_type": "mac", "expires_in": 300},
        ["not", "an", "object"],
    ],
)
async def test_odd_token_answers_are_token_errors(answer: Any) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(TokenError, match="token endpoint answered"):
            await TokenProvider(backend(), client).token()


async def test_the_adapter_gives_a_bearer_for_downloads_and_searches_without_one() -> None:
    async with realm() as (client, app):
        adapter = CdseOdataAdapter(backend(), client)
        assert await downloads(client, await adapter.bearer())
        page = await adapter.search(SearchQuery(), None, 10)
        assert len(page.hits) == 1  # searching is public: no token asked for it
        assert app.state.token_requests == 1
        with pytest.raises(TokenError, match="downloads need auth"):
            await CdseOdataAdapter(backend(None), client).bearer()
