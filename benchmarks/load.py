"""Load test: N concurrent clients for T seconds against the demo federation, 1 and 2 workers.

Run: ``.venv/bin/python benchmarks/load.py [--clients N] [--seconds T] [--workers 1,2]
[--latency S] [--cache]``.

The seven emulated archives of ``mqs demo`` (five kinds: STAC, DHuS JSON and Atom, CDSE
OData, resto, Terrascope; the demo catalogue) run in a process of their own, each answering
after ``--latency`` seconds (default 0.05); the gateway is ``mqs serve --workers N`` on the demo
federation config. Each client sends searches from a mix (collections, bbox, datetime, query,
limit 10 or 50) back to back over one keep-alive connection. Backend answers are uncached
unless ``--cache`` (the demo's ``memory://`` cache, per worker). Prints, per worker count:
throughput, p50/p95/p99 latency, errors (non-200 answers or failed connections) and each
worker's peak RSS. Writes ``benchmarks/results/load-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path
from typing import Any

import harness as h
import yaml

from mqs.demo import demo_config_text

COLLECTIONS = ("sentinel-2-l2a", "sentinel-2-l1c", "sentinel-1-grd", "sentinel-1-slc")
BBOXES = ("14,49,16,50", "12,48.5,19,51", "15.5,49.5,17,50.5")
MONTHS = ("2021-09", "2021-10", "2021-11")
LAST_DAY = {"2021-09": 30, "2021-10": 31, "2021-11": 30}


def search_mix() -> list[dict[str, Any]]:
    """A varied set of searches (the order is fixed: runs are comparable)."""
    searches: list[dict[str, Any]] = []
    for i, (cid, bbox, month) in enumerate(itertools.product(COLLECTIONS, BBOXES, MONTHS)):
        search: dict[str, Any] = {
            "collections": cid,
            "bbox": bbox,
            "datetime": f"{month}-01T00:00:00Z/{month}-{LAST_DAY[month]}T23:59:59Z",
            "limit": 50 if i % 4 == 0 else 10,
        }
        if cid.startswith("sentinel-2") and i % 3 == 0:
            search["filter"] = "eo:cloud_cover < 40"
        searches.append(search)
    searches += [{"limit": 10}, {"limit": 10, "collections": "sentinel-2-l2a"}]
    return searches


def demo_specs(files: dict[str, Path], latency_s: float) -> tuple[list[h.Backend], dict[str, Any]]:
    raw = yaml.safe_load(demo_config_text())
    specs = [
        h.Backend(id=b["id"], kind=b["kind"], items=files[b["id"]], latency_s=latency_s)
        for b in raw["backends"]
    ]
    return specs, raw


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    searches = search_mix()
    with tempfile.TemporaryDirectory() as tmp:
        specs, raw = demo_specs(h.catalogue_files(Path(tmp)), args.latency)
        with h.backends(specs) as urls:
            for backend in raw["backends"]:
                backend["url"] = urls[backend["id"]] + str(backend["url"]).split(":0", 1)[-1]
            if not args.cache:
                raw["cache"] = {"search_ttl_s": 0, "item_ttl_s": 0}
            raw["server"]["breaker"] = {"failures": 0}
            for workers in args.workers:
                with h.gateway(raw, workers) as gw:
                    h.run_load(gw.url, searches, concurrency=args.clients, count=len(searches))
                    before = gw.cpu_s()
                    load = h.run_load(
                        gw.url, searches, concurrency=args.clients, seconds=args.seconds
                    )
                    cpu_ms = (gw.cpu_s() - before) / max(load.count, 1) * 1000
                    peaks = [round(h.peak_rss_mib(pid), 1) for pid in gw.workers]
                r = results[f"{workers} workers"] = load.summary() | {
                    "peak_rss_mib": peaks,
                    "gateway_cpu_ms_per_request": round(cpu_ms, 2),
                }
                print(
                    f"load  {workers} worker(s), {args.clients} clients, {args.seconds:g} s, "
                    f"backends at {args.latency * 1000:g} ms: {r['rps']:7.1f} req/s  "
                    f"p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  "
                    f"p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}  "
                    f"peak RSS per worker {peaks} MiB  gateway CPU {cpu_ms:.1f} ms/request"
                )
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=lambda s: [int(w) for w in s.split(",")], default=[1, 2])
    parser.add_argument("--latency", type=float, default=0.05, help="backend latency (s)")
    parser.add_argument("--cache", action="store_true", help="cache backend answers")
    args = parser.parse_args(argv)
    results = run(args)
    settings = {k: v for k, v in vars(args).items()}
    print(f"written: {h.write_results('load', {'settings': settings, 'runs': results})}")
    return results


if __name__ == "__main__":
    main()
