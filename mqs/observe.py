"""One call per answered search page: its metrics and its log line (see :mod:`mqs.metrics`)."""

from __future__ import annotations

from mqs import metrics
from mqs.federation import SearchResult
from mqs.logs import log_search
from mqs.query import SearchQuery
from mqs.runtime import Runtime


def observe_search(
    runtime: Runtime, query: SearchQuery, first_page: bool, result: SearchResult
) -> None:
    """Count the page (usage, backends, duplicates), note breaker states, log one line."""
    metrics.observe_search(query, first_page, result.outcomes, result.items)
    breakers = runtime.federation.breakers
    metrics.set_circuit_states({bid: breakers[bid].state for bid in result.outcomes})
    log_search(query, first_page, result.outcomes, len(result.items))
