"""What a user may see: entitlement and group rules, anonymous off, per-user rate limits.

``sentinel-2-l1c`` needs the ``vo.example.eu`` member entitlement, ``sentinel-1-grd`` membership
of the group ``vo.other.eu``; ``sentinel-2-l2a`` and ``sentinel-1-slc`` are open.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import Archive, MakeFederation
from factories import BASE_TIME, s2_item, s2_name, series
from leaks import Recorder, recording
from oidc_issuer import OTHER_VO_MEMBER, VO_MEMBER, TestIssuer, serving_issuers

from mqs.auth.ratelimit import MemoryBuckets, RedisBuckets, buckets_for
from mqs.cache import RedisCache
from mqs.serving import bound_socket, url_of

L1C_NAME = s2_name(BASE_TIME, level="L1C")
RULES = {
    "sentinel-2-l1c": {"entitlements": [VO_MEMBER]},
    "sentinel-1-grd": {"groups": ["vo.other.eu"]},
}
EODC_PASSWORD = "eodc-" + secrets.token_urlsafe(16)
VAULT_ROLE = "urn:mace:egi.eu:group:vo.vault.eu:role=member#aai.egi.eu"
VAULT_ONLY = s2_name(BASE_TIME, tile="33UWQ")
SLC_NAME = "S1A_IW_SLC__1SDV_20211024T050000_20211024T050027_040240_04C4C9_1A2B"


@dataclass
class World:
    issuer: TestIssuer
    recorder: Recorder
    urls: dict[str, str]  # gateway name -> URL

    def client(self, name: str) -> httpx.Client:
        return self.recorder.client(self.urls[name])

    def bearer(self, entitlements: list[str] | None = None, **user: Any) -> dict[str, str]:
        sub = self.issuer.user(entitlements=entitlements or [], **user).sub
        return {"Authorization": f"Bearer {self.issuer.token(sub)}"}


@pytest.fixture(scope="module")
def world(make_module_federation: MakeFederation) -> Iterator[World]:
    with (
        recording() as recorder,
        serving_issuers(1) as (issuer,),
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("MQS_TEST_EODC_USER", "eodc-robot")
        env.setenv("MQS_TEST_EODC_PASSWORD", EODC_PASSWORD)
        items = [*series(4), s2_item(L1C_NAME, BASE_TIME, collection="sentinel-2-l1c")]
        issuers = [{"url": issuer.url, "audience": "mqs", "userinfo": True}]
        basic = {"type": "basic", "username_env": "MQS_TEST_EODC_USER"}
        archive = Archive(items=items, auth=basic | {"password_env": "MQS_TEST_EODC_PASSWORD"})
        limit = {"requests_per_s": 0.2, "burst": 3, "anonymous_burst": 2}
        redis = {"url": "redis://127.0.0.1:6379/0"}
        urls = {
            "open": make_module_federation(
                auth={"issuers": issuers, "collections": RULES}, eodc=archive
            ).url,
            "closed": make_module_federation(
                auth={"anonymous": False, "issuers": issuers, "collections": RULES}, eodc=archive
            ).url,
            "limited": make_module_federation(
                auth={"issuers": issuers, "rate_limit": limit}, eodc=archive
            ).url,
        }
        shared = items[0]  # held by both archives
        vault_items = [shared, s2_item(VAULT_ONLY, BASE_TIME, collection="sentinel-2-l2a")]
        vault_items.append(s2_item(SLC_NAME, BASE_TIME, collection="sentinel-1-slc"))
        urls["tiered"] = make_module_federation(
            auth={"issuers": issuers, "backends": {"vault": {"entitlements": [VAULT_ROLE]}}},
            eodc=Archive(items=items, collections=["sentinel-2-l2a", "sentinel-2-l1c"]),
            vault=Archive(items=vault_items, priority=5),
        ).url
        for name in ("redis-1", "redis-2"):  # two gateway instances sharing one Redis
            urls[name] = make_module_federation(
                auth={"issuers": issuers, "rate_limit": limit}, cache=redis, eodc=archive
            ).url
        yield World(issuer, recorder, urls)


def ids(response: httpx.Response, key: str = "features") -> set[str]:
    assert response.status_code == 200, response.text
    return {doc["id"] for doc in response.json()[key]}


def collections_of(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {f["collection"] for f in response.json()["features"]}


# --- entitlement rules ----------------------------------------------------------------------


def test_collections_list_only_what_the_user_may_see(world: World) -> None:
    with world.client("open") as client:
        listing = [
            ids(client.get("/collections", headers=headers), "collections")
            for headers in ({}, world.bearer([VO_MEMBER]), world.bearer([OTHER_VO_MEMBER]))
        ]
    anonymous, member, other = listing
    assert anonymous == {"sentinel-2-l2a", "sentinel-1-slc"}
    assert member == anonymous | {"sentinel-2-l1c"}
    assert other == anonymous | {"sentinel-1-grd"}  # group vo.other.eu, from its entitlement


@pytest.mark.parametrize(
    "path",
    [
        "/collections/sentinel-2-l1c",
        "/collections/sentinel-2-l1c/items",
        f"/collections/sentinel-2-l1c/items/{L1C_NAME}",
    ],
)
def test_a_ruled_collection_is_401_without_token_403_without_rights(
    world: World, path: str
) -> None:
    with world.client("open") as client:
        anonymous = client.get(path)
        outsider = client.get(path, headers=world.bearer([OTHER_VO_MEMBER]))
        member = client.get(path, headers=world.bearer([VO_MEMBER]))
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="mqs"'
    assert outsider.status_code == 403
    assert outsider.json() == {
        "code": "Forbidden",
        "description": "your entitlements do not include this collection",
    }
    assert 'error="insufficient_scope"' in outsider.headers["WWW-Authenticate"]
    assert member.status_code == 200
    assert L1C_NAME not in anonymous.text + outsider.text


def test_an_unknown_collection_stays_404(world: World) -> None:
    with world.client("open") as client:
        assert client.get("/collections/no-such-collection").status_code == 404


def test_search_is_silently_restricted_to_visible_collections(world: World) -> None:
    with world.client("open") as client:
        member = world.bearer([VO_MEMBER])
        assert collections_of(client.get("/search?limit=50")) == {"sentinel-2-l2a"}
        assert collections_of(client.get("/search?limit=50", headers=member)) == {
            "sentinel-2-l2a",
            "sentinel-2-l1c",
        }
        both = {"collections": ["sentinel-2-l1c", "sentinel-2-l2a"], "limit": 50}
        assert collections_of(client.post("/search", json=both)) == {"sentinel-2-l2a"}
        # naming only forbidden collections: an empty page, not an error
        only = client.post("/search", json={"collections": ["sentinel-2-l1c"]})
        assert only.status_code == 200
        assert only.json()["features"] == [] and only.json()["numberMatched"] == 0
        by_filter = client.get("/search", params={"filter": "collection = 'sentinel-2-l1c'"})
        assert by_filter.json()["features"] == []
        assert ids(client.get("/search", params={"ids": L1C_NAME})) == set()
        assert ids(client.get("/search", params={"ids": L1C_NAME}, headers=member)) == {L1C_NAME}


def test_a_restricted_search_pages_to_the_end(world: World) -> None:
    with world.client("open") as client:
        member = world.bearer([VO_MEMBER])
        seen: list[str] = []
        url: str | None = "/search?limit=2"
        while url is not None:
            page = client.get(url, headers=member).json()
            seen += [f["id"] for f in page["features"]]
            url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == 5  # four L2A products and the L1C one
    assert L1C_NAME in seen


# --- backend rules ----------------------------------------------------------------------------


def test_a_hidden_backend_contributes_nothing(world: World) -> None:
    shared = series(1)[0]["id"]
    with world.client("tiered") as client:
        for headers in ({}, world.bearer([VO_MEMBER])):
            found = {
                f["id"]: f
                for f in client.get("/search?limit=50", headers=headers).json()["features"]
            }
            assert VAULT_ONLY not in found and SLC_NAME not in found
            assert found[shared]["properties"]["federation:backends"] == ["eodc"]
            assert "vault" not in str(found[shared]["assets"])
            report = client.get("/search", headers=headers).json()["federation:report"]
            assert set(report) == {"eodc"}  # the vault was not even asked
        entitled = world.bearer([VAULT_ROLE])
        found = {
            f["id"]: f for f in client.get("/search?limit=50", headers=entitled).json()["features"]
        }
        assert {VAULT_ONLY, SLC_NAME} <= set(found)
        assert found[shared]["properties"]["federation:backends"] == ["vault", "eodc"]
        item = f"/collections/sentinel-2-l2a/items/{VAULT_ONLY}"
        assert client.get(item).status_code == 404
        assert client.get(item, headers=entitled).status_code == 200


def test_a_collection_served_only_by_hidden_backends_is_hidden(world: World) -> None:
    with world.client("tiered") as client:
        listing = ids(client.get("/collections"), "collections")
        entitled = world.bearer([VAULT_ROLE])
        assert "sentinel-1-slc" not in listing and "sentinel-2-l2a" in listing
        assert "sentinel-1-slc" in ids(client.get("/collections", headers=entitled), "collections")
        assert client.get("/collections/sentinel-1-slc").status_code == 401
        assert client.get("/collections/sentinel-1-slc", headers=world.bearer()).status_code == 403
        assert client.get("/collections/sentinel-1-slc", headers=entitled).status_code == 200


# --- anonymous: false ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/conformance", "/api", "/_mgmt/ping"])
def test_public_paths_need_no_token(world: World, path: str) -> None:
    with world.client("closed") as client:
        assert client.get(path).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/collections", "/collections/sentinel-2-l2a/items", "/search", "/backends", "/queryables"],
)
def test_without_anonymous_access_everything_else_needs_a_token(world: World, path: str) -> None:
    with world.client("closed") as client:
        response = client.get(path)
        assert response.status_code == 401
        assert response.json()["code"] == "Unauthorized"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="mqs"'
        assert client.get(path, headers=world.bearer()).status_code == 200


def test_without_anonymous_access_cors_preflights_still_answer(world: World) -> None:
    with world.client("closed") as client:
        response = client.options(
            "/search",
            headers={
                "Origin": "https://portal.example.eu",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
    assert response.status_code == 200
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_without_anonymous_access_open_collections_are_any_signed_in_users(world: World) -> None:
    with world.client("closed") as client:
        listing = ids(client.get("/collections", headers=world.bearer()), "collections")
    assert listing == {"sentinel-2-l2a", "sentinel-1-slc"}


# --- rate limits ------------------------------------------------------------------------------


def _statuses(client: httpx.Client, count: int, headers: dict[str, str]) -> list[int]:
    return [client.get("/conformance", headers=headers).status_code for _ in range(count)]


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert response.json()["code"] == "TooManyRequests"
    assert 1 <= int(response.headers["Retry-After"]) <= 5  # 1 request per 5 s


@pytest.mark.parametrize("gateway", ["limited", "redis-1"])
def test_each_user_has_a_token_bucket(world: World, gateway: str) -> None:
    alice = world.bearer(voperson_id=f"{uuid.uuid4().hex}@egi.eu")
    with world.client(gateway) as client:
        assert _statuses(client, 3, alice) == [200, 200, 200]
        assert_limited(client.get("/collections", headers=alice))
        assert _statuses(client, 1, world.bearer()) == [200]  # another user's bucket is full


def test_two_tokens_of_one_user_share_the_bucket(world: World) -> None:
    voperson = f"{uuid.uuid4().hex}@egi.eu"
    first, second = world.bearer(voperson_id=voperson), world.bearer(voperson_id=voperson)
    with world.client("limited") as client:
        assert _statuses(client, 2, first) + _statuses(client, 1, second) == [200] * 3
        assert_limited(client.get("/conformance", headers=second))


def test_anonymous_users_are_limited_per_address(world: World) -> None:
    with world.client("limited") as client:
        statuses = _statuses(client, 3, {})
    assert statuses[:2] == [200, 200] and statuses[2] == 429  # anonymous_burst: 2


def test_gateway_instances_share_buckets_in_redis(world: World) -> None:
    alice = world.bearer(voperson_id=f"{uuid.uuid4().hex}@egi.eu")
    with world.client("redis-1") as one, world.client("redis-2") as two:
        assert _statuses(one, 2, alice) + _statuses(two, 1, alice) == [200] * 3
        assert_limited(two.get("/conformance", headers=alice))
        assert_limited(one.get("/conformance", headers=alice))


async def test_a_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    buckets = MemoryBuckets(clock=lambda: now[0])
    assert [await buckets.take("k", 2.0, 2) for _ in range(2)] == [0.0, 0.0]
    assert await buckets.take("k", 2.0, 2) == pytest.approx(0.5)
    now[0] += 0.5
    assert await buckets.take("k", 2.0, 2) == 0.0  # one token back after 1/rate seconds
    now[0] += 100
    assert [await buckets.take("k", 2.0, 2) for _ in range(3)][2] > 0  # never above burst


async def test_buckets_in_an_unreachable_redis_let_requests_through() -> None:
    sock = bound_socket()
    cache = RedisCache(f"redis://{url_of(sock).removeprefix('http://')}/0", timeout_s=0.2)
    sock.close()
    try:
        buckets = buckets_for(cache)
        assert isinstance(buckets, RedisBuckets)
        waits = [await buckets.take("k", 0.1, 1) for _ in range(3)]
        assert waits == [0.0, 0.0, 0.0]  # burst 1, yet nothing limited (and nothing failed)
    finally:
        await cache.close()


def test_zz_no_token_or_secret_appears_in_responses_or_logs(world: World) -> None:
    """Runs last: everything this module's gateways answered and logged, at DEBUG."""
    recorder = world.recorder
    assert len(recorder.responses) > 40  # the module really was recorded
    assert any(line.startswith("mqs.auth ") for line in recorder.logs)  # gateway's too
    basic = base64.b64encode(f"eodc-robot:{EODC_PASSWORD}".encode()).decode()
    assert recorder.leaks([EODC_PASSWORD, basic, *world.issuer.issued]) == []
