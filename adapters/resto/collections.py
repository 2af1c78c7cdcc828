"""Canonical collection <-> resto collection path + ``productType`` (overridable in the config).

A backend's ``collections:`` entry names the resto products of a canonical collection as
``"Sentinel2/S2MSI2A"`` (several types: ``"Sentinel1/IW_GRDH_1S,EW_GRDM_1S"``; a whole resto
collection: ``"Sentinel1RTC"``) or as a mapping ``{collection: Sentinel2, productType: [S2MSI2A]}``;
an empty value takes the built-in default below. Names are checked against strict patterns, so
nothing from the config reaches a URL path or parameter unchecked.

One resto request is sent per :class:`Source` (a collection path and at most one product type):
resto has no documented OR across product types, so several types are several streams that the
adapter merges itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
PRODUCT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
# Sentinel-1 product types as CDSE writes them (IW_GRDH_1S, EW_SLC__1S) or the finder (GRD).
_S1_TYPE = re.compile(r"^(?:(?:IW|EW|SM|WV|S[1-6])_)?(GRD|SLC|RAW|OCN)(?:[HMF_]_\d[SA])?$")
# Sentinel-2 levels under their finder (L2A), resto (LEVEL2A) and ESA (S2MSI2A) names.
_S2_TYPES = {
    "L1C": "S2MSI1C",
    "LEVEL1C": "S2MSI1C",
    "S2MSI1C": "S2MSI1C",
    "L2A": "S2MSI2A",
    "LEVEL2A": "S2MSI2A",
    "S2MSI2A": "S2MSI2A",
}


@dataclass(frozen=True)
class ProductSet:
    """The resto products of one canonical collection."""

    collection: str  # the resto collection path segment, e.g. Sentinel2
    product_types: tuple[str, ...]  # () = every product of the resto collection


@dataclass(frozen=True, order=True)
class Source:
    """One resto request stream: a collection path and a product type ("" = any)."""

    collection: str
    product_type: str = ""

    @property
    def key(self) -> str:
        return f"{self.collection}/{self.product_type}"

    @property
    def sar(self) -> bool:
        """Whether its products are Sentinel-1 radar products (never an ``eo:cloud_cover``)."""
        return collection_key(self.collection).startswith("sentinel1")


DEFAULT_COLLECTIONS: dict[str, ProductSet] = {
    "sentinel-1-grd": ProductSet("Sentinel1", ("GRD",)),
    "sentinel-1-slc": ProductSet("Sentinel1", ("SLC",)),
    "sentinel-1-raw": ProductSet("Sentinel1", ("RAW",)),
    "sentinel-1-ocn": ProductSet("Sentinel1", ("OCN",)),
    "sentinel-2-l1c": ProductSet("Sentinel2", ("S2MSI1C",)),
    "sentinel-2-l2a": ProductSet("Sentinel2", ("S2MSI2A",)),
}


def collection_key(name: str) -> str:
    """``SENTINEL-1`` and ``Sentinel1`` name the same resto collection."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def family(product_type: str) -> str:
    """The product type all spellings of it share: ``IW_GRDH_1S`` -> ``GRD``, ``L2A`` ->
    ``S2MSI2A``; other types unchanged."""
    upper = product_type.upper()
    if upper in _S2_TYPES:
        return _S2_TYPES[upper]
    found = _S1_TYPE.match(upper)
    return found[1] if found else product_type


def _checked(collection: Any, types: Any) -> ProductSet | None:
    if not isinstance(collection, str) or not COLLECTION_NAME.match(collection):
        return None
    listed = [types] if isinstance(types, str) else list(types or [])
    if not all(isinstance(t, str) and PRODUCT_TYPE.match(t) for t in listed):
        return None
    return ProductSet(collection, tuple(dict.fromkeys(listed)))


def product_set(collection: str, configured: str | dict[str, Any]) -> ProductSet | None:
    """The resto products of ``collection`` as configured (or by default); None if invalid."""
    if isinstance(configured, dict):
        if set(configured) - {"collection", "productType"}:
            return None
        return _checked(configured.get("collection"), configured.get("productType"))
    if configured:
        path, _, types = configured.partition("/")
        return _checked(path, [t.strip() for t in types.split(",") if t.strip()])
    return DEFAULT_COLLECTIONS.get(collection)


def resolve(mapping: dict[str, str | dict[str, Any]]) -> dict[str, ProductSet]:
    """Every configured collection's product set; a collection without one is an error."""
    resolved = {}
    for cid, configured in mapping.items():
        found = product_set(cid, configured)
        if found is None:
            raise ValueError(
                f"collections.{cid}: no resto collection known; give one, e.g. "
                '"Sentinel2/S2MSI2A" or {collection: Sentinel2, productType: [S2MSI2A]}'
            )
        resolved[cid] = found
    return resolved


def sources_of(sets: dict[str, ProductSet], wanted: tuple[str, ...]) -> dict[Source, list[str]]:
    """The request streams for the ``wanted`` canonical collections, each with the collections
    it serves (in order), sorted by source."""
    plan: dict[Source, list[str]] = {}
    for cid in wanted:
        products = sets.get(cid)
        if products is None:
            continue
        for product_type in products.product_types or ("",):
            plan.setdefault(Source(products.collection, product_type), []).append(cid)
    return dict(sorted(plan.items()))


def serves(source: Source, product_type: Any) -> bool:
    """Whether a record of ``product_type`` found through ``source`` belongs to it (resto may
    answer other spellings of the type asked for, e.g. ``S2MSI2A`` for ``L2A``)."""
    if not source.product_type:
        return True
    return isinstance(product_type, str) and family(product_type) == family(source.product_type)
