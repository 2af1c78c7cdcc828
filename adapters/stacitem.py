"""What every adapter's items share: the STAC extensions an item declares, from its fields."""

from __future__ import annotations

from typing import Any

SCHEMA = "https://stac-extensions.github.io/{}/schema.json"

# field prefix -> the extension (and version) whose schema the item is valid against
EXTENSIONS = {
    "alternate": "alternate-assets/v1.2.0",
    "eo": "eo/v1.1.0",
    "file": "file/v2.1.0",
    "grid": "grid/v1.1.0",
    "processing": "processing/v1.2.0",
    "product": "product/v0.1.0",
    "sar": "sar/v1.0.0",
    "sat": "sat/v1.0.0",
}


def stac_extensions(properties: dict[str, Any], assets: dict[str, Any] | None = None) -> list[str]:
    """The schema URLs of the extensions whose fields the item uses (only those: a declared
    extension without any of its fields fails validation)."""
    prefixes = {key.split(":", 1)[0] for key in properties if ":" in key}
    for asset in (assets or {}).values():
        prefixes |= {key.split(":", 1)[0] for key in asset if ":" in key}
        if "alternate" in asset:
            prefixes.add("alternate")
    return [SCHEMA.format(EXTENSIONS[p]) for p in sorted(prefixes) if p in EXTENSIONS]
