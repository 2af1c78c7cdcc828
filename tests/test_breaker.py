"""The circuit breaker as a state machine, driven by a fake clock (no sleeping)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from adapters.base import BackendTimeout, BackendUnavailable, BadBackendResponse
from mqs.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, Breakers, is_backend_fault
from mqs.config import BreakerConfig, ConfigError, parse_config


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(failures: int = 3, cooldown_s: float = 10.0) -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker(failures, cooldown_s, clock, wall=lambda: 1_600_000_000.0), clock


def test_opens_after_n_consecutive_failures_only() -> None:
    breaker, _ = _breaker(failures=3)
    for _ in range(2):
        breaker.failure("timeout")
    breaker.success()  # the run is broken: counting starts again
    for _ in range(2):
        breaker.failure("unavailable")
        assert breaker.state == CLOSED and breaker.allow()
    breaker.failure("bad-response")
    assert breaker.state == OPEN
    assert not breaker.allow()
    assert breaker.consecutive == 3 and breaker.last_error == "bad-response"


def test_half_open_after_the_cooldown_lets_one_trial_through() -> None:
    breaker, clock = _breaker(failures=1, cooldown_s=10)
    breaker.failure("timeout")
    clock.now += 9.999
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 0.001
    assert breaker.state == HALF_OPEN
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # a concurrent search while the trial runs
    assert "trial" in breaker.why_skipped()


def test_a_successful_trial_closes_it() -> None:
    breaker, clock = _breaker(failures=2, cooldown_s=5)
    breaker.failure("timeout")
    breaker.failure("timeout")
    clock.now += 5
    assert breaker.allow()
    breaker.success()
    assert breaker.state == CLOSED and breaker.consecutive == 0
    assert breaker.allow() and breaker.allow()


def test_a_failed_trial_opens_it_again_for_a_whole_cooldown() -> None:
    breaker, clock = _breaker(failures=2, cooldown_s=5)
    breaker.failure("timeout")
    breaker.failure("timeout")
    clock.now += 7
    assert breaker.allow()
    breaker.failure("unavailable")
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 4.9
    assert breaker.state == OPEN
    clock.now += 0.1
    assert breaker.state == HALF_OPEN and breaker.allow()


def test_a_trial_that_never_reports_gives_way() -> None:
    breaker, clock = _breaker(failures=1, cooldown_s=5)
    breaker.failure("timeout")
    clock.now += 5
    assert breaker.allow() and not breaker.allow()
    breaker.release()  # its search ended without asking the backend
    assert breaker.allow() and not breaker.allow()
    clock.now += 5  # this one was lost (a cancelled search): another may try
    assert breaker.allow()


def test_late_answers_while_open_do_not_shorten_the_cooldown() -> None:
    breaker, clock = _breaker(failures=1, cooldown_s=5)
    breaker.failure("timeout")
    breaker.success()  # sent before it opened
    assert breaker.state == OPEN
    clock.now += 3
    breaker.failure("timeout")  # also sent before: does not extend it either
    clock.now += 2
    assert breaker.state == HALF_OPEN


def test_zero_failures_never_opens_but_keeps_count() -> None:
    breaker, _ = _breaker(failures=0)
    for _ in range(50):
        breaker.failure("timeout")
    assert breaker.state == CLOSED and breaker.allow()
    assert breaker.report() == {
        "state": "closed",
        "consecutive_failures": 50,
        "last_error": "timeout",
        "last_error_at": "2020-09-13T12:26:40.000+00:00",
    }


def test_record_counts_only_the_backends_faults() -> None:
    breaker, _ = _breaker(failures=1)
    breaker.record("bad-response", fault=False)  # the query's 400: the backend answered
    assert breaker.state == CLOSED and breaker.consecutive == 0
    breaker.record("bad-response", fault=True)
    assert breaker.state == OPEN


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        pytest.param(TimeoutError(), True, id="gateway-timeout"),
        pytest.param(BackendTimeout("b", "slow"), True, id="backend-timeout"),
        pytest.param(BackendUnavailable("b", "HTTP 503", 503), True, id="503"),
        pytest.param(BackendUnavailable("b", "refused"), True, id="refused"),
        pytest.param(BadBackendResponse("b", "not JSON"), True, id="malformed"),
        pytest.param(BadBackendResponse("b", "HTTP 401", 401), True, id="credentials"),
        pytest.param(BadBackendResponse("b", "HTTP 429", 429), True, id="throttled"),
        pytest.param(BadBackendResponse("b", "HTTP 400", 400), False, id="bad-query"),
        pytest.param(BadBackendResponse("b", "HTTP 414", 414), False, id="query-too-long"),
        pytest.param(BadBackendResponse("b", "HTTP 422", 422), False, id="unprocessable"),
    ],
)
def test_which_failures_are_the_backends(error: Exception, fault: bool) -> None:
    assert is_backend_fault(error) is fault


def _config(server: dict[str, Any], **own: Any) -> dict[str, Any]:
    backend = {"id": "a", "kind": "stac", "url": "http://a.test", "collections": ["c"]}
    return {
        "server": server,
        "collections": {"c": {}},
        "backends": [backend | own, backend | {"id": "b"}],
    }


def test_each_backend_has_its_own_breaker_or_the_servers() -> None:
    server = {"breaker": {"failures": 7, "cooldown_s": 60}}
    config = parse_config(_config(server, breaker={"failures": 2, "cooldown_s": 1.5}))
    breakers = Breakers.for_backends(config.backends, config.server.breaker)
    assert (breakers["a"].failures, breakers["a"].cooldown_s) == (2, 1.5)
    assert (breakers["b"].failures, breakers["b"].cooldown_s) == (7, 60)
    default = parse_config(_config({}))
    assert default.server.breaker == BreakerConfig(failures=5, cooldown_s=30)
    assert default.server.search_deadline_s == 20


@pytest.mark.parametrize(
    ("server", "where"),
    [
        ({"search_deadline_s": 0}, "server.search_deadline_s"),
        ({"breaker": {"failures": -1}}, "server.breaker.failures"),
        ({"breaker": {"cooldown_s": 0}}, "server.breaker.cooldown_s"),
        ({"breaker": {"failure": 3}}, "server.breaker.failure"),
    ],
)
def test_bad_deadline_or_breaker_config_is_rejected(server: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        parse_config(_config(server))


def test_health_is_ok_degraded_or_down() -> None:
    clock = Clock()
    config = parse_config(_config({"breaker": {"failures": 1, "cooldown_s": 10}}))
    breakers = Breakers.for_backends(config.backends, config.server.breaker, clock)
    assert breakers.health()["status"] == "ok"
    breakers["a"].failure("timeout")
    health = breakers.health()
    assert health["status"] == "degraded"
    assert health["backends"]["a"]["state"] == "open"
    assert health["backends"]["b"] == {
        "state": "closed",
        "consecutive_failures": 0,
        "last_error": None,
        "last_error_at": None,
    }
    breakers["b"].failure("unavailable")
    assert breakers.health()["status"] == "down"
    clock.now += 10  # both half-open: a trial may bring them back
    assert breakers.health()["status"] == "degraded"
