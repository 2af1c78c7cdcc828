"""Test data factories: STAC items of Sentinel-2 products, as an archive would serve them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

BASE_TIME = datetime(2021, 10, 24, 9, 51, 1, 24000, tzinfo=UTC)

TILE_BBOX = {
    "33UXQ": (15.0, 49.5, 16.5, 50.5),
    "33UWQ": (13.6, 49.5, 15.1, 50.5),
    "33UVQ": (12.2, 49.5, 13.7, 50.5),
}


def s2_name(
    when: datetime, tile: str = "33UXQ", level: str = "L2A", baseline: str = "N0301"
) -> str:
    stamp = when.strftime("%Y%m%dT%H%M%S")
    disc = (when + timedelta(hours=2, minutes=30)).strftime("%Y%m%dT%H%M%S")
    return f"S2A_MSI{level}_{stamp}_{baseline}_R079_T{tile}_{disc}"


def s2_item(
    name: str,
    when: datetime,
    *,
    collection: str = "sentinel-2-l2a",
    bbox: tuple[float, float, float, float] = (15.0, 49.5, 16.5, 50.5),
    cloud: float = 10.0,
    item_id: str | None = None,
    host: str = "$BASE",
) -> dict[str, Any]:
    """An item as a 'product'-style archive serves it (``item_id`` for other naming)."""
    w, s, e, n = bbox
    props: dict[str, Any] = {
        "datetime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "platform": "sentinel-2a",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": cloud,
    }
    if item_id is not None:
        props["s2:product_uri"] = f"{name}.SAFE"
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
        "id": item_id or name,
        "collection": collection,
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        },
        "bbox": [w, s, e, n],
        "properties": props,
        "links": [],
        "assets": {
            "product": {
                "href": f"{host}/download/{name}.zip",
                "type": "application/zip",
                "roles": ["data"],
            }
        },
    }


def series(
    count: int, *, tiles: tuple[str, ...] = ("33UXQ",), step_h: float = 24
) -> list[dict[str, Any]]:
    """``count`` datatakes, one item per tile each (tiles of a datatake share a datetime)."""
    items = []
    for i in range(count):
        when = BASE_TIME - timedelta(hours=step_h * i)
        items += [
            s2_item(s2_name(when, t), when, bbox=TILE_BBOX[t], cloud=i % 7 * 10) for t in tiles
        ]
    return items


def as_earth_search(item: dict[str, Any]) -> dict[str, Any]:
    """The same product as Earth Search names it: ``S2A_33UXQ_20211024_0_L2A``."""
    name = item["id"]
    mission, _, stamp, _, _, tile, _ = name.split("_")
    es_id = f"{mission}_{tile[1:]}_{stamp[:8]}_0_L2A"
    when = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
    return s2_item(name, when, bbox=tuple(item["bbox"]), item_id=es_id)
