"""DeletedProducts feeds (emulated DHuS and CDSE) and the registry's incremental sync.

The adapters talk HTTP to the real emulator apps through ``httpx.ASGITransport``; the registry
runs on process memory and on the real Redis (127.0.0.1:6379, a key prefix of its own).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from factories import BASE_TIME, s2_item, s2_name

from adapters.registry import ADAPTERS, EMULATORS
from mqs.cache import MemoryCache
from mqs.config import BackendConfig
from mqs.deletions.config import DeletionsConfig
from mqs.deletions.model import DeletedProduct
from mqs.deletions.registry import CHUNK, DeletionRegistry
from mqs.deletions.search import screen
from mqs.deletions.service import Deletions
from mqs.deletions.store import MemoryStore, RedisStore, Store
from mqs.deletions.sync import sync_backend
from mqs.federation import SearchResult
from mqs.httpcache import CachePolicy, CachingTransport

REDIS = "redis://127.0.0.1:6379/0"
DAY = datetime(2021, 11, 2, 8, 15, tzinfo=UTC)
CAUSES = [  # real DeletionCause strings (tests/fixtures/deletions)
    "Obsolete: replaced by 0reprocessed product",
    "Invalid generated with wrong TCI",
    "Duplicate Products",
    "Automatic Eviction",
    "null",
]


def _items(count: int) -> list[dict[str, Any]]:
    times = [BASE_TIME - timedelta(hours=6 * i) for i in range(count)]
    return [s2_item(s2_name(t), t) for t in times]


def _backend(kind: str) -> BackendConfig:
    auth = {"type": "basic", "username_env": "DEL_USER", "password_env": "DEL_PASS"}
    return BackendConfig.model_validate(
        {
            "id": kind.split("-")[0],
            "kind": kind,
            "url": "http://emulator",
            "collections": ["sentinel-2-l2a"],
            **({"auth": auth} if kind == "dhus" else {}),
        }
    )


@pytest.fixture(params=["memory", "redis"])
async def registry(request: pytest.FixtureRequest) -> AsyncIterator[DeletionRegistry]:
    store: Store
    if request.param == "memory":
        store = MemoryStore()
    else:
        prefix = f"mqs-test:{uuid.uuid4().hex}:"
        store = RedisStore(REDIS, prefix)
    yield DeletionRegistry(store)
    if request.param == "redis":
        client = aioredis.Redis.from_url(REDIS)
        keys = [k async for k in client.scan_iter(f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    await store.close()


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEL_USER", "mirror")
    monkeypatch.setenv("DEL_PASS", "s3cret")


def _emulator(kind: str, items: list[dict[str, Any]]) -> Any:
    if kind == "dhus":
        return EMULATORS[kind](items, credentials=("mirror", "s3cret"))
    return EMULATORS[kind](items)


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emulator")


# --- the feeds, as a client sees them ----------------------------------------------------------
async def test_dhus_feed_is_odata_v2_and_the_product_leaves_products_and_search() -> None:
    items = _items(3)
    app = _emulator("dhus", items)
    gone = s2_name(BASE_TIME)
    app.state.deleted.delete(gone, CAUSES[0], DAY)
    auth = "Basic " + base64.b64encode(b"mirror:s3cret").decode()
    async with _client(app) as client:
        denied = await client.get("/odata/v1/DeletedProducts", params={"$format": "json"})
        assert denied.status_code == 401
        client.headers["Authorization"] = auth
        feed = await client.get(
            "/odata/v1/DeletedProducts",
            params={"$format": "json", "$inlinecount": "allpages", "$orderby": "DeletionDate asc"},
        )
        body = feed.json()["d"]
        assert body["__count"] == "1"
        entity = body["results"][0]
        assert entity["Name"] == gone
        assert entity["DeletionCause"] == CAUSES[0]
        assert entity["DeletionDate"] == f"/Date({int(DAY.timestamp() * 1000)})/"
        assert entity["__metadata"]["type"] == "DHuS.DeletedProduct"
        assert entity["Size"].isdigit() and entity["Checksum"]["Algorithm"] == "MD5"
        single = await client.get(f"/odata/v1/DeletedProducts('{entity['Id']}')?$format=json")
        assert single.json()["d"]["Name"] == gone  # one entity: an object, not results
        count = await client.get("/odata/v1/DeletedProducts/$count")
        assert count.text == "1"
        later = await client.get(
            "/odata/v1/DeletedProducts",
            params={"$format": "json", "$filter": "DeletionDate gt datetime'2021-11-02T08:15:00'"},
        )
        assert later.json()["d"]["results"] == []
        products = await client.get(
            "/odata/v1/Products", params={"$format": "json", "$filter": f"Name eq '{gone}'"}
        )
        assert products.json()["d"]["results"] == []
        search = await client.get("/search", params={"q": f"identifier:{gone}", "format": "json"})
        assert search.json()["feed"]["opensearch:totalResults"] == "0"


async def test_cdse_feed_is_the_products_json_plus_deletion_fields() -> None:
    items = _items(3)
    app = _emulator("cdse-odata", items)
    for i, item in enumerate(items):
        app.state.deleted.delete(item["id"], CAUSES[i], DAY + timedelta(minutes=i))
    async with _client(app) as client:
        first = await client.get(
            "/odata/v1/DeletedProducts",
            params={"$orderby": "DeletionDate asc", "$top": "2", "$count": "true"},
        )
        body = first.json()
        assert body["@odata.context"] == "$metadata#DeletedProducts"
        assert body["@odata.count"] == 3
        names = [e["Name"] for e in body["value"]]
        assert names == [f"{items[0]['id']}.SAFE", f"{items[1]['id']}.SAFE"]
        assert body["value"][0]["DeletionDate"] == "2021-11-02T08:15:00.000000Z"
        assert body["value"][1]["DeletionCause"] == CAUSES[1]
        assert {"ContentDate", "Checksum", "GeoFootprint", "OriginDate"} <= set(body["value"][0])
        rest = await client.get(body["@odata.nextLink"])
        assert [e["DeletionCause"] for e in rest.json()["value"]] == [CAUSES[2]]
        filtered = await client.get(
            "/odata/v1/DeletedProducts",
            params={
                "$filter": "DeletionDate ge 2021-11-02T08:16:00.000Z and DeletionCause eq "
                "'Duplicate Products'"
            },
        )
        assert [e["Name"] for e in filtered.json()["value"]] == [f"{items[2]['id']}.SAFE"]
        bad = await client.get("/odata/v1/DeletedProducts", params={"$orderby": "Name"})
        assert bad.status_code == 400
        products = await client.get("/odata/v1/Products", params={"$top": "10"})
        assert products.json()["value"] == []


# --- the sync ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dhus", "cdse-odata"])
async def test_sync_is_incremental_and_idempotent(kind: str, registry: DeletionRegistry) -> None:
    items = _items(7)
    app = _emulator(kind, items)
    for i, item in enumerate(items[:5]):
        app.state.deleted.delete(item["id"], CAUSES[i], DAY + timedelta(hours=i))
    backend = _backend(kind)
    async with _client(app) as client:
        adapter = ADAPTERS[kind](backend, client, None)
        first = await sync_backend(registry, backend.id, adapter, page_size=2)
        assert (first.status, first.requests, first.read, first.new) == ("ok", 3, 5, 5)
        assert first.high_water_mark == "2021-11-02T12:15:00.000Z"
        assert "$filter" not in app.state.deleted.queries[0]  # a first sync reads everything
        stored = await registry.deletions(backend.id)
        assert [d.cause for d in stored] == CAUSES
        assert [d.cls for d in stored] == [
            "replaced-by-reprocessing", "invalid", "duplicate", "eviction-to-lta", "unknown"
        ]  # fmt: skip

        app.state.deleted.queries.clear()
        again = await sync_backend(registry, backend.id, adapter, page_size=2)
        assert (again.status, again.new) == ("ok", 0)
        asked = app.state.deleted.queries
        assert len(asked) == 1 and "DeletionDate ge" in asked[0]["$filter"]
        assert "2021-11-02T12:15:00.000" in asked[0]["$filter"]  # only from the mark on
        assert await registry.deletions(backend.id) == stored  # the same registry

        app.state.deleted.delete(items[5]["id"], "Corrupted products", DAY + timedelta(days=1))
        third = await sync_backend(registry, backend.id, adapter, page_size=2)
        assert (third.new, third.high_water_mark) == (1, "2021-11-03T08:15:00.000Z")
        names = [d.product for d in await registry.deletions(backend.id)]
        assert names == [item["id"] for item in items[:6]]
        found = await registry.lookup([items[5]["id"], items[6]["id"]])
        assert list(found) == [items[5]["id"]]
        assert found[items[5]["id"]][0].cls == "corrupted"


@pytest.mark.parametrize("kind", ["dhus", "cdse-odata"])
async def test_a_sync_never_reads_the_feed_from_the_answer_cache(kind: str) -> None:
    """The gateway caches backend answers (search_ttl_s); a feed page asked for again must be
    read from the backend, or a deletion made since would be missed until the entry expired."""
    items = _items(3)
    app = _emulator(kind, items)
    app.state.deleted.delete(items[0]["id"], CAUSES[0], DAY)
    backend, registry = _backend(kind), DeletionRegistry(MemoryStore())
    cached = CachingTransport(httpx.ASGITransport(app=app), MemoryCache(), CachePolicy(300, 300))
    async with httpx.AsyncClient(transport=cached, base_url="http://emulator") as client:
        adapter = ADAPTERS[kind](backend, client, None)
        await sync_backend(registry, backend.id, adapter, page_size=10)
        await sync_backend(registry, backend.id, adapter, page_size=10)  # asks from the mark
        app.state.deleted.delete(items[1]["id"], CAUSES[2], DAY)  # at the mark: the same query
        again = await sync_backend(registry, backend.id, adapter, page_size=10)
    assert again.new == 1
    assert [d.product for d in await registry.deletions(backend.id)] == [
        items[0]["id"],
        items[1]["id"],
    ]


async def test_a_failing_feed_keeps_what_was_read(registry: DeletionRegistry) -> None:
    app = _emulator("dhus", _items(2))
    app.state.deleted.delete(s2_name(BASE_TIME), CAUSES[1], DAY)
    backend = _backend("dhus")
    async with _client(app) as client:
        adapter = ADAPTERS["dhus"](backend, client, None)
        assert (await sync_backend(registry, backend.id, adapter)).new == 1
        app.router.routes.clear()  # the hub now answers 404 to everything
        failed = await sync_backend(registry, backend.id, adapter)
    assert failed.status == "error" and "dhus" in (failed.detail or "")
    assert len(await registry.deletions(backend.id)) == 1


async def test_search_answers_without_the_registry_when_redis_is_down() -> None:
    dead = DeletionRegistry(RedisStore("redis://127.0.0.1:1/0", timeout_s=0.5))
    deletions = Deletions(DeletionsConfig(), dead, {"cdse": object()})  # type: ignore[dict-item]
    items = _items(2)
    result = SearchResult(items=list(items), next_position=None, matched=2, outcomes={})
    await screen(deletions, result, "exclude", "http://gateway/")
    assert (result.items, result.matched) == (items, 2)
    await deletions.close()


async def test_registry_keeps_the_order_read_across_chunks(registry: DeletionRegistry) -> None:
    names = [f"S1A_IW_GRDH_1SDV_{i:06d}" for i in range(CHUNK * 2 + 200)]
    rows = [
        DeletedProduct(n, DAY + timedelta(seconds=i), "Duplicated product")
        for i, n in enumerate(names)
    ]
    for start in range(0, len(rows), 300):
        page = rows[start : start + 300]
        assert await registry.add("cdse", page) == len(page)
    assert await registry.add("cdse", rows[-300:]) == 0  # read again: nothing new
    stored = await registry.deletions("cdse")
    assert [d.product for d in stored] == names
    assert (await registry.meta("cdse")).chunks == 3
    assert await registry.count(["cdse", "cesnet"]) == len(names)
    assert await registry.high_water_mark("cdse") == DAY + timedelta(seconds=len(names) - 1)
