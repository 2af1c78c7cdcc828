"""Search helpers shared by the live federation tests: follow every page, read the order."""

from __future__ import annotations

from typing import Any

import httpx


def all_pages(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every feature of a POST search, following ``next`` links; no backend may be missing."""
    features: list[dict[str, Any]] = []
    with httpx.Client(timeout=30) as client:
        page = client.post(f"{url}/search", json=body).json()
        while True:
            assert "features" in page, page
            assert "federation:missing" not in page, page
            features += page["features"]
            link = next((x for x in page["links"] if x["rel"] == "next"), None)
            if link is None:
                return features
            page = client.post(link["href"], json=link["body"]).json()


def ids(features: list[dict[str, Any]]) -> list[str]:
    return [f["id"] for f in features]


def expected_order(items: list[dict[str, Any]]) -> list[str]:
    """Item ids in the federation's order: datetime descending, then id."""
    ordered = sorted(items, key=lambda i: i["id"])
    ordered.sort(key=lambda i: i["properties"]["datetime"], reverse=True)
    return [i["id"] for i in ordered]
