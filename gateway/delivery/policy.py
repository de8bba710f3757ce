"""When to try again, and when to stop.

Backoff is exponential with full jitter (``random(0, min(cap, base * 2**n))``):
after an outage, thousands of queued messages must not hammer the recovering
agency in lock-step. A failure is *permanent* when repeating the same request
cannot succeed (the receiver rejected it: 4xx other than 408/425/429), and
*retryable* when the receiver or the network may recover (timeouts, refused
connections, 5xx, 429).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a message after a failed attempt."""

    retry_at: float | None  # None: dead-letter it
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float
    cap_seconds: float
    rng: random.Random = random.Random()

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failure (1-based), full jitter."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** min(attempt - 1, 62))
        return self.rng.uniform(0, ceiling)

    def after_failure(
        self,
        *,
        attempt: int,
        max_attempts: int,
        deadline_at: float,
        now: float,
        retryable: bool,
        error: str,
        retry_after: float | None = None,
        counted: bool = True,
    ) -> Verdict:
        """``counted`` False: the attempt never reached the receiver, so it does not use
        the message's attempt budget (only its age limit bounds how long it waits)."""
        if not retryable:
            return Verdict(None, f"permanent failure: {error}")
        if counted and attempt >= max_attempts:
            return Verdict(None, f"gave up after {attempt} attempts: {error}")
        wait = self.backoff(attempt)
        if retry_after is not None:
            # The receiver knows its own recovery better than our cap does; a
            # wait beyond the message's deadline dead-letters it below.
            wait = max(wait, retry_after)
        retry_at = now + wait
        if retry_at > deadline_at:
            return Verdict(None, f"message expired before the next attempt: {error}")
        return Verdict(retry_at, error)


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None
