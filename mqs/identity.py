"""Which product an item is: the Sentinel product name, the federation's de-duplication key."""

from __future__ import annotations

from typing import Any

SUFFIXES = (".SAFE", ".zip", ".SEN3", ".SEN3.zip", ".SAFE.zip", ".nc", ".tar")
_LONGEST_FIRST = tuple(sorted(SUFFIXES, key=len, reverse=True))  # ".SAFE.zip" before ".zip"

# Properties that carry the product name in STAC catalogues whose item ids differ from it.
PRODUCT_NAME_PROPERTIES = (
    "s2:product_uri",  # Earth Search / Planetary Computer Sentinel-2
    "s1:product_identifier",  # Earth Search Sentinel-1
    "s3:product_name",
    "sentinel:product_id",  # Earth Search v0
    "eopf:product_name",
)


def product_name(name: str) -> str:
    """``S2A_..._20211024T122307.SAFE`` -> ``S2A_..._20211024T122307``; other names unchanged."""
    name = name.strip().rsplit("/", 1)[-1]
    for suffix in _LONGEST_FIRST:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def product_name_of_item(item: dict[str, Any], prefer: str | None = None) -> str:
    """The product name of a STAC item: from ``prefer`` or known properties, else its id."""
    props = item.get("properties") or {}
    for key in ((prefer,) if prefer else ()) + PRODUCT_NAME_PROPERTIES:
        value = props.get(key)
        if isinstance(value, str) and value:
            return product_name(value)
    return product_name(str(item.get("id", "")))
