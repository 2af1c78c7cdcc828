"""``server.deletions`` of the federation file: the deletion registry's sync."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mqs.deletions.store import DEFAULT_PREFIX


class DeletionsConfig(BaseModel):
    """How the gateway follows its backends' ``DeletedProducts`` feeds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False  # the background sync (``mqs deletions sync`` works either way)
    sync_interval_s: float = Field(3600.0, gt=0)  # between two syncs of every feed
    page_size: int = Field(100, ge=1, le=1000)  # deletions per feed request
    max_pages: int = Field(100, ge=1)  # per backend and sync (the next sync goes on)
    store_prefix: str = Field(DEFAULT_PREFIX, min_length=1)  # Redis keys (cache.url's server)
