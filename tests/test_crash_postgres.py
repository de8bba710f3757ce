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
import json
import random
import time

import aiohttp
import pytest

from support import (
    GatewayProcess,
    RecordingReceiver,
    assert_first_receipts_follow_acceptance_order,
    free_port,
    leaks,
    person_payload,
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
    accepted: dict[str, str] = {}
    resends = 0
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
            queue: asyncio.Queue[int] = asyncio.Queue()
            for number in range(MESSAGES):
                queue.put_nowait(number)

            async def sender() -> None:
                nonlocal resends
                while not queue.empty():
                    number = queue.get_nowait()
                    client_id = f"scale-{number}"
                    body = json.dumps(person_payload(number))
                    headers = {"Content-Type": "application/json", "X-Member-Id": "penal",
                               "X-Purpose": "continuity_of_care", "X-Message-Id": client_id,
                               "X-Ordering-Key": f"case-{number % KEYS}"}
                    for attempt in range(2000):  # bounded: ~100 s of retries at most
                        gateway = gateways[(number + attempt) % INSTANCES]
                        try:
                            async with session.post(gateway.url + "/api/v1/relay/health/notices",
                                                    data=body, headers=headers) as response:
                                if response.status == 202:
                                    accepted[client_id] = (await response.json())["message_id"]
                                    break
                                assert response.status >= 500, await response.text()
                        except (aiohttp.ClientError, asyncio.TimeoutError):
                            pass
                        resends += 1
                        await asyncio.sleep(0.05)
                    else:
                        raise AssertionError(f"{client_id} was never accepted")

            async def killer() -> None:
                victim = gateways[0]
                for _ in range(KILLS):
                    await asyncio.sleep(rng.uniform(0.5, 1.5))
                    victim.kill()
                    await asyncio.sleep(rng.uniform(0.1, 0.5))
                    victim.start()
                    await victim.ready(session)

            await asyncio.gather(killer(), *(sender() for _ in range(SENDERS)))
            assert len(accepted) == MESSAGES
            wanted = set(accepted.values())
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
          f"{resends} client resends, {len(missing)} lost, {duplicates} redeliveries dropped by X-Message-Id")
    assert not missing, f"{len(missing)} accepted messages never reached the receiver"
    assert receiver.unique_ids() <= wanted
    await assert_first_receipts_follow_acceptance_order(store_url, receiver, KEYS)
    for gateway in gateways:
        assert not leaks(gateway.log_path.read_text().splitlines())
