"""Crash safety: a gateway process killed with SIGKILL again and again loses nothing.

Senders relay 5,000 messages through a gateway subprocess to a loopback receiver
that counts X-Message-Ids. Meanwhile the gateway is killed at random moments
(at least ten times) and restarted. Senders whose request failed resend with the
same X-Message-Id, as a real client would. At the end every message that got a
202 must have reached the receiver; redeliveries (at-least-once) are counted
and reported, and each carries the same X-Message-Id so the receiver drops it.
"""

from __future__ import annotations

import asyncio
import random
import time

import aiohttp
import pytest

from gateway.config import load_config
from support import (
    Senders,
    GatewayProcess,
    RecordingReceiver,
    assert_first_receipts_follow_acceptance_order,
    free_port,
    leaks,
    write_config,
)

MESSAGES = 5000
KILLS = 10
SENDERS = 24


@pytest.mark.slow
async def test_no_accepted_message_is_lost_when_the_gateway_is_killed_repeatedly(tmp_path):
    receiver = await RecordingReceiver().start()
    config_dir = write_config(
        tmp_path / "config", receiver_url=receiver.url,
        delivery={"concurrency": 16, "request_timeout_seconds": 1, "lease_seconds": 2, "max_attempts": 1000,
                  "backoff_base_seconds": 0.02, "backoff_cap_seconds": 0.3, "max_age_seconds": 3600},
    )
    gateway = GatewayProcess(config_dir, free_port(), tmp_path / "gateway.log")
    senders = Senders([gateway.url], MESSAGES, keys=50, prefix="crash")
    rng = random.Random(7)
    gateway.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            await gateway.ready(session)

            async def killer() -> None:
                for _ in range(KILLS):
                    await asyncio.sleep(rng.uniform(0.3, 1.2))
                    gateway.kill()
                    await asyncio.sleep(rng.uniform(0.0, 0.2))
                    gateway.start()
                    await gateway.ready(session)

            await asyncio.gather(killer(), senders.run(session, SENDERS))
            assert gateway.starts == KILLS + 1
            assert len(senders.accepted) == MESSAGES

            wanted = set(senders.accepted.values())
            deadline = time.monotonic() + 90
            while not wanted <= receiver.unique_ids() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
    finally:
        gateway.stop()
        await receiver.close()

    missing = wanted - receiver.unique_ids()
    duplicates = len(receiver.received) - len(receiver.unique_ids())
    print(f"\ncrash test: {MESSAGES} accepted, {KILLS} SIGKILLs, {senders.resends} client resends, "
          f"{len(missing)} lost, {duplicates} redeliveries dropped by X-Message-Id at the receiver")
    assert not missing, f"{len(missing)} accepted messages never reached the receiver"
    assert receiver.unique_ids() <= wanted, "the receiver got a message nobody had sent"
    config = load_config(config_dir, environ={})
    await assert_first_receipts_follow_acceptance_order(config.store.url, receiver, 50, base_dir=config.base_dir)
    log_lines = gateway.log_path.read_text().splitlines()
    assert log_lines, "the gateway wrote no log"
    assert not leaks(log_lines), "personal data reached the gateway's log"
