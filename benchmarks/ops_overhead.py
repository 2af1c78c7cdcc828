"""CPU cost of the operations hooks per search page: metrics and the JSON log lines.

Run: ``.venv/bin/python benchmarks/ops_overhead.py [--rounds N]``.

Times, in this process, what one answered search page adds: ``mqs.metrics.observe_search``
(usage counters, 7 backends' outcomes, 100 items of which 30 were merged from two backends),
the breaker-state gauges, the endpoint metrics of the request, and the two JSON log lines
(``search`` and ``request``) rendered by structlog to a null stream. Printed in microseconds
per search page; with and without prometheus-client's multiprocess mode (``--workers N``).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

ROUNDS = 20_000


def _items(count: int, merged: int) -> list[dict[str, Any]]:
    items = []
    for i in range(count):
        holders = ["eodc", "cesnet"] if i < merged else ["eodc"]
        items.append({"id": f"P{i}", "properties": {"federation:backends": holders}})
    return items


def run(rounds: int) -> dict[str, float]:
    from mqs import metrics
    from mqs.logs import configure_logging, get_logger, log_search
    from mqs.merger import Outcome
    from mqs.query import SearchQuery

    backends = ["eodc", "cesnet", "grnet", "cdse", "creodias", "vito", "element84"]
    metrics.register_federation(["sentinel-2-l2a"], backends)
    query = SearchQuery(
        collections=("sentinel-2-l2a",),
        bbox=(14.0, 49.0, 16.0, 50.0),
        filter={"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]},
        limit=100,
    )
    outcomes = {b: Outcome(status="ok", items=20, requests=1, ms=120.0) for b in backends}
    items = _items(100, 30)
    states = dict.fromkeys(backends, "closed")
    configure_logging("info", "json")
    logging.getLogger().handlers[0].stream = io.StringIO()  # type: ignore[attr-defined]
    access = get_logger("mqs.access")

    def timed(step: Any) -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            step()
        return (time.perf_counter() - started) / rounds * 1e6

    def logs() -> None:
        log_search(query, True, outcomes, len(items))
        access.info("request", method="GET", route="/search", path="/search", status=200, ms=1)
        logging.getLogger().handlers[0].stream = io.StringIO()  # type: ignore[attr-defined]

    return {
        "observe_search_us": timed(lambda: metrics.observe_search(query, True, outcomes, items)),
        "circuit_gauges_us": timed(lambda: metrics.set_circuit_states(states)),
        "observe_http_us": timed(lambda: metrics.observe_http("/search", "GET", 200, 0.01)),
        "two_json_log_lines_us": timed(logs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        for name, us in run(args.rounds).items():
            print(f"  {name:<24} {us:8.1f} us")
        return
    for mode in ("single process", "multiprocess (--workers N)"):
        env = dict(os.environ)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with tempfile.TemporaryDirectory() as tmp:
            if mode.startswith("multi"):
                env["PROMETHEUS_MULTIPROC_DIR"] = tmp
            print(f"{mode}:", flush=True)
            command = [sys.executable, __file__, "--child", "--rounds", str(args.rounds)]
            subprocess.run(command, env=env, check=True)


if __name__ == "__main__":
    main()
