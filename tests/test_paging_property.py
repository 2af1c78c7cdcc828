"""Property: paging the federation to the end yields exactly the brute-force answer.

Random catalogues (many products sharing a datetime, as the tiles of a datatake do) spread
over 2-4 emulated STAC backends with random overlap, backend page sizes and gateway page
sizes. The backends are the real emulator apps behind ``httpx.ASGITransport``; every page
goes through a real paging token.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from factories import BASE_TIME, TILE_BBOX, s2_item, s2_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.stac.adapter import StacAdapter
from adapters.stac.emulator import create_emulator
from mqs.config import parse_config
from mqs.federation import Federation, Member
from mqs.paging import TokenCodec
from mqs.query import SearchQuery

TILES = tuple(TILE_BBOX)


@st.composite
def federations(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Any], int]:
    count = draw(st.integers(1, 30))
    hours = draw(st.lists(st.integers(0, 4), min_size=count, max_size=count))
    products = {}
    for i, h in enumerate(hours):
        when = BASE_TIME - timedelta(hours=h)
        tile = TILES[i % len(TILES)]
        name = s2_name(when, tile, baseline=f"N{300 + i // len(TILES):04d}")
        products[name] = s2_item(name, when, bbox=TILE_BBOX[tile])
    items = list(products.values())
    n_backends = draw(st.integers(2, 4))
    backends = []
    for _ in range(n_backends):
        held = draw(st.lists(st.integers(0, len(items) - 1), unique=True, max_size=len(items)))
        # a renamed archive names items its own way, so it breaks datetime ties differently
        salt = draw(st.none() | st.integers(1, 999))
        backends.append((held, draw(st.integers(1, 7)), salt))
    return items, backends, draw(st.integers(1, 9))


def _renamed(item: dict[str, Any], index: int, salt: int) -> dict[str, Any]:
    """The item as an archive with its own ids serves it (the product name in a property)."""
    props = {**item["properties"], "s2:product_uri": f"{item['id']}.SAFE"}
    return {**item, "id": f"{(index * 7919 + salt) % 1009:04d}", "properties": props}


async def _page_to_the_end(federation: Federation, limit: int) -> list[str]:
    codec = TokenCodec(b"secret", "cfg", 60)
    query = SearchQuery(collections=("sentinel-2-l2a",), limit=limit)
    ids: list[str] = []
    position = None
    for _ in range(200):
        result = await federation.search(query, position)
        ids += [item["id"] for item in result.items]
        if result.next_position is None:
            return ids
        token = codec.encode(result.next_position, query.fingerprint())
        position = codec.decode(token, query.fingerprint())
    raise AssertionError("paging did not end")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(federations())
def test_paging_equals_brute_force(case: Any) -> None:
    items, holdings, limit = case
    raw = {
        "collections": {"sentinel-2-l2a": {}},
        "backends": [
            {
                "id": f"b{i}",
                "kind": "stac",
                "url": f"http://b{i}",
                "priority": i,
                "collections": ["sentinel-2-l2a"],
                "options": {"product_id_property": "s2:product_uri"} if salt else {},
            }
            for i, (_, _, salt) in enumerate(holdings)
        ],
    }
    config = parse_config(raw)

    async def run() -> list[str]:
        members = []
        clients = []
        for backend, (held, page_size, salt) in zip(config.backends, holdings, strict=True):
            served = [_renamed(items[i], i, salt) if salt else items[i] for i in held]
            app = create_emulator(served, max_page_size=page_size)
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
            clients.append(client)
            members.append(Member(backend, StacAdapter(backend, client)))
        try:
            return await _page_to_the_end(Federation(members, config.routing()), limit)
        finally:
            for client in clients:
                await client.aclose()

    held_items = {items[i]["id"]: items[i] for held, _, _ in holdings for i in held}
    expected = sorted(held_items.values(), key=lambda i: i["id"])
    expected.sort(key=lambda i: i["properties"]["datetime"], reverse=True)
    assert asyncio.run(run()) == [i["id"] for i in expected]
