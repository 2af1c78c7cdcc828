"""Canonical collection <-> CDSE ``Collection/Name`` + ``productType`` (overridable in the config).

A backend's ``collections:`` entry may name the CDSE products of a collection as
``"SENTINEL-2/S2MSI2A"`` (several product types comma-separated), as ``"SENTINEL-3"`` (every
product of that CDSE collection) or as a mapping ``{collection: SENTINEL-1, productType:
[IW_GRDH_1S]}``; an empty value takes the default below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_S1_SM = tuple(f"S{n}" for n in range(1, 7))  # the six stripmap swaths


@dataclass(frozen=True)
class ProductSet:
    """The CDSE products of one canonical collection."""

    collection: str  # CDSE Collection/Name, e.g. SENTINEL-2
    product_types: tuple[str, ...]  # productType values; empty: every product of the collection


DEFAULT_COLLECTIONS: dict[str, ProductSet] = {
    "sentinel-1-grd": ProductSet(
        "SENTINEL-1",
        (
            *(f"{mode}_GRD{res}_1S" for mode in ("IW", "EW") for res in "HM"),
            *(f"{mode}_GRD{res}_1S" for mode in _S1_SM for res in "FHM"),
        ),
    ),
    "sentinel-1-slc": ProductSet(
        "SENTINEL-1", tuple(f"{mode}_SLC__1S" for mode in ("IW", "EW", "WV", *_S1_SM))
    ),
    "sentinel-2-l1c": ProductSet("SENTINEL-2", ("S2MSI1C",)),
    "sentinel-2-l2a": ProductSet("SENTINEL-2", ("S2MSI2A",)),
}


def _names(values: Any) -> tuple[str, ...] | None:
    """Validated CDSE names from a string or a list; None when one is not a plausible name."""
    items = [values] if isinstance(values, str) else values
    if not isinstance(items, list | tuple):
        return None
    names = tuple(str(v).strip() for v in items if str(v).strip())
    return names if all(_NAME.match(n) for n in names) else None


def product_set(collection: str, configured: str | dict[str, Any]) -> ProductSet | None:
    """The CDSE products of ``collection`` as configured (or by default); None if not understood."""
    if isinstance(configured, dict):
        name = _names(configured.get("collection") or "")
        types = _names(configured.get("productType", configured.get("product_type", [])))
        if set(configured) - {"collection", "productType", "product_type"}:
            return None
    elif configured:
        head, _, tail = configured.partition("/")
        name, types = _names(head), _names(tail.split(","))
    else:
        return DEFAULT_COLLECTIONS.get(collection)
    if not name or len(name) != 1 or types is None:
        return None
    return ProductSet(name[0], types)


def resolve(mapping: dict[str, str | dict[str, Any]]) -> dict[str, ProductSet]:
    """Every configured collection's product set; a collection without one is an error."""
    resolved = {}
    for cid, configured in mapping.items():
        found = product_set(cid, configured)
        if found is None:
            raise ValueError(
                f"collections.{cid}: no CDSE collection/product type known; give one, e.g. "
                '"SENTINEL-2/S2MSI2A" or {collection: SENTINEL-2, productType: [S2MSI2A]}'
            )
        resolved[cid] = found
    return resolved


def collection_of(name: str, product_type: str, sets: dict[str, ProductSet]) -> str | None:
    """The canonical collection of a CDSE product (first configured match)."""
    for cid, products in sets.items():
        if name == products.collection and (
            not products.product_types or product_type in products.product_types
        ):
            return cid
    return None
