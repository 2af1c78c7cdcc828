"""Circuit breakers: one per backend, a pure state machine over an injectable clock.

``closed`` -> ``open`` after ``failures`` consecutive failed searches; ``open`` for
``cooldown_s`` (the backend is skipped, no request is sent); then ``half-open``: one trial
search is let through, its success closes the breaker and its failure opens it again.

A failure is the backend's fault: no answer in time, a refused or dropped connection, a 5xx,
an answer that is not its API's. A 4xx the user's query caused (400, 404, 413, 414, 422) is
the backend answering and counts as a success.

State is per process: each worker of ``mqs serve --workers N`` and each instance keeps its own
breakers (a backend that is down is found so by each of them after ``failures`` searches).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mqs.config import BackendConfig, BreakerConfig

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
# Answers that mean "your query is wrong", not "I am unwell".
QUERY_STATUSES = frozenset({400, 404, 413, 414, 422})


def is_backend_fault(exc: BaseException) -> bool:
    """Whether a failed request counts against the backend's breaker."""
    status = getattr(exc, "status", None)
    return not (isinstance(status, int) and status in QUERY_STATUSES)


@dataclass
class Breaker:
    """One backend's breaker; ``clock`` orders events, ``wall`` dates them for the health page."""

    failures: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    consecutive: int = 0
    last_error: str | None = None
    last_error_at: float | None = None  # wall-clock seconds
    _opened_at: float | None = field(default=None, repr=False)  # None: closed
    _trial_at: float | None = field(default=None, repr=False)  # the half-open trial's start

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        return OPEN if self.clock() - self._opened_at < self.cooldown_s else HALF_OPEN

    def allow(self) -> bool:
        """Whether a search may ask the backend now (half-open: the one trial)."""
        state = self.state
        if state != HALF_OPEN:
            return state == CLOSED
        now = self.clock()
        # A trial that never reported (its search was cancelled) gives way after a cooldown.
        if self._trial_at is not None and now - self._trial_at < self.cooldown_s:
            return False
        self._trial_at = now
        return True

    def success(self) -> None:
        if self.state == OPEN:
            return  # a late answer to a request sent before it opened: the cooldown stands
        self.consecutive = 0
        self._opened_at = self._trial_at = None

    def failure(self, kind: str) -> None:
        self.consecutive += 1
        self.last_error, self.last_error_at = kind, self.wall()
        state = self.state
        tripped = state == CLOSED and 0 < self.failures <= self.consecutive
        if state == HALF_OPEN or tripped:
            self._opened_at, self._trial_at = self.clock(), None

    def record(self, status: str, fault: bool) -> None:
        """What a search that asked the backend saw: ``ok``, or a failure and whose it was."""
        if status != "ok" and fault:
            self.failure(status)
        else:
            self.success()

    def release(self) -> None:
        """A search let through ended without asking the backend: the next may try."""
        self._trial_at = None

    def why_skipped(self) -> str:
        if self.state == HALF_OPEN:
            return "circuit half-open: a trial search is under way"
        left = self.cooldown_s - (self.clock() - (self._opened_at or 0.0))
        return (
            f"circuit open after {self.consecutive} consecutive failures "
            f"(last: {self.last_error}); next trial in {max(left, 0.0):.1f} s"
        )

    def report(self) -> dict[str, Any]:
        """The backend's entry on the health page."""
        at = self.last_error_at
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive,
            "last_error": self.last_error,
            "last_error_at": None if at is None else _iso(at),
        }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


@dataclass
class Breakers:
    """The federation's breakers by backend id."""

    by_id: dict[str, Breaker]

    @classmethod
    def for_backends(
        cls,
        backends: Iterable[BackendConfig],
        default: BreakerConfig,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> Breakers:
        """A breaker per backend: its own ``breaker:`` config, else the server's."""
        made = {}
        for backend in backends:
            conf = backend.breaker or default
            made[backend.id] = Breaker(conf.failures, conf.cooldown_s, clock, wall)
        return cls(made)

    def __getitem__(self, backend_id: str) -> Breaker:
        return self.by_id[backend_id]

    def health(self) -> dict[str, Any]:
        """``ok`` (all closed), ``degraded`` (some not closed) or ``down`` (all open)."""
        backends = {bid: b.report() for bid, b in self.by_id.items()}
        states = [b["state"] for b in backends.values()]
        status = "ok"
        if states and all(s == OPEN for s in states):
            status = "down"
        elif any(s != CLOSED for s in states):
            status = "degraded"
        return {"status": status, "backends": backends}


__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "Breaker", "Breakers", "is_backend_fault"]
