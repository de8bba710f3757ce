"""Rate limits per member and service: a token bucket for each (member, service).

A member that sends faster than its rate is answered 429 with ``Retry-After`` (a problem, or
a SOAP Client fault on /soap) before its body is read, and nothing is stored. The buckets run
on the gateway's injected clock. Callers that are not identified are not limited here: they
are refused anyway, and the public endpoints are cached. The service is named as the audit log
names it (``recipient/service``, ``soap/service``, or the route), so a member that floods one
destination still reaches the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from gateway.config import MemberConfig, RateLimit
from gateway.errors import TooManyRequests
from gateway.metrics import Metrics
from gateway.web.identity import identified
from gateway.web.intake import service_of

__all__ = ["TokenBucket", "rate_limits"]


@dataclass(slots=True)
class TokenBucket:
    per_second: float
    burst: int
    tokens: float
    at: float

    def take(self, now: float) -> float:
        """Take one token; 0 when there was one, else the seconds until there will be."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.per_second)
        self.at = max(self.at, now)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


def rate_limits(default: RateLimit | None, members: Mapping[str, MemberConfig], clock: Callable[[], float],
                metrics: Metrics):
    """The middleware, or None when no member has a rate."""
    limits = {member_id: member.rate_limit or default for member_id, member in members.items()}
    if not any(limits.values()):
        return None
    # Keys are configured members and service names (unknown parts are "?"), so the table is bounded.
    buckets: dict[tuple[str, str], TokenBucket] = {}

    @web.middleware
    async def limit(request: web.Request, handler):
        member = identified(request).member
        rate = limits.get(member or "")
        if rate is None:
            return await handler(request)
        service = service_of(request)
        now = clock()
        bucket = buckets.get((member, service))
        if bucket is None:
            bucket = buckets[(member, service)] = TokenBucket(rate.per_second, rate.burst, float(rate.burst), now)
        wait = bucket.take(now)
        if wait > 0:
            metrics.rate_limited.labels(member, service).inc()
            raise TooManyRequests(
                f"member {member!r} sends more than {rate.per_second:g} requests per second (bursts of "
                f"{rate.burst}) to {service}; try again after the Retry-After seconds",
                retry_after=max(1, math.ceil(wait)),
            )
        return await handler(request)

    return limit
