"""B1 overhead, B2 fan-out, B6 concurrency: federated search latency against slow backends.

Run: ``.venv/bin/python benchmarks/bench_latency.py [--only b1,b2,b6] [--rounds N]``.

The backends are STAC emulators serving the demo catalogue (overlapping archives) from their
own process, each answering after a fixed latency; the gateway is ``mqs serve`` in its own
process with backend answers uncached (every search reaches the backends).

- B1: 3 backends answering in 50/100/200 ms, 100-item searches one after another:
  p50 and p95 latency divided by the slowest backend's 200 ms. Target <= 1.10.
- B2: the same search over 8 backends and over 1 (all answering in 100 ms), 10 and 100 items:
  latency(8) / latency(1). Target <= 1.2.
- B6: 10 concurrent clients sending 10-item searches for ``--seconds``, 3 backends answering in
  100 ms (which bounds one client to 10 searches/s): requests/s. Target >= 90. Each client asks
  its own searches (10 searches differing in their datetime interval, taken in turn), as
  independent users do. Also measured: all 10 clients sending the same search. The gateway
  then shares one backend request among the identical searches in flight (single flight,
  :mod:`mqs.httpcache`), so every client gets its answer at the same instant and the 10 clients
  move in lock-step: each search waits for the other nine's CPU, latency ~ 100 ms + 10 x CPU.
  Identical searches in flight are now computed once (:mod:`mqs.pagecache`), which ends that.
  Also measured: the bound, the same 10 clients sending each search's three backend requests
  straight to the backends (a gateway that costs nothing); each result gives its share of it.

Writes ``benchmarks/results/latency-<timestamp>.json`` (and ``latency-latest.json``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import harness as h

SEARCH_100 = {"limit": 100}
SEARCH_10 = {"limit": 10}
# B6: one search per client (the same 10 newest items, different backend requests).
DISTINCT_10 = [
    {"limit": 10, "datetime": f"2021-09-{day:02d}T00:00:00Z/2021-11-30T23:59:59Z"}
    for day in range(1, 11)
]


def _sequential(url: str, params: dict[str, Any], rounds: int) -> h.Load:
    h.run_load(url, [params], count=3)  # warm up: connections, first-request work
    return h.run_load(url, [params], count=rounds)


def b1(files: dict[str, Path], rounds: int) -> dict[str, Any]:
    specs = h.stac_backends(files, [0.05, 0.1, 0.2])
    with h.backends(specs) as urls, h.gateway(h.federation_yaml(specs, urls)) as gw:
        load = _sequential(gw.url, SEARCH_100, rounds)
    slowest = 200.0
    result = load.summary() | {
        "backend_latencies_ms": [50, 100, 200],
        "p50_ratio": round(load.pct(0.5) / slowest, 3),
        "p95_ratio": round(load.pct(0.95) / slowest, 3),
    }
    print(
        f"B1 overhead  3 backends 50/100/200 ms, 100 items: p50 {load.pct(0.5):6.1f} ms "
        f"p95 {load.pct(0.95):6.1f} ms; / slowest: p50 x{result['p50_ratio']:.3f} "
        f"{h.verdict(result['p50_ratio'], 1.10)}, p95 x{result['p95_ratio']:.3f} "
        f"{h.verdict(result['p95_ratio'], 1.10)}"
    )
    return result


def b2(files: dict[str, Path], rounds: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for count in (1, 8):
        specs = h.stac_backends(files, [0.1] * count)
        with h.backends(specs) as urls, h.gateway(h.federation_yaml(specs, urls)) as gw:
            for name, params in (("10 items", SEARCH_10), ("100 items", SEARCH_100)):
                result.setdefault(name, {})[f"{count} backends"] = _sequential(
                    gw.url, params, rounds
                ).summary()
    for name, runs in result.items():
        one, eight = runs["1 backends"], runs["8 backends"]
        runs["p50_ratio"] = round(eight["p50_ms"] / one["p50_ms"], 3)
        print(
            f"B2 fan-out   {name:>9}, backends at 100 ms: p50 1 backend {one['p50_ms']:6.1f} ms, "
            f"8 backends {eight['p50_ms']:6.1f} ms: x{runs['p50_ratio']:.3f} "
            f"{h.verdict(runs['p50_ratio'], 1.2)}"
        )
    return result


def _bound(specs: list[h.Backend], seconds: float) -> dict[str, Any]:
    """What a gateway that costs nothing would reach: the 10 clients send each search's three
    backend requests (the 15 hits the gateway asks each backend for) straight to the backends."""
    backend_searches = [dict(s, limit=15) for s in DISTINCT_10]
    with h.backends(specs) as urls:
        targets = list(urls.values())
        h.run_fanout_load(targets, backend_searches, concurrency=10, count=40, method="POST")
        load = h.run_fanout_load(
            targets, backend_searches, concurrency=10, seconds=seconds, method="POST"
        )
    print(
        f"B6 bound     10 clients straight at the 3 backends (no gateway): {load.rps:6.1f} req/s, "
        f"p50 {load.pct(0.5):6.1f} ms (the emulated backends answer in ~101.5 ms alone)"
    )
    return load.summary()


def b6(files: dict[str, Path], seconds: float) -> dict[str, Any]:
    specs = h.stac_backends(files, [0.1, 0.1, 0.1])
    result: dict[str, Any] = {"backends alone": _bound(specs, seconds)}
    bound = result["backends alone"]["rps"]
    cases = (("distinct searches", DISTINCT_10), ("identical searches", [SEARCH_10]))
    for workers in (1, 2):
        with h.backends(specs) as urls, h.gateway(h.federation_yaml(specs, urls), workers) as gw:
            for name, searches in cases:
                h.run_load(gw.url, searches, concurrency=10, count=40)  # warm up
                load = h.run_load(gw.url, searches, concurrency=10, seconds=seconds)
                summary = load.summary() | {"of_bound": round(load.rps / bound, 3)}
                result.setdefault(name, {})[f"{workers} workers"] = summary
                verdict = h.verdict(load.rps, 90, at_most=False) if name.startswith("d") else ""
                print(
                    f"B6 concurrency 10 clients, {name}, 10 items, 3 backends at 100 ms, "
                    f"{workers} worker(s): {load.rps:6.1f} req/s ({summary['of_bound']:.2f} of "
                    f"the bound), p50 {load.pct(0.5):6.1f} ms, p99 {load.pct(0.99):6.1f} ms, "
                    f"{load.errors} errors {verdict}"
                )
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="b1,b2,b6")
    parser.add_argument("--rounds", type=int, default=30, help="sequential searches per case")
    parser.add_argument("--seconds", type=float, default=10.0, help="B6 duration")
    args = parser.parse_args(argv)
    wanted = set(args.only.split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = h.catalogue_files(Path(tmp))
        if "b1" in wanted:
            results["B1"] = b1(files, args.rounds)
        if "b2" in wanted:
            results["B2"] = b2(files, args.rounds)
        if "b6" in wanted:
            results["B6"] = b6(files, args.seconds)
    print(f"written: {h.write_results('latency', results)}")
    return results


if __name__ == "__main__":
    main()
