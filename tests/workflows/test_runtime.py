"""The workflow runtime: steps are atomic, timers fire once and survive restarts (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from gateway.store import Case, MessageState, NewMessage, Timer
from gateway.store.base import AcceptMessage
from gateway.workflows.runtime import Step, WorkflowRuntime, schedule
from support import wait_until


class Counter:
    """A workflow whose timer 'tick' counts up to ``limit``, one step per firing."""

    kind = "counter"

    def __init__(self, runtime: WorkflowRuntime, limit: int = 3, fail_first: int = 0) -> None:
        self.fired: list[tuple[str, int]] = []
        self.limit = limit
        self.fail_first = fail_first
        runtime.register(self)

    async def on_timer(self, case: Case, timer: Timer, now: float) -> Step | None:
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("the step crashed")
        count = case.data["count"] + 1
        self.fired.append((case.id, count))
        commands = [schedule(self.kind, case.id, "tick", now)] if count < self.limit else []
        return Step("done" if count >= self.limit else "counting", {"count": count}, commands)


async def test_a_timer_chain_runs_each_step_once(store):
    runtime = WorkflowRuntime(store, poll_interval=0.05)
    counter = Counter(runtime, limit=5)
    await runtime.start()
    try:
        await runtime.start_case("counter", "c1", Step("counting", {"count": 0}, [schedule("counter", "c1", "tick", 0)]))
        await wait_until(lambda: len(counter.fired) == 5)
        await asyncio.sleep(0.2)
    finally:
        await runtime.stop()
    assert counter.fired == [("c1", n) for n in range(1, 6)]
    case = await store.get_case("counter", "c1")
    assert case.state == "done" and case.data == {"count": 5} and case.version == 6


async def test_a_timer_that_fails_every_time_is_parked_on_its_case_and_reported(store):
    parked: list[Timer] = []
    runtime = WorkflowRuntime(store, poll_interval=0.05, lease_seconds=0.05, max_timer_attempts=3,
                              on_parked=parked.append)
    counter = Counter(runtime, limit=1, fail_first=1_000)
    await runtime.start()
    try:
        await runtime.start_case("counter", "c1", Step("counting", {"count": 0}, [schedule("counter", "c1", "tick", 0)]))
        await wait_until(lambda: parked, timeout=10)
    finally:
        await runtime.stop()
    assert [(timer.name, timer.attempts) for timer in parked] == [("tick", 3)]
    assert counter.fail_first == 1_000 - 3  # it was tried three times, then no more
    case = await store.get_case("counter", "c1")
    assert case.state == "counting" and case.data["count"] == 0
    assert [(entry["timer"], entry["attempts"], entry["error"]) for entry in case.data["parked_timers"]] == [
        ("tick", 3, "RuntimeError")]
    assert await store.claim_timers(10**10, 10, 60, "someone") == []


async def test_a_step_that_crashes_leaves_the_case_untouched_and_runs_again_after_the_lease(store):
    runtime = WorkflowRuntime(store, poll_interval=0.05, lease_seconds=0.3)
    counter = Counter(runtime, limit=1, fail_first=1)
    await runtime.start()
    try:
        await runtime.start_case("counter", "c1", Step("counting", {"count": 0}, [schedule("counter", "c1", "tick", 0)]))
        await asyncio.sleep(0.1)
        assert (await store.get_case("counter", "c1")).version == 1  # the crash committed nothing
        await wait_until(lambda: counter.fired == [("c1", 1)], timeout=5)
    finally:
        await runtime.stop()


async def test_timers_survive_a_restart_and_fire_after_it(store):
    first = WorkflowRuntime(store, poll_interval=0.05)
    Counter(first, limit=1)
    await first.start_case("counter", "c1", Step("counting", {"count": 0}, [schedule("counter", "c1", "tick", 0)]))
    # Never started: the process "died" with the timer due.
    second = WorkflowRuntime(store, poll_interval=0.05)
    counter = Counter(second, limit=1)
    await second.start()
    try:
        await wait_until(lambda: counter.fired == [("c1", 1)])
    finally:
        await second.stop()


async def test_two_runtimes_on_one_store_fire_each_timer_once(store):
    runtimes = [WorkflowRuntime(store, poll_interval=0.02) for _ in range(2)]
    counters = [Counter(r, limit=4) for r in runtimes]
    for runtime in runtimes:
        await runtime.start()
    try:
        for n in range(20):
            await runtimes[0].start_case("counter", f"c{n}",
                                         Step("counting", {"count": 0}, [schedule("counter", f"c{n}", "tick", 0)]))
        await wait_until(lambda: sum(len(c.fired) for c in counters) == 80, timeout=20)
        await asyncio.sleep(0.2)
    finally:
        for runtime in runtimes:
            await runtime.stop()
    fired = sorted(f for c in counters for f in c.fired)
    assert fired == sorted((f"c{n}", k) for n in range(20) for k in range(1, 5))


async def test_an_event_step_and_its_outbox_message_commit_together(store):
    runtime = WorkflowRuntime(store)
    await runtime.start_case("counter", "c1", Step("counting", {"count": 0}))
    message = NewMessage("gateway", "clinic", "notices", b"{}", "application/json", "c1", 3, 1e12,
                         client_message_id="m-1")

    async def notify(case: Case, now: float) -> Step:
        return Step("notified", {"count": 1}, [AcceptMessage(message)])

    case = await runtime.handle("counter", "c1", notify)
    assert case.version == 2 and case.state == "notified"
    stored = await store.find_message("gateway", "m-1")
    assert stored is not None and stored.state is MessageState.ACCEPTED and stored.correlation_id == "c1"
    assert await runtime.case_of_message(stored.id) == "c1"


async def test_concurrent_updates_of_one_case_are_serialised_not_lost(store):
    runtime = WorkflowRuntime(store)
    await runtime.start_case("counter", "c1", Step("counting", {"count": 0}))

    async def increment(case: Case, now: float) -> Step:
        await asyncio.sleep(0.001)
        return Step("counting", {"count": case.data["count"] + 1})

    await asyncio.gather(*(runtime.handle("counter", "c1", increment) for _ in range(6)))
    case = await store.get_case("counter", "c1")
    assert case.data["count"] == 6 and case.version == 7
