"""The pure parts of sign-in: who a user is (entitlements, groups, assurance), what a rule
admits, and what the ``auth:`` config accepts."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mqs.auth.config import AuthConfig
from mqs.auth.policy import hidden_backends, may_see, visible
from mqs.auth.principal import Principal, groups_of, principal_from
from mqs.config import ConfigError, parse_config

VO = "urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu"
ISSUER = {"url": "https://aai.egi.eu/auth/realms/egi"}


@pytest.mark.parametrize(
    ("entitlements", "groups"),
    [
        pytest.param([VO], {"vo.example.eu"}, id="member"),
        pytest.param(
            ["urn:mace:egi.eu:group:vo.example.eu:admins:role=member#aai.egi.eu"],
            {"vo.example.eu:admins"},
            id="subgroup",
        ),
        pytest.param(
            ["urn:mace:egi.eu:group:vo.example.eu#aai.egi.eu"], {"vo.example.eu"}, id="no-role"
        ),
        pytest.param(
            ["urn:mace:egi.eu:group:vo.example.eu:role=vm_operator#aai.egi.eu"],
            set(),
            id="other-role",
        ),
        pytest.param(
            ["urn:mace:egi.eu:res:rcauth#aai.egi.eu", "not a urn"], set(), id="not-a-group"
        ),
    ],
)
def test_groups_come_from_member_entitlements(entitlements: list[str], groups: set[str]) -> None:
    assert groups_of(entitlements) == groups


def test_the_user_is_voperson_id_else_sub_and_userinfo_completes_the_token() -> None:
    token = {"sub": "abc@egi.eu", "eduperson_entitlement": "ignored-when-userinfo-says-otherwise"}
    info = {
        "sub": "abc@egi.eu",
        "voperson_id": "123@egi.eu",
        "eduperson_entitlement": [VO],
        "eduperson_assurance": [
            "https://refeds.org/assurance/IAP/low",
            "https://aai.egi.eu/LoA#Substantial",
        ],
        "groups": ["/vo.keycloak.eu"],
    }
    user = principal_from(ISSUER["url"], token, info)
    assert (user.key, user.subject) == ("123@egi.eu", "abc@egi.eu")
    assert user.entitlements == {VO}
    assert user.groups == {"vo.example.eu", "vo.keycloak.eu"}
    assert user.assurance == "medium"
    assert principal_from(ISSUER["url"], {"sub": "s"}).key == "s"
    assert "abc" not in repr(user) and VO not in repr(user)
    with pytest.raises(ValueError):
        principal_from(ISSUER["url"], {"aud": "x"})


def _user(*entitlements: str) -> Principal:
    return principal_from(ISSUER["url"], {"sub": "u", "eduperson_entitlement": list(entitlements)})


RULES = AuthConfig.model_validate(
    {
        "issuers": [ISSUER],
        "collections": {
            "ruled": {"entitlements": [VO]},
            "grouped": {"groups": ["vo.example.eu"]},
            "signed": {},
        },
        "backends": {"vault": {"entitlements": ["urn:x:vault"]}},
    }
)


@pytest.mark.parametrize(
    ("user", "seen"),
    [
        pytest.param(None, {"open"}, id="anonymous"),
        pytest.param(_user(), {"open", "signed"}, id="signed-in"),
        pytest.param(_user(VO), {"open", "signed", "ruled", "grouped"}, id="vo-member"),
        pytest.param(_user("urn:x:vault"), {"open", "signed", "vaulted"}, id="vault"),
    ],
)
def test_rules_decide_what_a_user_sees(user: Principal | None, seen: set[str]) -> None:
    serving = {"vaulted": ["vault"], "open": ["vault", "eodc"]}
    everything = ["open", "signed", "ruled", "grouped", "vaulted"]
    assert set(visible(RULES, everything, user, serving)) == seen


def test_without_anonymous_access_nothing_is_visible_to_anonymous_users() -> None:
    closed = RULES.model_copy(update={"anonymous": False})
    assert not may_see(closed, "open", None)
    assert may_see(closed, "open", _user())
    assert hidden_backends(RULES, None) == {"vault"}
    assert hidden_backends(RULES, _user("urn:x:vault")) == frozenset()


def _config(auth: dict[str, Any]) -> dict[str, Any]:
    backend = {"id": "eodc", "kind": "stac", "url": "https://stac.eodc.eu/api/v1"}
    return {"collections": {"c": {}}, "backends": [backend | {"collections": ["c"]}], "auth": auth}


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        pytest.param({"issuers": [{"url": "http://aai.egi.eu"}]}, "https://", id="plain-http"),
        pytest.param(
            {"issuers": [{"url": "https://u:p@aai.egi.eu"}]}, "credentials", id="userinfo-in-url"
        ),
        pytest.param({"issuers": [ISSUER | {"algorithms": ["HS256"]}]}, "algorithms", id="hmac"),
        pytest.param({"issuers": [ISSUER | {"algorithms": ["none"]}]}, "algorithms", id="none"),
        pytest.param({"issuers": [ISSUER, ISSUER]}, "twice", id="duplicate"),
        pytest.param({"anonymous": False}, "issuer", id="closed-without-issuer"),
        pytest.param(
            {"issuers": [ISSUER], "collections": {"x": {}}},
            "auth.collections.x",
            id="unknown-collection",
        ),
        pytest.param(
            {"issuers": [ISSUER], "backends": {"x": {}}}, "auth.backends.x", id="unknown-backend"
        ),
        pytest.param(
            {"issuers": [ISSUER], "rate_limit": {"requests_per_s": 0, "burst": 1}},
            "requests_per_s",
            id="zero-rate",
        ),
        pytest.param(
            {"issuers": [ISSUER | {"min_assurance": "extreme"}]}, "min_assurance", id="assurance"
        ),
        pytest.param({"issuer": [ISSUER]}, "auth.issuer", id="typo"),
    ],
)
def test_a_bad_auth_section_is_rejected_by_path(auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_config(auth))


def test_loopback_issuers_may_use_http_and_no_auth_section_means_open() -> None:
    config = parse_config(_config({"issuers": [{"url": "http://127.0.0.1:8080/realms/test/"}]}))
    assert config.auth.issuers[0].url == "http://127.0.0.1:8080/realms/test"
    open_ = parse_config(_config({})).auth
    assert open_.anonymous and not open_.issuers and open_.rate_limit is None


def test_the_documented_auth_section_parses() -> None:
    auth = yaml.safe_load(
        """
anonymous: true
issuers:
  - url: https://aai.egi.eu/auth/realms/egi
    audience: mqs
    userinfo: true
    introspection: {client_id_env: MQS_EGI_CLIENT_ID, client_secret_env: MQS_EGI_CLIENT_SECRET}
collections:
  c: {entitlements: ["urn:mace:egi.eu:group:vo.example.eu:role=member#aai.egi.eu"]}
"""
    )
    config = parse_config(_config(auth)).auth
    issuer = config.issuers[0]
    assert issuer.audiences == ["mqs"] and issuer.userinfo
    assert issuer.introspection is not None
    assert issuer.introspection.client_secret_env == "MQS_EGI_CLIENT_SECRET"
    assert config.collections["c"].entitlements == [VO]
