"""What a collection document says about its items, from the built-in family data.

``mqs/data/sentinel.yaml`` holds, per Sentinel family (by collection id prefix), the
summaries, item_assets, extensions, producer/licensor providers and licence link that STAC
Browser, QGIS and portals read from a collection. This module only merges those entries.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any

import yaml

ITEM_ASSETS = "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"


@cache
def _families() -> tuple[dict[str, Any], ...]:
    text = resources.files("mqs").joinpath("data/sentinel.yaml").read_text(encoding="utf-8")
    return tuple(yaml.safe_load(text)["families"])


def family_metadata(collection_id: str) -> dict[str, Any]:
    """Merged family entries for ``collection_id`` (empty dicts/lists when none applies)."""
    merged: dict[str, Any] = {
        "summaries": {},
        "item_assets": {},
        "stac_extensions": [],
        "providers": [],
        "license_link": None,
    }
    drop: set[str] = set()
    for family in _families():
        if not collection_id.startswith(family["prefix"]):
            continue
        merged["summaries"].update(family.get("summaries", {}))
        merged["item_assets"].update(family.get("item_assets", {}))
        merged["stac_extensions"] += family.get("stac_extensions", [])
        merged["providers"] += family.get("providers", [])
        merged["license_link"] = family.get("license_link", merged["license_link"])
        drop |= set(family.get("drop_bands", []))
    bands = merged["summaries"].get("eo:bands")
    if bands and drop:
        merged["summaries"]["eo:bands"] = [b for b in bands if b["name"] not in drop]
    if merged["item_assets"]:
        merged["stac_extensions"].append(ITEM_ASSETS)
    merged["stac_extensions"] = sorted(set(merged["stac_extensions"]))
    return copy.deepcopy(merged)  # callers own the result; the loaded data stays as it is


def enrich(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (a collection) with its family's summaries, item_assets and licence link.

    The family's producer and licensor come before the backends (``host``) in ``providers``.
    """
    meta = family_metadata(str(doc["id"]))
    if meta["summaries"]:
        doc["summaries"] = meta["summaries"]
    if meta["item_assets"]:
        doc["item_assets"] = meta["item_assets"]
    doc["stac_extensions"] = sorted({*doc.get("stac_extensions", []), *meta["stac_extensions"]})
    doc["providers"] = [*meta["providers"], *doc.get("providers", [])]
    link = meta["license_link"]
    if link and doc.get("license") in ("proprietary", "other", "various"):
        doc["links"] = [*doc.get("links", []), {"rel": "license", **link}]
    return doc
