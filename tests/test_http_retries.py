"""Backend HTTP under faults: retries, Retry-After, deadlines and defensive parsing.

Every request goes over loopback to a real emulator behind the fault injector; the injector
counts the requests, so retries are observed, not assumed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from conftest import COLLECTIONS
from factories import series

from adapters.base import BackendError, BackendTimeout, BackendUnavailable, BadBackendResponse
from adapters.faults import Fault, FaultInjector, Faults
from adapters.http import fetch_bytes, fetch_json, retry_after_s
from adapters.registry import ADAPTERS, EMULATORS
from mqs.config import BackendConfig
from mqs.query import SearchQuery
from mqs.serving import bound_socket, serving_in_thread

ITEMS = series(6, tiles=("33UXQ", "33UWQ"))
# Terrascope has no built-in URN for L2A: configured like a real mirror would be.
TERRASCOPE = {cid: "" for cid in COLLECTIONS} | {"sentinel-2-l2a": "urn:eop:VITO:SENTINEL_2_L2A"}
SLACK_S = 2.0  # loose bound on how much longer than its budget a failing exchange may take

Serve = Callable[..., tuple[BackendConfig, Faults]]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[BackendConfig, Faults]]]:
    """One emulator per kind behind a fault injector, started on first use."""
    with ExitStack() as stack:
        yield _LazyServers(stack)


class _LazyServers(dict[str, tuple[BackendConfig, Faults]]):
    def __init__(self, stack: ExitStack) -> None:
        super().__init__()
        self.stack = stack

    def __missing__(self, kind: str) -> tuple[BackendConfig, Faults]:
        faults = Faults()
        app = FaultInjector(EMULATORS[kind](ITEMS), faults)
        (url,) = self.stack.enter_context(serving_in_thread([(app, bound_socket())]))
        collections = TERRASCOPE if kind == "terrascope" else list(COLLECTIONS)
        config = BackendConfig(id=f"{kind}-archive", kind=kind, url=url, collections=collections)
        self[kind] = (config, faults)
        return config, faults


@pytest.fixture
def serve(servers: dict[str, tuple[BackendConfig, Faults]]) -> Serve:
    """``serve(kind, timeout_s=...)`` -> (the backend's config, its fault control, reset)."""

    def start(kind: str = "stac", timeout_s: float = 5.0) -> tuple[BackendConfig, Faults]:
        config, faults = servers[kind]
        faults.reset()
        return config.model_copy(update={"timeout_s": timeout_s}), faults

    return start


def _get(backend: BackendConfig, **kwargs: Any) -> Any:
    async def run() -> Any:
        async with httpx.AsyncClient() as client:
            url = f"{backend.url}/collections/sentinel-2-l2a/items?limit=100"
            return await fetch_json(client, backend, "GET", url, **kwargs)

    return asyncio.run(run())


def _post(backend: BackendConfig, idempotent: bool | None) -> Any:
    async def run() -> Any:
        async with httpx.AsyncClient() as client:
            body = {"collections": ["sentinel-2-l2a"], "limit": 3}
            url = f"{backend.url}/search"
            return await fetch_json(client, backend, "POST", url, json=body, idempotent=idempotent)

    return asyncio.run(run())


def _fails(call: Callable[[], Any], error: type[BackendError]) -> tuple[BackendError, float]:
    started = time.monotonic()
    with pytest.raises(error) as raised:
        call()
    return raised.value, time.monotonic() - started


@pytest.mark.parametrize("status", [503, 502, 504, 429])
def test_a_retryable_status_that_clears_is_retried_once(serve: Serve, status: int) -> None:
    backend, faults = serve()
    faults.set("status", status=status, retry_after="0", times=1)
    body = _get(backend)
    assert len(body["features"]) == len(ITEMS)
    assert faults.requests == 2


@pytest.mark.parametrize("status", [400, 401, 404, 500, 501])
def test_other_errors_are_never_retried(serve: Serve, status: int) -> None:
    backend, faults = serve()
    faults.set("status", status=status, retry_after="0")
    error, _ = _fails(lambda: _get(backend), BackendError)
    assert error.status == status
    assert faults.requests == 1


def test_a_retry_after_date_in_the_past_means_now(serve: Serve) -> None:
    backend, faults = serve()
    past = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    faults.set("status", status=429, retry_after=past, times=2)
    assert len(_get(backend)["features"]) == len(ITEMS)
    assert faults.requests == 3


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param("3600", id="seconds"),
        pytest.param(
            format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True), id="http-date"
        ),
    ],
)
def test_a_retry_after_beyond_the_budget_fails_at_once(serve: Serve, retry_after: str) -> None:
    backend, faults = serve(timeout_s=5.0)
    faults.set("status", status=503, retry_after=retry_after)
    error, took = _fails(lambda: _get(backend), BackendUnavailable)
    assert "Retry-After" in str(error) and "beyond the time left" in str(error)
    assert faults.requests == 1
    assert took < backend.timeout_s / 2  # it did not wait for the budget to run out


def test_retries_stop_at_the_attempt_limit(serve: Serve) -> None:
    backend, faults = serve(timeout_s=20.0)
    faults.set("status", status=503, retry_after="0")
    error, _ = _fails(lambda: _get(backend), BackendUnavailable)
    assert error.status == 503
    assert str(error).endswith("HTTP 503 (4 attempts)")
    assert faults.requests == 4


def test_backoff_never_sleeps_past_the_budget(serve: Serve) -> None:
    # Without Retry-After the jittered backoff (0.2 s, 0.4 s, 0.8 s caps) runs into the budget.
    backend, faults = serve(timeout_s=0.3)
    faults.set("status", status=503)
    _, took = _fails(lambda: _get(backend), BackendUnavailable)
    assert 1 <= faults.requests <= 4
    assert took < backend.timeout_s + SLACK_S


@pytest.mark.parametrize(("idempotent", "requests"), [(None, 1), (False, 1), (True, 2)])
def test_a_post_is_retried_only_when_marked_idempotent(
    serve: Serve, idempotent: bool | None, requests: int
) -> None:
    backend, faults = serve()
    faults.set("status", status=503, retry_after="0", times=1)
    if requests == 1:
        error, _ = _fails(lambda: _post(backend, idempotent), BackendUnavailable)
        assert str(error).endswith("HTTP 503")
    else:
        assert len(_post(backend, idempotent)["features"]) == 3
    assert faults.requests == requests


def test_a_dropped_connection_is_retried(serve: Serve) -> None:
    backend, faults = serve()
    faults.set("reset", times=1)
    assert len(_get(backend)["features"]) == len(ITEMS)
    assert faults.requests == 2


def test_a_connection_dropped_every_time_is_the_backend_unavailable(serve: Serve) -> None:
    backend, faults = serve(timeout_s=20.0)
    faults.set("reset")
    error, _ = _fails(lambda: _get(backend), BackendUnavailable)
    assert "incomplete" in str(error)
    assert faults.requests == 4


def test_retries_that_run_out_of_time_report_the_failure_not_a_timeout(serve: Serve) -> None:
    backend, faults = serve(timeout_s=0.3)
    faults.set("reset")
    error, took = _fails(lambda: _get(backend), BackendUnavailable)
    assert "attempt" in str(error)
    assert took < backend.timeout_s + SLACK_S


@pytest.mark.parametrize("fault", ["hang", "slow"])
def test_no_answer_within_the_budget_is_a_timeout(serve: Serve, fault: Fault) -> None:
    backend, faults = serve(timeout_s=0.3)
    faults.set(fault, delay_s=1.0 if fault == "slow" else 0.0)
    _, took = _fails(lambda: _get(backend), BackendTimeout)
    assert faults.requests == 1  # a timeout used the budget up: no retry
    assert took < backend.timeout_s + SLACK_S


def test_a_slow_answer_within_the_budget_is_taken(serve: Serve) -> None:
    backend, faults = serve(timeout_s=5.0)
    faults.set("slow", delay_s=0.05)
    assert len(_get(backend)["features"]) == len(ITEMS)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("html", "HTML page"),
        ("redirect", "HTTP 302: redirects are not followed"),
        ("malformed", "not valid JSON"),
        ("truncated", "not valid JSON (body ends early)"),
    ],
)
def test_a_bad_answer_is_a_bad_response_without_retry(
    serve: Serve, fault: Fault, message: str
) -> None:
    backend, faults = serve()
    faults.set(fault)
    error, _ = _fails(lambda: _get(backend), BadBackendResponse)
    assert message in str(error)
    assert faults.requests == 1


def test_an_announced_body_over_the_cap_is_refused_unread(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, _ = serve()
    monkeypatch.setattr("adapters.http.MAX_BODY_BYTES", 100)

    async def run() -> Any:
        async with httpx.AsyncClient() as client:
            return await fetch_bytes(client, backend, "GET", f"{backend.url}/search")

    with pytest.raises(BadBackendResponse, match="too large"):
        asyncio.run(run())


NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("0", 0.0),
        (" 120 ", 120.0),
        ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
    ],
)
def test_retry_after_values(value: str | None, seconds: float | None) -> None:
    assert retry_after_s(value, now=NOW) == seconds


# --- every adapter kind: any broken answer is that backend's error, never a crash ----------

BODY_FAULTS: list[Fault] = ["html", "redirect", "malformed", "truncated", "reset"]


@pytest.mark.parametrize("fault", BODY_FAULTS)
@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_every_adapter_turns_a_broken_answer_into_a_backend_error(
    serve: Serve, kind: str, fault: Fault
) -> None:
    backend, faults = serve(kind, timeout_s=0.5)  # a dropped connection: retried within it
    faults.set(fault)

    async def run() -> Any:
        async with httpx.AsyncClient() as client:
            adapter = ADAPTERS[kind](backend, client)
            query = SearchQuery(collections=("sentinel-2-l2a",), limit=5)
            return await adapter.search(query, None, 5)

    with pytest.raises(BackendError):
        asyncio.run(run())
    assert faults.faulted >= 1


@pytest.mark.parametrize("status", [405, 501])
def test_a_stac_api_refusing_post_search_is_asked_with_get(serve: Serve, status: int) -> None:
    backend, faults = serve("stac")
    faults.set("status", status=status, times=1)

    async def run() -> Any:
        async with httpx.AsyncClient() as client:
            adapter = ADAPTERS["stac"](backend, client)
            query = SearchQuery(collections=("sentinel-2-l2a",), limit=50)
            return await adapter.search(query, None, 50)

    page = asyncio.run(run())
    assert sorted(h.product_id for h in page.hits) == sorted(i["id"] for i in ITEMS)
    assert faults.requests == 2
