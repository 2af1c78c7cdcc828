"""Incremental sync of every backend's ``DeletedProducts`` feed into the registry.

Each backend's feed is read oldest deletion first from the registry's high-water mark
(inclusive: deletions sharing that instant are read again and recognised as known), paging by
``$skip`` with the mark fixed, storing every page as it arrives. A failure stops that backend
at the last page stored; the next sync goes on from there. Re-running a sync changes nothing.
Backends whose adapter has no ``deleted_products`` (STAC, resto, Terrascope) have no feed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from adapters.base import BackendError
from mqs.deletions.model import DeletionSource
from mqs.deletions.registry import DeletionRegistry, iso_ms
from mqs.deletions.store import StoreError

log = logging.getLogger("mqs.deletions")

LOCK_TTL_S = 600.0


@dataclass
class SyncReport:
    """How one backend's sync went."""

    backend: str
    status: str = "ok"  # ok | error | busy (another process is syncing it)
    requests: int = 0
    read: int = 0  # deletions read from the feed
    new: int = 0  # of which new to the registry
    high_water_mark: str | None = None
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def feeds(adapters: dict[str, Any]) -> dict[str, DeletionSource]:
    """The backends (id -> adapter) that publish a deletion feed."""
    return {bid: a for bid, a in adapters.items() if callable(getattr(a, "deleted_products", None))}


async def sync_backend(
    registry: DeletionRegistry,
    backend: str,
    source: DeletionSource,
    page_size: int = 100,
    max_pages: int = 100,
) -> SyncReport:
    """Read one feed from the high-water mark on; never raises for a backend's failure."""
    report = SyncReport(backend)
    lock = f"lock:{backend}"
    try:
        if not await registry.store.lock(lock, LOCK_TTL_S):
            report.status, report.detail = "busy", "another sync of this backend is running"
            return report
        try:
            await _read_feed(registry, report, source, page_size, max_pages)
        finally:
            await registry.store.unlock(lock)
    except (BackendError, StoreError) as exc:
        report.status, report.detail = "error", str(exc)
        log.warning("deletion sync of %s failed: %s", backend, exc)
    return report


async def _read_feed(
    registry: DeletionRegistry,
    report: SyncReport,
    source: DeletionSource,
    page_size: int,
    max_pages: int,
) -> None:
    since = await registry.high_water_mark(report.backend)
    skip = 0
    for _ in range(max_pages):
        page = await source.deleted_products(since, skip, page_size)
        report.requests += 1
        report.read += len(page.products)
        report.new += await registry.add(report.backend, page.products)
        if not page.more:
            break
        skip += len(page.products)
    mark = await registry.high_water_mark(report.backend)
    report.high_water_mark = iso_ms(mark) if mark else None


async def sync_all(
    registry: DeletionRegistry,
    sources: dict[str, DeletionSource],
    page_size: int = 100,
    max_pages: int = 100,
) -> list[SyncReport]:
    """Every feed, concurrently; one report per backend, in backend id order."""
    started = time.perf_counter()
    reports = await asyncio.gather(
        *(
            sync_backend(registry, bid, s, page_size, max_pages)
            for bid, s in sorted(sources.items())
        )
    )
    new = sum(r.new for r in reports)
    log.info("deletion sync: %d new in %.1f s", new, time.perf_counter() - started)
    return list(reports)
