"""What a backend's ``DeletedProducts`` feed yields, whatever its OData dialect."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Protocol


class DeletedProduct(NamedTuple):
    """One entry of a feed: the product name as the backend gives it, when, and why."""

    name: str
    date: datetime  # DeletionDate, UTC
    cause: str | None  # DeletionCause, verbatim (None when the backend gives null)


class DeletedPage(NamedTuple):
    """One page of a feed in ascending deletion date; ``more`` when another page follows."""

    products: list[DeletedProduct]
    more: bool


class DeletionSource(Protocol):
    """An adapter whose backend publishes deletions (``DeletedProducts``)."""

    async def deleted_products(self, since: datetime | None, skip: int, top: int) -> DeletedPage:
        """Deletions dated at or after ``since`` (all when None), oldest first, one page."""
        ...
