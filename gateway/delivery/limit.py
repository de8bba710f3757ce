"""How many requests a destination may have in flight: a limit that finds its own level.

Additive increase, multiplicative decrease, as TCP's congestion window does, with latency as
the early signal (as in Netflix's concurrency-limits): a receiver that answers as fast as it
did unloaded gets more requests at once; one whose answers slow down, or that fails, gets
fewer. The limit stays within ``[minimum, maximum]`` (``delivery.min_concurrency`` and
``delivery.concurrency``) and starts at the minimum.

- **Slow start.** Until the first sign of trouble, each success that found the limit in use
  (at least half of it in flight) raises it by one: it doubles per round trip.
- **Congestion avoidance.** After that, such a success raises it by ``1 / limit``: one per
  round trip.
- **Latency.** Two moving averages of the answers' latency: a recent one (about the last
  ``recent`` answers) and a baseline (about the last ``window``, never above the recent one,
  so it falls back at once when the receiver recovers). When the recent average exceeds
  ``tolerance`` times the baseline, requests are queueing at the receiver: the limit is
  multiplied by ``decrease``. Averages, not single answers: on a busy machine one answer in
  ten is slow for reasons of its own, and cutting for each would keep the limit at its floor.
- **Errors.** A retryable failure (no answer in time, no connection, 5xx, 429) multiplies it
  by ``error_decrease``.
- At most one cut per round trip: after a cut, the next one waits until as many answers as
  the new limit have come back (those in flight when it was cut carry old news).

A pure object: it is told each latency and failure, reads no clock, and is unit-tested as such.
"""

from __future__ import annotations

import math

__all__ = ["AdaptiveLimit"]

# Latencies below this are noise on loopback: a floor of 0.1 ms would call 0.3 ms congestion.
_RESOLUTION_SECONDS = 0.001


class AdaptiveLimit:
    def __init__(
        self,
        minimum: int,
        maximum: int,
        *,
        tolerance: float = 2.0,
        recent: int = 10,
        window: int = 200,
        decrease: float = 0.9,
        error_decrease: float = 0.5,
        resolution: float = _RESOLUTION_SECONDS,
    ) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum ({minimum}) <= maximum ({maximum})")
        if tolerance <= 1 or not 0 < decrease < 1 or not 0 < error_decrease < 1 or not 1 <= recent <= window:
            raise ValueError("need tolerance > 1, 0 < decrease, error_decrease < 1 and 1 <= recent <= window")
        self.minimum, self.maximum = minimum, maximum
        self._tolerance, self._resolution = tolerance, resolution
        self._recent_weight, self._baseline_weight = 1.0 / recent, 1.0 / window
        self._decrease, self._error_decrease = decrease, error_decrease
        self._limit = float(minimum)
        self._slow_start = True
        self._answers_since_cut = math.inf
        self._recent: float | None = None
        self._baseline = 0.0

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def recent_seconds(self) -> float | None:
        return self._recent

    @property
    def baseline_seconds(self) -> float | None:
        """What 'unloaded' means now: the slow moving average of latency."""
        return None if self._recent is None else self._baseline

    def succeeded(self, latency: float, in_flight: int) -> None:
        """An answer came back after ``latency`` seconds with ``in_flight`` requests on the wire
        (this one included)."""
        self._answers_since_cut += 1
        if self._recent is None:
            self._recent = self._baseline = latency
        else:
            self._recent += (latency - self._recent) * self._recent_weight
            self._baseline = min(self._recent, self._baseline + (latency - self._baseline) * self._baseline_weight)
        if self._recent > self._tolerance * max(self._baseline, self._resolution):
            self._cut(self._decrease)
        elif 2 * in_flight >= self._limit:  # the limit is what holds the sender back: raise it
            step = 1.0 if self._slow_start else 1.0 / self._limit
            self._limit = min(float(self.maximum), self._limit + step)

    def failed(self) -> None:
        """A retryable failure: no answer in time, no connection, or an answer saying 'not now'."""
        self._answers_since_cut += 1
        self._cut(self._error_decrease)

    def _cut(self, factor: float) -> None:
        self._slow_start = False
        if self._answers_since_cut < self._limit:
            return
        self._limit = max(float(self.minimum), self._limit * factor)
        self._answers_since_cut = 0
