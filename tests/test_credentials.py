"""Backend credentials (mqs/credentials.py, adapters/oauth2.py): shared OAuth2 tokens, static ones.

OAuth2 tokens come from the CDSE emulator's Keycloak token endpoint and are shared through a
real Redis (127.0.0.1:6379, a key prefix of this test run), so several workers ask the endpoint
once; the emulator's counters prove it. Expiry is driven by one injected clock shared with the
emulator, never by sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from factories import series

from adapters.cdse_odata.emulator import TOKEN_PATH, create_emulator
from adapters.oauth2 import TokenError, TokenProvider
from mqs.cache import MemoryCache, RedisCache
from mqs.config import BackendConfig, ConfigError, Settings, parse_config
from mqs.credentials import StaticCredentials, credentials_for
from mqs.runtime import open_runtime
from mqs.serving import bound_socket, serving_in_thread

REDIS = "redis://127.0.0.1:6379/0"
HOST = "https://catalogue.dataspace.copernicus.eu"
USER, PASSWORD = "robot@mqs.example.eu", "cdse-Pa55-for-7b-tests"
BASIC_PASSWORD, BEARER = "dhus-Pa55-for-7b-tests", "static-bearer-7b-0123456789"
SECRETS = (PASSWORD, BASIC_PASSWORD, BEARER)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """The secrets in the environment; afterwards, in no log line."""
    monkeypatch.setenv("T7B_CDSE_USER", USER)
    monkeypatch.setenv("T7B_CDSE_PASS", PASSWORD)
    monkeypatch.setenv("T7B_DHUS_USER", "mqs-robot")
    monkeypatch.setenv("T7B_DHUS_PASS", BASIC_PASSWORD)
    monkeypatch.setenv("T7B_BEARER", BEARER)
    caplog.set_level(logging.DEBUG)
    yield
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert not any(secret in logged for secret in SECRETS)


def oauth2_backend(url: str = HOST) -> BackendConfig:
    auth = {
        "type": "oauth2",
        "token_url": f"{url}{TOKEN_PATH}",
        "client_id": "cdse-public",
        "username_env": "T7B_CDSE_USER",
        "password_env": "T7B_CDSE_PASS",
    }
    return BackendConfig(
        id="cdse", kind="cdse-odata", url=url, collections=["sentinel-2-l2a"], auth=auth
    )


@asynccontextmanager
async def workers(
    count: int, clock: Clock, **realm: Any
) -> AsyncIterator[tuple[list[TokenProvider], Any]]:
    """``count`` token providers with their own Redis clients, and the emulated realm."""
    app = create_emulator(series(1), users={USER: PASSWORD}, clock=clock, **realm)
    prefix = f"mqs-test-7b:{uuid.uuid4().hex}:"
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=HOST)
        )
        providers = []
        for _ in range(count):
            cache = RedisCache(REDIS, prefix=prefix)
            stack.push_async_callback(cache.close)
            providers.append(TokenProvider(oauth2_backend(), client, cache=cache, clock=clock))
        yield providers, app.state


async def test_two_gateway_runtimes_on_one_redis_ask_the_token_endpoint_once() -> None:
    realm = create_emulator(series(1), users={USER: PASSWORD})
    sock = bound_socket()
    with serving_in_thread([(realm, sock)]) as (url,):
        raw = {
            "collections": {"sentinel-2-l2a": {}},
            "cache": {"url": REDIS},
            "backends": [oauth2_backend(url).model_dump(exclude_none=True)],
        }
        config, settings = parse_config(raw), Settings(token_secret="t")
        async with open_runtime(config, settings) as one, open_runtime(config, settings) as two:
            first = await one.credentials["cdse"].authorization()
            second = await two.credentials["cdse"].authorization()
            assert first == second and first.startswith("Bearer ")
            assert realm.state.token_requests == 1
            headers = {"Authorization": second}
            product = httpx.get(f"{url}/odata/v1/Products").json()["value"][0]
            download = f"{url}/odata/v1/Products({product['Id']})/$value"
            assert httpx.head(download, headers=headers).status_code == 200


async def test_concurrent_workers_share_one_grant() -> None:
    async with workers(4, Clock()) as (providers, realm):
        tokens = await asyncio.gather(*(p.token() for p in providers for _ in range(5)))
    assert len(set(tokens)) == 1
    assert realm.token_requests == 1 and realm.grants == ["password"]


async def test_a_token_is_refreshed_before_expiry_once_for_every_worker() -> None:
    clock = Clock()
    async with workers(2, clock, token_lifetime_s=600) as ((one, two), realm):
        first = await one.token()
        assert await two.token() == first
        clock.now += 530  # still valid, but within the 60 s margin soon: kept
        assert await one.token() == first
        clock.now += 15  # 55 s left: renewed before it expires
        renewed = await two.token()
        assert renewed != first
        assert await one.token() == renewed  # the other worker takes it from the cache
    assert realm.grants == ["password", "refresh_token"]


async def test_a_token_a_backend_refused_is_replaced_for_every_worker() -> None:
    async with workers(2, Clock()) as ((one, two), realm):
        first = await one.token()
        assert await two.token() == first
        assert await two.reject(f"Bearer {first}") is True
        second = await two.token()
        assert second != first
        await one.reject(f"Bearer {first}")  # the other worker is refused the old one too
        assert await one.token() == second
    assert realm.grants == ["password", "refresh_token"]


async def test_without_redis_each_worker_still_gets_tokens() -> None:
    app = create_emulator(series(1), users={USER: PASSWORD})
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=HOST) as client:
        cache = RedisCache("redis://127.0.0.1:1/0", timeout_s=0.2)  # nothing listens there
        provider = TokenProvider(oauth2_backend(), client, cache=cache)
        assert (await provider.authorization()).startswith("Bearer ")
        await cache.close()


async def test_a_refused_grant_is_an_error_without_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("T7B_CDSE_PASS", "wrong-" + PASSWORD)
    async with workers(1, Clock()) as ((provider,), _):
        with pytest.raises(Exception) as refused:
            await provider.token()
        assert PASSWORD not in str(refused.value) and PASSWORD not in repr(provider)


def static_backend(auth: dict[str, Any]) -> BackendConfig:
    url, collections = "https://dhr1.cesnet.cz", ["sentinel-2-l2a"]
    return BackendConfig(id="cesnet", kind="dhus", url=url, collections=collections, auth=auth)


async def test_basic_and_bearer_credentials_come_from_the_environment() -> None:
    basic = StaticCredentials(
        static_backend(
            {"type": "basic", "username_env": "T7B_DHUS_USER", "password_env": "T7B_DHUS_PASS"}
        )
    )
    value = await basic.authorization()
    assert value.startswith("Basic ")
    assert base64.b64decode(value[6:]).decode() == f"mqs-robot:{BASIC_PASSWORD}"
    assert await basic.reject(value) is False  # nothing else to try
    bearer = StaticCredentials(static_backend({"type": "bearer", "token_env": "T7B_BEARER"}))
    assert await bearer.authorization() == f"Bearer {BEARER}"
    assert not any(s in repr(basic) + repr(bearer) for s in SECRETS)


async def test_missing_environment_variables_are_an_error_naming_no_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("T7B_BEARER")
    bearer = StaticCredentials(static_backend({"type": "bearer", "token_env": "T7B_BEARER"}))
    with pytest.raises(TokenError, match="not set"):
        await bearer.authorization()


def test_every_backend_with_auth_gets_credentials_of_its_kind() -> None:
    basic = {"type": "basic", "username_env": "T7B_DHUS_USER", "password_env": "T7B_DHUS_PASS"}
    public = static_backend(basic).model_copy(update={"id": "public", "auth": None})
    found = credentials_for(
        [static_backend(basic), oauth2_backend(), public], httpx.AsyncClient(), MemoryCache()
    )
    assert set(found) == {"cesnet", "cdse"}
    assert isinstance(found["cesnet"], StaticCredentials)
    assert isinstance(found["cdse"], TokenProvider)


ISSUE_EXAMPLE = {  # the backend auth of the federation file as issue 7 spells it
    "type": "oauth2",
    "token_url": f"{HOST}{TOKEN_PATH}",
    "grant": "password",
    "client_id": "cdse-public",
    "username_env": "T7B_CDSE_USER",
    "password_env": "T7B_CDSE_PASS",
}


def federation_file(auth: dict[str, Any]) -> dict[str, Any]:
    backend = {"id": "cdse", "kind": "cdse-odata", "url": HOST, "collections": ["sentinel-2-l2a"]}
    return {"collections": {"sentinel-2-l2a": {}}, "backends": [backend | {"auth": auth}]}


PASSWORD_ONLY = {"type": "oauth2", "token_url": f"{HOST}/t", "client_id": "c", "grant": "password"}
BAD_AUTH = [
    pytest.param(
        ISSUE_EXAMPLE | {"grant": "client_credentials"},
        "needs client_secret_env",
        id="client-credentials-without-secret",
    ),
    pytest.param(
        ISSUE_EXAMPLE | {"grant": "refresh_token"}, "needs refresh_token_env", id="no-token"
    ),
    pytest.param(
        PASSWORD_ONLY | {"username_env": "U"},
        "needs username_env and password_env",
        id="password-without-password",
    ),
    pytest.param(
        {"type": "basic", "username_env": "U", "password_env": "P", "grant": "password"},
        "for oauth2 auth only",
        id="grant-on-basic",
    ),
    pytest.param(
        ISSUE_EXAMPLE | {"password": "inline"},
        "Extra inputs are not permitted",
        id="a-secret-in-the-file",
    ),
]


@pytest.mark.parametrize("auth, message", BAD_AUTH)
def test_the_grant_is_checked_when_the_file_is_loaded(auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"backends\[0\]\.auth") as refused:
        parse_config(federation_file(auth))
    assert message in str(refused.value)


async def test_the_issue_example_and_an_explicit_client_credentials_grant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert parse_config(federation_file(ISSUE_EXAMPLE)).backends[0].auth is not None
    monkeypatch.setenv("T7B_SECRET", "client-secret-7b")
    explicit = ISSUE_EXAMPLE | {"grant": "client_credentials", "client_id": "mqs"}
    explicit["client_secret_env"] = "T7B_SECRET"
    backend = parse_config(federation_file(explicit)).backends[0]
    app = create_emulator(series(1), clients={"mqs": "client-secret-7b"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=HOST) as client:
        assert (await TokenProvider(backend, client).authorization()).startswith("Bearer ")
    assert app.state.grants == ["client_credentials"]  # although a username is configured


async def test_an_offline_refresh_token_from_the_environment_gets_access_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    app = create_emulator(series(1), users={USER: PASSWORD}, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=HOST) as client:
        form = {"grant_type": "password", "client_id": "cdse-public"}
        form |= {"username": USER, "password": PASSWORD}
        offline = (await client.post(TOKEN_PATH, data=form)).json()["refresh_token"]
        monkeypatch.setenv("T7B_OFFLINE", offline)
        auth = {"type": "oauth2", "token_url": f"{HOST}{TOKEN_PATH}", "client_id": "cdse-public"}
        auth |= {"grant": "refresh_token", "refresh_token_env": "T7B_OFFLINE"}
        backend = parse_config(federation_file(auth)).backends[0]
        tokens = TokenProvider(backend, client, clock=clock)
        first = await tokens.token()
        clock.now += 590  # renewed with the refresh token the endpoint answered with
        assert await tokens.token() != first
    assert app.state.grants == ["password", "refresh_token", "refresh_token"]
    assert offline not in repr(tokens)
