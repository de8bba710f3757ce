"""Store-and-forward delivery: one dispatcher per destination drains its outbox.

A dispatcher claims due messages (leased, so a crashed instance's claims are
taken over), sends each through the transport with at most its destination's
adaptive limit in flight (``gateway.delivery.limit``: it grows while the
receiver answers as fast as unloaded, and shrinks when answers slow down or
fail, within ``delivery.min_concurrency`` and ``delivery.concurrency``), and records the outcome: delivered, retry later (backoff with jitter),
or dead-lettered. A circuit breaker stops it from hammering a destination that
is down. It sleeps until new work is announced by the store, a retry falls due,
or the poll interval passes (the last covers work announced where this process
cannot hear it).

Delivery is at least once: a crash between the receiver's answer and the
commit of "delivered" sends the message again after the lease expires, with
the same ``X-Message-Id`` so the receiver can drop the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import structlog

from gateway.config import DeliveryConfig, MemberConfig
from gateway.delivery.breaker import BreakerState, CircuitBreaker
from gateway.delivery.limit import AdaptiveLimit
from gateway.delivery.policy import RetryPolicy
from gateway.delivery.transport import HttpTransport, Outcome
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.security.audit import AuditLog, delivery_event
from gateway.security.audit import Outcome as AuditOutcome
from gateway.store import DeliveryStore, Message

log = get_logger("gateway.delivery")

_HOUSEKEEPING_SECONDS = 600.0
_DAY = 86_400.0


class DeliveryListener(Protocol):
    """Told about final outcomes of messages the gateway itself sent (workflow notices)."""

    async def delivered(self, message: Message, answer: bytes) -> None: ...

    async def dead(self, message: Message) -> None: ...


class DeliveryEngine:
    def __init__(
        self,
        store: DeliveryStore,
        members: dict[str, MemberConfig],
        config: DeliveryConfig,
        metrics: Metrics,
        *,
        transport: HttpTransport | None = None,
        clock: Callable[[], float] = time.time,
        policy: RetryPolicy | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._store = store
        self._audit = audit
        self._roles = {member_id: member.role for member_id, member in members.items()}
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._transport = transport or HttpTransport(connect_timeout=config.connect_timeout_seconds)
        self._policy = policy or RetryPolicy(config.backoff_base_seconds, config.backoff_cap_seconds)
        # The lease owner: unique per process start, so leases never outlive confusion.
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._dispatchers = {
            member_id: _Dispatcher(self, member_id, member)
            for member_id, member in members.items()
            # A member that pulls (delivery = "pull") fetches its messages: nothing is pushed to it.
            if member.services and member.endpoint and member.delivery == "push"
        }
        self._tasks: list[asyncio.Task] = []
        self._running = False
        self._listeners: dict[tuple[str, str], DeliveryListener] = {}

    def listen(self, recipient: str, service: str, listener: DeliveryListener) -> None:
        """Tell ``listener`` the outcome of every message to ``recipient/service``.

        Best effort, after the outcome is committed: a listener that misses an outcome
        (a crash in between) must be able to learn it from the store later.
        """
        self._listeners[(recipient, service)] = listener

    def _audited(self, message: Message, outcome: AuditOutcome, now: float, reason: str | None = None) -> tuple:
        """The audit entries of a final delivery outcome (none for a retry)."""
        if self._audit is None:
            return ()
        event = delivery_event(message, outcome, member_role=self._roles.get(message.recipient), at=now, reason=reason)
        return tuple(self._audit.command([event]).entries)

    async def _tell(self, message: Message, answer: bytes | None) -> None:
        listener = self._listeners.get((message.recipient, message.service))
        if listener is None:
            return
        try:
            if answer is None:
                await listener.dead(message)
            else:
                await listener.delivered(message, answer)
        except Exception as exc:
            log.error("a delivery listener failed", destination=message.recipient, message_id=message.id,
                      error=f"{type(exc).__name__}: {exc}")

    @property
    def running(self) -> bool:
        return self._running and all(not task.done() for task in self._tasks)

    def breaker_states(self) -> dict[str, BreakerState]:
        return {member_id: d.breaker.state for member_id, d in self._dispatchers.items()}

    def concurrency_limits(self) -> dict[str, int]:
        """Each destination's in-flight limit now."""
        return {member_id: d.limit.limit for member_id, d in self._dispatchers.items()}

    async def start(self) -> None:
        await self._transport.start()
        self._store.on_new_work(self._wake)
        self._running = True
        for dispatcher in self._dispatchers.values():
            self._tasks.append(asyncio.create_task(dispatcher.run(), name=f"dispatch:{dispatcher.member_id}"))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        log.info("delivery engine started", destinations=sorted(self._dispatchers), owner=self.owner)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming, let in-flight attempts finish (up to the grace period), then stop."""
        self._running = False
        for dispatcher in self._dispatchers.values():
            dispatcher.stopping = True
            dispatcher.wake()
        in_flight = [task for d in self._dispatchers.values() for task in d.in_flight]
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace_seconds)
        for task in self._tasks + in_flight:
            task.cancel()
        await asyncio.gather(*self._tasks, *in_flight, return_exceptions=True)
        self._tasks.clear()
        await self._transport.close()

    def _wake(self, recipient: str) -> None:
        dispatcher = self._dispatchers.get(recipient)
        if dispatcher is not None:
            dispatcher.wake()

    async def _housekeeping(self) -> None:
        """Retention: delete delivered payloads and old message ids, in small batches."""
        while True:
            try:
                now = self._clock()
                purged = await self._store.purge_delivered(now - self._config.retention_days * _DAY)
                forgotten = await self._store.purge_inbound(now - self._config.dedup_days * _DAY)
                if purged or forgotten:
                    log.info("retention applied", purged_messages=purged, forgotten_ids=forgotten)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("retention failed, will try again", error=str(exc))
            await asyncio.sleep(_HOUSEKEEPING_SECONDS)


class _Dispatcher:
    """Delivers one destination's messages."""

    def __init__(self, engine: DeliveryEngine, member_id: str, member: MemberConfig) -> None:
        self._engine = engine
        self.member_id = member_id
        self._member = member
        self._endpoint = (member.endpoint or "").rstrip("/")
        config = engine._config
        self.limit = AdaptiveLimit(config.min_concurrency, config.concurrency, tolerance=config.latency_tolerance)
        self.breaker = CircuitBreaker(config.breaker_failure_threshold, config.breaker_reset_seconds, engine._clock)
        self._wake_event = asyncio.Event()
        self.in_flight: set[asyncio.Task] = set()
        # Requests on the wire: what the limit limits. An attempt whose answer has come
        # back no longer counts while its outcome is committed, so the commit's fsync does not
        # hold a slot the destination could be using.
        self._sending = 0
        self.stopping = False

    def wake(self) -> None:
        self._wake_event.set()

    async def run(self) -> None:
        while not self.stopping:
            try:
                await self._cycle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is unreachable, say: keep the dispatcher alive
                log.error("dispatch cycle failed", destination=self.member_id, error=str(exc))
                await self._sleep(self._engine._config.poll_interval_seconds)

    async def _cycle(self) -> None:
        engine, config = self._engine, self._engine._config
        self._wake_event.clear()
        engine._metrics.breaker_state.labels(self.member_id).set(self.breaker.state)
        engine._metrics.concurrency_limit.labels(self.member_id).set(self.limit.limit)
        allowed = self.breaker.allowed_in_flight(self.limit.limit)
        if allowed == 0:
            await self._sleep(self.breaker.seconds_until_probe())
            return
        capacity = allowed - self._sending
        if capacity <= 0:
            await self._sleep(config.poll_interval_seconds)  # woken when a request ends
            return
        batch = await engine._store.claim(
            self.member_id, min(capacity, config.claim_batch), engine._clock(), config.lease_seconds, engine.owner
        )
        for message in batch:
            self._sending += 1
            task = asyncio.create_task(self._deliver(message))
            self.in_flight.add(task)
            task.add_done_callback(self._attempt_done)
        if batch:
            return  # there may be more: claim again at once
        due = await engine._store.next_due(self.member_id)
        wait = config.poll_interval_seconds
        if due is not None and due > engine._clock():
            wait = min(wait, due - engine._clock())
        # A message already due that the claim did not return is held elsewhere (another
        # instance's lease, an earlier message of its key): poll for it, never spin.
        await self._sleep(wait)

    def _attempt_done(self, task: asyncio.Task) -> None:
        self.in_flight.discard(task)
        self._wake_event.set()  # the outcome is recorded: the next message of its key may be due

    async def _sleep(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 a cancellation that meets wait_for's own
        # timeout can come out as TimeoutError, which this would swallow, and stop would hang.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.001)):
                await self._wake_event.wait()

    async def _deliver(self, message: Message) -> None:
        engine = self._engine
        metrics, store = engine._metrics, engine._store
        # Each attempt runs in its own task, so this binding is the attempt's alone.
        structlog.contextvars.bind_contextvars(correlation_id=message.correlation_id)
        started = engine._clock()
        in_flight = self._sending
        try:
            service = self._member.services.get(message.service)
            if service is None:
                outcome = Outcome(False, error=f"service {message.service!r} is no longer configured for {self.member_id!r}")
            else:
                timeout = service.timeout_seconds or engine._config.request_timeout_seconds
                outcome = await engine._transport.send(
                    self._endpoint + service.path, message, timeout=timeout, now=started
                )
                in_flight = self._sending
        finally:
            self._sending -= 1
            self._wake_event.set()
        now = engine._clock()
        metrics.attempt_latency.labels(self.member_id).observe(now - started)
        if service is not None:
            if outcome.retryable:
                self.limit.failed()
            else:  # delivered, or refused for good: either way the receiver answered
                self.limit.succeeded(now - started, in_flight)
        try:
            if outcome.delivered:
                self.breaker.record_success()
                if await store.record_delivered(message.id, message.attempts, started, now, outcome.status or 0,
                                                outcome.answer, audit=engine._audited(message, AuditOutcome.DELIVERED, now)):
                    metrics.attempts.labels(self.member_id, "delivered").inc()
                    metrics.delivery_age.labels(self.member_id).observe(now - message.accepted_at)
                    await engine._tell(message, outcome.answer)
                return
            if outcome.retryable:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()  # it answered: the destination is up
            verdict = engine._policy.after_failure(
                attempt=message.attempts,
                max_attempts=message.max_attempts,
                deadline_at=message.deadline_at,
                now=now,
                retryable=outcome.retryable,
                error=outcome.error or "unknown error",
                retry_after=outcome.retry_after,
                counted=outcome.reached,
            )
            final = () if verdict.retry_at is not None else engine._audited(message, AuditOutcome.REFUSED, now, verdict.reason)
            recorded = await store.record_failure(
                message.id, message.attempts, started, now,
                error=verdict.reason, status=outcome.status, retry_at=verdict.retry_at, audit=final,
                counted=outcome.reached,
            )
            if not recorded:
                return
            outcome_label = "retry" if verdict.retry_at is not None else "dead"
            metrics.attempts.labels(self.member_id, outcome_label).inc()
            if verdict.retry_at is None:
                log.warning(
                    "message dead-lettered", destination=self.member_id, message_id=message.id,
                    attempts=message.attempts, reason=verdict.reason,
                )
                await engine._tell(replace(message, last_error=verdict.reason), None)
            else:
                log.info(
                    "delivery attempt failed", destination=self.member_id, message_id=message.id,
                    attempt=message.attempts, error=outcome.error, retry_in=round(verdict.retry_at - now, 3),
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The outcome was not recorded; the lease will expire and the message
            # will be tried again (the receiver deduplicates by X-Message-Id).
            log.error("could not record a delivery outcome", destination=self.member_id,
                      message_id=message.id, error=str(exc))
