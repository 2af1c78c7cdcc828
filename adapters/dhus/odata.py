"""SearchQuery -> DHuS OData v1 ``/Products`` query (pure), for ``search_api: odata``.

DHuS OData v1 filters products by ``Name``, ``ContentDate`` and ``IngestionDate`` only: the
collection becomes name patterns (``startswith(Name,'S2')`` and ``substringof('_MSIL2A_',Name)``),
ids ``Name eq '...'``, datetime ``ContentDate/Start``/``End``. Footprints and attributes are not
filterable there; the adapter's capabilities say so and the gateway evaluates them on the
items (read with ``$expand=Attributes``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.dhus.collections import ProductSet
from mqs.ordering import backend_sort
from mqs.query import SearchQuery

_NAME_TOKENS = {"S2MSI1C": "_MSIL1C_", "S2MSI2A": "_MSIL2A_", "GRD": "_GRD", "SLC": "_SLC_"}
_PREFIXES = {
    "Sentinel-1": "S1",
    "Sentinel-2": "S2",
    "Sentinel-3": "S3",
    "Sentinel-5 Precursor": "S5P",
}
SORT_FIELDS = {"datetime": "ContentDate/Start", "created": "IngestionDate"}


def literal(value: str) -> str:
    """An OData string literal: quotes doubled, nothing else can end it."""
    return "'" + value.replace("'", "''") + "'"


def datetime_literal(value: datetime) -> str:
    """``datetime'2021-10-01T00:00:00.000'`` (OData v2, UTC)."""
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    return f"datetime'{text}'"


def _product_clause(platform: str, product_type: str) -> str:
    token = _NAME_TOKENS.get(product_type, f"_{product_type}_")
    clause = f"substringof({literal(token)},Name)"
    prefix = _PREFIXES.get(platform)
    return f"startswith(Name,{literal(prefix)}) and {clause}" if prefix else clause


def collection_filter(sets: list[ProductSet]) -> str | None:
    clauses = [f"({_product_clause(s.platform, t)})" for s in sets for t in s.product_types]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else "(" + " or ".join(clauses) + ")"


def build_filter(query: SearchQuery, sets: list[ProductSet]) -> str | None:
    clauses = []
    if (collections := collection_filter(sets)) is not None:
        clauses.append(collections)
    if query.ids:
        clauses.append("(" + " or ".join(f"Name eq {literal(i)}" for i in query.ids) + ")")
    if query.datetime is not None:
        start, end = query.datetime
        if end is not None:
            clauses.append(f"ContentDate/Start le {datetime_literal(end)}")
        if start is not None:
            clauses.append(f"ContentDate/End ge {datetime_literal(start)}")
    return " and ".join(clauses) if clauses else None


def orderby(query: SearchQuery) -> str:
    keys = backend_sort(query.sortby, SORT_FIELDS)
    return ",".join(f"{field} {direction}" for field, direction in keys) or "ContentDate/Start desc"
