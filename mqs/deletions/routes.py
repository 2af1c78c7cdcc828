"""``GET /deletions``: what the backends withdrew, why and when, with counts.

Parameters: ``backend`` and ``class`` (comma-separated or repeated), ``since`` (inclusive) and
``until`` (exclusive) deletion instants (RFC 3339), ``limit`` (default 100, at most 10000) and
``offset`` (at most 100000: page further back with ``until``; a page holds in memory only the
deletions up to its end, however large the registry). Answer: ``counts`` (``total``,
``by_class``, ``by_backend`` over everything selected), ``deletions`` (newest first: product,
backend, date, cause, class), ``numberMatched``, ``numberReturned`` and ``self``/``root``/``next``
links.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from starlette.responses import Response

from mqs.auth import hidden_backends, visible_collections
from mqs.auth.errors import Forbidden
from mqs.client import json_response
from mqs.deletions.causes import VOCABULARY
from mqs.deletions.report import Selection, build_report
from mqs.deletions.store import StoreError
from mqs.errors import InvalidRequest, UpstreamFailed
from mqs.links import JSON, base_url
from mqs.literals import parse_instant
from mqs.runtime import Runtime

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_OFFSET = 100_000


def _listed(values: list[str] | None) -> tuple[str, ...]:
    items = [v.strip() for raw in values or [] for v in raw.split(",")]
    return tuple(dict.fromkeys(v for v in items if v))


def _integer(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}")
    return int(text)


def selection(
    known: list[str],
    backend: list[str] | None,
    cls: list[str] | None,
    since: str | None,
    until: str | None,
) -> Selection:
    """The request's filters, validated (unknown backends and classes are a 400)."""
    backends, classes = _listed(backend), _listed(cls)
    if unknown := [b[:64] for b in backends if b not in known]:
        feeds = ", ".join(known) or "none"
        raise InvalidRequest(f"unknown backend(s) {unknown}; backends with a feed: {feeds}")
    if unknown := [c[:64] for c in classes if c not in VOCABULARY]:
        raise InvalidRequest(f"unknown class(es) {unknown}; classes: {', '.join(VOCABULARY)}")
    return Selection(
        backends,
        classes,
        parse_instant(since) if since else None,
        parse_instant(until) if until else None,
    )


async def deletions_endpoint(
    request: Request,
    backend: Annotated[
        list[str] | None, Query(description="backend id(s), comma-separated")
    ] = None,
    cls: Annotated[list[str] | None, Query(alias="class", description="cause class(es)")] = None,
    since: Annotated[str | None, Query(description="deleted at or after (RFC 3339)")] = None,
    until: Annotated[str | None, Query(description="deleted before (RFC 3339)")] = None,
    limit: Annotated[str | None, Query(description="page size, 1 to 10000 (100)")] = None,
    offset: Annotated[str | None, Query(description="deletions to skip (0)")] = None,
) -> Response:
    """What the backends withdrew, why and when (newest first), with counts."""
    runtime: Runtime = request.app.state.mqs
    deletions = runtime.deletions
    everything = list(runtime.config.collections)
    if len(await visible_collections(request, everything)) < len(everything):
        raise Forbidden("the deletion report covers every collection: it needs access to all")
    hidden = await hidden_backends(request)
    known = sorted(b for b in deletions.sources if b not in hidden) if deletions else []
    chosen = selection(known, backend, cls, since, until)
    size = _integer(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    start = _integer(offset, "offset", 0, 0, MAX_OFFSET)
    if deletions is None:
        raise UpstreamFailed("the deletion registry is not available", {})
    try:
        report = await build_report(deletions.registry, known, chosen, keep=start + size)
    except StoreError as exc:
        raise UpstreamFailed(str(exc), {}) from None
    page = report.deletions[start : start + size]
    base = base_url(request)
    links: list[dict[str, Any]] = [
        {"rel": "self", "href": str(request.url), "type": JSON},
        {"rel": "root", "href": base, "type": JSON},
    ]
    if start + size < report.total:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
        query = urlencode([*params, ("offset", str(start + size))])
        links.append({"rel": "next", "href": f"{base}deletions?{query}", "type": JSON})
    body = {
        "counts": report.counts(),
        "deletions": [d.as_json() for d in page],
        "numberMatched": report.total,
        "numberReturned": len(page),
        "links": links,
    }
    return json_response(body)
