"""The gateway's cache: in-memory (the embedded default) or Redis (shared by every worker).

A cache never fails a request: a value that cannot be read is a miss, one that cannot be
written is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("mqs.cache")

DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Set ``key`` only if it is absent (a lock); True when set or when the cache is down."""
        ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """A bounded LRU (entries and total bytes) with per-entry expiry, local to one process."""

    def __init__(self, max_entries: int = 10_000, max_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return entry[1]

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0 or len(value) > self._max_bytes:
            return
        self._drop(key)
        self._data[key] = (time.monotonic() + ttl_s, value)
        self._bytes += len(value)
        while len(self._data) > self._max or self._bytes > self._max_bytes:
            self._drop(next(iter(self._data)))

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl_s)
        return True

    async def delete(self, key: str) -> None:
        self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self._data.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1])

    async def close(self) -> None:
        self._data.clear()
        self._bytes = 0


class RedisCache:
    """Redis shared by every worker and instance. When Redis fails, it is a miss, not an error.

    No command is retried (a cache miss is cheaper than a wait); after a failure Redis is left
    alone for ``retry_after_s``, then tried again, reconnecting. The outage is logged once when
    it starts and once when it ends.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "mqs:",
        *,
        timeout_s: float = 1.0,
        retry_after_s: float = 1.0,
        max_connections: int = 64,
    ) -> None:
        # At most max_connections commands at once; the others queue here, not in the pool (a
        # burst of lookups is not an outage).
        self._slots = asyncio.Semaphore(max_connections)
        pool = aioredis.ConnectionPool.from_url(
            url,
            max_connections=max_connections,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._prefix = prefix
        self._retry_after_s = retry_after_s
        self._down = False
        self._resume_at = 0.0

    def _skipping(self) -> bool:
        return self._down and time.monotonic() < self._resume_at

    async def _failed(self, exc: Exception) -> None:
        self._resume_at = time.monotonic() + self._retry_after_s
        if self._down:
            return
        log.warning("redis cache unavailable, serving uncached: %s", type(exc).__name__)
        self._down = True
        # idle pooled connections are dead too: reconnect afresh when Redis is back
        with contextlib.suppress(RedisError, OSError):
            await self._redis.connection_pool.disconnect(inuse_connections=False)

    def _ok(self) -> None:
        if self._down:
            log.warning("redis cache available again")
        self._down = False

    async def get(self, key: str) -> bytes | None:
        async with self._slots:
            if self._skipping():
                return None
            try:
                value = await self._redis.get(self._prefix + key)
            except (RedisError, OSError) as exc:
                await self._failed(exc)
                return None
            self._ok()
            return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        async with self._slots:
            if self._skipping():
                return
            try:
                await self._redis.set(self._prefix + key, value, px=max(1, int(ttl_s * 1000)))
            except (RedisError, OSError) as exc:
                await self._failed(exc)
                return
            self._ok()

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        """``SET NX``: True when this caller set it, or when Redis cannot coordinate (down)."""
        async with self._slots:
            if self._skipping():
                return True
            try:
                done = await self._redis.set(
                    self._prefix + key, value, px=max(1, int(ttl_s * 1000)), nx=True
                )
            except (RedisError, OSError) as exc:
                await self._failed(exc)
                return True
            self._ok()
            return bool(done)

    async def delete(self, key: str) -> None:
        async with self._slots:
            if self._skipping():
                return
            try:
                await self._redis.delete(self._prefix + key)
            except (RedisError, OSError) as exc:
                await self._failed(exc)
                return
            self._ok()

    async def ping(self) -> bool:
        """Whether Redis answers a PING now (readiness; ignores the back-off after an outage)."""
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()

    @property
    def redis(self) -> aioredis.Redis:
        """The client, for atomic scripts (e.g. the rate limiter's token buckets)."""
        return self._redis

    @property
    def prefix(self) -> str:
        return self._prefix


def make_cache(url: str, memory_max_bytes: int = DEFAULT_MEMORY_BYTES) -> Cache:
    if url.startswith("memory://"):
        return MemoryCache(max_bytes=memory_max_bytes)
    return RedisCache(url)
