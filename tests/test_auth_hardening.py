"""Attacks on sign-in and access found in review, against a real issuer on loopback.

- a flood of forged key ids while the issuer is down must not become a flood of JWKS requests
  (nor make valid tokens wait behind them);
- a flood of made-up (opaque) tokens must not become a flood of introspection requests;
- a refused token on a public path is an anonymous request, also for its handler;
- ``/queryables``, ``/sortables``, ``/backends``, collection documents and the landing page
  must not show a collection or backend the user may not see;
- an instant that overflows once converted to UTC is a 400, not a 500.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from conftest import Archive, MakeFederation
from factories import BASE_TIME, s2_item, s2_name, series
from oidc_issuer import VO_MEMBER, TestIssuer, serving_issuers

RULED = "sentinel-2-l1c"
OPEN = "sentinel-2-l2a"
VAULT = "vault"  # a backend only the vault-keepers group may see
KEEPER = "urn:mace:egi.eu:group:vault-keepers:role=member#aai.egi.eu"
REFRESH_MIN_S = 0.5


@dataclass
class Setup:
    client: httpx.Client
    issuer: TestIssuer

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.client.get(path, headers=headers)


@pytest.fixture(scope="module")
def setup(make_module_federation: MakeFederation) -> Iterator[Setup]:
    with serving_issuers(1) as (issuer,):
        l1c = s2_item(s2_name(BASE_TIME, level="L1C"), BASE_TIME, collection=RULED)
        fed = make_module_federation(
            auth={
                "issuers": [
                    {
                        "url": issuer.url,
                        "audience": "mqs",
                        "userinfo": True,
                        "jwks_refresh_min_s": REFRESH_MIN_S,
                        "timeout_s": 2,
                    }
                ],
                "collections": {RULED: {"entitlements": [VO_MEMBER]}},
                "backends": {VAULT: {"groups": ["vault-keepers"]}},
            },
            eodc=Archive(items=[*series(3), l1c]),
            vault=Archive(items=series(2), collections=[OPEN]),
        )
        with httpx.Client(base_url=fed.url, timeout=30) as client:
            yield Setup(client, issuer)


def test_forged_key_ids_during_an_issuer_outage_ask_the_issuer_at_most_once(
    setup: Setup,
) -> None:
    issuer = setup.issuer
    member = issuer.user(entitlements=[VO_MEMBER]).sub
    valid = issuer.token(member)
    assert setup.get(f"/collections/{RULED}", valid).status_code == 200  # keys and userinfo known
    time.sleep(REFRESH_MIN_S + 0.1)  # an unknown kid may now refetch the JWKS
    issuer.failing = True
    try:
        statuses = [
            setup.get(f"/collections/{OPEN}", issuer.token(member, kid=f"forged-{n}")).status_code
            for n in range(8)
        ]
        assert statuses == [503] * 8  # cannot be checked now: try later, not "bad token"
        assert issuer.counts["outage"] == 1  # one refetch tried; the others not sent
        # a token signed with a key already known is still accepted during the outage
        assert setup.get(f"/collections/{RULED}", valid).status_code == 200
        assert issuer.counts["outage"] == 1
    finally:
        issuer.failing = False
    time.sleep(REFRESH_MIN_S + 0.1)
    forged = issuer.token(member, kid="forged-after")
    response = setup.get(f"/collections/{OPEN}", forged)
    assert response.status_code == 401  # the issuer answers again: the kid really is unknown
    assert "unknown signing key" in response.json()["description"]


def test_a_known_key_never_waits_behind_a_refresh_for_an_unknown_one(setup: Setup) -> None:
    issuer = setup.issuer
    member = issuer.user(entitlements=[VO_MEMBER]).sub
    valid = issuer.token(member)
    assert setup.get(f"/collections/{RULED}", valid).status_code == 200  # userinfo cached
    time.sleep(REFRESH_MIN_S + 0.1)  # an unknown kid may now refetch the JWKS
    issuer.stall_s = 1.5  # the issuer is slow: that refetch takes a while
    forged = issuer.token(member, kid="forged-slow")
    try:
        with (
            ThreadPoolExecutor(max_workers=1) as pool,
            httpx.Client(base_url=str(setup.client.base_url), timeout=30) as other,
        ):
            pending = pool.submit(
                other.get, f"/collections/{OPEN}", headers={"Authorization": f"Bearer {forged}"}
            )
            time.sleep(0.3)  # its refetch is under way
            assert setup.get(f"/collections/{RULED}", valid).status_code == 200
            assert not pending.done()  # answered while the other still waits for the JWKS
            assert pending.result().status_code == 401
    finally:
        issuer.stall_s = 0.0


def test_queryables_and_sortables_list_only_the_collections_the_user_may_see(
    setup: Setup,
) -> None:
    enum = setup.get("/queryables").json()["properties"]["collection"]["enum"]
    assert OPEN in enum and RULED not in enum
    member = setup.issuer.token(setup.issuer.user(entitlements=[VO_MEMBER]).sub)
    enum = setup.get("/queryables", member).json()["properties"]["collection"]["enum"]
    assert OPEN in enum and RULED in enum


@pytest.mark.parametrize(
    "path", [f"/collections/{RULED}/queryables", f"/collections/{RULED}/sortables"]
)
def test_a_ruled_collections_queryables_and_sortables_need_its_entitlement(
    setup: Setup, path: str
) -> None:
    anonymous = setup.get(path)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "Unauthorized"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    outsider = setup.issuer.token(setup.issuer.user().sub)
    refused = setup.get(path, outsider)
    assert refused.status_code == 403
    assert refused.json()["code"] == "Forbidden"
    member = setup.issuer.token(setup.issuer.user(entitlements=[VO_MEMBER]).sub)
    allowed = setup.get(path, member)
    assert allowed.status_code == 200
    assert allowed.json()["properties"]
    assert setup.get(path.replace(RULED, OPEN)).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/search?datetime=9999-12-31T23:59:59-01:00",
        "/search?datetime=0001-01-01T00:00:00%2B01:00/..",
        f"/collections/{OPEN}/items?datetime=0001-01-01T00:00:00%2B01:00",
        "/collections?datetime=9999-12-31T23:59:59-01:00/..",
        "/deletions?since=0001-01-01T00:00:00%2B01:00",
        "/deletions?until=9999-12-31T23:59:59-01:00",
    ],
)
def test_an_instant_out_of_range_in_utc_is_a_400(setup: Setup, path: str) -> None:
    member = setup.issuer.token(setup.issuer.user(entitlements=[VO_MEMBER]).sub)
    response = setup.get(path, member)  # (the deletion report needs every collection)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"].startswith("Invalid")
    assert "RFC 3339" in body["description"]


def test_backends_and_the_landing_page_show_only_what_the_user_may_see(setup: Setup) -> None:
    anonymous = setup.get("/backends").json()["backends"]
    assert [b["id"] for b in anonymous] == ["eodc"]
    assert OPEN in anonymous[0]["collections"] and RULED not in anonymous[0]["collections"]
    assert list(setup.get("/").json()["federation"]) == ["eodc"]
    keeper = setup.issuer.token(setup.issuer.user(entitlements=[KEEPER, VO_MEMBER]).sub)
    shown = {b["id"]: b["collections"] for b in setup.get("/backends", keeper).json()["backends"]}
    assert shown[VAULT] == [OPEN] and RULED in shown["eodc"]
    assert set(setup.get("/", keeper).json()["federation"]) == {"eodc", VAULT}


def test_a_hidden_backend_is_no_provider_of_a_collection_document(setup: Setup) -> None:
    def providers(token: str | None, listing: bool) -> list[str]:
        if listing:
            docs = setup.get("/collections", token).json()["collections"]
            doc = next(d for d in docs if d["id"] == OPEN)
        else:
            doc = setup.get(f"/collections/{OPEN}", token).json()
        return sorted(p["name"] for p in doc["providers"] if p["roles"] == ["host"])

    keeper = setup.issuer.token(setup.issuer.user(entitlements=[KEEPER]).sub)
    for listing in (False, True):
        assert providers(None, listing) == ["eodc"]
        assert providers(keeper, listing) == ["eodc", VAULT]


def test_a_refused_token_on_a_public_path_is_an_anonymous_request(setup: Setup) -> None:
    # the landing page asks which backends the user may see (backend rules are configured):
    # a bad token there must not be checked again by the handler and turn into a 401
    for token in ("not-a-token", setup.issuer.token("someone", kid="forged")):
        response = setup.get("/", token)
        assert response.status_code == 200, response.text
        assert list(response.json()["federation"]) == ["eodc"]


def test_a_flood_of_made_up_tokens_stops_before_the_issuers_introspection(
    make_federation: MakeFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving_issuers(1) as (issuer,):
        monkeypatch.setenv("MQS_TEST_HARDENING_ID", issuer.client_id)
        monkeypatch.setenv("MQS_TEST_HARDENING_SECRET", issuer.client_secret)
        introspection = {
            "client_id_env": "MQS_TEST_HARDENING_ID",
            "client_secret_env": "MQS_TEST_HARDENING_SECRET",
        }
        fed = make_federation(
            auth={
                "issuers": [{"url": issuer.url, "audience": "mqs", "introspection": introspection}],
                "rate_limit": {
                    "requests_per_s": 50,
                    "burst": 50,
                    "anonymous_requests_per_s": 0.2,
                    "anonymous_burst": 3,
                },
            },
            eodc=Archive(items=series(2)),
        )
        with httpx.Client(base_url=fed.url, timeout=30) as client:

            def get(path: str, token: str) -> httpx.Response:
                return client.get(path, headers={"Authorization": f"Bearer {token}"})

            statuses = [get(f"/collections/{OPEN}", f"made-up-{n}").status_code for n in range(10)]
            assert statuses == [401] * 3 + [429] * 7  # past the anonymous burst: 429
            assert issuer.counts["introspect"] == 4  # the issuer saw 4, not 10
            blocked = get(f"/collections/{OPEN}", "made-up-11")
            assert blocked.json()["code"] == "TooManyRequests"
            assert int(blocked.headers["Retry-After"]) >= 1
            assert issuer.counts["introspect"] == 4


def test_items_of_a_ruled_collection_cannot_be_had_by_id(setup: Setup) -> None:
    l1c = s2_name(BASE_TIME, level="L1C")
    assert setup.get(f"/search?ids={l1c}").json()["features"] == []
    body = {"ids": [l1c], "collections": [RULED]}
    assert setup.client.post("/search", json=body).json()["features"] == []
    assert setup.get(f"/collections/{RULED}/items/{l1c}").status_code == 401
    member = setup.issuer.token(setup.issuer.user(entitlements=[VO_MEMBER]).sub)
    assert [f["id"] for f in setup.get(f"/search?ids={l1c}", member).json()["features"]] == [l1c]


def test_a_paging_token_of_a_user_with_more_rights_shows_no_more_to_another(
    setup: Setup,
) -> None:
    keeper = setup.issuer.token(setup.issuer.user(entitlements=[KEEPER]).sub)
    first = setup.get(f"/collections/{OPEN}/items?limit=1", keeper).json()
    assert VAULT in first["features"][0]["properties"]["federation:backends"]
    after = next(link["href"] for link in first["links"] if link["rel"] == "next")
    path = after.removeprefix(str(setup.client.base_url).rstrip("/"))
    replayed = setup.get(path)  # the keeper's next page asked for without the keeper's rights
    assert replayed.status_code == 200
    features = replayed.json()["features"]
    assert features  # eodc's part of the page
    for feature in features:
        assert feature["properties"]["federation:backends"] == ["eodc"]
        assert VAULT not in str(feature["assets"])
