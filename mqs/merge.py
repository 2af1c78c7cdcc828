"""Combining the copies of one product held by several backends into one STAC item (pure)."""

from __future__ import annotations

from typing import Any

from mqs.config import BackendConfig
from mqs.ordering import DATETIME_FIELDS as INSTANTS
from mqs.ordering import normalise_instant

ALTERNATE_ASSETS = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"


def provider_entry(backend: BackendConfig) -> dict[str, Any]:
    """How a backend appears in ``providers`` (its public URL, never credentials)."""
    return {"name": backend.display_title, "roles": ["host"], "url": backend.url}


def merge_copies(
    product_id: str, copies: list[tuple[BackendConfig, dict[str, Any]]]
) -> dict[str, Any]:
    """One item from the copies of a product, ``copies`` ordered by backend priority.

    The first copy gives id, geometry and properties; every other backend's assets become
    ``alternate`` entries of the asset with the same key (or new assets where it has others).
    """
    primary = copies[0][1]
    item = dict(primary)
    item["id"] = product_id
    props = dict(primary.get("properties") or {})
    assets = {key: dict(asset) for key, asset in (primary.get("assets") or {}).items()}
    has_alternates = False
    for backend, copy in copies[1:]:
        for key, asset in (copy.get("assets") or {}).items():
            if key not in assets:
                assets[key] = dict(asset)
                continue
            alternate = {"href": asset.get("href"), "title": backend.display_title}
            assets[key]["alternate"] = {**assets[key].get("alternate", {}), backend.id: alternate}
            has_alternates = True
    for name in INSTANTS:  # one spelling per instant, whichever backend gave it
        if (instant := normalise_instant(props.get(name))) is not None:
            props[name] = instant
    props["federation:backends"] = [backend.id for backend, _ in copies]
    providers = list(props.get("providers") or [])
    providers += [provider_entry(backend) for backend, _ in copies]
    props["providers"] = providers
    item["properties"] = props
    item["assets"] = assets
    if has_alternates:
        extensions = list(item.get("stac_extensions") or [])
        if ALTERNATE_ASSETS not in extensions:
            extensions.append(ALTERNATE_ASSETS)
        item["stac_extensions"] = extensions
    return item
