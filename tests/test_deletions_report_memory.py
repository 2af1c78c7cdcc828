"""A page of the deletion report holds that page, not the whole registry (review finding).

Real feeds are large (CDSE lists 135 981 products withdrawn as "Obsolete product format"
alone, tests/fixtures/deletions/deletion-causes.tsv). ``GET /deletions`` used to read every
deletion of every backend into memory for each request; the report now reads the registry a
few chunks at a time and keeps only the deletions up to the end of the page asked for.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from datetime import timedelta

from factories import BASE_TIME, s2_name

from mqs.deletions.model import DeletedProduct
from mqs.deletions.registry import DeletionRegistry
from mqs.deletions.report import Report, Selection, build_report
from mqs.deletions.store import MemoryStore

CAUSES = ["Obsolete product format", "Automatic Eviction", "Duplicated product", None]
PER_BACKEND = 10_000


def registry() -> DeletionRegistry:
    """Two backends' feeds; many deletions share an instant (the order's ties matter)."""
    reg = DeletionRegistry(MemoryStore())

    async def fill() -> None:
        for backend, shift in (("cdse", 0), ("cesnet", 7)):
            products = [
                DeletedProduct(
                    s2_name(BASE_TIME + timedelta(minutes=n + shift)),
                    BASE_TIME + timedelta(hours=(n + shift) // 5),
                    CAUSES[n % len(CAUSES)],
                )
                for n in range(PER_BACKEND)
            ]
            for start in range(0, len(products), 2000):
                await reg.add(backend, products[start : start + 2000])

    asyncio.run(fill())
    return reg


REGISTRY = registry()


def report(keep: int | None, selection: Selection | None = None) -> Report:
    return asyncio.run(build_report(REGISTRY, ["cdse", "cesnet"], selection or Selection(), keep))


def peak_bytes(keep: int | None) -> int:
    """The peak memory allocated while building the report."""
    tracemalloc.start()
    try:
        report(keep)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_page_is_the_same_as_the_slice_of_the_whole_report() -> None:
    everything = report(None)
    assert everything.total == len(everything.deletions) == 2 * PER_BACKEND
    for start, size in ((0, 100), (4_990, 25), (2 * PER_BACKEND - 10, 100)):
        page = report(start + size)
        assert page.deletions[start : start + size] == everything.deletions[start : start + size]
        assert page.counts() == everything.counts()  # counts cover everything selected
    chosen = Selection(("cesnet",), ("duplicate",))
    whole = report(None, chosen)
    page = report(30, chosen)
    assert page.deletions == whole.deletions[:30] and page.total == whole.total > 30


def test_a_page_costs_memory_for_the_page_not_for_the_registry() -> None:
    whole, page = peak_bytes(None), peak_bytes(100)
    assert page < whole / 4, (page, whole)
