"""The mirror operator's report: deletions filtered by backend, class and date, with counts."""

from __future__ import annotations

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
    deletions: list[Deletion]  # newest first, then product, then backend
    by_backend: dict[str, Counter[str]] = field(default_factory=dict)  # backend -> class -> n

    def counts(self) -> dict[str, Any]:
        by_class: Counter[str] = Counter()
        for counter in self.by_backend.values():
            by_class.update(counter)
        return {
            "total": len(self.deletions),
            "by_class": dict(sorted(by_class.items())),
            "by_backend": {
                bid: {"total": sum(c.values()), "by_class": dict(sorted(c.items()))}
                for bid, c in sorted(self.by_backend.items())
            },
        }


async def build_report(
    registry: DeletionRegistry, known: list[str], selection: Selection
) -> Report:
    """The selected deletions of the ``known`` backends (those with a feed), with counts."""
    chosen = [b for b in known if not selection.backends or b in selection.backends]
    found: list[Deletion] = []
    by_backend: dict[str, Counter[str]] = {}
    for backend in chosen:
        mine = [d for d in await registry.deletions(backend) if selection.matches(d)]
        by_backend[backend] = Counter(d.cls for d in mine)
        found += mine
    found.sort(key=lambda d: (d.product, d.backend))
    found.sort(key=lambda d: d.date, reverse=True)
    return Report(found, by_backend)
