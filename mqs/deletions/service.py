"""The deletion registry of a running gateway: its store, its feeds, its background sync."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from mqs.deletions.config import DeletionsConfig
from mqs.deletions.model import DeletionSource
from mqs.deletions.registry import DeletionRegistry
from mqs.deletions.store import make_store
from mqs.deletions.sync import SyncReport, feeds, sync_all
from mqs.federation import Federation

log = logging.getLogger("mqs.deletions")


class Deletions:
    """Opened with the runtime; ``start()`` runs the periodic sync when it is enabled."""

    def __init__(
        self,
        config: DeletionsConfig,
        registry: DeletionRegistry,
        sources: dict[str, DeletionSource],
    ) -> None:
        self.config, self.registry, self.sources = config, registry, sources
        self._task: asyncio.Task[None] | None = None
        self.federation: Federation | None = None

    @classmethod
    def open(
        cls,
        config: DeletionsConfig,
        cache_url: str,
        adapters: dict[str, Any],
        federation: Federation | None = None,
    ) -> Deletions:
        """``federation``: where flagged products look for their successors."""
        registry = DeletionRegistry(make_store(cache_url, config.store_prefix))
        deletions = cls(config, registry, feeds(adapters))
        deletions.federation = federation
        return deletions

    async def sync(self) -> list[SyncReport]:
        """Every feed once (``mqs deletions sync`` and each background round)."""
        return await sync_all(
            self.registry, self.sources, self.config.page_size, self.config.max_pages
        )

    def start(self) -> None:
        if self.config.enabled and self.sources and self._task is None:
            self._task = asyncio.create_task(self._run(), name="mqs-deletions-sync")

    async def _run(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception:  # a round that failed unexpectedly must not end the loop
                log.exception("deletion sync round failed")
            await asyncio.sleep(self.config.sync_interval_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.registry.store.close()
