"""Bearer tokens against real issuers on loopback: JWT validation, rotation, introspection.

The gateway trusts two test issuers (``tests/oidc_issuer.py``): the main one (audience ``mqs``,
entitlements from userinfo, opaque tokens introspected) and a strict one requiring medium
assurance, plus an issuer that is down. ``sentinel-2-l1c`` needs the VO entitlement; the other
collections are open to anyone.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import Archive, MakeFederation
from factories import BASE_TIME, s2_item, s2_name, series
from joserfc.jwk import RSAKey
from leaks import Recorder, recording
from oidc_issuer import IAP_MEDIUM, VO_MEMBER, TestIssuer, serving_issuers

from mqs.serving import bound_socket, url_of

OPEN = "/collections/sentinel-2-l2a"
RULED = "/collections/sentinel-2-l1c"
ENV = {
    "MQS_TEST_INTROSPECT_ID": "mqs-gateway",
    "MQS_TEST_EODC_USER": "eodc-robot",
    "MQS_TEST_EODC_PASSWORD": "eodc-" + secrets.token_urlsafe(16),
}


@dataclass
class Setup:
    client: httpx.Client
    main: TestIssuer
    strict: TestIssuer
    down_url: str
    recorder: Recorder

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return self.client.get(path, headers=headers)


@pytest.fixture(scope="module")
def setup(make_module_federation: MakeFederation) -> Iterator[Setup]:
    down = bound_socket()
    down_url = url_of(down)
    down.close()  # an issuer that does not answer
    with (
        recording() as recorder,
        serving_issuers(2) as (main, strict),
        pytest.MonkeyPatch.context() as env,
    ):
        for name, value in ENV.items():
            env.setenv(name, value)
        env.setenv("MQS_TEST_INTROSPECT_SECRET", main.client_secret)
        l1c = s2_item(s2_name(BASE_TIME, level="L1C"), BASE_TIME, collection="sentinel-2-l1c")
        basic = {"type": "basic", "username_env": "MQS_TEST_EODC_USER"}
        fed = make_module_federation(
            auth={
                "issuers": [
                    {
                        "url": main.url,
                        "audience": "mqs",
                        "userinfo": True,
                        "introspection": {
                            "client_id_env": "MQS_TEST_INTROSPECT_ID",
                            "client_secret_env": "MQS_TEST_INTROSPECT_SECRET",
                        },
                        "jwks_refresh_min_s": 0.5,
                        "leeway_s": 5,
                    },
                    {
                        "url": strict.url,
                        "userinfo": True,
                        "min_assurance": "medium",
                        "discovery_ttl_s": 0.3,
                        "jwks_refresh_min_s": 0.2,
                    },
                    {"url": down_url, "timeout_s": 1},
                ],
                "collections": {"sentinel-2-l1c": {"entitlements": [VO_MEMBER]}},
            },
            eodc=Archive(
                items=[*series(3), l1c],
                auth=basic | {"password_env": "MQS_TEST_EODC_PASSWORD"},
            ),
        )
        with recorder.client(fed.url) as client:
            yield Setup(client, main, strict, down_url, recorder)


def member(issuer: TestIssuer) -> str:
    return issuer.user(entitlements=[VO_MEMBER]).sub


def assert_refused(response: httpx.Response, token: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "Unauthorized"
    assert body["description"].startswith("invalid token")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="mqs"') and 'error="invalid_token"' in challenge
    assert token not in response.text and token not in challenge


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_a_valid_token_is_accepted(setup: Setup, alg: str) -> None:
    token = setup.main.token(member(setup.main), alg=alg)
    assert setup.get(RULED, token).status_code == 200
    assert setup.get(f"{RULED}/items", token).json()["features"]


def test_no_token_is_anonymous_and_a_ruled_collection_asks_for_one(setup: Setup) -> None:
    assert setup.get(OPEN).status_code == 200
    response = setup.get(RULED)
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="mqs"'


def test_clock_skew_within_the_leeway_is_accepted(setup: Setup) -> None:
    # the issuer's clock is ahead of the gateway's: nbf and iat are slightly in the future
    now = int(time.time())
    token = setup.main.token(member(setup.main), nbf=now + 3, iat=now + 3)
    assert setup.get(RULED, token).status_code == 200


def _now() -> int:
    return int(time.time())


Forge = Callable[[TestIssuer, str], str]
REFUSED: list[Any] = [
    pytest.param(lambda i, s: i.token(s, exp=_now() - 600), "claim exp", id="expired"),
    pytest.param(lambda i, s: i.token(s, nbf=_now() + 600), "claim nbf", id="not-yet-valid"),
    pytest.param(lambda i, s: i.token(s, exp=None), "claim exp", id="no-expiry"),
    pytest.param(
        lambda i, s: i.token(s, iss="https://aai.egi.eu/auth/realms/egi"),
        "untrusted issuer",
        id="wrong-issuer",
    ),
    pytest.param(lambda i, s: i.token(s, aud="another-service"), "claim aud", id="wrong-audience"),
    pytest.param(lambda i, s: i.token(s, aud=None), "claim aud", id="no-audience"),
    pytest.param(
        lambda i, s: i.token(s, key=RSAKey.generate_key(2048, parameters={"kid": i.rsa.kid})),
        "bad signature",
        id="bad-signature",
    ),
    pytest.param(
        lambda i, s: ".".join(
            [
                *i.token(s).split(".")[:1],
                i.token("someone-else").split(".")[1],
                i.token(s).split(".")[2],
            ]
        ),
        "bad signature",
        id="tampered-claims",
    ),
    pytest.param(
        lambda i, s: i.token(s, kid="no-such-key"), "unknown signing key", id="unknown-kid"
    ),
    pytest.param(lambda i, s: i.token(s, kid=i.ec.kid), "bad signature", id="rsa-alg-with-ec-key"),
    pytest.param(
        lambda i, s: i.forged({"alg": "none", "typ": "JWT"}, i.claims(s), b""),
        "algorithm not allowed",
        id="alg-none",
    ),
    pytest.param(
        lambda i, s: i.forged({"alg": "none", "kid": i.rsa.kid}, i.claims(s), b"sig"),
        "algorithm not allowed",
        id="alg-none-with-signature",
    ),
    pytest.param(
        lambda i, s: i.hs256_with_public_key(s), "algorithm not allowed", id="hs256-with-public-key"
    ),
    pytest.param(lambda i, s: "e30K!.e30K.e30K", "malformed", id="malformed-header"),
    pytest.param(lambda i, s: "bm90IGpzb24.e30.c2ln", "malformed", id="header-not-json"),
    pytest.param(
        lambda i, s: i.token(s).split(".", 1)[0] + ".bm9wZQ.c2ln",
        "malformed",
        id="payload-not-json",
    ),
    pytest.param(
        lambda i, s: i.opaque_token(s, lifetime_s=-10), "not active", id="opaque-inactive"
    ),
    pytest.param(lambda i, s: secrets.token_urlsafe(30), "not active", id="opaque-unknown"),
]


@pytest.mark.parametrize(("forge", "reason"), REFUSED)
def test_a_bad_token_is_refused_with_401(setup: Setup, forge: Forge, reason: str) -> None:
    token = forge(setup.main, member(setup.main))
    for path in (OPEN, RULED, "/search?collections=sentinel-2-l2a"):
        response = setup.get(path, token)
        assert_refused(response, token)
        assert reason in response.json()["description"]


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Token abc"])
def test_other_authorization_schemes_are_refused(setup: Setup, header: str) -> None:
    response = setup.client.get(OPEN, headers={"Authorization": header})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_public_paths_ignore_tokens(setup: Setup) -> None:
    for path in ("/", "/conformance", "/_mgmt/ping"):
        assert setup.get(path, "not-a-token").status_code == 200


def test_a_rotated_key_is_picked_up_and_refreshes_are_rate_limited(setup: Setup) -> None:
    issuer = setup.main
    sub = member(issuer)
    assert setup.get(RULED, issuer.token(sub)).status_code == 200  # the JWKS is known
    old_key = issuer.rsa
    time.sleep(0.6)  # jwks_refresh_min_s: 0.5
    fetched = issuer.counts["jwks"]
    new_kid = issuer.rotate()
    token = issuer.token(sub)
    assert new_kid in issuer.published[0].kid
    assert setup.get(RULED, token).status_code == 200  # unknown kid: JWKS refetched once
    assert issuer.counts["jwks"] == fetched + 1
    # right after a refresh, unknown kids (forged, or the retired key) do not refetch
    for kid in ("forged-1", "forged-2", "forged-3"):
        assert_refused(setup.get(RULED, t := issuer.token(sub, kid=kid)), t)
    assert_refused(setup.get(RULED, t := issuer.token(sub, key=old_key)), t)
    assert issuer.counts["jwks"] == fetched + 1
    time.sleep(0.6)
    assert_refused(setup.get(RULED, t := issuer.token(sub, kid="forged-4")), t)
    assert issuer.counts["jwks"] == fetched + 2
    assert setup.get(RULED, issuer.token(sub)).status_code == 200


def test_concurrent_requests_after_a_rotation_fetch_the_jwks_once(setup: Setup) -> None:
    issuer = setup.main
    time.sleep(0.6)  # past jwks_refresh_min_s since any earlier refresh
    issuer.rotate()
    fetched = issuer.counts["jwks"]
    tokens = [issuer.token(member(issuer)) for _ in range(12)]
    url = str(setup.client.base_url)

    def call(token: str) -> int:
        with setup.recorder.client(url) as client:
            response = client.get(RULED, headers={"Authorization": f"Bearer {token}"})
            return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert list(pool.map(call, tokens)) == [200] * 12
    assert issuer.counts["jwks"] == fetched + 1


def test_an_opaque_token_is_introspected_and_the_answer_cached(setup: Setup) -> None:
    issuer = setup.main
    token = issuer.opaque_token(member(issuer))
    before = issuer.counts["introspect"]
    assert setup.get(RULED, token).status_code == 200
    assert setup.get(f"{RULED}/items", token).status_code == 200
    assert issuer.counts["introspect"] == before + 1
    outsider = issuer.opaque_token(issuer.user().sub)
    assert setup.get(OPEN, outsider).status_code == 200
    assert setup.get(RULED, outsider).status_code == 403


def test_entitlements_come_from_userinfo_cached_per_token(setup: Setup) -> None:
    issuer = setup.main
    token = issuer.token(member(issuer))
    assert "eduperson_entitlement" not in str(issuer.claims("x"))  # never in the token
    before = issuer.counts["userinfo"]
    for _ in range(3):
        assert setup.get(RULED, token).status_code == 200
    assert issuer.counts["userinfo"] == before + 1
    other = issuer.token(issuer.user(entitlements=["urn:mace:egi.eu:group:vo.x.eu#aai.egi.eu"]).sub)
    response = setup.get(RULED, other)
    assert response.status_code == 403
    assert response.json()["code"] == "Forbidden"
    assert issuer.counts["userinfo"] == before + 2


def test_a_minimum_assurance_is_required(setup: Setup) -> None:
    strict = setup.strict
    low = strict.token(strict.user().sub, aud=None)
    response = setup.get(OPEN, low)
    assert response.status_code == 403
    assert "assurance" in response.json()["description"]
    medium = strict.token(strict.user(assurance=[IAP_MEDIUM]).sub, aud=None)
    assert setup.get(OPEN, medium).status_code == 200


def test_tokens_of_one_issuer_are_not_accepted_from_another(setup: Setup) -> None:
    # signed by the strict issuer's key, claiming to come from the main one
    sub = member(setup.main)
    token = setup.strict.token(sub, iss=setup.main.url)
    assert_refused(setup.get(RULED, token), token)


def test_an_unreachable_issuer_is_a_503_not_a_401(setup: Setup) -> None:
    token = setup.main.token(member(setup.main), iss=setup.down_url)
    response = setup.get(OPEN, token)
    assert response.status_code == 503
    assert response.json()["code"] == "ServiceUnavailable"
    assert token not in response.text


def test_an_issuer_outage_keeps_known_keys_and_cached_userinfo(setup: Setup) -> None:
    strict = setup.strict
    known = strict.token(strict.user(assurance=[IAP_MEDIUM]).sub, aud=None)
    assert setup.get(OPEN, known).status_code == 200
    strict.failing = True
    try:
        time.sleep(0.4)  # discovery_ttl_s: 0.3 -> the gateway tries to refresh, and fails
        assert setup.get(OPEN, known).status_code == 200  # keys kept, userinfo cached
        assert strict.counts["outage"] == 1  # the refresh was tried, and failed
        new = strict.token(strict.user(assurance=[IAP_MEDIUM]).sub, aud=None)
        response = setup.get(OPEN, new)  # its userinfo cannot be had
        assert response.status_code == 503
        assert response.json()["code"] == "ServiceUnavailable"
        assert response.headers["Retry-After"]
    finally:
        strict.failing = False
    time.sleep(0.3)
    assert (
        setup.get(OPEN, strict.token(strict.user(assurance=[IAP_MEDIUM]).sub, aud=None)).status_code
        == 200
    )


def test_introspection_authenticates_the_gateway_as_a_client(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = setup.main
    monkeypatch.setenv("MQS_TEST_INTROSPECT_SECRET", "not-the-secret")
    response = setup.get(OPEN, issuer.opaque_token(member(issuer)))
    assert response.status_code == 503  # the issuer refused the gateway, not the user
    assert "not-the-secret" not in response.text
    monkeypatch.setenv("MQS_TEST_INTROSPECT_SECRET", issuer.client_secret)
    assert setup.get(OPEN, issuer.opaque_token(member(issuer))).status_code == 200


def test_zz_no_token_or_secret_appears_in_responses_or_logs(setup: Setup) -> None:
    """Runs last: everything this module's gateway answered and logged, at DEBUG."""
    recorder = setup.recorder
    assert len(recorder.responses) > 50  # the module really was recorded
    assert any(line.startswith("mqs.auth ") for line in recorder.logs)  # gateway's too
    issued = [*setup.main.issued, *setup.strict.issued]
    basic = f"{ENV['MQS_TEST_EODC_USER']}:{ENV['MQS_TEST_EODC_PASSWORD']}"
    secrets_ = [ENV["MQS_TEST_EODC_PASSWORD"], setup.main.client_secret, *issued]
    secrets_.append(base64.b64encode(basic.encode()).decode())
    secrets_.append(base64.b64encode(f"mqs-gateway:{setup.main.client_secret}".encode()).decode())
    assert recorder.leaks(secrets_) == []
