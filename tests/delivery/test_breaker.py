"""Circuit breaker states."""

from __future__ import annotations

from gateway.delivery.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures():
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, reset_seconds=10, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.allowed_in_flight(8) == 0


def test_a_success_resets_the_failure_count():
    breaker = CircuitBreaker(threshold=3, reset_seconds=10, clock=Clock())
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_open_breaker_lets_one_probe_through_after_the_reset_time():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure()
    assert breaker.seconds_until_probe() == 10
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allowed_in_flight(8) == 1


def test_failed_probe_opens_the_breaker_again():
    clock = Clock()
    breaker = CircuitBreaker(threshold=5, reset_seconds=10, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.now += 10
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and breaker.seconds_until_probe() == 10


def test_successful_probe_closes_the_breaker():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure()
    clock.now += 10
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allowed_in_flight(8) == 8
