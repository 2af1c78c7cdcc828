"""CDSE ``/odata/v1/DeletedProducts``: the request and the answer (pure).

CDSE documents the endpoint as the ``Products`` one with ``DeletionDate`` and
``DeletionCause`` added: ``{"@odata.context", "value": [...], "@odata.nextLink"}``, instants
as ``2023-04-26T10:11:12.123456Z``, orderable by ``DeletionDate``. The feed is read oldest
deletion first, from the registry's high-water mark on (``ge``: deletions sharing the mark's
instant are read again and recognised as known).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.cdse_odata.mapping import ODataError, error_message
from adapters.cdse_odata.query import instant
from mqs.deletions.model import DeletedPage, DeletedProduct


def deleted_params(since: datetime | None, skip: int, top: int) -> dict[str, str]:
    """The query of one page: ``$filter=DeletionDate ge <instant>``, oldest first."""
    params = {"$filter": f"DeletionDate ge {instant(since)}"} if since is not None else {}
    return params | {"$orderby": "DeletionDate asc", "$top": str(top), "$skip": str(skip)}


def parse_deleted(body: Any, top: int) -> DeletedPage:
    """One answer -> deletions; :class:`ODataError` when it is not a DeletedProducts answer."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise ODataError(error_message(body) or "not an OData collection of deleted products")
    entities = [e for e in body["value"] if isinstance(e, dict)]
    more = bool(body.get("@odata.nextLink")) or len(entities) >= top > 0
    return DeletedPage([_deleted(e) for e in entities], more and bool(entities))


def _deleted(entity: dict[str, Any]) -> DeletedProduct:
    name, when = entity.get("Name"), entity.get("DeletionDate")
    if not isinstance(name, str) or not name or not isinstance(when, str):
        raise ODataError("a deleted product without Name or DeletionDate")
    try:
        date = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        raise ODataError(f"invalid DeletionDate {when[:40]!r}") from None
    date = (date if date.tzinfo else date.replace(tzinfo=UTC)).astimezone(UTC)
    cause = entity.get("DeletionCause")
    return DeletedProduct(name, date, cause if isinstance(cause, str) else None)
