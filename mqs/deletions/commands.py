"""``mqs deletions sync`` and ``mqs deletions list``: the registry from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TextIO

import orjson

from adapters.registry import ADAPTERS
from mqs.config import FederationConfig, Settings, load_config
from mqs.deletions.causes import VOCABULARY
from mqs.deletions.report import Selection, build_report
from mqs.deletions.service import Deletions
from mqs.errors import InvalidRequest
from mqs.literals import parse_instant
from mqs.runtime import http_client


@asynccontextmanager
async def open_deletions(config: FederationConfig) -> AsyncIterator[Deletions]:
    """The registry and the feeds of ``config``'s backends, without a gateway around them."""
    async with http_client() as http:
        adapters = {b.id: ADAPTERS[b.kind](b, http, None) for b in config.backends}
        deletions = Deletions.open(config.server.deletions, config.cache.url, adapters)
        try:
            yield deletions
        finally:
            await deletions.close()


def _config(args: argparse.Namespace) -> FederationConfig:
    settings = Settings()
    path = args.config or settings.config
    if path is None:
        raise SystemExit("mqs deletions: give --config FILE or set MQS_CONFIG")
    config = load_config(path, settings)
    if config.cache.url.startswith("memory://"):
        print(
            "mqs deletions: cache.url is memory://, so this command's registry lives and dies "
            "with it; give a redis:// cache.url (or MQS_CACHE_URL) to share it with gateways",
            file=sys.stderr,
        )
    return config


def sync_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Read every feed once; one JSON line per backend. Exit 1 when a backend failed."""

    async def run() -> list[dict[str, object]]:
        async with open_deletions(_config(args)) as deletions:
            return [r.as_json() for r in await deletions.sync()]

    reports = asyncio.run(run())
    out = out or sys.stdout
    for report in reports:
        out.write(orjson.dumps(report).decode() + "\n")
    return 1 if any(r["status"] == "error" for r in reports) else 0


class _Usage(Exception):
    """Filters the command cannot use."""


def _selection(args: argparse.Namespace) -> Selection:
    classes = tuple(args.cause or ())
    if unknown := [c for c in classes if c not in VOCABULARY]:
        raise _Usage(f"unknown class(es) {unknown}; known: {', '.join(VOCABULARY)}")
    try:
        since = parse_instant(args.since) if args.since else None
        until = parse_instant(args.until) if args.until else None
    except InvalidRequest as exc:
        raise _Usage(str(exc)) from None
    return Selection(tuple(args.backend or ()), classes, since, until)


def list_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """The selected deletions, newest first: a JSON document or TSV lines (2: bad filters)."""
    try:
        selection = _selection(args)
    except _Usage as exc:
        print(f"mqs deletions list: {exc}", file=sys.stderr)
        return 2

    async def run() -> tuple[dict[str, object], list[dict[str, object]]]:
        async with open_deletions(_config(args)) as deletions:
            report = await build_report(deletions.registry, sorted(deletions.sources), selection)
            return report.counts(), [d.as_json() for d in report.deletions]

    counts, rows = asyncio.run(run())
    out = out or sys.stdout
    if args.format == "json":
        out.write(orjson.dumps({"counts": counts, "deletions": rows}).decode() + "\n")
        return 0
    out.write("product\tbackend\tdate\tclass\tcause\n")
    for row in rows:
        cause = str(row["cause"] or "").replace("\t", " ").replace("\n", " ")
        out.write(f"{row['product']}\t{row['backend']}\t{row['date']}\t{row['class']}\t{cause}\n")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``mqs deletions {sync,list}``."""
    deletions = sub.add_parser("deletions", help="deleted products: sync and list the registry")
    commands = deletions.add_subparsers(dest="deletions_command", required=True)
    sync = commands.add_parser("sync", help="read every DeletedProducts feed once")
    listing = commands.add_parser("list", help="list deletions, newest first")
    for cmd in (sync, listing):
        cmd.add_argument("--config", help="federation YAML (default: $MQS_CONFIG)")
    listing.add_argument("--backend", action="append", help="only this backend (repeatable)")
    listing.add_argument("--cause", action="append", help="only this class (repeatable)")
    listing.add_argument("--since", help="deleted at or after (RFC 3339)")
    listing.add_argument("--until", help="deleted before (RFC 3339)")
    listing.add_argument("--format", choices=("json", "tsv"), default="tsv")
    sync.set_defaults(func=sync_command)
    listing.set_defaults(func=list_command)
