"""Latency of federated searches over the demo federation (7 emulated archives, loopback).

Run: ``.venv/bin/python benchmarks/search_latency.py [--rounds N]``. Prints p50/p95 per
search kind and the gateway process's CPU time per search (emulators run in the same
process, so CPU figures are an upper bound for the gateway alone). Writes JSON to
``benchmarks/results/search_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from mqs.app import create_app
from mqs.config import Settings
from mqs.demo import demo_federation
from mqs.serving import bound_socket, serving_in_thread

CASES = {
    "10 items, all collections": {"limit": 10},
    "100 items, sentinel-2-l2a": {"limit": 100, "collections": "sentinel-2-l2a"},
    "100 items, bbox+datetime": {
        "limit": 100,
        "bbox": "14,49,16,50",
        "datetime": "2021-10-01T00:00:00Z/2021-10-31T23:59:59Z",
    },
}


def _measure(
    client: httpx.Client, url: str, params: dict[str, object], rounds: int
) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        response = client.get(f"{url}/search", params=params)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        response.raise_for_status()
    walls.sort()
    return {
        "p50_ms": statistics.median(walls) * 1000,
        "p95_ms": walls[int(len(walls) * 0.95) - 1] * 1000,
        "cpu_ms": statistics.mean(cpus) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config, apps = demo_federation(Path(tmp))
        gateway = bound_socket()
        app = create_app(config, Settings(token_secret="bench"))
        with serving_in_thread([*apps, (app, gateway)]) as urls, httpx.Client() as client:
            results = {}
            for name, params in CASES.items():
                _measure(client, urls[-1], params, 3)  # warm up
                results[name] = _measure(client, urls[-1], params, args.rounds)
                r = results[name]
                print(
                    f"{name:<28} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  "
                    f"cpu/search {r['cpu_ms']:6.1f} ms (gateway + 7 emulators)"
                )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "search_latency.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
