"""PostgreSQL only: several gateway instances sharing one database.

What a single SQLite writer gets for free must hold here across processes:
each message delivered once and each ordering key in order while instances
accept and claim concurrently, a gapless audit log, one message per client id,
each timer fired once, and wake-ups crossing from one instance to another.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.store import AppendAudit, MessageState, NewAuditEntry, NewMessage, SaveCase, ScheduleTimer, Timer
from gateway.store.postgres import MIGRATIONS

T0 = 1_000.0
MESSAGES, KEYS = 2_000, 20


def message(n: int, key: str | None, client_id: str | None = None) -> NewMessage:
    return NewMessage(
        sender="penal", recipient="health", service="notices", body=b'{"n": %d}' % n,
        content_type="application/json", correlation_id=f"corr-{n}", max_attempts=100,
        deadline_at=T0 + 86_400, client_message_id=client_id, ordering_key=key,
    )


@pytest.fixture
async def instances(postgres_backend, open_store):
    url = postgres_backend.fresh_url()
    return await open_store(url), await open_store(url)


async def test_two_instances_deliver_every_message_once_and_each_key_in_acceptance_order(instances):
    rng = random.Random(7)
    work = iter([(n, f"person-{rng.randrange(KEYS)}") for n in range(MESSAGES)])
    accepted: dict[str, list[int]] = defaultdict(list)  # key -> seqs
    delivered: dict[str, list[int]] = defaultdict(list)  # key -> seqs, as the recipient saw them
    in_flight_keys: set[str] = set()
    done = asyncio.Event()

    async def produce(store) -> None:
        for n, key in work:
            acceptance = await store.accept(message(n, key), T0)
            accepted[key].append(acceptance.message.seq)

    async def deliver(store, owner: str) -> None:
        while not done.is_set():
            batch = await store.claim("health", 4, T0, 600, owner)
            if not batch:
                await asyncio.sleep(0.002)
                continue
            for m in batch:
                assert m.ordering_key not in in_flight_keys, f"two messages of {m.ordering_key} in flight"
                in_flight_keys.add(m.ordering_key)
            for m in batch:
                # The key is released before the outcome commits: only then may its next message be claimed.
                in_flight_keys.discard(m.ordering_key)
                if rng.random() < 0.1:
                    assert await store.record_failure(m.id, m.attempts, T0, T0, error="HTTP 503", status=503, retry_at=T0)
                    continue
                delivered[m.ordering_key].append(m.seq)
                assert await store.record_delivered(m.id, m.attempts, T0, T0, 200)
                if sum(map(len, delivered.values())) == MESSAGES:
                    done.set()

    async with asyncio.timeout(120):
        await asyncio.gather(
            *(produce(store) for store in instances for _ in range(4)),
            *(deliver(store, f"instance-{i}-worker-{w}") for i, store in enumerate(instances) for w in range(4)),
        )

    # Every message once, and per key in seq order, which is acceptance order.
    assert delivered == {key: sorted(seqs) for key, seqs in accepted.items()}
    assert await instances[0].counts() == {}
    assert len(await instances[1].list_messages(state=MessageState.DELIVERED, limit=MESSAGES + 1)) == MESSAGES


async def test_audit_appends_from_two_instances_are_numbered_without_gap_or_fork(instances):
    async def append(store, n: int) -> list[int]:
        (seqs,) = await store.apply([AppendAudit([NewAuditEntry(b"entry %d.%d" % (n, i)) for i in range(4)])], T0)
        return seqs

    results = await asyncio.gather(*(append(store, n) for n in range(40) for store in instances))
    assert sorted(seq for seqs in results for seq in seqs) == list(range(1, 321))
    assert all(seqs == list(range(seqs[0], seqs[0] + 4)) for seqs in results)  # one apply, one run
    assert [r.seq for r in await instances[1].read_audit(limit=1_000)] == list(range(1, 321))


@pytest.mark.parametrize("key", [None, "person-1"], ids=["unordered", "ordered"])
async def test_concurrent_duplicate_accepts_on_two_instances_store_one_message(instances, key):
    attempts = [store.accept(message(1, key, client_id="m-1"), T0) for _ in range(10) for store in instances]
    results = await asyncio.gather(*attempts)
    assert len({r.message.id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert len(await instances[0].list_messages()) == 1


async def test_each_timer_fires_once_across_instances(instances):
    timers = [Timer(f"t-{n}", "release", f"case-{n}", "ack_deadline", T0 + n % 7) for n in range(200)]
    await instances[0].apply([ScheduleTimer(t) for t in timers], T0)
    fired: list[str] = []

    async def fire(store, owner: str) -> None:
        while batch := await store.claim_timers(T0 + 10, 5, 600, owner):
            for t in batch:
                # Firing twice would create the case twice: a ConflictError.
                assert await store.complete_timer(t.id, t.attempts, [SaveCase("fired", t.id, "done", {}, 0)], T0 + 10)
                fired.append(t.id)

    await asyncio.gather(*(fire(store, f"{i}-{w}") for i, store in enumerate(instances) for w in range(3)))
    assert sorted(fired) == sorted(t.id for t in timers)
    assert len(await instances[1].list_cases("fired", limit=1_000)) == 200


async def test_a_message_accepted_on_one_instance_wakes_the_other(instances):
    first, second = instances
    woken = asyncio.Queue()
    second.on_new_work(woken.put_nowait)
    await first.accept(message(1, None), T0)
    assert await asyncio.wait_for(woken.get(), 5) == "health"


async def test_wake_ups_resume_after_the_listening_connection_drops(postgres_backend, open_store):
    url = postgres_backend.fresh_url()
    first, second = await open_store(url), await open_store(url)
    woken = asyncio.Queue()
    second.on_new_work(woken.put_nowait)
    (schema,) = parse_qs(urlsplit(url).query)["schema"]
    terminated = postgres_backend.execute(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name = 'gateway-listen:{schema}'",
    )
    assert terminated == [(True,), (True,)]  # both instances' listening connections
    # Accepted while the connection may still be down: the reconnection catches up on it.
    await first.accept(message(1, None), T0)
    assert await asyncio.wait_for(woken.get(), 10) == "health"
    await asyncio.sleep(0.5)  # reconnected by now: later work arrives by NOTIFY again
    while not woken.empty():
        woken.get_nowait()
    await first.accept(message(2, None), T0)
    assert await asyncio.wait_for(woken.get(), 5) == "health"


async def test_instances_starting_together_migrate_the_schema_once(postgres_backend, open_store):
    url = postgres_backend.fresh_url()
    await asyncio.gather(*(open_store(url) for _ in range(4)))
    assert postgres_backend.execute(url, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]
