"""What every agency simulator shares: configurable misbehaviour and a record of what it got.

A simulator is an aiohttp application built by ``simulator_app``; the adapter
adds its routes. ``Behaviour`` makes it slow, flaky or down — on a schedule or
switched at run time by a test — and ``Recorder`` keeps every message delivered
to it (with a duplicate count by ``X-Message-Id``) so tests can assert on what
arrived. ``GET /_simulator/received`` reports the counts (not the payloads) to
a test in another process.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SIMULATOR = web.AppKey("simulator", object)


@dataclass
class Behaviour:
    """How a simulator misbehaves. Times are seconds."""

    latency: tuple[float, float] = (0.0, 0.0)  # each answer waits uniform(low, high)
    error_rate: float = 0.0  # share of requests answered 503 at random
    outages: tuple[tuple[float, float], ...] = ()  # (start, end) since start(): answered 503
    down: bool = False  # switched by tests: every request answered 503
    seed: int = 1
    _rng: random.Random = field(init=False, repr=False)
    _started: float = field(init=False, repr=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def restart_clock(self) -> None:
        self._started = time.monotonic()

    def in_outage(self) -> bool:
        if self.down:
            return True
        elapsed = time.monotonic() - self._started
        return any(start <= elapsed < end for start, end in self.outages)

    def fails_now(self) -> bool:
        return self.in_outage() or (self.error_rate > 0 and self._rng.random() < self.error_rate)

    def delay(self) -> float:
        low, high = self.latency
        return self._rng.uniform(low, high) if high > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Delivery:
    service: str
    message_id: str | None
    body: bytes
    headers: Any  # case-insensitive
    at: float


@dataclass
class Recorder:
    """Every message delivered to a simulator, in arrival order."""

    deliveries: list[Delivery] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)

    def record(self, service: str, request: web.Request, body: bytes) -> int:
        """Keep one delivery; returns how many times its message id has now been seen."""
        message_id = request.headers.get("X-Message-Id")
        self.deliveries.append(Delivery(service, message_id, body, request.headers.copy(), time.time()))
        if message_id is None:
            return 1
        self.seen[message_id] += 1
        return self.seen[message_id]

    def of(self, service: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.service == service]

    def unique(self, service: str | None = None) -> set[str]:
        return {d.message_id for d in self.deliveries if d.message_id and (service is None or d.service == service)}

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.seen.values())

    def summary(self) -> dict[str, Any]:
        services = Counter(d.service for d in self.deliveries)
        return {"deliveries": len(self.deliveries), "unique": len(self.seen), "duplicates": self.duplicates,
                "by_service": dict(services)}


@dataclass
class Simulator:
    name: str
    behaviour: Behaviour
    recorder: Recorder


def simulator_app(name: str, behaviour: Behaviour | None = None, recorder: Recorder | None = None) -> web.Application:
    """An empty simulator application with misbehaviour applied to every route but the report."""
    app = web.Application(middlewares=[_misbehave])
    app[SIMULATOR] = Simulator(name, behaviour or Behaviour(), recorder or Recorder())
    app.router.add_get("/_simulator/received", _received)
    return app


def simulator_of(request_or_app: web.Request | web.Application) -> Simulator:
    app = request_or_app.app if isinstance(request_or_app, web.Request) else request_or_app
    return app[SIMULATOR]


@web.middleware
async def _misbehave(request: web.Request, handler):
    if request.path.startswith("/_simulator/"):
        return await handler(request)
    behaviour = simulator_of(request).behaviour
    delay = behaviour.delay()
    if delay:
        await asyncio.sleep(delay)
    if behaviour.fails_now():
        return web.json_response({"error": "simulated outage"}, status=503)
    return await handler(request)


async def _received(request: web.Request) -> web.Response:
    return web.json_response(simulator_of(request).recorder.summary())
