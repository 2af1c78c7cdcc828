"""The fault matrix: one backend of a live three-kind federation misbehaves, the search copes.

A STAC API, a DHuS (Atom XML) and a CDSE OData archive, each behind the fault injector, share
sentinel-2-l2a; each alone also serves one more collection (a search only it can answer). For
every fault on each of them in turn: the search answers in time with the other archives'
products and names the faulty one in ``federation:missing``; a search only the faulty one
serves is a 502/504 whose report gives the right kind of failure. Faults that clear after one
retry give the complete answer. A federation per faulty backend serves the whole module:
faults change at run time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest
from conftest import Archive, LiveFederation, MakeFederation
from factories import series
from searching import expected_order, ids

from adapters.faults import Fault, Faults

S2 = series(6, tiles=("33UXQ", "33UWQ"))  # 12 products
HOLDINGS = {"eodc": S2[0:8], "cesnet": S2[3:10], "cdse": S2[6:12]}
KINDS = {"eodc": "stac", "cesnet": "dhus", "cdse": "cdse-odata"}
OPTIONS: dict[str, dict[str, Any]] = {"cesnet": {"response_format": "atom"}}
OWN = {"eodc": "sentinel-1-grd", "cesnet": "sentinel-1-slc", "cdse": "sentinel-2-l1c"}
TIMEOUT_S = 0.75  # the faulty backend's budget in the matrix (its emulator answers in ms)
ROOMY_S = 10.0  # every other budget: a loaded test machine never makes a healthy one late
SLACK_S = 2.0  # how much longer than the budget a search may (loosely) take


@dataclass
class Matrix:
    """A live federation whose backend ``faulty`` is told what to do by ``faults``."""

    fed: LiveFederation
    faulty: str
    faults: Faults


def _federation(make: MakeFederation, faulty: str, timeout_s: float) -> Matrix:
    faults = Faults()
    archives = {
        bid: Archive(
            items,
            kind=KINDS[bid],
            options=OPTIONS.get(bid),
            collections=["sentinel-2-l2a", OWN[bid]],
            faults=faults if bid == faulty else None,
            timeout_s=timeout_s if bid == faulty else ROOMY_S,
        )
        for bid, items in HOLDINGS.items()
    }
    # Every search reaches the backends: this is about their faults, not the cache.
    uncached = {"search_ttl_s": 0, "item_ttl_s": 0}
    return Matrix(make(cache=uncached, **archives), faulty, faults)


@pytest.fixture(scope="module", params=sorted(HOLDINGS))
def tight_federation(
    request: pytest.FixtureRequest, make_module_federation: MakeFederation
) -> Matrix:
    """Per faulty backend, one federation for the module: its faults change at run time."""
    return _federation(make_module_federation, request.param, TIMEOUT_S)


@pytest.fixture(scope="module", params=sorted(HOLDINGS))
def roomy_federation(
    request: pytest.FixtureRequest, make_module_federation: MakeFederation
) -> Matrix:
    """As ``tight_federation``, with a long budget for the faulty backend too."""
    return _federation(make_module_federation, request.param, ROOMY_S)


def _fresh(matrix: Matrix) -> Iterator[Matrix]:
    matrix.faults.reset()
    yield matrix
    matrix.faults.reset()


@pytest.fixture
def tight(tight_federation: Matrix) -> Iterator[Matrix]:
    yield from _fresh(tight_federation)


@pytest.fixture
def roomy(roomy_federation: Matrix) -> Iterator[Matrix]:
    yield from _fresh(roomy_federation)


def _search(fed: LiveFederation, collection: str) -> tuple[httpx.Response, float]:
    body = {"collections": [collection], "limit": 100}
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{fed.url}/search", json=body)
    return response, time.monotonic() - started


def _expected(without: str | None = None) -> list[str]:
    held = {p["id"]: p for bid, ps in HOLDINGS.items() if bid != without for p in ps}
    return expected_order(list(held.values()))


CASES = [
    pytest.param("hang", {}, "timeout", id="hang"),
    pytest.param("slow", {"delay_s": 2 * TIMEOUT_S}, "timeout", id="slow"),
    pytest.param("status", {"status": 500}, "unavailable", id="500"),
    pytest.param("status", {"status": 503}, "unavailable", id="503-always"),
    pytest.param("status", {"status": 503, "retry_after": "3600"}, "unavailable", id="retry-after"),
    pytest.param("reset", {}, "unavailable", id="reset"),
    pytest.param("truncated", {}, "bad-response", id="truncated"),
    pytest.param("malformed", {}, "bad-response", id="malformed"),
    pytest.param("html", {}, "bad-response", id="html-200"),
    pytest.param("redirect", {}, "bad-response", id="redirect-loop"),
]


@pytest.mark.parametrize(("fault", "settings", "kind"), CASES)
def test_one_faulty_backend_is_reported_and_the_others_answer(
    tight: Matrix, fault: Fault, settings: dict[str, Any], kind: str
) -> None:
    faulty, faults = tight.faulty, tight.faults
    faults.set(fault, **settings)

    # Both searches at once: a shared collection, and one only the faulty backend serves.
    with ThreadPoolExecutor(2) as pool:
        shared, own = pool.map(partial(_search, tight.fed), ["sentinel-2-l2a", OWN[faulty]])

    response, took = shared
    assert response.status_code == 200, response.text
    page = response.json()
    assert ids(page["features"]) == _expected(without=faulty)
    assert page["federation:missing"] == [faulty]
    assert faults.faulted >= 1
    assert took < TIMEOUT_S + SLACK_S

    response, took = own
    assert response.status_code == (504 if kind == "timeout" else 502), response.text
    assert response.json()["federation:backends"] == {faulty: kind}
    assert took < TIMEOUT_S + SLACK_S


RETRYABLE = [
    pytest.param("status", {"status": 503, "retry_after": "0"}, id="503-retry-after-0"),
    pytest.param("status", {"status": 429, "retry_after": "0"}, id="429-retry-after-0"),
    pytest.param("status", {"status": 502}, id="502-backoff"),
    pytest.param("reset", {}, id="reset"),
]


@pytest.mark.parametrize(("fault", "settings"), RETRYABLE)
def test_a_fault_that_clears_after_one_retry_gives_the_complete_answer(
    roomy: Matrix, fault: Fault, settings: dict[str, Any]
) -> None:
    roomy.faults.set(fault, times=1, **settings)
    response, _ = _search(roomy.fed, "sentinel-2-l2a")
    page = response.json()
    assert "federation:missing" not in page, page
    assert ids(page["features"]) == _expected()
    assert roomy.faults.faulted == 1
    assert roomy.faults.requests == 2


def test_without_faults_every_backend_answers(roomy: Matrix) -> None:
    response, _ = _search(roomy.fed, "sentinel-2-l2a")
    assert ids(response.json()["features"]) == _expected()
    assert roomy.faults.requests == 1 and roomy.faults.faulted == 0


def test_a_retry_after_beyond_a_long_budget_fails_fast(roomy: Matrix) -> None:
    roomy.faults.set("status", status=503, retry_after="120")
    response, took = _search(roomy.fed, "sentinel-2-l2a")
    assert response.json()["federation:missing"] == [roomy.faulty]
    assert roomy.faults.requests == 1
    assert took < ROOMY_S / 2  # it waited neither for the Retry-After nor for the budget
