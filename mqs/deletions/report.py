"""The mirror operator's report: deletions filtered by backend, class and date, with counts.

The registry is read a few chunks at a time; the counts cover every selected deletion, but only
the first ``keep`` of the report's order are held (a bounded heap), so a page of the report
costs memory for that page, not for the hundreds of thousands of deletions an archive has.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mqs.deletions.registry import Deletion, DeletionRegistry, iso_ms


@dataclass(frozen=True)
class Selection:
    """Which deletions: of these backends (all when empty), classes, deletion dates."""

    backends: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def matches(self, d: Deletion) -> bool:
        return (
            (not self.classes or d.cls in self.classes)
            and (self.since is None or d.date >= iso_ms(self.since))
            and (self.until is None or d.date < iso_ms(self.until))
        )


@dataclass
class Report:
    deletions: list[Deletion]  # newest first, then product, then backend (the first ``keep``)
    by_backend: dict[str, Counter[str]] = field(default_factory=dict)  # backend -> class -> n
    total: int = 0  # every selected deletion, held or not

    def counts(self) -> dict[str, Any]:
        by_class: Counter[str] = Counter()
        for counter in self.by_backend.values():
            by_class.update(counter)
        return {
            "total": self.total,
            "by_class": dict(sorted(by_class.items())),
            "by_backend": {
                bid: {"total": sum(c.values()), "by_class": dict(sorted(c.items()))}
                for bid, c in sorted(self.by_backend.items())
            },
        }


class _Last:
    """A held deletion in the heap, whose top is the one latest in the report's order."""

    __slots__ = ("deletion",)

    def __init__(self, deletion: Deletion) -> None:
        self.deletion = deletion

    def __lt__(self, other: _Last) -> bool:  # "less": later in the report (evicted first)
        a, b = self.deletion, other.deletion
        if a.date != b.date:
            return a.date < b.date
        return (a.product, a.backend) > (b.product, b.backend)


async def build_report(
    registry: DeletionRegistry,
    known: list[str],
    selection: Selection,
    keep: int | None = None,
) -> Report:
    """The selected deletions of the ``known`` backends (those with a feed), with counts;
    only the first ``keep`` (newest first, then product, then backend) are listed (None: all)."""
    chosen = [b for b in known if not selection.backends or b in selection.backends]
    held: list[_Last] = []
    by_backend: dict[str, Counter[str]] = {}
    for backend in chosen:
        counter = by_backend[backend] = Counter()
        async for batch in registry.batches(backend):
            for deletion in batch:
                if not selection.matches(deletion):
                    continue
                counter[deletion.cls] += 1
                if keep is None or len(held) < keep:
                    heapq.heappush(held, _Last(deletion))
                elif keep and held[0] < (entry := _Last(deletion)):
                    heapq.heapreplace(held, entry)
    found = [h.deletion for h in held]
    found.sort(key=lambda d: (d.product, d.backend))
    found.sort(key=lambda d: d.date, reverse=True)
    total = sum(sum(c.values()) for c in by_backend.values())
    return Report(found, by_backend, total)
