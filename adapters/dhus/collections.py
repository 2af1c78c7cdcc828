"""Canonical collection <-> DHuS ``platformname`` + ``producttype`` (overridable in the config).

A backend's ``collections:`` entry may name the DHuS product type(s) of a collection as
``"Sentinel-1/GRD"`` or as a mapping ``{platformname: Sentinel-1, producttype: [GRD]}``; an
empty value takes the default below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProductSet:
    """The DHuS products of one canonical collection."""

    platform: str
    product_types: tuple[str, ...]


DEFAULT_COLLECTIONS: dict[str, ProductSet] = {
    "sentinel-1-grd": ProductSet("Sentinel-1", ("GRD",)),
    "sentinel-1-slc": ProductSet("Sentinel-1", ("SLC",)),
    "sentinel-1-raw": ProductSet("Sentinel-1", ("RAW",)),
    "sentinel-1-ocn": ProductSet("Sentinel-1", ("OCN",)),
    "sentinel-2-l1c": ProductSet("Sentinel-2", ("S2MSI1C",)),
    "sentinel-2-l2a": ProductSet("Sentinel-2", ("S2MSI2A",)),
    "sentinel-3-olci-l1-efr": ProductSet("Sentinel-3", ("OL_1_EFR___",)),
    "sentinel-3-olci-l1-err": ProductSet("Sentinel-3", ("OL_1_ERR___",)),
    "sentinel-3-olci-l2-lfr": ProductSet("Sentinel-3", ("OL_2_LFR___",)),
    "sentinel-3-olci-l2-wfr": ProductSet("Sentinel-3", ("OL_2_WFR___",)),
    "sentinel-3-slstr-l1-rbt": ProductSet("Sentinel-3", ("SL_1_RBT___",)),
    "sentinel-3-slstr-l2-lst": ProductSet("Sentinel-3", ("SL_2_LST___",)),
    "sentinel-3-slstr-l2-wst": ProductSet("Sentinel-3", ("SL_2_WST___",)),
    "sentinel-3-sral-l1-sra": ProductSet(
        "Sentinel-3", ("SR_1_SRA___", "SR_1_SRA_A_", "SR_1_SRA_BS")
    ),
    "sentinel-3-sral-l2-lan": ProductSet("Sentinel-3", ("SR_2_LAN___",)),
    "sentinel-3-sral-l2-wat": ProductSet("Sentinel-3", ("SR_2_WAT___",)),
    "sentinel-3-synergy-l2-syn": ProductSet("Sentinel-3", ("SY_2_SYN___",)),
    "sentinel-5p-l1b-ra": ProductSet(
        "Sentinel-5 Precursor", tuple(f"L1B_RA_BD{b}" for b in range(1, 9))
    ),
    "sentinel-5p-l2-no2": ProductSet("Sentinel-5 Precursor", ("L2__NO2___",)),
    "sentinel-5p-l2-o3": ProductSet("Sentinel-5 Precursor", ("L2__O3____",)),
    "sentinel-5p-l2-co": ProductSet("Sentinel-5 Precursor", ("L2__CO____",)),
    "sentinel-5p-l2-ch4": ProductSet("Sentinel-5 Precursor", ("L2__CH4___",)),
    "sentinel-5p-l2-so2": ProductSet("Sentinel-5 Precursor", ("L2__SO2___",)),
    "sentinel-5p-l2-hcho": ProductSet("Sentinel-5 Precursor", ("L2__HCHO__",)),
    "sentinel-5p-l2-cloud": ProductSet("Sentinel-5 Precursor", ("L2__CLOUD_",)),
    "sentinel-5p-l2-aer-ai": ProductSet("Sentinel-5 Precursor", ("L2__AER_AI",)),
}


def product_set(collection: str, configured: str | dict[str, Any]) -> ProductSet | None:
    """The DHuS products of ``collection`` as configured (or by default); None if unknown."""
    if isinstance(configured, dict):
        types = configured.get("producttype")
        platform = configured.get("platformname")
        if not isinstance(platform, str) or not types:
            return None
        return ProductSet(platform, tuple([types] if isinstance(types, str) else types))
    if configured:
        platform, _, types = configured.partition("/")
        return ProductSet(platform, tuple(t for t in types.split(",") if t)) if types else None
    return DEFAULT_COLLECTIONS.get(collection)


def resolve(mapping: dict[str, str | dict[str, Any]]) -> dict[str, ProductSet]:
    """Every configured collection's product set; a collection without one is an error."""
    resolved = {}
    for cid, configured in mapping.items():
        found = product_set(cid, configured)
        if found is None:
            raise ValueError(
                f"collections.{cid}: no DHuS product type known; give one, e.g. "
                '"Sentinel-2/S2MSI2A" or {platformname: Sentinel-2, producttype: [S2MSI2A]}'
            )
        resolved[cid] = found
    return resolved


def collection_of(platform: str, product_type: str, sets: dict[str, ProductSet]) -> str | None:
    """The canonical collection of a DHuS product (first configured match)."""
    for cid, products in sets.items():
        if product_type in products.product_types and platform.lower() == products.platform.lower():
            return cid
    return None
