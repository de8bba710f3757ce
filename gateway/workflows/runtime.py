"""Running persisted workflows: cases, events and durable timers.

A workflow is a set of handlers, each a function of the current case and an
event (a request, a notice, an acknowledgement, a fired timer) that returns a
``Step``: the case's next state and data plus the commands that go with it —
messages for the outbox, audit entries, timers to set or cancel. The runtime
saves the case and applies the commands in ONE transaction, so a step happens
whole or not at all, and a restart resumes from the last committed step.

Handlers may call agency systems (through the ports) before returning; those
calls are reads or idempotent by reference, so when a step is retried — after a
crash, a lost timer lease or a concurrent update of the same case — repeating
them is harmless. Timers are rows in the store: a timer fires once, on one
instance, even across restarts (the store fences completion by attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from gateway.logs import get_logger
from gateway.store import CancelTimer, Case, Command, ConflictError, Message, SaveCase, ScheduleTimer, Timer, WorkflowStore
from gateway.workflows.state import CaseState

log = get_logger("gateway.workflows")

_CONFLICT_RETRIES = 8
MAX_TIMER_ATTEMPTS = 5
"""A timer whose step fails this many times in a row is parked (see ``_park``)."""


@dataclass(frozen=True)
class Step:
    """The outcome of handling one event: where the case goes and what happens with it."""

    state: str
    data: CaseState | Mapping[str, Any]
    """The case's saved state: a workflow's model (saved as its JSON), or the JSON itself."""
    commands: Sequence[Command] = ()
    # Work to do once the step is committed (for example waking a dispatcher);
    # never anything the step's correctness depends on.
    after_commit: Sequence[Callable[[], Any]] = field(default_factory=tuple)


class Workflow(Protocol):
    kind: str

    async def on_timer(self, case: Case, timer: Timer, now: float) -> Step | None:
        """Handle a fired timer; None leaves the case as it is."""


def timer_id(kind: str, case_id: str, name: str) -> str:
    return f"{kind}:{case_id}:{name}"


def schedule(kind: str, case_id: str, name: str, fire_at: float, payload: BaseModel | None = None) -> ScheduleTimer:
    """A command setting (or moving) the case's timer ``name``, with the payload the timer's model declares."""
    stored = payload.model_dump(mode="json") if payload is not None else {}
    return ScheduleTimer(Timer(timer_id(kind, case_id, name), kind, case_id, str(name), fire_at, stored))


def cancel(kind: str, case_id: str, name: str) -> CancelTimer:
    return CancelTimer(timer_id(kind, case_id, name))


class WorkflowRuntime:
    def __init__(
        self,
        store: WorkflowStore,
        *,
        clock: Callable[[], float] = time.time,
        concurrency: int = 32,
        lease_seconds: float = 120.0,
        poll_interval: float = 1.0,
        max_timer_attempts: int = MAX_TIMER_ATTEMPTS,
        on_parked: Callable[[Timer], None] = lambda timer: None,
    ) -> None:
        self._store = store
        self._max_timer_attempts = max_timer_attempts
        self._on_parked = on_parked
        self._clock = clock
        self._workflows: dict[str, Workflow] = {}
        self._semaphore = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._lease_seconds = lease_seconds
        self._poll_interval = poll_interval
        self._owner = uuid.uuid4().hex[:12]
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._in_flight: set[asyncio.Task] = set()

    def register(self, workflow: Workflow) -> None:
        self._workflows[workflow.kind] = workflow

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def now(self) -> float:
        return self._clock()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._timer_loop(), name="workflow-timers")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=grace_seconds)
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    # -- events from outside (API calls, notices, acknowledgements, delivery outcomes)

    async def get(self, kind: str, case_id: str) -> Case | None:
        return await self._store.get_case(kind, case_id)

    async def cases(self, kind: str, *, subject_key: str) -> list[Case]:
        return await self._store.list_cases(kind, subject_key=subject_key, limit=1000)

    async def message(self, message_id: str) -> Message | None:
        return await self._store.get_message(message_id)

    async def case_of_message(self, message_id: str) -> str | None:
        """The case a message was sent for: workflows send with the case id as correlation id."""
        message = await self._store.get_message(message_id)
        return message.correlation_id if message is not None else None

    async def start_case(
        self, kind: str, case_id: str, step: Step, *, subject_key: str | None = None
    ) -> Case:
        """Create a case with its first step. Raises ``ConflictError`` if it exists."""
        now = self._clock()
        data = _saved(step)
        commands = [SaveCase(kind, case_id, step.state, data, 0, subject_key), *step.commands]
        await self._store.apply(commands, now)
        self._after(step, commands, now)
        return Case(kind, case_id, step.state, data, 1, now, now, subject_key)

    async def handle(
        self, kind: str, case_id: str, handler: Callable[[Case, float], Awaitable[Step | None]]
    ) -> Case | None:
        """Apply ``handler`` to the current case, retrying on a concurrent update.

        Returns the case as saved (or as found, when the handler changed nothing);
        None if there is no such case.
        """
        for _ in range(_CONFLICT_RETRIES):
            case = await self._store.get_case(kind, case_id)
            if case is None:
                return None
            now = self._clock()
            step = await handler(case, now)
            if step is None:
                return case
            data = _saved(step)
            commands = [SaveCase(kind, case_id, step.state, data, case.version), *step.commands]
            try:
                await self._store.apply(commands, now)
            except ConflictError:
                continue  # someone else moved the case: decide again on what they saved
            self._after(step, commands, now)
            return Case(kind, case_id, step.state, data, case.version + 1, case.created_at, now, case.subject_key)
        raise ConflictError(f"{kind} {case_id} kept changing under {_CONFLICT_RETRIES} attempts to update it")

    def _after(self, step: Step, commands: Sequence[Command], now: float) -> None:
        if any(isinstance(c, ScheduleTimer) and c.timer.fire_at <= now for c in commands):
            self._wake.set()
        for action in step.after_commit:
            action()

    # -- timers

    async def _timer_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                capacity = self._concurrency - len(self._in_flight)
                timers = []
                if capacity > 0:
                    timers = await self._store.claim_timers(self._clock(), capacity, self._lease_seconds, self._owner)
                for timer in timers:
                    task = asyncio.create_task(self._fire(timer))
                    self._in_flight.add(task)
                    task.add_done_callback(self._fired)
                if timers:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("claiming timers failed", error=str(exc))
            # asyncio.timeout, not wait_for: on Python 3.11 a cancellation that meets wait_for's
            # own timeout can come out as TimeoutError, and stop() would wait for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()

    def _fired(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    async def _fire(self, timer: Timer) -> None:
        async with self._semaphore:
            try:
                for _ in range(_CONFLICT_RETRIES):
                    try:
                        if await self._fire_once(timer):
                            return
                        log.info("timer outcome discarded: its lease was lost", timer=timer.name,
                                 case_id=timer.case_id)
                        return
                    except ConflictError:
                        continue  # the case changed while the timer ran: decide again on the new state
                log.warning("timer kept conflicting; it fires again when its lease expires", timer=timer.name,
                            case_id=timer.case_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if timer.attempts >= self._max_timer_attempts:
                    await self._park(timer, exc)
                    return
                log.error("timer failed; it fires again when its lease expires", timer=timer.name,
                          case_id=timer.case_id, attempts=timer.attempts, error=type(exc).__name__)

    async def _park(self, timer: Timer, exc: Exception) -> None:
        """Stop firing a timer whose step fails every time (an OverflowError on every lease, say).

        Firing it again would fail the same way for ever. The timer is completed without its step,
        and the case — state unchanged — lists it under ``parked_timers`` (name, attempts, error
        type, when) for an operator to act on; ``on_parked`` counts it (``/metrics``).
        """
        case = await self._store.get_case(timer.case_kind, timer.case_id)
        commands: list[Command] = []
        if case is not None:
            data = dict(case.data)
            data["parked_timers"] = [*data.get("parked_timers", []), {
                "timer": timer.name, "attempts": timer.attempts, "error": type(exc).__name__,
                "at": self._clock(),
            }]
            commands = [SaveCase(case.kind, case.id, case.state, data, case.version)]
        try:
            completed = await self._store.complete_timer(timer.id, timer.attempts, commands, self._clock())
        except ConflictError:
            completed = False  # the case moved on meanwhile: the timer comes back and is judged again
        if completed:
            self._on_parked(timer)
            log.error("timer parked after failing every attempt: an operator must look at the case",
                      timer=timer.name, case_id=timer.case_id, attempts=timer.attempts, error=type(exc).__name__)

    async def _fire_once(self, timer: Timer) -> bool:
        workflow = self._workflows.get(timer.case_kind)
        case = await self._store.get_case(timer.case_kind, timer.case_id)
        now = self._clock()
        step = None
        if workflow is not None and case is not None:
            step = await workflow.on_timer(case, timer, now)
        commands: list[Command] = []
        if step is not None and case is not None:
            commands = [SaveCase(case.kind, case.id, step.state, _saved(step), case.version), *step.commands]
        if not await self._store.complete_timer(timer.id, timer.attempts, commands, now):
            return False
        if step is not None:
            self._after(step, commands, now)
        return True


def _saved(step: Step) -> dict[str, Any]:
    """The JSON a step saves: where a workflow's state model becomes the case's data."""
    return step.data.dump() if isinstance(step.data, CaseState) else dict(step.data)
