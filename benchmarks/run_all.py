"""Every benchmark of issue 11 in one run (B1-B6), side by side, with the targets.

Run: ``.venv/bin/python benchmarks/run_all.py [--quick]`` (or ``make bench``); about 5 minutes
(``--quick``: fewer rounds and shorter runs, about 3). Each benchmark also runs alone:
``bench_latency.py`` (B1, B2, B6), ``bench_throughput.py`` (B3), ``bench_cpu.py`` (B4),
``bench_memory.py`` (B5); ``load.py`` is the load test of the demo federation.

The machine's load average is recorded before and after each benchmark: other work on the
machine (a 2-core one especially) slows latency and throughput figures, not CPU-per-search
figures. Prints a summary table; writes ``benchmarks/results/all-<timestamp>.json`` (and
``all-latest.json``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import bench_cpu
import bench_latency
import bench_memory
import bench_throughput
import harness as h


def _timed(name: str, run: Callable[[], dict[str, Any]], loads: dict[str, Any]) -> dict[str, Any]:
    before = os.getloadavg()[0]
    result = run()
    loads[name] = {"before": round(before, 2), "after": round(os.getloadavg()[0], 2)}
    return result


def summary(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(figure, value, target, met) rows for the table (met None: a figure without target)."""
    rows: list[tuple[str, str, str, bool | None]] = []
    b1 = results["latency"]["B1"]
    for q in ("p50", "p95"):
        rows.append(
            (
                f"B1 {q} / slowest backend",
                f"{b1[f'{q}_ratio']:.3f}",
                "<= 1.10",
                b1[f"{q}_ratio"] <= 1.1,
            )
        )
    for name, runs in results["latency"]["B2"].items():
        rows.append(
            (
                f"B2 8 / 1 backends, {name}",
                f"{runs['p50_ratio']:.3f}",
                "<= 1.2",
                runs["p50_ratio"] <= 1.2,
            )
        )
    b3 = results["throughput"]["B3"]
    rps = b3["rps"]
    rows.append(("B3 cached req/s, 2 workers", f"{rps:.0f}", ">= 1000", rps >= 1000))
    rows.append(("B3 / minimal stac-fastapi", f"{b3['ratio']:.3f}", ">= 0.7", b3["ratio"] >= 0.7))
    for name, target in (("10 items", 5.0), ("100 items", 25.0)):
        ms = results["cpu"]["B4"]["per_search"][name]["cpu_ms_per_search"]
        rows.append((f"B4 CPU ms per {name} search", f"{ms:.2f}", f"<= {target:g}", ms <= target))
    paging = results["memory"]["B5"]["paging"]
    grown = paging["rss_last_page_mib"] - paging["rss_page_1_mib"]
    rows.append(("B5 RSS last page - page 1 (MiB)", f"{grown:+.1f}", "flat", grown <= 10))
    rows.append(
        (
            "B5 peak RSS paging (MiB)",
            f"{paging['peak_rss_mib']:.0f}",
            "<= 120",
            paging["peak_rss_mib"] <= 120,
        )
    )
    filtered = paging["rss_after_first_filter_mib"]
    rows.append(
        ("B5 RSS after the first filter (MiB)", f"{filtered:.0f}", "<= 120", filtered <= 120)
    )
    download = results["memory"]["B5"]["download"]
    if download.get("measured"):
        peak = download["rss_max_during_mib"]
        rows.append(("B5 peak RSS 1 GiB download", f"{peak:.0f}", "<= 120", peak <= 120))
    b6 = results["latency"]["B6"]
    rows.append(
        ("B6 bound: req/s straight at backends", f"{b6['backends alone']['rps']:.1f}", "", None)
    )
    for workers, run in b6["distinct searches"].items():
        rows.append(
            (f"B6 req/s, 10 clients, {workers}", f"{run['rps']:.1f}", ">= 90", run["rps"] >= 90)
        )
        rows.append((f"B6 share of the bound, {workers}", f"{run['of_bound']:.2f}", "", None))
    for workers, run in b6["identical searches"].items():
        rows.append((f"B6 one search for all, {workers}", f"{run['rps']:.1f}", "", None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs")
    args = parser.parse_args()
    rounds, seconds = ("15", "5") if args.quick else ("30", "10")
    loads: dict[str, Any] = {}
    results: dict[str, Any] = {}
    results["latency"] = _timed(
        "latency", lambda: bench_latency.main(["--rounds", rounds, "--seconds", seconds]), loads
    )
    results["throughput"] = _timed(
        "throughput", lambda: bench_throughput.main(["--seconds", seconds]), loads
    )
    results["cpu"] = _timed("cpu", lambda: bench_cpu.main(["--rounds", rounds]), loads)
    pages = "200" if args.quick else "500"
    results["memory"] = _timed("memory", lambda: bench_memory.main(["--pages", pages]), loads)
    rows = summary(results)
    print(f"\n{'figure':<38} {'value':>9}  {'target':<8} met")
    for figure, value, target, met in rows:
        shown = "" if met is None else "yes" if met else "NO"
        print(f"{figure:<38} {value:>9}  {target:<8} {shown}")
    print(f"load average (1 min) before/after each: {loads}")
    results["summary"] = [{"figure": f, "value": v, "target": t, "met": m} for f, v, t, m in rows]
    results["loadavg"] = loads
    print(f"written: {h.write_results('all', results)}")


if __name__ == "__main__":
    main()
