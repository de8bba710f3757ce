"""A destination's in-flight limit follows its receiver: a real receiver on loopback, the real
store, and a virtual clock that only the receiver moves, so every latency is what the test says."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web

from gateway.entrypoints.http.server import build
from support import RecordingReceiver, make_config, person_payload, wait_until

BULK = "/api/v1/relay/health/bulk"
BOUND = 16


class VirtualClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class GatedReceiver(RecordingReceiver):
    """Holds every request until the gate opens; each answer moves the clock by ``service_seconds``."""

    clock: VirtualClock | None = None
    service_seconds: float = 0.0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.held += 1
        try:
            await self.gate.wait()
        finally:
            self.held -= 1
        self.clock.now += self.service_seconds
        return await super()._handle(request)


async def test_the_limit_grows_for_a_fast_receiver_drops_for_a_slow_one_and_errors_cut_it(tmp_path, store_url, http):
    clock = VirtualClock(time.time())
    receiver = await GatedReceiver(clock=clock).start()
    config = make_config(tmp_path, receiver_url=receiver.url, store_url=store_url,
                         delivery={"concurrency": BOUND, "min_concurrency": 1, "breaker_failure_threshold": 1000,
                                   "request_timeout_seconds": 60, "lease_seconds": 120})
    gateway = build(config, clock=clock)
    await gateway.start(port=0)
    try:
        limit = lambda: gateway.engine.concurrency_limits()["health"]  # noqa: E731
        assert limit() == 1

        async def queue(count: int, first: int) -> None:
            for number in range(first, first + count):
                async with http.post(gateway.url + BULK, json=person_payload(number), headers={
                        "Content-Type": "application/json", "X-Member-Id": "penal",
                        "X-Purpose": "continuity_of_care"}) as response:
                    assert response.status == 202, await response.text()

        # Fast: answers take no time at all, however many are in flight.
        await queue(200, 0)
        receiver.gate.set()
        await wait_until(lambda: len(receiver.unique_ids()) == 200, timeout=60)
        assert limit() == BOUND
        async with http.get(gateway.url + "/metrics") as response:
            assert f'gateway_delivery_concurrency_limit{{destination="health"}} {BOUND}.0' in await response.text()

        # Slow: each answer takes half a second, and those in flight wait for each other.
        receiver.gate.clear()
        receiver.service_seconds = 0.5
        await queue(120, 200)
        await wait_until(lambda: receiver.held == BOUND)  # the limit is what is on the wire, no more
        receiver.gate.set()
        await wait_until(lambda: len(receiver.unique_ids()) == 320, timeout=60)
        slowed = limit()
        assert slowed < BOUND

        # Errors: the receiver answers 503; the messages wait for a retry the frozen clock never reaches.
        receiver.service_seconds = 0.0
        receiver.respond = lambda body, seen: (503, {})
        before = len(receiver.attempts_at)
        await queue(40, 320)
        await wait_until(lambda: len(receiver.attempts_at) - before >= 40, timeout=60)
        assert limit() <= max(1, slowed // 2)
    finally:
        await gateway.stop()
        await receiver.close()
