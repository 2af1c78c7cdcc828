"""Per-user token buckets: in the process (memory cache) or in Redis, shared by every worker.

A bucket holds up to ``burst`` requests and refills at ``rate`` per second; a request takes
one. :meth:`take` answers 0 when the request may go, else the seconds until it could. Redis
buckets are updated atomically by one Lua script using Redis's own clock, so every worker and
instance draws from the same bucket. When Redis fails the request goes (the limiter, like the
cache, never fails a request).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mqs.cache import Cache, RedisCache

log = logging.getLogger("mqs.auth.ratelimit")

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class Buckets(Protocol):
    async def take(self, key: str, rate: float, burst: int) -> float: ...


def bucket_key(key: str) -> str:
    return "ratelimit:" + hashlib.sha256(key.encode()).hexdigest()[:32]


class MemoryBuckets:
    """Buckets of one process (the most recently used ``max_entries`` are kept)."""

    def __init__(
        self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    async def take(self, key: str, rate: float, burst: int) -> float:
        now = self._clock()
        tokens, then = self._buckets.pop(key, (float(burst), now))
        tokens = min(float(burst), tokens + max(0.0, now - then) * rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return wait


class RedisBuckets:
    """Buckets in Redis, updated atomically (see the module docstring)."""

    def __init__(self, client: aioredis.Redis, prefix: str = "mqs:") -> None:
        self._script = client.register_script(_TAKE)
        self._prefix = prefix
        self._down = False  # the outage is logged when it starts and when it ends

    async def take(self, key: str, rate: float, burst: int) -> float:
        try:
            wait = await self._script(keys=[self._prefix + key], args=[rate, burst])
        except (RedisError, OSError) as exc:
            if not self._down:
                log.warning("rate limits not applied, redis unavailable: %s", type(exc).__name__)
            self._down = True
            return 0.0
        if self._down:
            log.warning("rate limits applied again, redis available")
            self._down = False
        return float(wait.decode() if isinstance(wait, bytes) else wait)


def buckets_for(cache: Cache) -> Buckets:
    """Redis buckets when the gateway's cache is Redis, else buckets in this process."""
    if isinstance(cache, RedisCache):
        return RedisBuckets(cache.redis, cache.prefix)
    return MemoryBuckets()
