"""B4 CPU: gateway CPU time per search, and microseconds per item per adapter kind.

Run: ``.venv/bin/python benchmarks/bench_cpu.py [--rounds N]``.

- Per search: ``mqs serve`` (1 worker, its own process) over 3 STAC emulators (own process, no
  added latency, backend answers uncached); 10-item and 100-item searches one after another;
  the worker's user+system CPU (``/proc/<pid>/stat``) divided by the searches. It includes
  everything the process does: HTTP server, request parsing, the backend requests and their
  JSON, translation, merge, de-duplication, links, response JSON. Targets: <= 5 ms per 10-item
  search, <= 25 ms per 100-item search.
- Per item, per adapter kind (in this process): a federation of 3 backends of one kind, each
  the real emulator of that kind over a demo archive's catalogue, reached through an httpx
  transport that replays each distinct answer the emulator gave (recorded in a warm-up round),
  so the timed rounds run only gateway code: the adapter's request and translation, the merge
  and de-duplication. CPU per 100-item search divided by the backend items translated.

Writes ``benchmarks/results/cpu-<timestamp>.json`` (and ``cpu-latest.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import harness as h
import httpx
import yaml

from adapters.base import Adapter, BackendPage
from adapters.registry import ADAPTERS, EMULATORS
from mqs.config import parse_config
from mqs.demo import demo_config_text
from mqs.federation import Federation, Member
from mqs.query import build_query

# Per kind: the demo backend whose options it uses, and the 3 archives whose catalogues it serves.
KINDS = {
    "stac": ("eodc", ("eodc", "cesnet", "cdse")),
    "dhus (json)": ("cesnet", ("cesnet", "eodc", "cdse")),
    "dhus (atom)": ("grnet", ("grnet", "eodc", "cdse")),
    "cdse-odata": ("cdse", ("cdse", "eodc", "cesnet")),
    "resto": ("creodias", ("creodias", "eodc", "cesnet")),
    "terrascope": ("vito", ("vito", "eodc", "cesnet")),
}


def per_search(files: dict[str, Path], rounds: int) -> dict[str, Any]:
    specs = h.stac_backends(files, [0.0, 0.0, 0.0])
    result: dict[str, Any] = {}
    with h.backends(specs) as urls, h.gateway(h.federation_yaml(specs, urls)) as gw:
        for limit, target in ((10, 5.0), (100, 25.0)):
            params = {"limit": limit}
            h.run_load(gw.url, [params], count=5)
            before = gw.cpu_s()
            load = h.run_load(gw.url, [params], count=rounds)
            ms = (gw.cpu_s() - before) / load.count * 1000
            result[f"{limit} items"] = {"cpu_ms_per_search": round(ms, 2), **load.summary()}
            print(
                f"B4 CPU       {limit:>3}-item search, 3 backends: {ms:6.2f} ms of gateway CPU "
                f"per search {h.verdict(ms, target)}"
            )
    return result


class _Replay(httpx.AsyncBaseTransport):
    """Each distinct request answered once by the emulator, then replayed from memory."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.transports = {host: httpx.ASGITransport(app) for host, app in apps.items()}
        self.answers: dict[tuple[str, str, bytes], tuple[int, list[Any], bytes]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, str(request.url), request.content)
        if key not in self.answers:
            answer = await self.transports[request.url.host].handle_async_request(request)
            body = await answer.aread()
            self.answers[key] = (answer.status_code, answer.headers.raw, body)
        status, headers, body = self.answers[key]
        return httpx.Response(status, headers=headers, content=body)


class _Counting:
    """An adapter that counts the backend items it translated (everything else delegated)."""

    def __init__(self, adapter: Any) -> None:
        self.adapter, self.items = adapter, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.adapter, name)

    async def search(self, query: Any, state: Any, limit: int) -> BackendPage:
        page: BackendPage = await self.adapter.search(query, state, limit)
        self.items += len(page.hits)
        return page


def _federation(kind: str, files: dict[str, Path]) -> tuple[Federation, list[_Counting], Any]:
    model_id, archives = KINDS[kind]
    demo = yaml.safe_load(demo_config_text())
    model = next(b for b in demo["backends"] if b["id"] == model_id)
    raw = {k: v for k, v in demo.items() if k != "backends"}
    raw["cache"] = {"search_ttl_s": 0, "item_ttl_s": 0}
    raw["backends"] = [
        model | {"id": f"{archive}-{i}", "url": f"http://{archive}.test", "priority": 10 - i}
        for i, archive in enumerate(archives)
    ]
    config = parse_config(raw)
    apps = {f"{a}.test": EMULATORS[model["kind"]](files[a]) for a in archives}
    client = httpx.AsyncClient(transport=_Replay(apps))
    counters = [_Counting(ADAPTERS[b.kind](b, client, None)) for b in config.backends]
    members = [Member(b, cast(Adapter, c)) for b, c in zip(config.backends, counters, strict=True)]
    return Federation(members, config.routing()), counters, (config, client)


async def _kind(kind: str, files: dict[str, Path], rounds: int) -> dict[str, Any]:
    federation, counters, (config, client) = _federation(kind, files)
    query = build_query({"limit": 100}, config.collections, 10, 1000)
    async with client:
        await federation.search(query, None)  # records the emulators' answers
        for counter in counters:
            counter.items = 0
        started = time.process_time()
        for _ in range(rounds):
            result = await federation.search(query, None)
        cpu = time.process_time() - started
    items = sum(c.items for c in counters)
    failed = [bid for bid, o in result.outcomes.items() if o.status != "ok"]
    return {
        "us_per_item": round(cpu / items * 1e6, 1),
        "ms_per_search": round(cpu / rounds * 1000, 2),
        "backend_items_per_search": items // rounds,
        "merged_items": len(result.items),
        "failed": failed,
    }


def per_item(files: dict[str, Path], rounds: int) -> dict[str, Any]:
    result = {}
    for kind in KINDS:
        r = result[kind] = asyncio.run(_kind(kind, files, rounds))
        print(
            f"B4 per item  {kind:<12} {r['us_per_item']:6.1f} us per backend item "
            f"(translate + merge + de-duplicate; {r['backend_items_per_search']} items from "
            f"3 backends -> {r['merged_items']} per search, {r['ms_per_search']:.1f} ms)"
            + (f" FAILED: {r['failed']}" if r["failed"] else "")
        )
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = h.catalogue_files(Path(tmp))
        results = {
            "B4": {"per_search": per_search(files, args.rounds), "per_item": per_item(files, 10)}
        }
    print(f"written: {h.write_results('cpu', results)}")
    return results


if __name__ == "__main__":
    main()
