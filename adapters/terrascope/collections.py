"""Canonical collection <-> Terrascope collection URN (overridable in the config).

Terrascope holds two sorts of collection. *Mirrors* of Sentinel products (``CGS_S1_GRD_L1``,
``CGS_S1_SLC_L1``, ``CGS_S2_L1C``): an item is a copy of a Sentinel product, its id the product
name, so the federation merges it with other archives' copies. *Derived* products VITO makes
itself (``TERRASCOPE_S2_TOC_V2``, NDVI, FAPAR, ...): an item is its own product, its id the
Terrascope title, never merged with a Sentinel copy.

A backend's ``collections:`` entry is ``""`` (the built-in URN below), a URN string, or
``{urn: ..., derived: true|false}``. A URN given as a string is a mirror when the canonical id
starts with ``sentinel-`` and derived otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TerrascopeCollection:
    """One Terrascope collection as the federation serves it."""

    urn: str
    derived: bool


URN = re.compile(r"^urn:[A-Za-z0-9][A-Za-z0-9_.:\-]{1,250}$")

MIRRORS = {
    "sentinel-1-grd": "urn:eop:VITO:CGS_S1_GRD_L1",
    "sentinel-1-slc": "urn:eop:VITO:CGS_S1_SLC_L1",
    "sentinel-2-l1c": "urn:eop:VITO:CGS_S2_L1C",
}
DERIVED = {
    "terrascope-s1-grd-sigma0": "urn:eop:VITO:CGS_S1_GRD_SIGMA0_L1",
    "terrascope-s2-toc-v2": "urn:eop:VITO:TERRASCOPE_S2_TOC_V2",
    "terrascope-s2-ndvi-v2": "urn:eop:VITO:TERRASCOPE_S2_NDVI_V2",
    "terrascope-s2-fapar-v2": "urn:eop:VITO:TERRASCOPE_S2_FAPAR_V2",
    "terrascope-s2-fcover-v2": "urn:eop:VITO:TERRASCOPE_S2_FCOVER_V2",
    "terrascope-s2-lai-v2": "urn:eop:VITO:TERRASCOPE_S2_LAI_V2",
}
DEFAULT_COLLECTIONS: dict[str, TerrascopeCollection] = {
    **{cid: TerrascopeCollection(urn, False) for cid, urn in MIRRORS.items()},
    **{cid: TerrascopeCollection(urn, True) for cid, urn in DERIVED.items()},
}


def is_mirror_id(collection: str) -> bool:
    """Whether a canonical id names Sentinel products (``sentinel-...``)."""
    return collection.startswith("sentinel-")


def terrascope_collection(collection: str, configured: Any) -> TerrascopeCollection | None:
    """The Terrascope collection of ``collection`` as configured (or by default)."""
    if configured in ("", None):
        return DEFAULT_COLLECTIONS.get(collection)
    urn: Any = configured
    derived: Any = not is_mirror_id(collection)
    if isinstance(configured, dict) and set(configured) <= {"urn", "derived"}:
        urn, derived = configured.get("urn"), configured.get("derived", derived)
    if not isinstance(urn, str) or not URN.match(urn) or not isinstance(derived, bool):
        return None
    return TerrascopeCollection(urn, derived)


def resolve(mapping: dict[str, Any]) -> dict[str, TerrascopeCollection]:
    """Every configured collection's URN; a collection without a known one is an error."""
    resolved = {}
    for cid, configured in mapping.items():
        found = terrascope_collection(cid, configured)
        if found is None:
            raise ValueError(
                f"collections.{cid}: no Terrascope collection known; give its URN, e.g. "
                '"urn:eop:VITO:CGS_S2_L1C" or {urn: "urn:eop:VITO:TERRASCOPE_S2_TOC_V2", '
                "derived: true}"
            )
        resolved[cid] = found
    return resolved
