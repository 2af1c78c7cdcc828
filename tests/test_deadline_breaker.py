"""Search deadline, the per-backend report and circuit breaking, through the live gateway.

Backends are emulators behind the fault injector (``adapters/faults.py``), whose request
counter is the emulator's own count of what reached it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import series
from searching import expected_order, ids

from adapters.faults import Fault, Faults

S2 = series(10)  # one tile: every product has its own datetime
DEADLINE_S = 1.0
SLACK_S = 2.0  # loose: a loaded machine may be slow, but never by a backend's 30 s budget
LONG_S = 30.0  # the slow backend's own timeout_s: only the search deadline can end its wait


@dataclass
class HangAfter(Faults):
    """Answers the first ``first`` requests normally, then hangs (later pages never come)."""

    first: int = 1

    def take(self, path: str = "") -> Fault | None:
        self.requests += 1
        return "hang" if self.requests > self.first else None


def _post(fed: LiveFederation, body: dict[str, Any]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    with httpx.Client(timeout=60) as client:
        response = client.post(f"{fed.url}/search", json=body)
    return response, time.monotonic() - started


def _next(page: dict[str, Any]) -> dict[str, Any] | None:
    return next((link for link in page["links"] if link["rel"] == "next"), None)


def _health(fed: LiveFederation) -> httpx.Response:
    return httpx.get(f"{fed.url}/_mgmt/health")


def _state(fed: LiveFederation, backend: str) -> str:
    state: str = _health(fed).json()["backends"][backend]["state"]
    return state


def _wait_for_state(fed: LiveFederation, backend: str, state: str, limit_s: float) -> None:
    """Poll the health page (the cooldown runs on the gateway's clock) until ``state``."""
    give_up = time.monotonic() + limit_s
    while _state(fed, backend) != state:
        assert time.monotonic() < give_up, f"{backend} never became {state}"
        time.sleep(0.05)


def _deadline_federation(
    make: MakeFederation, slow: Faults, holdings: tuple[list[Any], list[Any]] = (S2[:6], S2[4:])
) -> LiveFederation:
    return make(
        server={"search_deadline_s": DEADLINE_S},
        fast=Archive(holdings[0]),
        slow=Archive(holdings[1], faults=slow, timeout_s=LONG_S, emulator={"max_page_size": 2}),
    )


def test_a_hanging_backend_is_cut_at_the_deadline(make_federation: MakeFederation) -> None:
    hang = Faults()
    hang.set("hang")
    fed = _deadline_federation(make_federation, hang)

    response, took = _post(fed, {"collections": ["sentinel-2-l2a"], "limit": 100})

    assert response.status_code == 200, response.text
    assert took < DEADLINE_S + SLACK_S
    page = response.json()
    assert ids(page["features"]) == expected_order(S2[:6])
    assert page["federation:missing"] == ["slow"]
    report = page["federation:report"]
    assert report["slow"]["status"] == "timeout"
    assert "search deadline" in report["slow"]["detail"]
    assert report["slow"]["requests"] == 1 and report["slow"]["items"] == 0
    assert DEADLINE_S * 1000 * 0.9 <= report["slow"]["ms"] < LONG_S * 1000
    assert report["fast"] == {"status": "ok", "items": 6, "requests": 1, "ms": report["fast"]["ms"]}
    assert response.headers["X-MQS-Missing"] == "slow"
    timing = response.headers["Server-Timing"]
    assert timing.startswith("fast;dur=") and ", slow;dur=" in timing
    assert timing.endswith('desc="timeout"')


def test_a_later_page_inside_the_merge_is_cut_at_the_deadline(
    make_federation: MakeFederation,
) -> None:
    # The slow backend answers its first page (2 items), then hangs on the second one the
    # merge needs: the deadline, not its 30 s timeout, ends that wait.
    fast, slow = S2[0::2], S2[1::2]
    fed = _deadline_federation(make_federation, HangAfter(first=1), (fast, slow))

    response, took = _post(fed, {"collections": ["sentinel-2-l2a"], "limit": 100})

    assert response.status_code == 200, response.text
    assert took < DEADLINE_S + SLACK_S
    page = response.json()
    # What it returned before it hung is merged; nothing after it is waited for.
    assert ids(page["features"]) == expected_order(fast + slow[:2])
    assert page["federation:missing"] == ["slow"]
    cut = page["federation:report"]["slow"]
    assert (cut["status"], cut["requests"], cut["items"]) == ("timeout", 2, 2)
    assert _next(page) is None


def test_the_token_keeps_a_timed_out_backend_failed(make_federation: MakeFederation) -> None:
    hang = Faults()
    hang.set("hang")
    fed = _deadline_federation(make_federation, hang)

    response, _ = _post(fed, {"collections": ["sentinel-2-l2a"], "limit": 4})
    page = response.json()
    seen = ids(page["features"])
    assert page["federation:missing"] == ["slow"] and hang.requests == 1
    with httpx.Client(timeout=60) as client:
        while (link := _next(page)) is not None:
            page = client.post(link["href"], json=link["body"]).json()
            assert page["federation:missing"] == ["slow"]
            slow = page["federation:report"]["slow"]
            assert (slow["status"], slow["requests"]) == ("timeout", 0)
            assert slow["detail"] == "failed earlier in this search"
            seen += ids(page["features"])
    assert hang.requests == 1  # later pages never asked it again
    assert seen == expected_order(S2[:6])


def test_the_report_counts_each_backends_items_and_requests(
    make_federation: MakeFederation,
) -> None:
    counters = {"a": Faults(), "b": Faults()}
    fed = make_federation(
        a=Archive(S2[:7], faults=counters["a"], emulator={"max_page_size": 3}),
        b=Archive(S2[3:], faults=counters["b"]),
    )

    response, _ = _post(fed, {"collections": ["sentinel-2-l2a"], "limit": 8})

    page = response.json()
    assert "federation:missing" not in page and "X-MQS-Missing" not in response.headers
    report = page["federation:report"]
    for bid, counter in counters.items():
        holding = [f for f in page["features"] if bid in f["properties"]["federation:backends"]]
        assert report[bid]["status"] == "ok" and "detail" not in report[bid]
        assert report[bid]["items"] == len(holding)
        assert report[bid]["requests"] == counter.requests
        assert report[bid]["ms"] >= 0
    assert counters["a"].requests == 3  # pages of 3: the 8 newest reach into its third page


def test_an_item_is_answered_by_the_deadline(make_federation: MakeFederation) -> None:
    hang = Faults()
    hang.set("hang")
    fed = _deadline_federation(make_federation, hang)
    started = time.monotonic()
    response = httpx.get(f"{fed.url}/collections/sentinel-2-l2a/items/{S2[5]['id']}", timeout=60)
    assert time.monotonic() - started < DEADLINE_S + SLACK_S
    assert response.status_code == 200
    assert response.json()["properties"]["federation:backends"] == ["fast"]


COOLDOWN_S = 1.0  # long enough to search while it is open, short enough to wait for


def _breaker_federation(make: MakeFederation, faults: Faults, failures: int) -> LiveFederation:
    return make(
        server={"breaker": {"failures": failures, "cooldown_s": COOLDOWN_S}},
        good=Archive(S2[:5]),
        flaky=Archive(S2[5:], faults=faults),
    )


def _flaky_search(fed: LiveFederation) -> tuple[dict[str, Any], dict[str, Any]]:
    response, _ = _post(fed, {"collections": ["sentinel-2-l2a"], "limit": 100})
    assert response.status_code == 200, response.text
    page = response.json()
    return page, page["federation:report"]["flaky"]


def test_the_breaker_opens_skips_half_opens_and_closes(make_federation: MakeFederation) -> None:
    faults = Faults()
    faults.set("status", status=500)
    fed = _breaker_federation(make_federation, faults, failures=3)

    for count in (1, 2, 3):
        assert _state(fed, "flaky") == "closed"
        _, flaky = _flaky_search(fed)
        assert flaky["status"] == "unavailable"
        health = _health(fed).json()["backends"]["flaky"]
        assert health["consecutive_failures"] == count and health["last_error"] == "unavailable"
    assert faults.requests == 3

    # Open: skipped without a request, and the health page says so.
    page, flaky = _flaky_search(fed)
    assert flaky["status"] == "skipped" and "circuit open" in flaky["detail"]
    assert flaky["requests"] == 0 and faults.requests == 3
    assert page["federation:missing"] == ["flaky"]
    assert ids(page["features"]) == expected_order(S2[:5])
    health = _health(fed)
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["backends"]["good"]["state"] == "closed"

    # Half-open: one trial, which fails: open again, skipped again.
    _wait_for_state(fed, "flaky", "half-open", COOLDOWN_S + SLACK_S)
    _, flaky = _flaky_search(fed)
    assert flaky["status"] == "unavailable" and faults.requests == 4
    assert _state(fed, "flaky") == "open"
    _, flaky = _flaky_search(fed)
    assert flaky["status"] == "skipped" and faults.requests == 4

    # Half-open again, the backend is back: the trial succeeds and closes it.
    faults.clear()
    _wait_for_state(fed, "flaky", "half-open", COOLDOWN_S + SLACK_S)
    page, flaky = _flaky_search(fed)
    assert flaky["status"] == "ok" and faults.requests == 5
    assert ids(page["features"]) == expected_order(S2)
    health = _health(fed).json()
    assert health["status"] == "ok"
    assert health["backends"]["flaky"]["state"] == "closed"
    assert health["backends"]["flaky"]["consecutive_failures"] == 0


def test_every_breaker_open_is_a_502_and_health_down(make_federation: MakeFederation) -> None:
    faults = Faults()
    faults.set("status", status=503, retry_after="3600")  # fails at once: no time to wait
    fed = make_federation(
        server={"breaker": {"failures": 1, "cooldown_s": 600}},
        only=Archive(S2, faults=faults),
    )
    first, _ = _post(fed, {"limit": 10})
    assert first.status_code == 502
    assert first.json()["federation:report"]["only"]["status"] == "unavailable"

    second, _ = _post(fed, {"limit": 10})
    assert second.status_code == 502 and faults.requests == 1
    body = second.json()
    assert body["federation:backends"] == {"only": "skipped"}
    assert body["federation:report"]["only"]["status"] == "skipped"
    health = _health(fed)
    assert health.status_code == 503
    assert health.json()["status"] == "down"
    assert health.json()["backends"]["only"]["state"] == "open"
    assert health.json()["backends"]["only"]["last_error_at"].endswith("+00:00")


@pytest.mark.parametrize(("status", "opens"), [(400, False), (500, True)])
def test_only_the_backends_own_failures_count(
    make_federation: MakeFederation, status: int, opens: bool
) -> None:
    faults = Faults()
    faults.set("status", status=status, times=1)
    fed = _breaker_federation(make_federation, faults, failures=1)
    _, flaky = _flaky_search(fed)
    assert flaky["status"] == ("unavailable" if opens else "bad-response")
    assert faults.requests == 1
    assert _state(fed, "flaky") == ("open" if opens else "closed")
