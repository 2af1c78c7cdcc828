"""What the deletion registry costs: per search page, per sync page, per report.

Run: ``.venv/bin/python benchmarks/deletions_overhead.py [--size N] [--redis URL]``.

Fills a registry (process memory, and Redis when it answers) with ``--size`` deletions of one
backend, read as a feed would deliver them (pages of 100, ascending deletion date), then times:

- ``add_page_ms``: storing one feed page of 100 (the sync's cost per request);
- ``screen_page_ms``: screening a 100-item search page (``deleted=exclude``: one lookup of the
  page's product names and one count);
- ``report_ms``: building the ``/deletions`` report over every deletion (counts and order).

Prints one JSON object per store.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis

from mqs.deletions.causes import VOCABULARY
from mqs.deletions.config import DeletionsConfig
from mqs.deletions.model import DeletedProduct
from mqs.deletions.registry import DeletionRegistry
from mqs.deletions.report import Selection, build_report
from mqs.deletions.search import screen
from mqs.deletions.service import Deletions
from mqs.deletions.store import MemoryStore, RedisStore, Store
from mqs.federation import SearchResult

START = datetime(2021, 11, 1, tzinfo=UTC)
CAUSES = list(VOCABULARY)


def _name(i: int) -> str:
    return f"S2A_MSIL1C_20211024T100031_N0301_R122_T{i:05d}_20211024T120616"


async def _measure(store: Store, size: int) -> dict[str, Any]:
    registry = DeletionRegistry(store)
    adds = []
    for start in range(0, size, 100):
        page = [
            DeletedProduct(_name(i), START + timedelta(seconds=i), CAUSES[i % len(CAUSES)])
            for i in range(start, min(start + 100, size))
        ]
        began = time.perf_counter()
        await registry.add("cdse", page)
        adds.append((time.perf_counter() - began) * 1000)
    deletions = Deletions(DeletionsConfig(), registry, {"cdse": object()})  # type: ignore[dict-item]
    screens = []
    for round_ in range(50):
        items = [
            {"id": _name((round_ * 100 + k) * 7 % (2 * size)), "properties": {}} for k in range(100)
        ]
        result = SearchResult(items=items, next_position=None, matched=None, outcomes={})
        began = time.perf_counter()
        await screen(deletions, result, "exclude", "http://gateway/")
        screens.append((time.perf_counter() - began) * 1000)
    began = time.perf_counter()
    report = await build_report(registry, ["cdse"], Selection())
    report_ms = (time.perf_counter() - began) * 1000
    assert len(report.deletions) == size
    return {
        "deletions": size,
        "add_page_ms_p50": round(statistics.median(adds), 2),
        "screen_page_ms_p50": round(statistics.median(screens), 2),
        "screen_page_ms_max": round(max(screens), 2),
        "report_ms": round(report_ms, 1),
    }


async def main(size: int, redis_url: str) -> None:
    print(orjson.dumps({"store": "memory", **await _measure(MemoryStore(), size)}).decode())
    prefix = f"mqs-bench:{uuid.uuid4().hex}:"
    try:
        store = RedisStore(redis_url, prefix)
        print(orjson.dumps({"store": "redis", **await _measure(store, size)}).decode())
        await store.close()
    finally:
        client = aioredis.Redis.from_url(redis_url)
        keys = [k async for k in client.scan_iter(f"{prefix}*")]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    asyncio.run(main(args.size, args.redis))
