"""Retry policy: full-jitter backoff, limits, Retry-After."""

from __future__ import annotations

import random
from email.utils import formatdate

from gateway.delivery.policy import RetryPolicy, is_retryable_status, parse_retry_after


def policy(seed: int = 1) -> RetryPolicy:
    return RetryPolicy(base_seconds=0.5, cap_seconds=60.0, rng=random.Random(seed))


def test_backoff_stays_within_the_exponential_ceiling():
    p = policy()
    for attempt in range(1, 20):
        ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))
        waits = [p.backoff(attempt) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)


def test_backoff_is_jittered_over_the_whole_range():
    waits = [policy(seed).backoff(8) for seed in range(500)]
    assert min(waits) < 6 and max(waits) > 58  # full jitter: anywhere in [0, 60]


def test_permanent_failure_is_dead_at_once():
    verdict = policy().after_failure(attempt=1, max_attempts=10, deadline_at=1e9, now=0, retryable=False, error="HTTP 400")
    assert verdict.retry_at is None and "permanent" in verdict.reason


def test_retryable_failure_schedules_a_retry_in_the_future():
    verdict = policy().after_failure(attempt=1, max_attempts=10, deadline_at=1e9, now=100, retryable=True, error="HTTP 503")
    assert verdict.retry_at is not None and 100 <= verdict.retry_at <= 100.5


def test_the_last_attempt_is_dead_lettered():
    verdict = policy().after_failure(attempt=10, max_attempts=10, deadline_at=1e9, now=0, retryable=True, error="HTTP 503")
    assert verdict.retry_at is None and "gave up after 10 attempts" in verdict.reason


def test_a_retry_after_the_deadline_is_dead_lettered():
    verdict = policy().after_failure(attempt=3, max_attempts=10, deadline_at=100.0, now=99.99, retryable=True,
                                     error="timeout", retry_after=5)
    assert verdict.retry_at is None and "expired" in verdict.reason


def test_retry_after_is_honoured_as_a_minimum_wait():
    verdict = policy().after_failure(attempt=1, max_attempts=10, deadline_at=1e9, now=0, retryable=True,
                                     error="HTTP 429", retry_after=30)
    assert verdict.retry_at is not None and verdict.retry_at >= 30


def test_retry_after_parses_seconds_and_http_dates():
    assert parse_retry_after("120", now=0) == 120
    assert abs(parse_retry_after(formatdate(1_000_060, usegmt=True), now=1_000_000) - 60) < 1
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None


def test_statuses_are_classified_retryable_or_permanent():
    assert all(is_retryable_status(s) for s in (408, 425, 429, 500, 502, 503, 504, 599))
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 409, 413, 415, 422))


def test_an_attempt_that_never_reached_the_receiver_does_not_use_up_the_budget():
    verdict = policy().after_failure(attempt=50, max_attempts=10, deadline_at=1e9, now=0, retryable=True,
                                     error="cannot connect", counted=False)
    assert verdict.retry_at is not None


def test_an_unreached_attempt_is_still_bounded_by_the_age_limit():
    verdict = policy().after_failure(attempt=50, max_attempts=10, deadline_at=0.001, now=0.001, retryable=True,
                                     error="cannot connect", counted=False)
    assert verdict.retry_at is None and "expired" in verdict.reason
