"""Prometheus metrics: endpoints, backends, cache, and the usage statistics operators publish.

Every metric is defined here, once, at import time (prometheus-client's multiprocess mode
decides how values are stored when it is imported: ``mqs serve --workers N`` sets
``PROMETHEUS_MULTIPROC_DIR`` before any worker starts, so one scrape of any worker adds up
all of them). Label values are bounded: route templates (never raw paths), backend and
collection ids from the configuration, a fixed vocabulary of query attributes, outcome kinds;
anything else is ``other``. No user ids, item ids or free text ever become label values.

The hot path calls :func:`observe_search` once per search page, with what the federation
computed anyway (the per-backend outcomes and the merged items).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:  # only types: the metrics stay importable from the lowest layers
    from mqs.merger import Outcome
    from mqs.query import SearchQuery

OTHER = "other"
# Latency buckets (seconds): a cached search answers in ms, a federated one within the deadline.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0)
CIRCUIT_STATES = {"closed": 0, "half-open": 1, "open": 2}

# Query attributes counted for usage statistics: a property name (as the gateway's CQL2 names
# it) -> the attribute label. Names outside this table count as ``other``.
ATTRIBUTES: dict[str, str] = {
    "platform": "platform",
    "constellation": "platform",
    "instruments": "instrument",
    "product:type": "product_type",
    "processing:level": "processing_level",
    "eo:cloud_cover": "cloud_cover",
    "sar:polarizations": "polarisation",
    "sar:instrument_mode": "instrument_mode",
    "sat:relative_orbit": "orbit",
    "sat:absolute_orbit": "orbit",
    "sat:orbit_state": "orbit_direction",
    "grid:code": "tile",
    "created": "ingestion_date",
    "published": "ingestion_date",
    "updated": "ingestion_date",
    "datetime": "datetime",
    "start_datetime": "datetime",
    "end_datetime": "datetime",
    "geometry": "footprint",
    "id": "ids",
    "collection": "collection",
}

HTTP_REQUESTS = Counter(
    "mqs_http_requests",
    "Requests answered by the gateway, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "mqs_http_request_duration_seconds",
    "Time to answer a request, by route template and method.",
    ["route", "method"],
    buckets=_BUCKETS,
)
BACKEND_REQUESTS = Counter(
    "mqs_backend_requests",
    "Requests the adapters made to a backend for searches and items (cached answers included), "
    "by the outcome of the search page or item.",
    ["backend", "status"],
)
BACKEND_LATENCY = Histogram(
    "mqs_backend_duration_seconds",
    "A backend's total request time for one search page or item (when it was asked).",
    ["backend"],
    buckets=_BUCKETS,
)
BACKEND_ERRORS = Counter(
    "mqs_backend_errors",
    "Search pages a backend failed or was skipped for, by kind "
    "(timeout, unavailable, bad-response, error, skipped).",
    ["backend", "kind"],
)
BACKEND_ITEMS = Counter(
    "mqs_backend_items",
    "Products returned to clients that a backend holds (its copy merged or not).",
    ["backend"],
)
BACKEND_DUPLICATES = Counter(
    "mqs_backend_duplicates_removed",
    "A backend's copies of returned products merged into a higher-priority backend's item.",
    ["backend"],
)
CIRCUIT = Gauge(
    "mqs_backend_circuit_state",
    "A backend's circuit breaker: 0 closed, 1 half-open, 2 open (the worst over workers).",
    ["backend"],
    multiprocess_mode="livemax",
)
SEARCHES = Counter(
    "mqs_searches",
    "New searches (first pages) per collection asked (a search over all counts as 'all').",
    ["collection"],
)
SEARCH_PAGES = Counter("mqs_search_pages", "Search pages answered (first and following pages).")
SEARCH_ATTRIBUTES = Counter(
    "mqs_search_attributes",
    "New searches using a query attribute (bbox, footprint, datetime, cloud_cover, ...).",
    ["attribute"],
)
SEARCH_ITEMS = Counter("mqs_search_items", "Items returned by search pages.")
DUPLICATES = Counter(
    "mqs_duplicates_removed", "Copies of returned products merged away (de-duplication)."
)
CACHE = Counter(
    "mqs_cache_requests",
    "Cache lookups by layer (backend-search, backend-document, collections) and result "
    "(hit, miss, coalesced: waited for an identical request in flight).",
    ["layer", "result"],
)
DOWNLOADS = Counter(
    "mqs_downloads", "Downloads streamed through the gateway.", ["collection", "backend"]
)
DOWNLOAD_BYTES = Counter(
    "mqs_download_bytes", "Bytes streamed to clients by downloads.", ["collection", "backend"]
)


@dataclass
class _Known:
    """The configured ids allowed as label values (everything else is ``other``)."""

    collections: set[str] = field(default_factory=set)
    backends: set[str] = field(default_factory=set)


_known = _Known()


def register_federation(collections: Iterable[str], backends: Iterable[str]) -> None:
    """Allow the configured collection and backend ids as label values."""
    _known.collections.update(collections)
    _known.backends.update(backends)


def _collection(value: str) -> str:
    return value if value in _known.collections else OTHER


def _backend(value: str) -> str:
    return value if value in _known.backends else OTHER


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, kept: the hot path looks each series up once per process."""
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


def observe_backends(outcomes: Mapping[str, Outcome]) -> None:
    """Per backend: requests, latency, errors by kind and items (one search page or item)."""
    for bid, outcome in outcomes.items():
        backend = _backend(bid)
        if outcome.requests:
            _child(BACKEND_REQUESTS, backend, outcome.status).inc(outcome.requests)
            _child(BACKEND_LATENCY, backend).observe(outcome.ms / 1000)
        if outcome.status != "ok":
            _child(BACKEND_ERRORS, backend, outcome.status).inc()
        if outcome.items:
            _child(BACKEND_ITEMS, backend).inc(outcome.items)


def observe_search(
    query: SearchQuery,
    first_page: bool,
    outcomes: Mapping[str, Outcome],
    items: list[dict[str, Any]],
) -> None:
    """Everything one search page tells: usage (first pages), backends, items, duplicates."""
    SEARCH_PAGES.inc()
    if first_page:
        for cid in query.collections or ("all",):
            _child(SEARCHES, cid if cid == "all" else _collection(cid)).inc()
        for attribute in query_attributes(query):
            _child(SEARCH_ATTRIBUTES, attribute).inc()
    observe_backends(outcomes)
    SEARCH_ITEMS.inc(len(items))
    merged: dict[str, int] = {}  # per backend: its copies merged into another's item
    for item in items:
        holders = (item.get("properties") or {}).get("federation:backends") or ()
        for bid in holders[1:]:
            merged[bid] = merged.get(bid, 0) + 1
    for bid, count in merged.items():
        _child(BACKEND_DUPLICATES, _backend(bid)).inc(count)
    if merged:
        DUPLICATES.inc(sum(merged.values()))


def query_attributes(query: SearchQuery) -> set[str]:
    """The attributes a search uses: its parameters and the properties its filter names."""
    used = {name for name, value in _parameters(query) if value}
    if query.filter is not None:
        used.update(ATTRIBUTES.get(name, OTHER) for name in filter_properties(query.filter))
    return used


def _parameters(query: SearchQuery) -> Iterator[tuple[str, Any]]:
    yield "bbox", query.bbox
    yield "footprint", query.intersects
    yield "datetime", query.datetime
    yield "ids", query.ids


def filter_properties(expr: Any) -> Iterator[str]:
    """Every property name a CQL2 JSON expression refers to."""
    if isinstance(expr, dict):
        name = expr.get("property")
        if isinstance(name, str):
            yield name.removeprefix("properties.")
        for value in expr.values():
            if isinstance(value, dict | list):
                yield from filter_properties(value)
    elif isinstance(expr, list):
        for value in expr:
            yield from filter_properties(value)


def set_circuit_states(states: Mapping[str, str]) -> None:
    """Each backend's breaker state (``closed``, ``half-open``, ``open``) in this process."""
    for bid, state in states.items():
        _child(CIRCUIT, _backend(bid)).set(CIRCUIT_STATES.get(state, 0))


def record_cache(layer: str, result: str) -> None:
    """One cache lookup: ``layer`` and ``result`` are from the fixed vocabulary above."""
    _child(CACHE, layer, result).inc()


def record_download(collection: str, backend: str, nbytes: int) -> None:
    """One download streamed to a client: ``nbytes`` bytes of ``backend``'s copy."""
    labels = (_collection(collection), _backend(backend))
    DOWNLOADS.labels(*labels).inc()
    if nbytes > 0:
        DOWNLOAD_BYTES.labels(*labels).inc(nbytes)


def observe_http(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request (``route`` is the template, e.g. ``/collections/{collection_id}``)."""
    _child(HTTP_REQUESTS, route, method, str(status)).inc()
    _child(HTTP_LATENCY, route, method).observe(seconds)


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The exposition of every metric (all workers' in multiprocess mode) and its media type.

    The format follows the scraper's ``Accept`` header (Prometheus text 0.0.4 by default,
    OpenMetrics when asked for).
    """
    encoder, media_type = choose_encoder(accept)
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return encoder(registry), media_type


def worker_exited(pid: int) -> None:
    """Forget a finished worker's live gauges (multiprocess mode only)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def use_multiprocess_dir() -> str:
    """For ``mqs serve --workers N``: a fresh directory the workers share their metrics in.

    Set as ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts (a directory the operator set
    is kept, and must be emptied by them between runs); removed when the server exits.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        return given
    path = tempfile.mkdtemp(prefix="mqs-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
