"""A circuit breaker per destination.

While an agency is down, attempts only burn its messages' retry budgets and
keep sockets busy. After ``threshold`` consecutive retryable failures the
circuit opens: nothing is sent for ``reset_seconds``; then one probe goes out
(half-open). Its success closes the circuit; its failure opens it again.
Permanent failures (the receiver answered and rejected the request) prove the
destination is up and do not count.
"""

from __future__ import annotations

import enum
from collections.abc import Callable


class BreakerState(enum.IntEnum):
    # Integer values are what the metrics gauge shows.
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(self, threshold: int, reset_seconds: float, clock: Callable[[], float]) -> None:
        self._threshold = threshold
        self._reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._reset_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def seconds_until_probe(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._reset_seconds - self._clock())

    def allowed_in_flight(self, concurrency: int) -> int:
        """How many requests may be in flight now: all, one probe, or none."""
        return {BreakerState.CLOSED: concurrency, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 0}[self.state]

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self.state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._opened_at = self._clock()
