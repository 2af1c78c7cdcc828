"""STAC API answer -> the federation's hits (pure)."""

from __future__ import annotations

from typing import Any

from adapters.base import Hit
from mqs.identity import product_name_of_item

GATEWAY_RELS = frozenset({"self", "root", "parent", "collection", "next", "prev", "previous"})


def to_hit(feature: Any, canonical: dict[str, str], id_property: str | None) -> Hit | None:
    """One feature as a hit with a canonical collection; None when it is not a usable item."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return None
    if not isinstance(feature.get("id"), str) or not isinstance(feature.get("properties"), dict):
        return None
    collection = canonical.get(str(feature.get("collection")))
    if collection is None:
        return None
    feature["collection"] = collection
    links: list[Any] = feature["links"] if isinstance(feature.get("links"), list) else []
    kept = [ln for ln in links if isinstance(ln, dict) and ln.get("rel") not in GATEWAY_RELS]
    own = next(
        (ln.get("href") for ln in links if isinstance(ln, dict) and ln.get("rel") == "self"), None
    )
    if isinstance(own, str):
        kept.append({"rel": "via", "href": own, "type": "application/geo+json"})
    feature["links"] = kept
    return Hit(product_name_of_item(feature, id_property), feature)


def page_hits(body: Any, canonical: dict[str, str], id_property: str | None) -> list[Hit]:
    if not isinstance(body, dict) or not isinstance(body.get("features"), list):
        return []
    hits = (to_hit(f, canonical, id_property) for f in body["features"])
    return [h for h in hits if h is not None]


def next_link(body: Any) -> dict[str, Any] | None:
    """The ``next`` link of an ItemCollection, if any."""
    if not isinstance(body, dict):
        return None
    for link in body.get("links") or []:
        if (
            isinstance(link, dict)
            and link.get("rel") == "next"
            and isinstance(link.get("href"), str)
        ):
            return link
    return None


def matched(body: Any) -> int | None:
    """``numberMatched`` (or the older ``context.matched``) when the backend reports it."""
    if not isinstance(body, dict):
        return None
    value = body.get("numberMatched")
    if value is None and isinstance(body.get("context"), dict):
        value = body["context"].get("matched")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
