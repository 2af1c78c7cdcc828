"""B5 memory: the gateway worker's resident memory while deep paging and while streaming 1 GiB.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--pages N] [--gib G]``.

- Deep paging: ``mqs serve`` (1 worker) over 3 STAC emulators holding a 3-year catalogue
  (~15,000 products; own process, no added latency, answers uncached); a client follows ``next``
  from page 1 to page ``--pages`` (500) of 10-item pages. RSS after page 1 and after the last
  page, and the peak (VmHWM), from ``/proc``. Flat means the last page costs what the first did
  (the paging token carries the position, nothing accumulates per search).
- Download: a DHuS emulator behind HTTP Basic serving products of ``--gib`` GiB (generated
  lazily) and the gateway's ``/download/...`` endpoint (``mqs/download.py``) streaming one of
  them to a client that discards it; RSS sampled every 50 ms meanwhile.

Target: flat, and <= 120 MiB per worker. Writes ``benchmarks/results/memory-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import harness as h
import httpx

MIB = 1024 * 1024
LIMIT_MIB = 120.0
CREDENTIALS = ("bench-robot", "bench-Pa55word")
AUTH_ENV = {"BENCH_DHUS_USER": CREDENTIALS[0], "BENCH_DHUS_PASSWORD": CREDENTIALS[1]}


def deep_paging(files: dict[str, Path], pages: int) -> dict[str, Any]:
    specs = h.stac_backends(files, [0.0, 0.0, 0.0])
    with h.backends(specs) as urls, h.gateway(h.federation_yaml(specs, urls)) as gw:
        pid = gw.workers[0]
        h.follow_pages(gw.url, {"limit": 10}, 1)
        first = h.rss_mib(pid)
        latencies = h.follow_pages(gw.url, {"limit": 10}, pages)
        last, peak = h.rss_mib(pid), h.peak_rss_mib(pid)
        # the first CQL2 filter a worker checks (mqs.cqlcheck; cql2's own validator took ~85 MiB)
        h.follow_pages(gw.url, {"limit": 10, "filter": "eo:cloud_cover < 40"}, 1)
        filtered = h.rss_mib(pid)
    result = {
        "pages": len(latencies),
        "rss_page_1_mib": round(first, 1),
        "rss_last_page_mib": round(last, 1),
        "peak_rss_mib": round(peak, 1),
        "rss_after_first_filter_mib": round(filtered, 1),
        "first_page_ms": round(latencies[0] * 1000, 1),
        "last_page_ms": round(latencies[-1] * 1000, 1),
    }
    flat = last - first <= 10
    print(
        f"B5 memory    deep paging, {len(latencies)} pages of 10: RSS page 1 {first:6.1f} MiB, "
        f"page {len(latencies)} {last:6.1f} MiB ({'flat' if flat else 'GROWS'}), peak "
        f"{peak:6.1f} MiB {h.verdict(peak, LIMIT_MIB)}; latency page 1 "
        f"{result['first_page_ms']} ms, page {len(latencies)} {result['last_page_ms']} ms "
        "(the emulators' own search time dominates)"
    )
    print(
        f"B5 memory    after the worker's first CQL2 filter: RSS {filtered:6.1f} MiB "
        f"{h.verdict(filtered, LIMIT_MIB)}"
    )
    return result


def _download_href(url: str) -> str | None:
    page = httpx.get(f"{url}/search", params={"limit": 1}, timeout=30).json()
    for item in page["features"]:
        for asset in item["assets"].values():
            if "/download/" in asset["href"]:
                return str(asset["href"])
    return None


def download(files: dict[str, Path], gib: float) -> dict[str, Any]:
    if importlib.util.find_spec("mqs.download") is None:
        print("B5 download  not measured: this gateway has no /download endpoint")
        return {"measured": False}
    size = int(gib * 1024 * MIB)
    spec = h.Backend(
        id="hub",
        kind="dhus",
        items=files["cesnet"],
        replay=False,
        emulator={"credentials": list(CREDENTIALS), "product_size": size},
        auth={
            "type": "basic",
            "username_env": "BENCH_DHUS_USER",
            "password_env": "BENCH_DHUS_PASSWORD",
        },
    )
    with h.backends([spec]) as urls, h.gateway(h.federation_yaml([spec], urls), env=AUTH_ENV) as gw:
        pid = gw.workers[0]
        href = _download_href(gw.url)
        if href is None:
            print("B5 download  not measured: no asset is served through /download")
            return {"measured": False}
        before = h.rss_mib(pid)
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(h.rss_mib(pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started, received = time.perf_counter(), 0
        with httpx.stream("GET", href, timeout=600) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_raw(1024 * 1024):
                received += len(chunk)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
    peak = max(samples, default=before)
    result = {
        "measured": True,
        "bytes": received,
        "rss_before_mib": round(before, 1),
        "rss_max_during_mib": round(peak, 1),
        "mib_per_s": round(received / MIB / wall, 1),
    }
    print(
        f"B5 memory    download of {received / MIB / 1024:.2f} GiB: RSS before {before:6.1f} MiB, "
        f"max during {peak:6.1f} MiB (+{peak - before:.1f}) {h.verdict(peak, LIMIT_MIB)}; "
        f"{result['mib_per_s']} MiB/s"
    )
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = h.catalogue_files(Path(tmp), years=2)
        results = {
            "B5": {"paging": deep_paging(files, args.pages), "download": download(files, args.gib)}
        }
    print(f"written: {h.write_results('memory', results)}")
    return results


if __name__ == "__main__":
    main()
