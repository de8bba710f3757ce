"""The audit log survives SIGKILL in the middle of its batches, on PostgreSQL.

Two ``gateway serve`` processes share one PostgreSQL schema; 2,000 messages are relayed
through them while one of them is killed with SIGKILL again and again, each time while the
log holds entries that are committed but not yet numbered (``audit_pending``: the window
between a disclosure's commit and its sequencing round), and restarted. Every acceptance and
every delivery writes an audit entry in its own transaction. At the end, after both stop
cleanly (which numbers and signs what is left), the log must verify intact and fully signed,
nothing may be left pending, and no acknowledged message or audit entry may be missing:
exactly one ``inbound``/``accepted`` entry per acknowledged message (besides the entries of
replayed resends, whose first 202 died with the instance) and at least one
``outbound``/``delivered`` entry per delivered message.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import aiohttp
import pytest

from gateway.config import load_config
from gateway.security.audit import AuditLog
from gateway.security.audit_keys import AuditKeys
from gateway.store import MessageState, create_store
from support import GatewayProcess, RecordingReceiver, Senders, free_port, write_config

MESSAGES = 2000
INSTANCES = 2
KILLS = 4
SENDERS = 24
KEYS = 50
# A restart on a loaded machine: importing the gateway alone may take seconds.
READY_SECONDS = 90


@pytest.mark.slow
async def test_killing_an_instance_mid_audit_batch_loses_no_message_or_audit_entry(tmp_path, postgres_backend):
    store_url = postgres_backend.fresh_url()
    receiver = await RecordingReceiver().start()
    config_dir = write_config(
        tmp_path / "config", receiver_url=receiver.url, store_url=store_url,
        delivery={"concurrency": 16, "request_timeout_seconds": 1, "lease_seconds": 2, "max_attempts": 1000,
                  "backoff_base_seconds": 0.02, "backoff_cap_seconds": 0.3, "max_age_seconds": 3600},
    )
    gateways = [GatewayProcess(config_dir, free_port(), tmp_path / f"gateway-{n}.log") for n in range(INSTANCES)]
    senders = Senders([g.url for g in gateways], MESSAGES, keys=KEYS, prefix="audit")
    rng = random.Random(16)
    kills_with_pending = 0
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            gateways[0].start()
            await gateways[0].ready(session, timeout=READY_SECONDS)
            gateways[1].start()
            await gateways[1].ready(session, timeout=READY_SECONDS)

            async def killer() -> None:
                nonlocal kills_with_pending
                victim = gateways[0]
                for _ in range(KILLS):
                    await asyncio.sleep(rng.uniform(0.3, 1.0))
                    # Kill while entries are committed and waiting for their round (bounded wait).
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline and not _pending(postgres_backend, store_url):
                        await asyncio.sleep(0.002)
                    kills_with_pending += bool(_pending(postgres_backend, store_url))
                    victim.kill()
                    await asyncio.sleep(rng.uniform(0.1, 0.4))
                    victim.start()
                    await victim.ready(session, timeout=READY_SECONDS)

            await asyncio.gather(killer(), senders.run(session, SENDERS))
            assert len(senders.accepted) == MESSAGES
            wanted = set(senders.accepted.values())
            deadline = time.monotonic() + 120
            while not wanted <= receiver.unique_ids() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
    finally:
        for gateway in gateways:
            gateway.stop()
        await receiver.close()

    assert wanted <= receiver.unique_ids(), "acknowledged messages never reached the receiver"
    assert kills_with_pending >= 1, "no kill landed while audit entries were pending"
    assert _pending(postgres_backend, store_url) == 0, "a clean stop leaves nothing pending"

    config = load_config(config_dir, environ={})
    store = create_store(store_url)
    await store.open()
    try:
        audit = AuditLog(store, AuditKeys.read(config.audit, config.base_dir))
        report = await audit.verify()
        assert report.intact, report.problems
        assert report.signed_size == report.entries
        entries = []
        while page := await store.read_audit(len(entries) + 1, 5000):
            entries += [json.loads(record.entry) for record in page]
        delivered, after = [], 0
        while page := await store.list_messages(state=MessageState.DELIVERED, after_seq=after, limit=5000):
            delivered += [message.id for message in page]
            after = page[-1].seq
    finally:
        await store.close()

    inbound = [e for e in entries if (e["kind"], e["outcome"]) == ("inbound", "accepted")]
    # A resend of an accepted message (its first 202 lost with the killed instance) is answered
    # with the original and recorded as a replay: an entry of its own, about the same message.
    accepted_entries = [e["message_id"] for e in inbound if e["reason"] is None]
    replays = [e["message_id"] for e in inbound if e["reason"] is not None]
    assert set(replays) <= wanted and all(e["reason"].startswith("replay:") for e in inbound if e["reason"])
    delivered_entries = {e["message_id"] for e in entries if (e["kind"], e["outcome"]) == ("outbound", "delivered")}
    assert sorted(accepted_entries) == sorted(wanted), "one acceptance entry per acknowledged message"
    assert set(delivered) == wanted and set(delivered) <= delivered_entries
    print(f"\naudit crash test: {MESSAGES} messages, {KILLS} SIGKILLs ({kills_with_pending} with entries pending), "
          f"{report.entries} audit entries ({len(replays)} replays) under {report.tree_heads} tree heads, intact")


def _pending(backend, url: str) -> int:
    return backend.execute(url, "SELECT count(*) FROM audit_pending")[0][0]
