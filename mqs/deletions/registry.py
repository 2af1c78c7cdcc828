"""The deletion registry: every product a backend withdrew, when and why, per backend.

Layout in the store (all JSON):

- ``meta:<backend>``: ``{"hwm", "count", "chunks", "synced_at"}``; ``hwm`` is the latest
  deletion date read from the backend's feed (the next sync asks from there).
- ``chunk:<backend>:<n>``: the backend's deletions in the order read (ascending deletion
  date), ``CHUNK`` per key, as ``[product, date, cause, class]`` rows (the listing reads these).
- ``p:<product>``: ``{backend: [date, cause, class]}`` (the search path reads these, one
  ``MGET`` per result page).

Product names are the federation's (:func:`mqs.identity.product_name`: no ``.SAFE``). A
(product, backend) pair is stored once, so re-reading a page changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from mqs.deletions.causes import classify
from mqs.deletions.model import DeletedProduct
from mqs.deletions.store import Store
from mqs.identity import product_name

CHUNK = 500
READ_CHUNKS = 4  # chunks read at once by batches()


def iso_ms(moment: datetime) -> str:
    """``2021-11-02T08:15:00.000Z``: the registry's (and the API's) instants."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class Deletion:
    """One backend's withdrawal of one product."""

    product: str
    backend: str
    date: str  # ISO 8601, UTC, milliseconds
    cause: str | None  # verbatim
    cls: str  # vocabulary class (mqs.deletions.causes)

    def as_json(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "backend": self.backend,
            "date": self.date,
            "cause": self.cause,
            "class": self.cls,
        }


@dataclass
class Meta:
    hwm: str | None = None
    count: int = 0
    chunks: int = 0
    synced_at: str | None = None


class DeletionRegistry:
    """Reads and writes the registry in a :class:`~mqs.deletions.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def meta(self, backend: str) -> Meta:
        raw = await self.store.get(f"meta:{backend}")
        return Meta(**orjson.loads(raw)) if raw else Meta()

    async def high_water_mark(self, backend: str) -> datetime | None:
        hwm = (await self.meta(backend)).hwm
        return parse_iso(hwm) if hwm else None

    async def add(self, backend: str, products: list[DeletedProduct]) -> int:
        """Store one page of a backend's feed; the number of deletions new to the registry."""
        meta = await self.meta(backend)
        names = list(dict.fromkeys(product_name(p.name) for p in products))
        known = dict(zip(names, await self._entries(names), strict=True))
        rows: list[list[Any]] = []
        for p in products:
            name = product_name(p.name)
            if backend in known[name]:
                continue
            date = iso_ms(p.date)
            row = [date, p.cause, classify(p.cause)]
            known[name] = known[name] | {backend: row}
            rows.append([name, *row])
            if meta.hwm is None or date > meta.hwm:
                meta.hwm = date
        writes = {f"p:{n}": orjson.dumps(known[n]) for n in {r[0] for r in rows}}
        writes |= await self._append(backend, meta, rows)
        meta.count += len(rows)
        meta.synced_at = iso_ms(datetime.now(UTC))
        writes[f"meta:{backend}"] = orjson.dumps(meta.__dict__)
        await self.store.set_many(writes)
        return len(rows)

    async def _entries(self, names: list[str]) -> list[dict[str, list[Any]]]:
        raws = await self.store.get_many([f"p:{n}" for n in names])
        return [orjson.loads(r) if r else {} for r in raws]

    async def _append(self, backend: str, meta: Meta, rows: list[list[Any]]) -> dict[str, bytes]:
        """The chunk keys to write so that ``rows`` follow the backend's earlier rows."""
        if not rows:
            return {}
        last: list[list[Any]] = []
        if meta.chunks:
            raw = await self.store.get(f"chunk:{backend}:{meta.chunks - 1}")
            last = orjson.loads(raw) if raw else []
            meta.chunks -= 1
        pending = last + rows
        writes = {}
        for start in range(0, len(pending), CHUNK):
            writes[f"chunk:{backend}:{meta.chunks}"] = orjson.dumps(pending[start : start + CHUNK])
            meta.chunks += 1
        return writes

    async def lookup(self, products: list[str]) -> dict[str, list[Deletion]]:
        """The deletions of each of ``products`` (federation names) that has any."""
        names = list(dict.fromkeys(products))
        found: dict[str, list[Deletion]] = {}
        for name, entry in zip(names, await self._entries(names), strict=True):
            if entry:
                found[name] = [
                    Deletion(name, bid, *entry[bid]) for bid in sorted(entry, key=entry.__getitem__)
                ]
        return found

    async def deletions(self, backend: str) -> list[Deletion]:
        """Every deletion of one backend, in the order read (ascending deletion date)."""
        return [d async for part in self.batches(backend) for d in part]

    async def batches(self, backend: str) -> AsyncIterator[list[Deletion]]:
        """One backend's deletions a few chunks at a time (ascending deletion date): a reader
        holds ``READ_CHUNKS * CHUNK`` of them at most, however large the registry."""
        meta = await self.meta(backend)
        for first in range(0, meta.chunks, READ_CHUNKS):
            keys = [
                f"chunk:{backend}:{n}" for n in range(first, min(first + READ_CHUNKS, meta.chunks))
            ]
            raws = await self.store.get_many(keys)
            yield [
                Deletion(row[0], backend, row[1], row[2], row[3])
                for raw in raws
                if raw
                for row in orjson.loads(raw)
            ]

    async def count(self, backends: list[str]) -> int:
        """How many deletions the registry holds for ``backends`` (one read)."""
        raws = await self.store.get_many([f"meta:{b}" for b in backends])
        return sum(Meta(**orjson.loads(raw)).count for raw in raws if raw)
