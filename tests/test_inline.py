"""GET endpoints build their request models on the event loop (:mod:`mqs.inline`).

stac-fastapi's GET parameters are attrs classes that FastAPI would build in its thread pool; a
search must not wait for a worker thread (under load that hand-off cost ~10 ms per search). The
gateway runs here in the test's own event loop (``httpx.ASGITransport``) so that the test can
take every token of that loop's thread pool; the backends are live emulators on loopback.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import anyio.to_thread
import httpx
import pytest
from conftest import TEST_SECRET, Archive, MakeFederation
from factories import series

from mqs.app import create_app
from mqs.config import Settings

ITEMS = series(6, tiles=("33UXQ", "33UWQ"))  # 12 products


@pytest.fixture
async def gateway(make_federation: MakeFederation) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app over two live STAC emulators, served in this event loop."""
    live = make_federation(a=Archive(ITEMS[::2]), b=Archive(ITEMS[1::2]))
    app = create_app(live.config, Settings(token_secret=TEST_SECRET))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield client


@pytest.fixture
async def busy_thread_pool() -> AsyncIterator[None]:
    """Every worker thread of this event loop's pool busy until the test ends."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    tokens = limiter.total_tokens
    limiter.total_tokens = 1
    release = threading.Event()
    blocker = asyncio.create_task(anyio.to_thread.run_sync(release.wait))
    while limiter.borrowed_tokens < 1:
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        release.set()
        await blocker
        limiter.total_tokens = tokens


@pytest.mark.usefixtures("busy_thread_pool")
async def test_get_search_does_not_wait_for_a_worker_thread(gateway: httpx.AsyncClient) -> None:
    params = {
        "collections": "sentinel-2-l2a",
        "bbox": "14,49,18,51",
        "datetime": "2021-01-01T00:00:00Z/2030-01-01T00:00:00Z",
        "limit": "5",
        "sortby": "-datetime",
    }
    async with asyncio.timeout(10):
        answer = await gateway.get("/search", params=params)
    assert answer.status_code == 200
    features = answer.json()["features"]
    assert len(features) == 5
    times = [f["properties"]["datetime"] for f in features]
    assert times == sorted(times, reverse=True)
    newest = max(item["properties"]["datetime"] for item in ITEMS)
    assert times[0] == newest


@pytest.mark.usefixtures("busy_thread_pool")
async def test_get_items_and_collections_do_not_wait_either(gateway: httpx.AsyncClient) -> None:
    async with asyncio.timeout(10):
        items = await gateway.get("/collections/sentinel-2-l2a/items", params={"limit": "3"})
        listing = await gateway.get("/collections", params={"q": "sentinel-2-l2a"})
    assert items.status_code == 200 and len(items.json()["features"]) == 3
    assert listing.status_code == 200
    assert "sentinel-2-l2a" in [c["id"] for c in listing.json()["collections"]]


async def test_get_parameters_are_still_validated(gateway: httpx.AsyncClient) -> None:
    answer = await gateway.get("/search", params={"bbox": "14,49,not-a-number,51"})
    assert answer.status_code == 400
    assert set(answer.json()) >= {"code", "description"}
    answer = await gateway.get("/search", params={"datetime": "2021-13-45"})
    assert answer.status_code == 400
