"""The gateway's cache: in-memory (the embedded default) or Redis (shared by every worker)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("mqs.cache")


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """A bounded LRU with per-entry expiry, local to one process."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry[1]

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        self._data[key] = (time.monotonic() + ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def close(self) -> None:
        self._data.clear()


class RedisCache:
    """Redis shared by every worker and instance. When Redis fails, it is a miss, not an error."""

    def __init__(self, url: str, prefix: str = "mqs:") -> None:
        self._redis = aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._prefix = prefix
        self._down = False

    def _failed(self, exc: RedisError) -> None:
        if not self._down:
            log.warning("redis cache unavailable, serving uncached: %s", type(exc).__name__)
        self._down = True

    def _ok(self) -> None:
        if self._down:
            log.warning("redis cache available again")
        self._down = False

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._prefix + key)
        except RedisError as exc:
            self._failed(exc)
            return None
        self._ok()
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        try:
            await self._redis.set(self._prefix + key, value, px=int(ttl_s * 1000))
        except RedisError as exc:
            self._failed(exc)
            return
        self._ok()

    async def close(self) -> None:
        await self._redis.aclose()


def make_cache(url: str) -> Cache:
    if url.startswith("memory://"):
        return MemoryCache()
    return RedisCache(url)
