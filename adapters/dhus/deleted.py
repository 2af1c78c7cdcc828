"""DHuS ``/odata/v1/DeletedProducts`` (OData v2): the request and the answer (pure).

A DHuS ``DeletedProduct`` has ``Id``, ``Name`` (no ``.SAFE``), ``CreationDate``,
``FootPrint``, ``Size``, ``IngestionDate``, ``ContentDate``, ``DeletionDate``,
``DeletionCause`` and ``Checksum`` (DHuS ``DeletedProductEntitySet``); dates are ``/Date(ms)/``,
a collection is ``{"d": {"results": [...]}}``, a single entity ``{"d": {...}}``. The feed is
read oldest deletion first, from the registry's high-water mark on (``ge``: deletions sharing
the mark's instant are read again and recognised as known).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.dhus.mapping import FeedError, as_list, odata_error, odata_instant
from adapters.dhus.odata import datetime_literal
from mqs.deletions.model import DeletedPage, DeletedProduct


def deleted_params(since: datetime | None, skip: int, top: int) -> dict[str, str]:
    """The query of one page: ``$filter=DeletionDate ge datetime'...'``, oldest first."""
    params = {
        "$format": "json",
        "$orderby": "DeletionDate asc",
        "$top": str(top),
        "$skip": str(skip),
    }
    if since is not None:
        params["$filter"] = f"DeletionDate ge {datetime_literal(since)}"
    return params


def parse_deleted(body: Any, top: int) -> DeletedPage:
    """One answer -> deletions; :class:`FeedError` when it is not a DeletedProducts answer."""
    if not isinstance(body, dict) or not isinstance(body.get("d"), dict):
        raise FeedError(odata_error(body) or "not a DHuS OData answer")
    data = body["d"]
    entities = as_list(data["results"]) if "results" in data else [data]
    products = [_deleted(e) for e in entities if isinstance(e, dict)]
    return DeletedPage(products, len(entities) >= top > 0)


def _deleted(entity: dict[str, Any]) -> DeletedProduct:
    name, when = entity.get("Name"), odata_instant(entity.get("DeletionDate"))
    if not isinstance(name, str) or not name or when is None:
        raise FeedError("a deleted product without Name or DeletionDate")
    try:
        date = datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise FeedError(f"invalid DeletionDate {when[:40]!r}") from None
    cause = entity.get("DeletionCause")
    return DeletedProduct(name, date, cause if isinstance(cause, str) else None)
