"""Who a validated token speaks for: user key, entitlements, groups, assurance (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

LEVELS = {"low": 1, "medium": 2, "high": 3}

# eduperson_assurance values (REFEDS RAF, EGI Check-in LoA, eIDAS) -> level.
ASSURANCE_LEVELS = {
    "https://refeds.org/assurance/IAP/low": "low",
    "https://refeds.org/assurance/IAP/medium": "medium",
    "https://refeds.org/assurance/IAP/high": "high",
    "https://refeds.org/assurance/profile/cappuccino": "medium",
    "https://refeds.org/assurance/profile/espresso": "high",
    "https://aai.egi.eu/LoA#Low": "low",
    "https://aai.egi.eu/LoA#Substantial": "medium",
    "https://aai.egi.eu/LoA#High": "high",
    "http://eidas.europa.eu/LoA/low": "low",
    "http://eidas.europa.eu/LoA/substantial": "medium",
    "http://eidas.europa.eu/LoA/high": "high",
}

# AARC-G002: <namespace>:group:<group>[:<subgroup>...][:role=<role>]#<authority>
_GROUP_ENTITLEMENT = re.compile(
    r"^urn:[^#]*?:group:(?P<group>[^#]+?)(?::role=(?P<role>[^#:]*))?(?:#.*)?$"
)


@dataclass(frozen=True)
class Principal:
    """A signed-in user. ``key`` is ``voperson_id``, else ``sub``."""

    key: str
    issuer: str
    subject: str
    entitlements: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    assurance: str | None = None  # the highest recognised level

    def __repr__(self) -> str:
        return f"Principal(issuer={self.issuer!r}, entitlements={len(self.entitlements)})"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def groups_of(entitlements: Iterable[str], group_claim: Iterable[str] = ()) -> frozenset[str]:
    """Group names: the ``groups`` claim and the groups of member entitlements (AARC-G002)."""
    groups = {g.strip("/") for g in group_claim if g.strip("/")}
    for value in entitlements:
        match = _GROUP_ENTITLEMENT.match(value)
        if match and match.group("role") in (None, "member"):
            groups.add(match.group("group"))
    return frozenset(groups)


def assurance_level(values: Iterable[str]) -> str | None:
    levels = [ASSURANCE_LEVELS[v] for v in values if v in ASSURANCE_LEVELS]
    return max(levels, key=LEVELS.__getitem__) if levels else None


def meets(level: str | None, minimum: str | None) -> bool:
    if minimum is None:
        return True
    return level is not None and LEVELS[level] >= LEVELS[minimum]


def principal_from(issuer: str, *claim_sets: Mapping[str, Any]) -> Principal:
    """The user described by the token's claims, merged with userinfo/introspection answers."""
    merged: dict[str, Any] = {}
    for claims in claim_sets:
        merged.update(claims)
    subject = merged.get("sub")
    if not isinstance(subject, str) or not subject:
        raise ValueError("no subject")
    voperson = merged.get("voperson_id")
    entitlements = _strings(merged.get("eduperson_entitlement"))
    return Principal(
        key=voperson if isinstance(voperson, str) and voperson else subject,
        issuer=issuer,
        subject=subject,
        entitlements=frozenset(entitlements),
        groups=groups_of(entitlements, _strings(merged.get("groups"))),
        assurance=assurance_level(_strings(merged.get("eduperson_assurance"))),
    )
