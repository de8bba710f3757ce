"""The ``Store`` contract: each test runs against SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from gateway.store import (
    AcceptMessage,
    AppendAudit,
    CancelTimer,
    ConflictError,
    MessageState,
    NewAuditEntry,
    NewMessage,
    RecordInbound,
    SaveCase,
    ScheduleTimer,
    StoreError,
    Timer,
    TreeHead,
    create_store,
)

T0 = 1_000.0  # the tests' clock starts here
LEASE = 30.0


def message(
    *,
    recipient: str = "health",
    client_id: str | None = None,
    key: str | None = None,
    sender: str = "penal",
    body: bytes = b'{"notice": 1}',
) -> NewMessage:
    return NewMessage(
        sender=sender, recipient=recipient, service="notices", body=body,
        content_type="application/json", correlation_id="corr-1", max_attempts=5,
        deadline_at=T0 + 86_400, client_message_id=client_id, purpose="continuity_of_care",
        ordering_key=key,
    )


async def accepted(store, *messages: NewMessage, now: float = T0) -> list[str]:
    return [(await store.accept(m, now)).message.id for m in messages]


async def claim_ids(store, *, now: float, recipient: str = "health", limit: int = 10) -> list[str]:
    return [m.id for m in await store.claim(recipient, limit, now, LEASE, "worker-1")]


# ---------------------------------------------------------------- lifecycle


async def test_ping_answers_when_the_store_is_open(store):
    await store.ping()


async def test_a_closed_store_refuses_work(store_url):
    closed = create_store(store_url)
    await closed.open()
    await closed.close()
    with pytest.raises(StoreError):
        await closed.ping()


async def test_what_was_stored_is_there_after_reopening(store_url):
    first = create_store(store_url)
    await first.open()
    (message_id,) = await accepted(first, message())
    await first.close()
    again = create_store(store_url)
    await again.open()
    try:
        assert (await again.get_message(message_id)).state is MessageState.ACCEPTED
    finally:
        await again.close()


async def test_a_store_that_cannot_open_keeps_saying_so(backend):
    broken = create_store(backend.unreachable_url())
    for _ in range(2):
        with pytest.raises(StoreError):
            await broken.open()
    with pytest.raises(StoreError):
        await asyncio.wait_for(broken.ping(), 5)


async def test_a_schema_newer_than_the_gateway_is_refused(backend, store_url, store):
    await store.close()
    backend.execute(store_url, "UPDATE schema_version SET version = 999")
    newer = create_store(store_url)
    with pytest.raises(StoreError, match="upgrade the gateway"):
        await newer.open()


# ---------------------------------------------------------------- accept


async def test_accept_stores_and_returns_the_message(store):
    new = message(client_id="m-1", key="person-1")
    acceptance = await store.accept(new, T0)
    stored = acceptance.message
    assert not acceptance.duplicate
    assert (stored.sender, stored.recipient, stored.service, stored.body) == (new.sender, new.recipient, new.service, new.body)
    assert (stored.client_message_id, stored.ordering_key, stored.purpose) == ("m-1", "person-1", "continuity_of_care")
    assert stored.state is MessageState.ACCEPTED and stored.attempts == 0 and stored.replays == 0
    assert stored.accepted_at == stored.next_attempt_at == stored.updated_at == T0
    assert await store.get_message(stored.id) == stored


async def test_a_duplicate_client_message_id_returns_the_original_and_stores_nothing_new(store):
    original = await store.accept(message(client_id="m-1"), T0)
    again = await store.accept(message(client_id="m-1", body=b"changed"), T0 + 5)
    assert again.duplicate and again.message == original.message
    assert len(await store.list_messages()) == 1


async def test_the_same_client_message_id_from_two_senders_is_two_messages(store):
    penal = await store.accept(message(client_id="m-1", sender="penal"), T0)
    interior = await store.accept(message(client_id="m-1", sender="interior"), T0)
    assert not interior.duplicate and interior.message.id != penal.message.id


async def test_messages_without_a_client_message_id_are_never_duplicates(store):
    first, second = await accepted(store, message(), message())
    assert first != second


async def test_find_message_looks_up_the_senders_own_id(store):
    (message_id,) = await accepted(store, message(client_id="m-1"))
    assert (await store.find_message("penal", "m-1")).id == message_id
    assert await store.find_message("interior", "m-1") is None


async def test_an_unknown_message_id_is_none(store):
    assert await store.get_message("no-such-message") is None


async def test_a_duplicate_within_one_apply_returns_the_first(store):
    first, second = await store.apply([AcceptMessage(message(client_id="m-1")), AcceptMessage(message(client_id="m-1"))], T0)
    assert not first.duplicate and second.duplicate and second.message.id == first.message.id


async def test_concurrent_duplicate_accepts_store_one_message(store):
    results = await asyncio.gather(*(store.accept(message(client_id="m-1"), T0) for _ in range(20)))
    assert len({r.message.id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1


# ---------------------------------------------------------------- claim


async def test_claim_leases_due_messages_in_seq_order_and_counts_an_attempt(store):
    ids = await accepted(store, message(), message(), message())
    claimed = await store.claim("health", 10, T0 + 1, LEASE, "worker-1")
    assert [m.id for m in claimed] == ids
    assert [m.seq for m in claimed] == sorted(m.seq for m in claimed)
    assert all(m.state is MessageState.IN_FLIGHT and m.attempts == 1 for m in claimed)
    assert all(m.updated_at == T0 + 1 for m in claimed)
    assert (await store.get_message(ids[0])).state is MessageState.IN_FLIGHT


async def test_claim_takes_at_most_limit_messages(store):
    ids = await accepted(store, message(), message(), message())
    assert await claim_ids(store, now=T0, limit=2) == ids[:2]


async def test_claim_takes_only_the_recipients_messages(store):
    (health,) = await accepted(store, message(recipient="health"))
    await accepted(store, message(recipient="courts"))
    assert await claim_ids(store, now=T0, recipient="health") == [health]


async def test_claim_skips_messages_not_yet_due(store):
    (message_id,) = await accepted(store, message())
    (claimed,) = await store.claim("health", 1, T0, LEASE, "worker-1")
    await store.record_failure(message_id, claimed.attempts, T0, T0 + 1, error="HTTP 503", status=503, retry_at=T0 + 60)
    assert await claim_ids(store, now=T0 + 59) == []
    assert await claim_ids(store, now=T0 + 60) == [message_id]


async def test_a_leased_message_is_not_claimed_again_while_the_lease_runs(store):
    await accepted(store, message())
    await claim_ids(store, now=T0)
    assert await claim_ids(store, now=T0 + LEASE - 1) == []


async def test_an_expired_lease_makes_the_message_due_again(store):
    (message_id,) = await accepted(store, message())
    await claim_ids(store, now=T0)
    (again,) = await store.claim("health", 10, T0 + LEASE, LEASE, "worker-2")
    assert again.id == message_id and again.attempts == 2
    assert "lease expired" in again.last_error


async def test_ordering_key_holds_back_the_second_message_while_the_first_is_accepted(store):
    first, _ = await accepted(store, message(key="person-1"), message(key="person-1"))
    assert await claim_ids(store, now=T0) == [first]


async def test_ordering_key_holds_back_the_second_message_while_the_first_waits_to_retry(store):
    first, _ = await accepted(store, message(key="person-1"), message(key="person-1"))
    (claimed,) = await store.claim("health", 10, T0, LEASE, "worker-1")
    await store.record_failure(first, claimed.attempts, T0, T0 + 1, error="timeout", status=None, retry_at=T0 + 60)
    assert await claim_ids(store, now=T0 + 2) == []


async def test_ordering_key_holds_back_the_second_message_while_the_first_is_in_flight(store):
    await accepted(store, message(key="person-1"), message(key="person-1"))
    await claim_ids(store, now=T0)
    assert await claim_ids(store, now=T0 + 1) == []


async def test_ordering_key_releases_the_second_message_once_the_first_is_delivered(store):
    first, second = await accepted(store, message(key="person-1"), message(key="person-1"))
    (claimed,) = await store.claim("health", 10, T0, LEASE, "worker-1")
    await store.record_delivered(first, claimed.attempts, T0, T0 + 1, 200)
    assert await claim_ids(store, now=T0 + 1) == [second]


async def test_ordering_key_releases_the_second_message_once_the_first_is_dead(store):
    first, second = await accepted(store, message(key="person-1"), message(key="person-1"))
    (claimed,) = await store.claim("health", 10, T0, LEASE, "worker-1")
    await store.record_failure(first, claimed.attempts, T0, T0 + 1, error="HTTP 400", status=400, retry_at=None)
    assert await claim_ids(store, now=T0 + 1) == [second]


async def test_different_ordering_keys_do_not_hold_each_other_back(store):
    ids = await accepted(store, message(key="person-1"), message(key="person-2"), message())
    assert await claim_ids(store, now=T0) == ids


async def test_an_ordering_key_is_per_recipient(store):
    await accepted(store, message(key="person-1", recipient="courts"))
    (health,) = await accepted(store, message(key="person-1", recipient="health"))
    assert await claim_ids(store, now=T0, recipient="health") == [health]


async def test_messages_without_an_ordering_key_overtake_a_failing_one(store):
    first, second = await accepted(store, message(), message())
    await claim_ids(store, now=T0, limit=1)
    assert await claim_ids(store, now=T0 + 1) == [second]


# ---------------------------------------------------------------- outcomes


async def test_record_delivered_marks_the_message_delivered(store):
    (message_id,) = await accepted(store, message())
    (claimed,) = await store.claim("health", 1, T0, LEASE, "worker-1")
    assert await store.record_delivered(message_id, claimed.attempts, T0, T0 + 2, 202)
    stored = await store.get_message(message_id)
    assert stored.state is MessageState.DELIVERED
    assert (stored.delivered_at, stored.updated_at, stored.last_status, stored.last_error) == (T0 + 2, T0 + 2, 202, None)


async def test_record_failure_with_retry_at_schedules_the_next_attempt(store):
    (message_id,) = await accepted(store, message())
    (claimed,) = await store.claim("health", 1, T0, LEASE, "worker-1")
    assert await store.record_failure(message_id, 1, T0, T0 + 2, error="HTTP 503", status=503, retry_at=T0 + 30)
    stored = await store.get_message(message_id)
    assert stored.state is MessageState.ACCEPTED and stored.attempts == claimed.attempts
    assert (stored.next_attempt_at, stored.last_error, stored.last_status) == (T0 + 30, "HTTP 503", 503)


async def test_record_failure_without_retry_at_dead_letters(store):
    (message_id,) = await accepted(store, message())
    await claim_ids(store, now=T0)
    assert await store.record_failure(message_id, 1, T0, T0 + 2, error="HTTP 400", status=400, retry_at=None)
    stored = await store.get_message(message_id)
    assert stored.state is MessageState.DEAD and stored.last_error == "HTTP 400"
    assert await claim_ids(store, now=T0 + 1_000) == []


async def test_an_outcome_with_a_stale_attempt_number_is_refused_and_changes_nothing(store):
    (message_id,) = await accepted(store, message())
    await claim_ids(store, now=T0)
    await claim_ids(store, now=T0 + LEASE)  # the first worker's lease ran out: attempt 2 now
    before = await store.get_message(message_id)
    assert not await store.record_delivered(message_id, 1, T0, T0 + LEASE + 1, 200)
    assert not await store.record_failure(message_id, 1, T0, T0 + LEASE + 1, error="late", status=None, retry_at=None)
    assert await store.get_message(message_id) == before
    assert await store.attempts(message_id) == []


async def test_an_outcome_for_a_message_not_in_flight_is_refused(store):
    (message_id,) = await accepted(store, message())
    assert not await store.record_delivered(message_id, 0, T0, T0, 200)
    assert (await store.get_message(message_id)).state is MessageState.ACCEPTED


async def test_every_finished_attempt_is_logged_in_order(store):
    (message_id,) = await accepted(store, message())
    await claim_ids(store, now=T0)
    await store.record_failure(message_id, 1, T0, T0 + 1, error="HTTP 503", status=503, retry_at=T0 + 10)
    await claim_ids(store, now=T0 + 10)
    await store.record_delivered(message_id, 2, T0 + 10, T0 + 11, 200)
    log = await store.attempts(message_id)
    assert [(a.number, a.outcome, a.status, a.error) for a in log] == [(1, "retry", 503, "HTTP 503"), (2, "delivered", 200, None)]
    assert [(a.started_at, a.finished_at) for a in log] == [(T0, T0 + 1), (T0 + 10, T0 + 11)]


# ---------------------------------------------------------------- next_due


async def test_next_due_is_the_earliest_retry_or_lease_expiry(store):
    first, _ = await accepted(store, message(), message())
    await claim_ids(store, now=T0, limit=1)
    assert await store.next_due("health") == T0  # the second message, due at once
    await claim_ids(store, now=T0)
    assert await store.next_due("health") == T0 + LEASE
    await store.record_failure(first, 1, T0, T0 + 1, error="HTTP 503", status=503, retry_at=T0 + 5)
    assert await store.next_due("health") == T0 + 5


async def test_next_due_is_none_without_pending_messages(store):
    assert await store.next_due("health") is None
    (message_id,) = await accepted(store, message())
    await claim_ids(store, now=T0)
    await store.record_delivered(message_id, 1, T0, T0 + 1, 200)
    assert await store.next_due("health") is None


async def test_next_due_ignores_a_message_held_back_by_its_ordering_key(store):
    first, _ = await accepted(store, message(key="person-1"), message(key="person-1"))
    await claim_ids(store, now=T0)
    await store.record_failure(first, 1, T0, T0 + 1, error="HTTP 503", status=503, retry_at=T0 + 60)
    # The second message is not due until the first is done: waking at T0 would find nothing.
    assert await store.next_due("health") == T0 + 60


# ---------------------------------------------------------------- replay, counts, listing


async def finish(store, *message_ids: str, now: float = T0, dead: bool = False) -> None:
    """Claim what is due for the messages' recipients and record an outcome for ``message_ids``
    (other messages claimed on the way stay in flight)."""
    recipients = {(await store.get_message(message_id)).recipient for message_id in message_ids}
    claimed = {m.id: m for r in recipients for m in await store.claim(r, 100, now, LEASE, "worker-1")}
    for message_id in message_ids:
        attempt = claimed[message_id].attempts
        if dead:
            await store.record_failure(message_id, attempt, now, now, error="HTTP 400", status=400, retry_at=None)
        else:
            await store.record_delivered(message_id, attempt, now, now, 200)


async def test_replay_moves_only_dead_messages_back_with_a_fresh_budget(store):
    to_kill, waiting = await accepted(store, message(), message())
    await finish(store, to_kill, dead=True)
    replayed = await store.replay([to_kill, waiting, "no-such-message"], T0 + 100, T0 + 200)
    assert replayed == [to_kill]
    stored = await store.get_message(to_kill)
    assert stored.state is MessageState.ACCEPTED and stored.replays == 1
    assert (stored.next_attempt_at, stored.deadline_at, stored.updated_at) == (T0 + 100, T0 + 200, T0 + 100)
    assert stored.attempts == 1 and stored.max_attempts - stored.attempts == message().max_attempts
    assert (await store.get_message(waiting)).replays == 0


async def test_a_replayed_message_continues_its_attempt_numbering(store):
    (message_id,) = await accepted(store, message())
    await finish(store, message_id, dead=True)
    await store.replay([message_id], T0 + 100, T0 + 200)
    (claimed,) = await store.claim("health", 1, T0 + 100, LEASE, "worker-1")
    assert claimed.attempts == 2


async def test_counts_are_pending_and_dead_messages_by_recipient(store):
    to_deliver, to_kill, _, _ = await accepted(store, message(), message(), message(), message())
    await accepted(store, message(recipient="courts"))
    await store.claim("health", 2, T0, LEASE, "worker-1")
    await store.record_delivered(to_deliver, 1, T0, T0, 200)
    await store.record_failure(to_kill, 1, T0, T0, error="HTTP 400", status=400, retry_at=None)
    await store.claim("health", 1, T0, LEASE, "worker-1")
    assert await store.counts() == {
        ("health", MessageState.ACCEPTED): 1,
        ("health", MessageState.IN_FLIGHT): 1,
        ("health", MessageState.DEAD): 1,
        ("courts", MessageState.ACCEPTED): 1,
    }


async def test_list_messages_filters_and_pages_by_seq(store):
    a, b, c = await accepted(store, message(), message(sender="interior"), message(recipient="courts"))
    await finish(store, a, dead=True)
    assert [m.id for m in await store.list_messages()] == [a, b, c]
    assert [m.id for m in await store.list_messages(state=MessageState.DEAD)] == [a]
    assert [m.id for m in await store.list_messages(recipient="courts")] == [c]
    assert [m.id for m in await store.list_messages(sender="interior")] == [b]
    first_page = await store.list_messages(limit=2)
    assert [m.id for m in await store.list_messages(after_seq=first_page[-1].seq)] == [c]


# ---------------------------------------------------------------- retention


async def test_purge_delivered_deletes_only_messages_delivered_before_the_cutoff(store):
    old, recent, pending = await accepted(
        store, message(recipient="health"), message(recipient="courts"), message(recipient="clinic"), now=T0
    )
    await finish(store, old, now=T0)
    await finish(store, recent, now=T0 + 100)
    assert await store.purge_delivered(before=T0 + 50) == 1
    assert await store.get_message(old) is None and await store.attempts(old) == []
    assert await store.get_message(recent) is not None and await store.get_message(pending) is not None


async def test_purge_delivered_stops_at_the_limit(store):
    ids = await accepted(store, message(), message(), message())
    await finish(store, *ids, now=T0)
    assert await store.purge_delivered(before=T0 + 1, limit=2) == 2
    assert [m.id for m in await store.list_messages()] == ids[2:]


async def test_a_late_duplicate_of_a_purged_message_is_a_conflict(store):
    (message_id,) = await accepted(store, message(client_id="m-1"))
    await finish(store, message_id, now=T0)
    await store.purge_delivered(before=T0 + 1)
    with pytest.raises(ConflictError, match="X-Message-Id"):
        await store.accept(message(client_id="m-1"), T0 + 2)
    assert await store.find_message("penal", "m-1") is None


async def test_purge_inbound_forgets_ids_whose_message_is_gone(store):
    (message_id,) = await accepted(store, message(client_id="m-1"))
    await finish(store, message_id, now=T0)
    await store.purge_delivered(before=T0 + 1)
    assert await store.purge_inbound(before=T0 + 1) == 1
    again = await store.accept(message(client_id="m-1"), T0 + 2)
    assert not again.duplicate and again.message.id != message_id


async def test_purge_inbound_keeps_ids_whose_message_is_still_stored(store):
    await accepted(store, message(client_id="m-1"))
    assert await store.purge_inbound(before=T0 + 1) == 0
    assert (await store.accept(message(client_id="m-1"), T0 + 2)).duplicate


async def test_purge_inbound_keeps_ids_received_after_the_cutoff(store):
    (message_id,) = await accepted(store, message(client_id="m-1"))
    await finish(store, message_id, now=T0)
    await store.purge_delivered(before=T0 + 1)
    assert await store.purge_inbound(before=T0) == 0


# ---------------------------------------------------------------- cases


def save(kind="release", case_id="case-1", state="planned", data=None, version=0, subject_key=None) -> SaveCase:
    return SaveCase(kind, case_id, state, data if data is not None else {"step": state}, version, subject_key)


async def test_save_case_creates_a_case_at_version_one(store):
    assert await store.apply([save(data={"facility": "УИС-12", "n": 1.5}, subject_key="sk-1")], T0) == [1]
    case = await store.get_case("release", "case-1")
    assert (case.state, dict(case.data), case.version, case.subject_key) == ("planned", {"facility": "УИС-12", "n": 1.5}, 1, "sk-1")
    assert case.created_at == case.updated_at == T0


async def test_save_case_updates_a_case_at_the_expected_version(store):
    await store.apply([save()], T0)
    assert await store.apply([save(state="released", version=1)], T0 + 1) == [2]
    case = await store.get_case("release", "case-1")
    assert (case.state, case.version, case.created_at, case.updated_at) == ("released", 2, T0, T0 + 1)


async def test_save_case_with_a_stale_version_is_a_conflict_and_changes_nothing(store):
    await store.apply([save()], T0)
    await store.apply([save(state="released", version=1)], T0)
    with pytest.raises(ConflictError):
        await store.apply([save(state="cancelled", version=1)], T0)
    assert (await store.get_case("release", "case-1")).state == "released"


async def test_creating_a_case_that_exists_is_a_conflict(store):
    await store.apply([save()], T0)
    with pytest.raises(ConflictError):
        await store.apply([save()], T0)


async def test_an_update_without_a_subject_key_keeps_the_old_one(store):
    await store.apply([save(subject_key="sk-1")], T0)
    await store.apply([save(version=1)], T0)
    assert (await store.get_case("release", "case-1")).subject_key == "sk-1"


async def test_an_unknown_case_is_none(store):
    assert await store.get_case("release", "nope") is None


async def test_list_cases_filters_by_state_and_subject_and_pages_by_id(store):
    await store.apply([
        save(case_id="a", state="open", subject_key="sk-1"),
        save(case_id="b", state="closed", subject_key="sk-1"),
        save(case_id="c", state="open", subject_key="sk-2"),
        save(kind="pretrial", case_id="d", state="open"),
    ], T0)
    assert [c.id for c in await store.list_cases("release")] == ["a", "b", "c"]
    assert [c.id for c in await store.list_cases("release", state="open")] == ["a", "c"]
    assert [c.id for c in await store.list_cases("release", subject_key="sk-1")] == ["a", "b"]
    assert [c.id for c in await store.list_cases("release", after_id="a", limit=1)] == ["b"]


# ---------------------------------------------------------------- timers


def timer(timer_id="t-1", fire_at=T0 + 60, payload=None) -> Timer:
    return Timer(timer_id, "release", "case-1", "ack_deadline", fire_at, payload or {"level": 1})


async def test_a_scheduled_timer_is_claimed_when_due_and_not_before(store):
    await store.apply([ScheduleTimer(timer())], T0)
    assert await store.claim_timers(T0 + 59, 10, LEASE, "worker-1") == []
    (fired,) = await store.claim_timers(T0 + 60, 10, LEASE, "worker-1")
    assert (fired.id, fired.name, dict(fired.payload), fired.attempts) == ("t-1", "ack_deadline", {"level": 1}, 1)


async def test_scheduling_an_existing_timer_moves_it(store):
    await store.apply([ScheduleTimer(timer(fire_at=T0 + 60))], T0)
    await store.apply([ScheduleTimer(timer(fire_at=T0 + 120, payload={"level": 2}))], T0)
    assert await store.claim_timers(T0 + 60, 10, LEASE, "worker-1") == []
    (fired,) = await store.claim_timers(T0 + 120, 10, LEASE, "worker-1")
    assert dict(fired.payload) == {"level": 2}


async def test_cancel_timer_removes_a_pending_timer(store):
    await store.apply([ScheduleTimer(timer())], T0)
    assert await store.apply([CancelTimer("t-1")], T0) == [True]
    assert await store.apply([CancelTimer("t-1")], T0) == [False]
    assert await store.claim_timers(T0 + 60, 10, LEASE, "worker-1") == []


async def test_claim_timers_takes_due_timers_earliest_first_up_to_the_limit(store):
    await store.apply([ScheduleTimer(timer("late", T0 + 20)), ScheduleTimer(timer("early", T0 + 10)),
                       ScheduleTimer(timer("later", T0 + 30))], T0)
    assert [t.id for t in await store.claim_timers(T0 + 30, 2, LEASE, "worker-1")] == ["early", "late"]


async def test_a_leased_timer_is_not_claimed_again_while_the_lease_runs(store):
    await store.apply([ScheduleTimer(timer())], T0)
    await store.claim_timers(T0 + 60, 10, LEASE, "worker-1")
    assert await store.claim_timers(T0 + 60 + LEASE - 1, 10, LEASE, "worker-2") == []


async def test_an_expired_timer_lease_makes_it_due_again(store):
    await store.apply([ScheduleTimer(timer())], T0)
    await store.claim_timers(T0 + 60, 10, LEASE, "worker-1")
    (again,) = await store.claim_timers(T0 + 60 + LEASE, 10, LEASE, "worker-2")
    assert again.attempts == 2


async def test_complete_timer_deletes_it_and_applies_its_commands_together(store):
    await store.apply([ScheduleTimer(timer()), save()], T0)
    (fired,) = await store.claim_timers(T0 + 60, 10, LEASE, "worker-1")
    assert await store.complete_timer("t-1", fired.attempts, [save(state="escalated", version=1),
                                                              AcceptMessage(message(recipient="regional-health"))], T0 + 61)
    assert (await store.get_case("release", "case-1")).state == "escalated"
    assert [m.recipient for m in await store.list_messages()] == ["regional-health"]
    assert await store.claim_timers(T0 + 1_000, 10, LEASE, "worker-1") == []


async def test_complete_timer_with_a_stale_attempt_applies_nothing(store):
    await store.apply([ScheduleTimer(timer()), save()], T0)
    await store.claim_timers(T0 + 60, 10, LEASE, "worker-1")
    await store.claim_timers(T0 + 60 + LEASE, 10, LEASE, "worker-2")  # attempt 2 now
    assert not await store.complete_timer("t-1", 1, [save(state="escalated", version=1)], T0 + 100)
    assert (await store.get_case("release", "case-1")).state == "planned"
    assert await store.complete_timer("t-1", 2, [], T0 + 100)


async def test_a_moved_timer_cannot_be_completed_by_its_old_lease(store):
    await store.apply([ScheduleTimer(timer())], T0)
    (fired,) = await store.claim_timers(T0 + 60, 10, LEASE, "worker-1")
    await store.apply([ScheduleTimer(timer(fire_at=T0 + 500))], T0 + 61)
    assert not await store.complete_timer("t-1", fired.attempts, [], T0 + 62)
    assert [t.id for t in await store.claim_timers(T0 + 500, 10, LEASE, "worker-1")] == ["t-1"]


async def test_a_failing_command_of_a_completed_timer_keeps_the_timer(store):
    await store.apply([ScheduleTimer(timer())], T0)
    (fired,) = await store.claim_timers(T0 + 60, 10, LEASE, "worker-1")
    with pytest.raises(ConflictError):
        await store.complete_timer("t-1", fired.attempts, [save(version=7)], T0 + 61)
    assert await store.complete_timer("t-1", fired.attempts, [], T0 + 62)


# ---------------------------------------------------------------- apply


async def test_apply_returns_each_commands_result_in_order(store):
    await store.apply([ScheduleTimer(timer("old"))], T0)
    results = await store.apply([
        save(), ScheduleTimer(timer()), CancelTimer("old"), AcceptMessage(message()),
        AppendAudit([NewAuditEntry(b"a"), NewAuditEntry(b"b")]),
    ], T0)
    assert results[:3] == [1, None, True]
    assert results[3].message.recipient == "health" and results[4] == [1, 2]


async def test_a_failing_command_rolls_back_the_whole_apply(store):
    await store.apply([save()], T0)
    with pytest.raises(ConflictError):
        await store.apply([
            AcceptMessage(message(client_id="m-1")), ScheduleTimer(timer()),
            AppendAudit([NewAuditEntry(b"sent")]), save(version=5),
        ], T0)
    assert await store.list_messages() == [] and await store.find_message("penal", "m-1") is None
    assert await store.claim_timers(T0 + 1_000, 10, LEASE, "worker-1") == []
    assert await store.audit_size() == 0


async def test_a_failing_apply_does_not_affect_a_concurrent_apply(store):
    await store.apply([save()], T0)
    failing = store.apply([AcceptMessage(message(client_id="lost")), save(version=5)], T0)
    succeeding = store.apply([AcceptMessage(message(client_id="kept")), save(case_id="case-2")], T0)
    outcomes = await asyncio.gather(failing, succeeding, return_exceptions=True)
    assert isinstance(outcomes[0], ConflictError) and not isinstance(outcomes[1], BaseException)
    assert [m.client_message_id for m in await store.list_messages()] == ["kept"]
    assert await store.get_case("release", "case-2") is not None


async def test_an_unknown_command_is_refused(store):
    with pytest.raises(TypeError):
        await store.apply(["not a command"], T0)


# ---------------------------------------------------------------- audit log


async def test_audit_appends_are_numbered_from_one_without_gaps(store):
    assert await store.apply([AppendAudit([NewAuditEntry(b"a"), NewAuditEntry(b"b")])], T0) == [[1, 2]]
    assert await store.apply([AppendAudit([NewAuditEntry(b"c")])], T0) == [[3]]
    assert await store.audit_size() == 3


async def test_a_rolled_back_append_leaves_no_gap(store):
    await store.apply([AppendAudit([NewAuditEntry(b"a")])], T0)
    with pytest.raises(ConflictError):
        await store.apply([AppendAudit([NewAuditEntry(b"lost")]), save(version=3)], T0)
    assert await store.apply([AppendAudit([NewAuditEntry(b"b")])], T0) == [[2]]


async def test_concurrent_audit_appends_are_gapless(store):
    results = await asyncio.gather(*(store.apply([AppendAudit([NewAuditEntry(b"%d" % i)] * 2)], T0) for i in range(30)))
    seqs = sorted(seq for (appended,) in results for seq in appended)
    assert seqs == list(range(1, 61))
    assert [r.seq for r in await store.read_audit()] == seqs


async def test_read_audit_returns_entries_verbatim_from_a_seq(store):
    await store.apply([AppendAudit([NewAuditEntry(b'{"n":%d}' % i, subject_key="sk") for i in range(1, 6)])], T0)
    page = await store.read_audit(start_seq=2, limit=2)
    assert [(r.seq, r.entry, r.recorded_at, r.subject_key) for r in page] == [(2, b'{"n":2}', T0, "sk"), (3, b'{"n":3}', T0, "sk")]


async def test_audit_by_subject_lists_only_that_subjects_entries(store):
    await store.apply([AppendAudit([NewAuditEntry(b"a", "sk-1"), NewAuditEntry(b"b", "sk-2"),
                                    NewAuditEntry(b"c"), NewAuditEntry(b"d", "sk-1")])], T0)
    assert [(r.seq, r.entry) for r in await store.audit_by_subject("sk-1")] == [(1, b"a"), (4, b"d")]
    assert [r.seq for r in await store.audit_by_subject("sk-1", limit=1)] == [1]
    assert [r.seq for r in await store.audit_by_subject("sk-1", after_seq=1)] == [4]


async def test_tree_heads_are_kept_once_per_size_in_size_order(store):
    await store.save_tree_head(TreeHead(4, b"root-4", T0, b"sig-4"))
    await store.save_tree_head(TreeHead(2, b"root-2", T0, b"sig-2"))
    await store.save_tree_head(TreeHead(4, b"other", T0 + 1, b"other"))
    assert await store.tree_heads() == [TreeHead(2, b"root-2", T0, b"sig-2"), TreeHead(4, b"root-4", T0, b"sig-4")]
    assert await store.tree_heads(after_size=2) == [TreeHead(4, b"root-4", T0, b"sig-4")]


# ---------------------------------------------------------------- wake-ups


async def woken(store) -> list[str]:
    recipients: list[str] = []
    store.on_new_work(recipients.append)
    return recipients


async def test_on_new_work_fires_when_accept_returns(store):
    recipients = await woken(store)
    await store.accept(message(recipient="courts"), T0)
    assert "courts" in recipients


async def test_on_new_work_stays_quiet_for_a_local_duplicate(store):
    await store.accept(message(client_id="m-1"), T0)
    recipients = await woken(store)
    await store.accept(message(client_id="m-1"), T0)
    await asyncio.sleep(0.1)  # time for a notification to arrive, if one had been sent
    assert recipients == []


async def test_on_new_work_fires_for_messages_accepted_through_apply(store):
    recipients = await woken(store)
    await store.apply([AcceptMessage(message(recipient="courts"))], T0)
    assert "courts" in recipients


async def test_on_new_work_fires_for_messages_a_timer_produces(store):
    await store.apply([ScheduleTimer(timer())], T0)
    (fired,) = await store.claim_timers(T0 + 60, 10, LEASE, "worker-1")
    recipients = await woken(store)
    await store.complete_timer("t-1", fired.attempts, [AcceptMessage(message(recipient="courts"))], T0 + 60)
    assert "courts" in recipients


async def test_on_new_work_fires_after_replay(store):
    (message_id,) = await accepted(store, message(recipient="health"))
    await finish(store, message_id, dead=True)
    recipients = await woken(store)
    await store.replay([message_id], T0 + 1, T0 + 100)
    assert "health" in recipients



# ---------------------------------------------------------------- ids, answers, budgets


async def test_a_message_keeps_the_id_its_sender_chose(store):
    chosen = replace(message(client_id="c-1"), id="msg-chosen-1")
    acceptance = await store.accept(chosen, T0)
    assert acceptance.message.id == "msg-chosen-1"
    assert (await store.get_message("msg-chosen-1")).client_message_id == "c-1"


async def test_the_recipients_answer_is_kept_with_the_delivered_message(store):
    (message_id,) = await accepted(store, message())
    (claimed,) = await store.claim("health", 1, T0, LEASE, "w")
    assert await store.record_delivered(message_id, claimed.attempts, T0, T0 + 1, 200, b"<receipt>42</receipt>")
    assert (await store.get_message(message_id)).answer == b"<receipt>42</receipt>"


async def test_each_replay_restores_the_first_budget_and_no_more(store):
    (message_id,) = await accepted(store, message())  # max_attempts 5
    now = T0
    for replay in range(3):
        while True:
            (claimed,) = await store.claim("health", 1, now, LEASE, "w")
            dead = claimed.attempts == claimed.max_attempts
            await store.record_failure(message_id, claimed.attempts, now, now, error="503", status=503,
                                       retry_at=None if dead else now)
            if dead:
                break
        assert claimed.attempts == 5 * (replay + 1)
        assert await store.replay([message_id], now, now + 3600) == [message_id]
        assert (await store.get_message(message_id)).max_attempts == 5 * (replay + 2)


async def test_a_replayed_head_waits_while_its_successor_is_in_flight(store):
    first, second = await accepted(store, message(key="case-1"), message(key="case-1"))
    (head,) = await store.claim("health", 5, T0, LEASE, "w")
    await store.record_failure(first, head.attempts, T0, T0, error="400", status=400, retry_at=None)
    assert await claim_ids(store, now=T0) == [second]  # a dead head does not block its successor
    await store.replay([first], T0, T0 + 3600)
    assert await claim_ids(store, now=T0) == []  # ... but the replayed head does not travel beside it


async def test_an_inbound_answer_is_recorded_once_and_found_again(store):
    assert await store.apply([RecordInbound("penal", "soap:release-notices:n-1", b'{"case_id": "c"}')], T0) == [True]
    assert await store.apply([RecordInbound("penal", "soap:release-notices:n-1", b'{"case_id": "other"}')], T0) == [False]
    assert await store.find_inbound("penal", "soap:release-notices:n-1") == b'{"case_id": "c"}'
    assert await store.find_inbound("interior", "soap:release-notices:n-1") is None


async def test_an_inbound_answer_is_forgotten_after_the_deduplication_period(store):
    await store.apply([RecordInbound("penal", "k-1", b"answer")], T0)
    assert await store.purge_inbound(before=T0 + 1) == 1
    assert await store.find_inbound("penal", "k-1") is None


async def test_an_uncounted_failure_gives_the_attempt_back_to_the_budget(store):
    (message_id,) = await accepted(store, message())  # max_attempts 5
    (claimed,) = await store.claim("health", 1, T0, LEASE, "w")
    assert await store.record_failure(message_id, claimed.attempts, T0, T0, error="cannot connect", status=None,
                                      retry_at=T0, counted=False)
    stored = await store.get_message(message_id)
    assert stored.attempts == 1 and stored.max_attempts == 6
