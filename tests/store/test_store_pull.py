"""Pulling from the outbox (``hand_out``) and the recipient's confirmation (``acknowledge``), on
SQLite and PostgreSQL: in acceptance order, only the recipient's, again until confirmed."""

from __future__ import annotations

from gateway.store import MessageState, NewAuditEntry

from store.test_store_contract import LEASE, T0, accepted, message


async def _handed(store, recipient="probation", *, after=0, limit=10, now=T0 + 1):
    return [m.id for m in await store.hand_out(recipient, after_seq=after, limit=limit, now=now,
                                               lease_seconds=LEASE, owner="pull")]


async def test_messages_are_handed_out_in_order_to_their_recipient_only_and_again_until_confirmed(store):
    mine = await accepted(store, *(message(recipient="probation") for _ in range(3)))
    await accepted(store, message(recipient="health"))

    assert await _handed(store, limit=2) == mine[:2]
    second = await store.get_message(mine[1])
    assert await _handed(store, after=second.seq) == mine[2:]
    assert await _handed(store) == mine  # not confirmed: all again
    handed = await store.get_message(mine[0])
    assert (handed.state, handed.attempts) == (MessageState.IN_FLIGHT, 2)

    assert await store.acknowledge("probation", {mine[0]: [NewAuditEntry(b'{"x":1}')]}, T0 + 2) == [mine[0]]
    assert await _handed(store) == mine[1:]
    confirmed = await store.get_message(mine[0])
    assert (confirmed.state, confirmed.delivered_at, confirmed.acknowledged_at) == (MessageState.DELIVERED, T0 + 2,
                                                                                     T0 + 2)
    assert [a.outcome for a in await store.attempts(mine[0])] == ["delivered"]
    assert await store.audit_size() == 1


async def test_what_is_handed_out_is_audited_in_the_same_transaction(store):
    mine = await accepted(store, message(recipient="probation"), message(recipient="probation"))
    handed = await store.hand_out("probation", after_seq=0, limit=10, now=T0 + 1, lease_seconds=LEASE, owner="pull",
                                  audit=lambda m: [NewAuditEntry(m.id.encode())])
    assert [m.id for m in handed] == mine
    assert [r.entry for r in await store.read_audit(1, 10)] == [m.encode() for m in mine]


async def test_a_confirmation_counts_once_and_only_from_the_recipient(store):
    (mine,) = await accepted(store, message(recipient="probation"))
    entry = [NewAuditEntry(b'{"x":1}')]
    assert await store.acknowledge("health", {mine: entry}, T0 + 1) == []
    assert (await store.get_message(mine)).state is MessageState.ACCEPTED
    assert await store.acknowledge("probation", {mine: entry}, T0 + 2) == [mine]
    assert await store.acknowledge("probation", {mine: entry}, T0 + 3) == []
    assert (await store.get_message(mine)).acknowledged_at == T0 + 2
    assert await store.audit_size() == 1


async def test_a_pushed_message_confirmed_after_delivery_keeps_its_attempt(store):
    (pushed,) = await accepted(store, message(recipient="health"))
    (claimed,) = await store.claim("health", 1, T0 + 1, LEASE, "worker-1")
    assert await store.record_delivered(pushed, claimed.attempts, T0 + 1, T0 + 2, 200)
    assert await store.acknowledge("health", {pushed: []}, T0 + 9) == [pushed]
    (attempt,) = await store.attempts(pushed)
    assert (attempt.outcome, attempt.status, attempt.finished_at) == ("delivered", 200, T0 + 2)
    stored = await store.get_message(pushed)
    assert (stored.delivered_at, stored.acknowledged_at) == (T0 + 2, T0 + 9)


async def test_a_pushed_message_confirmed_mid_delivery_is_delivered_once(store):
    (pushed,) = await accepted(store, message(recipient="health"))
    (claimed,) = await store.claim("health", 1, T0 + 1, LEASE, "worker-1")
    assert await store.acknowledge("health", {pushed: []}, T0 + 2) == [pushed]
    # The worker's late outcome is fenced off: the message stays delivered, as confirmed.
    assert not await store.record_delivered(pushed, claimed.attempts, T0 + 1, T0 + 3, 200)
    stored = await store.get_message(pushed)
    assert (stored.state, stored.delivered_at) == (MessageState.DELIVERED, T0 + 2)
