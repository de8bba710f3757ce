"""The outbox against a model: random runs of accept, claim, outcomes, clock and
replay on each backend, checking after every step that the store and a small
in-memory model agree — which messages a claim may take (due times, leases,
ordering keys), every message's state and attempt count, and that none is lost.

Hypothesis state machines are synchronous; each example drives its own store
on an event loop of its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from gateway.store import MessageState, NewMessage, create_store

T0 = 1_000.0
SENDERS = ("penal", "interior")
RECIPIENTS = ("health", "courts")
KEYS = (None, "person-1", "person-2")
CLIENT_IDS = (None, "m-1", "m-2", "m-3")  # few, so that duplicates come up

SETTINGS = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass
class Modelled:
    id: str
    order: int  # acceptance order
    recipient: str
    key: str | None
    max_attempts: int
    next_attempt_at: float
    state: MessageState = MessageState.ACCEPTED
    attempts: int = 0
    lease_until: float | None = None
    replays: int = 0

    def holds_back(self, other: Modelled) -> bool:
        """One at a time per key: an earlier pending message, or any one in flight, holds back."""
        return (
            self is not other and self.key is not None and (self.recipient, self.key) == (other.recipient, other.key)
            and (self.state is MessageState.IN_FLIGHT or (self.state is MessageState.ACCEPTED and self.order < other.order))
        )


def outbox_machine(backend) -> type[RuleBasedStateMachine]:
    class OutboxMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.url = backend.fresh_url()
            self.store = create_store(self.url)
            self.run(self.store.open())
            self.now = T0
            self.messages: dict[str, Modelled] = {}
            self.inbound: dict[tuple[str, str], str] = {}
            self.budgets: dict[str, int] = {}

        def run(self, coroutine):
            return self.loop.run_until_complete(coroutine)

        def teardown(self) -> None:
            try:
                self.run(self.store.close())
                self.run(self.loop.shutdown_default_executor())
            finally:
                self.loop.close()
                backend.discard(self.url)

        # -- the model's rules

        def expire_leases(self, recipient: str) -> None:
            for m in self.messages.values():
                if m.recipient == recipient and m.state is MessageState.IN_FLIGHT and m.lease_until <= self.now:
                    m.state, m.lease_until = MessageState.ACCEPTED, None

        def held_back(self, m: Modelled) -> bool:
            return any(other.holds_back(m) for other in self.messages.values())

        def due(self, recipient: str) -> list[Modelled]:
            return sorted(
                (m for m in self.messages.values()
                 if m.recipient == recipient and m.state is MessageState.ACCEPTED
                 and m.next_attempt_at <= self.now and not self.held_back(m)),
                key=lambda m: m.order,
            )

        def next_due(self, recipient: str) -> float | None:
            times = [m.next_attempt_at for m in self.messages.values()
                     if m.recipient == recipient and m.state is MessageState.ACCEPTED and not self.held_back(m)]
            times += [m.lease_until for m in self.messages.values()
                      if m.recipient == recipient and m.state is MessageState.IN_FLIGHT]
            return min(times, default=None)

        def pick(self, index: int) -> Modelled:
            return list(self.messages.values())[index % len(self.messages)]

        def fenced(self, m: Modelled, stale: bool) -> tuple[int, bool]:
            """The attempt number a worker reports, and whether the store must accept it."""
            attempt = m.attempts - 1 if stale else m.attempts
            return attempt, m.state is MessageState.IN_FLIGHT and attempt == m.attempts

        # -- rules

        @rule(sender=st.sampled_from(SENDERS), recipient=st.sampled_from(RECIPIENTS),
              key=st.sampled_from(KEYS), client_id=st.sampled_from(CLIENT_IDS),
              max_attempts=st.integers(1, 5))
        def accept(self, sender, recipient, key, client_id, max_attempts):
            new = NewMessage(
                sender=sender, recipient=recipient, service="notices", body=b"{}",
                content_type="application/json", correlation_id="corr", max_attempts=max_attempts,
                deadline_at=self.now + 3_600, client_message_id=client_id, ordering_key=key,
            )
            acceptance = self.run(self.store.accept(new, self.now))
            known = self.inbound.get((sender, client_id)) if client_id else None
            assert acceptance.duplicate == (known is not None)
            if known is not None:
                assert acceptance.message.id == known
                return
            self.budgets[acceptance.message.id] = max_attempts
            self.messages[acceptance.message.id] = Modelled(
                acceptance.message.id, len(self.messages), recipient, key, max_attempts, self.now
            )
            if client_id:
                self.inbound[(sender, client_id)] = acceptance.message.id

        @rule(recipient=st.sampled_from(RECIPIENTS), limit=st.integers(1, 3), lease=st.sampled_from([5.0, 30.0]))
        def claim(self, recipient, limit, lease):
            self.expire_leases(recipient)
            expected = self.due(recipient)[:limit]
            claimed = self.run(self.store.claim(recipient, limit, self.now, lease, "worker"))
            assert [m.id for m in claimed] == [m.id for m in expected]
            for m in expected:
                m.state, m.attempts, m.lease_until = MessageState.IN_FLIGHT, m.attempts + 1, self.now + lease
            assert [m.attempts for m in claimed] == [m.attempts for m in expected]

        @precondition(lambda self: self.messages)
        @rule(index=st.integers(0, 1_000), stale=st.booleans())
        def deliver(self, index, stale):
            m = self.pick(index)
            attempt, allowed = self.fenced(m, stale)
            assert self.run(self.store.record_delivered(m.id, attempt, self.now, self.now, 200)) == allowed
            if allowed:
                m.state, m.lease_until = MessageState.DELIVERED, None

        @precondition(lambda self: self.messages)
        @rule(index=st.integers(0, 1_000), stale=st.booleans(), delay=st.sampled_from([0.0, 5.0, 60.0]))
        def fail_and_retry(self, index, stale, delay):
            m = self.pick(index)
            attempt, allowed = self.fenced(m, stale)
            recorded = self.run(self.store.record_failure(
                m.id, attempt, self.now, self.now, error="HTTP 503", status=503, retry_at=self.now + delay
            ))
            assert recorded == allowed
            if allowed:
                m.state, m.lease_until, m.next_attempt_at = MessageState.ACCEPTED, None, self.now + delay

        @precondition(lambda self: self.messages)
        @rule(index=st.integers(0, 1_000), stale=st.booleans())
        def fail_for_good(self, index, stale):
            m = self.pick(index)
            attempt, allowed = self.fenced(m, stale)
            recorded = self.run(self.store.record_failure(
                m.id, attempt, self.now, self.now, error="HTTP 400", status=400, retry_at=None
            ))
            assert recorded == allowed
            if allowed:
                m.state, m.lease_until, m.next_attempt_at = MessageState.DEAD, None, self.now

        @rule(seconds=st.sampled_from([1.0, 10.0, 40.0]))
        def advance_the_clock(self, seconds):
            self.now += seconds

        @precondition(lambda self: self.messages)
        @rule(indices=st.lists(st.integers(0, 1_000), min_size=1, max_size=4))
        def replay(self, indices):
            chosen = [self.pick(i) for i in indices]
            expected = list(dict.fromkeys(m.id for m in chosen if m.state is MessageState.DEAD))
            assert self.run(self.store.replay([m.id for m in chosen], self.now, self.now + 3_600)) == expected
            for message_id in expected:
                m = self.messages[message_id]
                m.state, m.next_attempt_at, m.replays = MessageState.ACCEPTED, self.now, m.replays + 1
                m.max_attempts = m.attempts + self.budgets[message_id]  # the first budget again

        # -- invariants

        @invariant()
        def every_message_is_where_the_model_says(self):
            stored = {m.id: m for m in self.run(self.store.list_messages(limit=10_000))}
            assert stored.keys() == self.messages.keys()  # none lost, none invented
            for m in self.messages.values():
                s = stored[m.id]
                assert (s.state, s.attempts, s.max_attempts, s.next_attempt_at, s.replays) == (
                    m.state, m.attempts, m.max_attempts, m.next_attempt_at, m.replays
                ), m

        @invariant()
        def counts_match_the_model(self):
            expected: dict[tuple[str, MessageState], int] = {}
            for m in self.messages.values():
                if m.state is not MessageState.DELIVERED:
                    expected[(m.recipient, m.state)] = expected.get((m.recipient, m.state), 0) + 1
            assert self.run(self.store.counts()) == expected

        @invariant()
        def next_due_matches_the_model(self):
            for recipient in RECIPIENTS:
                assert self.run(self.store.next_due(recipient)) == self.next_due(recipient)

    return OutboxMachine


def test_the_outbox_behaves_like_its_model(backend):
    run_state_machine_as_test(outbox_machine(backend), settings=SETTINGS)
