"""B3 cached throughput: requests/s of a repeated 10-item search with 2 workers.

Run: ``.venv/bin/python benchmarks/bench_throughput.py [--seconds S] [--workers N]``.

The gateway (``mqs serve --workers 2``) federates 3 STAC emulators (own process, no added
latency) with its cache of backend answers on (``memory://``, per worker), warmed before the
run: every search is answered from cached backend pages, so the gateway still parses, merges,
de-duplicates and serialises each time, except that identical searches arriving while one is
computed share its answer (``cache.coalesce_pages``, the default; a third variant turns it off).
The yardstick is a minimal stac-fastapi app
(``baseline_app.py``) answering the gateway's own bytes for that search, run the same way.
Targets: >= 1000 req/s and >= 0.7 of the yardstick. The load client shares the 2 cores; its
CPU per request is printed (``client_cpu_us_per_request``).

Writes ``benchmarks/results/throughput-<timestamp>.json`` (and ``throughput-latest.json``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import harness as h
import httpx

SEARCH: dict[str, Any] = {"limit": 10, "collections": "sentinel-2-l2a,sentinel-1-grd"}
CACHED = {"url": "memory://", "search_ttl_s": 600, "item_ttl_s": 600}
VARIANTS = {
    "gateway, pages cached": CACHED | {"page_ttl_s": 600},
    # the default: no page cache, identical searches in flight computed once (mqs.pagecache)
    "gateway, backend answers cached (no page cache)": CACHED,
    "gateway, backend answers cached, no coalescing": CACHED | {"coalesce_pages": False},
}


def _run(url: str, seconds: float, concurrency: int) -> h.Load:
    h.run_load(url, [SEARCH], concurrency=concurrency, count=200)  # warm every worker's cache
    return h.run_load(url, [SEARCH], concurrency=concurrency, seconds=seconds)


def _measure(server: h.Gateway, seconds: float, concurrency: int) -> dict[str, Any]:
    before = server.cpu_s()
    load = _run(server.url, seconds, concurrency)
    cpu_ms = (server.cpu_s() - before) / (load.count + 200) * 1000
    return load.summary() | {"cpu_ms_per_request": round(cpu_ms, 2)}


def b3(files: dict[str, Path], seconds: float, workers: int, concurrency: int) -> dict[str, Any]:
    specs = h.stac_backends(files, [0.0, 0.0, 0.0])
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "answer.json"
        with h.backends(specs) as urls:
            for name, cache in VARIANTS.items():
                config = h.federation_yaml(specs, urls, cache=cache)
                with h.gateway(config, workers) as gw:
                    answer = httpx.get(f"{gw.url}/search", params=SEARCH)
                    answer.raise_for_status()
                    body.write_bytes(answer.content)
                    runs[name] = _measure(gw, seconds, concurrency)
        with h.baseline(body, workers) as base:
            runs["minimal stac-fastapi app"] = _measure(base, seconds, concurrency)
    yardstick = runs["minimal stac-fastapi app"]["rps"]
    print(f"B3 cached throughput, 10-item search ({len(answer.content)} bytes), {workers} workers:")
    for name, run in runs.items():
        ratio = run["ratio"] = round(run["rps"] / yardstick, 3)
        print(
            f"   {name:<48} {run['rps']:7.1f} req/s  x{ratio:.3f}  p50 {run['p50_ms']:6.1f} ms  "
            f"CPU {run['cpu_ms_per_request']:5.2f} ms/request  errors {run['errors']}"
        )
    pages = runs["gateway, pages cached"]
    print(
        f"   gateway (pages cached): {h.verdict(pages['rps'], 1000, at_most=False)}, ratio "
        f"{h.verdict(pages['ratio'], 0.7, at_most=False)}; load client CPU "
        f"{pages['client_cpu_us_per_request']} us/request, {concurrency} clients"
    )
    return {
        "workers": workers,
        "concurrency": concurrency,
        "answer_bytes": len(answer.content),
        "runs": runs,
        "rps": pages["rps"],
        "ratio": pages["ratio"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = h.catalogue_files(Path(tmp))
        results = {"B3": b3(files, args.seconds, args.workers, args.concurrency)}
    print(f"written: {h.write_results('throughput', results)}")
    return results


if __name__ == "__main__":
    main()
