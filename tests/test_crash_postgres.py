"""Scale-out on PostgreSQL: three gateway instances, one of them killed again and again.

10,000 messages are relayed through three ``gateway serve`` processes sharing one
PostgreSQL schema, to a loopback receiver that counts X-Message-Ids. Senders
spread the load over the instances and, when an instance fails them, resend the
same X-Message-Id to another one. Meanwhile one instance is killed with SIGKILL
several times and restarted. At the end every accepted message must have been
delivered, duplicates are counted (at least once, deduplicable), and each
ordering key's messages reached the receiver in the order they were accepted.
"""

from __future__ import annotations

import asyncio
import random
import time

import aiohttp
import pytest

from support import (
    Senders,
    GatewayProcess,
    RecordingReceiver,
    assert_first_receipts_follow_acceptance_order,
    free_port,
    leaks,
    write_config,
)

MESSAGES = 10_000
INSTANCES = 3
KILLS = 5
SENDERS = 32
KEYS = 100


@pytest.mark.slow
async def test_three_instances_on_postgresql_lose_nothing_when_one_is_killed_repeatedly(tmp_path, postgres_backend):
    store_url = postgres_backend.fresh_url()
    receiver = await RecordingReceiver().start()
    config_dir = write_config(
        tmp_path / "config", receiver_url=receiver.url, store_url=store_url,
        delivery={"concurrency": 16, "request_timeout_seconds": 1, "lease_seconds": 2, "max_attempts": 1000,
                  "backoff_base_seconds": 0.02, "backoff_cap_seconds": 0.3, "max_age_seconds": 3600},
    )
    gateways = [GatewayProcess(config_dir, free_port(), tmp_path / f"gateway-{n}.log") for n in range(INSTANCES)]
    senders = Senders([g.url for g in gateways], MESSAGES, keys=KEYS, prefix="scale")
    rng = random.Random(5)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            # The first instance creates the schema and the audit keys the others then share.
            gateways[0].start()
            await gateways[0].ready(session)
            for gateway in gateways[1:]:
                gateway.start()
            for gateway in gateways[1:]:
                await gateway.ready(session)
            async def killer() -> None:
                victim = gateways[0]
                for _ in range(KILLS):
                    await asyncio.sleep(rng.uniform(0.5, 1.5))
                    victim.kill()
                    await asyncio.sleep(rng.uniform(0.1, 0.5))
                    victim.start()
                    await victim.ready(session)

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

    missing = wanted - receiver.unique_ids()
    duplicates = len(receiver.received) - len(receiver.unique_ids())
    print(f"\nscale-out crash test: {MESSAGES} accepted by {INSTANCES} instances, {KILLS} SIGKILLs, "
          f"{senders.resends} client resends, {len(missing)} lost, {duplicates} redeliveries dropped by X-Message-Id")
    assert not missing, f"{len(missing)} accepted messages never reached the receiver"
    assert receiver.unique_ids() <= wanted
    await assert_first_receipts_follow_acceptance_order(store_url, receiver, KEYS)
    for gateway in gateways:
        assert not leaks(gateway.log_path.read_text().splitlines())
