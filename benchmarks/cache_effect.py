"""What the cache of backend answers saves: latency and backend requests, cached vs uncached.

Run: ``.venv/bin/python benchmarks/cache_effect.py [--rounds N] [--burst N] [--redis URL]``.
The demo federation (7 emulated archives on loopback) is served by gateways that differ only in
their ``cache:`` section: ``uncached`` (``search_ttl_s: 0``), ``memory`` and, when Redis answers
at ``--redis``, ``redis``. For each search kind it measures repeated identical searches (p50/p95
latency) and a burst of concurrent identical searches (wall time), counting the requests that
reached the emulators. Prints figures and ratios; writes JSON to
``benchmarks/results/cache_effect.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from search_latency import CASES  # the same searches as the latency benchmark

from mqs.app import create_app
from mqs.config import CacheConfig, FederationConfig, Settings
from mqs.demo import demo_federation
from mqs.serving import bound_socket, serving_in_thread


class Counting:
    """An ASGI app counting the HTTP requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app, self.requests = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests += 1
        await self.app(scope, receive, send)


def variants(redis_url: str) -> dict[str, CacheConfig]:
    found = {"uncached": CacheConfig(search_ttl_s=0, item_ttl_s=0), "memory": CacheConfig()}
    try:
        if redis.Redis.from_url(redis_url, socket_timeout=1).ping():
            found["redis"] = CacheConfig(url=redis_url)
    except redis.RedisError:
        print(f"(no Redis at {redis_url}: the redis variant is skipped)")
    return found


def _sequential(url: str, params: dict[str, Any], rounds: int) -> dict[str, float]:
    walls = []
    with httpx.Client(timeout=60) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            client.get(f"{url}/search", params=params).raise_for_status()
            walls.append(time.perf_counter() - started)
    walls.sort()
    return {
        "p50_ms": statistics.median(walls) * 1000,
        "p95_ms": walls[max(int(len(walls) * 0.95) - 1, 0)] * 1000,
    }


async def _burst(url: str, params: dict[str, Any], n: int) -> float:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=n)) as client:
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(client.get(f"{url}/search", params=params) for _ in range(n))
        )
        wall = time.perf_counter() - started
    for answer in answers:
        answer.raise_for_status()
    return wall * 1000


def measure(
    url: str, counters: list[Counting], params: dict[str, Any], args: argparse.Namespace
) -> dict[str, float]:
    def sent() -> int:
        return sum(c.requests for c in counters)

    before = sent()
    result = _sequential(url, params, args.rounds)
    result["backend_requests"] = sent() - before
    before = sent()
    # a variation of the search, so that the burst does not start from a warm cache
    burst_params = params | {"limit": int(params["limit"]) - 1}
    result["burst_wall_ms"] = asyncio.run(_burst(url, burst_params, args.burst))
    result["burst_backend_requests"] = sent() - before
    return result


def report(results: dict[str, dict[str, dict[str, float]]]) -> None:
    base = results["uncached"]
    for variant, cases in results.items():
        print(f"\n{variant}")
        for name, r in cases.items():
            b = base[name]
            print(
                f"  {name:<28} p50 {r['p50_ms']:7.1f} ms (x{b['p50_ms'] / r['p50_ms']:5.1f})  "
                f"p95 {r['p95_ms']:7.1f} ms  backend requests {r['backend_requests']:4.0f} "
                f"(saved {b['backend_requests'] - r['backend_requests']:4.0f})  "
                f"burst {r['burst_wall_ms']:7.1f} ms, {r['burst_backend_requests']:4.0f} requests"
            )


def run(config: FederationConfig, apps: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    counters = [Counting(app) for app, _ in apps]
    served = [(c, sock) for c, (_, sock) in zip(counters, apps, strict=True)]
    gateways = {}
    for name, cache in variants(args.redis).items():
        variant = config.model_copy(update={"cache": cache})
        gateways[name] = (create_app(variant, Settings(token_secret="bench")), bound_socket())
    with serving_in_thread([*served, *gateways.values()]) as urls:
        gateway_urls = dict(zip(gateways, urls[len(served) :], strict=True))
        results: dict[str, Any] = {}
        for name, url in gateway_urls.items():
            results[name] = {c: measure(url, counters, p, args) for c, p in CASES.items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30, help="sequential identical searches")
    parser.add_argument("--burst", type=int, default=50, help="concurrent identical searches")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config, apps = demo_federation(Path(tmp))
        results = run(config, apps, args)
    report(results)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "cache_effect.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
