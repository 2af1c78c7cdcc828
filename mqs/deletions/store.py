"""Where the deletion registry lives: Redis (shared by every worker) or this process's memory.

Not the answer cache (:mod:`mqs.cache`): registry entries must never be evicted or expire, so
they are kept under their own key prefix without a TTL. The same ``cache.url`` names the
server. A Redis failure is an error here (:class:`StoreError`); the search path catches it and
answers without deletion information rather than failing (see :mod:`mqs.deletions.search`).
"""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

DEFAULT_PREFIX = "mqs:deletions:"


class StoreError(Exception):
    """The registry's store could not be read or written."""


class Store(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    async def set_many(self, values: dict[str, bytes]) -> None: ...

    async def lock(self, key: str, ttl_s: float) -> bool:
        """True when this caller now holds ``key`` (for ``ttl_s``); False when another does."""
        ...

    async def unlock(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryStore:
    """One process's registry (``cache.url: memory://``): each worker syncs its own."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._locks: set[str] = set()

    async def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self._data.get(k) for k in keys]

    async def set_many(self, values: dict[str, bytes]) -> None:
        self._data.update(values)

    async def lock(self, key: str, ttl_s: float) -> bool:
        if key in self._locks:
            return False
        self._locks.add(key)
        return True

    async def unlock(self, key: str) -> None:
        self._locks.discard(key)

    async def close(self) -> None:
        self._data.clear()


class RedisStore:
    """The registry in Redis, under ``prefix``; no key expires."""

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX, timeout_s: float = 5.0) -> None:
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        return (await self.get_many([key]))[0]

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = await self._redis.mget([self._prefix + k for k in keys])
        except (RedisError, OSError) as exc:
            raise StoreError(f"deletion registry unavailable ({type(exc).__name__})") from None
        return [v if isinstance(v, bytes) else None for v in values]

    async def set_many(self, values: dict[str, bytes]) -> None:
        if not values:
            return
        try:
            await self._redis.mset({self._prefix + k: v for k, v in values.items()})
        except (RedisError, OSError) as exc:
            raise StoreError(f"deletion registry unavailable ({type(exc).__name__})") from None

    async def lock(self, key: str, ttl_s: float) -> bool:
        try:
            got = await self._redis.set(
                self._prefix + key, b"1", nx=True, px=max(1, int(ttl_s * 1000))
            )
        except (RedisError, OSError) as exc:
            raise StoreError(f"deletion registry unavailable ({type(exc).__name__})") from None
        return bool(got)

    async def unlock(self, key: str) -> None:
        try:
            await self._redis.delete(self._prefix + key)
        except (RedisError, OSError) as exc:
            raise StoreError(f"deletion registry unavailable ({type(exc).__name__})") from None

    async def close(self) -> None:
        await self._redis.aclose()


def make_store(url: str, prefix: str = DEFAULT_PREFIX) -> Store:
    """The registry's store for the federation's ``cache.url``."""
    if url.startswith("memory://"):
        return MemoryStore()
    return RedisStore(url, prefix)
