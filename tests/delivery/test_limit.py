"""The adaptive in-flight limit as a pure object: latencies and failures are told to it."""

from __future__ import annotations

import pytest

from gateway.delivery.limit import AdaptiveLimit


def fill(limit: AdaptiveLimit, latency: float, answers: int) -> None:
    """``answers`` successes at ``latency``, each finding the limit in use."""
    for _ in range(answers):
        limit.succeeded(latency, in_flight=limit.limit)


def test_it_starts_at_the_minimum_and_doubles_per_round_trip_while_the_receiver_keeps_up():
    limit = AdaptiveLimit(2, 64)
    assert limit.limit == 2
    fill(limit, 0.004, 2)
    assert limit.limit == 4
    fill(limit, 0.004, 4)
    assert limit.limit == 8


def test_a_fast_receiver_lets_it_grow_up_to_the_bound_and_no_further():
    limit = AdaptiveLimit(1, 32)
    fill(limit, 0.003, 500)
    assert limit.limit == 32


def test_it_does_not_grow_while_less_than_half_of_it_is_used():
    limit = AdaptiveLimit(8, 64)
    for _ in range(200):
        limit.succeeded(0.003, in_flight=3)
    assert limit.limit == 8


def test_answers_slowing_down_make_it_drop_and_keep_it_down():
    limit = AdaptiveLimit(1, 64)
    fill(limit, 0.002, 100)
    assert limit.limit == 64
    peak = limit.limit
    fill(limit, 0.010, 50)  # five times the unloaded latency: queueing at the receiver
    assert limit.limit == int(peak * 0.9)
    fill(limit, 0.010, 120)
    assert limit.limit < int(peak * 0.9)


def test_one_cut_per_round_trip_however_many_slow_answers_come_back_at_once():
    limit = AdaptiveLimit(1, 40)
    fill(limit, 0.002, 100)
    assert limit.limit == 40
    for _ in range(30):  # the rest of the round trip that was in flight when it was cut
        limit.succeeded(0.02, in_flight=40)
    assert limit.limit == 36


def test_within_the_tolerance_it_is_not_congestion():
    limit = AdaptiveLimit(1, 16, tolerance=2.0)
    fill(limit, 0.004, 50)
    fill(limit, 0.0079, 50)
    assert limit.limit == 16


def test_errors_cut_it_in_half_down_to_the_minimum():
    limit = AdaptiveLimit(4, 64)
    fill(limit, 0.002, 100)
    assert limit.limit == 64
    limit.failed()
    assert limit.limit == 32
    for _ in range(200):
        limit.failed()
    assert limit.limit == 4


def test_after_trouble_it_grows_by_one_per_round_trip():
    limit = AdaptiveLimit(1, 64)
    fill(limit, 0.002, 20)
    limit.failed()
    cut = limit.limit
    fill(limit, 0.002, cut)
    assert limit.limit == cut + 1


def test_a_receiver_slow_from_the_start_is_its_own_baseline():
    # 200 ms answers that do not slow down with load are not congestion: the limit grows.
    limit = AdaptiveLimit(1, 24)
    fill(limit, 0.2, 200)
    assert limit.limit == 24


def test_the_baseline_follows_a_receiver_that_became_slower_for_good_and_the_limit_grows_again():
    limit = AdaptiveLimit(1, 64, window=50)
    fill(limit, 0.001, 100)
    fill(limit, 0.050, 60)
    cut = limit.limit
    assert cut < 64
    fill(limit, 0.050, 300)
    assert limit.baseline_seconds == pytest.approx(0.050, rel=0.01)
    assert limit.limit > cut


def test_the_baseline_falls_back_at_once_when_the_receiver_recovers():
    limit = AdaptiveLimit(1, 64)
    fill(limit, 0.050, 300)
    fill(limit, 0.002, 40)
    assert limit.baseline_seconds == pytest.approx(limit.recent_seconds)


def test_one_slow_answer_among_fast_ones_is_not_congestion():
    # A busy machine: every tenth answer takes five times as long.
    limit = AdaptiveLimit(1, 48)
    for n in range(600):
        limit.succeeded(0.010 if n % 10 == 9 else 0.002, in_flight=limit.limit)
    assert limit.limit == 48


def test_loopback_noise_below_a_millisecond_is_not_congestion():
    limit = AdaptiveLimit(1, 16)
    fill(limit, 0.0001, 5)
    fill(limit, 0.0009, 50)
    assert limit.limit == 16


def test_equal_bounds_are_a_fixed_limit():
    limit = AdaptiveLimit(8, 8)
    fill(limit, 0.001, 10)
    limit.failed()
    assert limit.limit == 8


@pytest.mark.parametrize("minimum, maximum", [(0, 4), (5, 4)])
def test_bounds_are_checked(minimum, maximum):
    with pytest.raises(ValueError):
        AdaptiveLimit(minimum, maximum)
