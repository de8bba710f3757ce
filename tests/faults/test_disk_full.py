"""The SQLite store's disk fills up under a running gateway: nothing unstored is acknowledged,
readiness says so, and the gateway recovers by itself when space returns.

The store lives on a small tmpfs the test mounts (root only, as in CI); the disk is filled with
a file and freed by deleting it, so the outage begins and ends when the test says.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from gateway.entrypoints.http.server import build
from support import make_config, person_payload, wait_until

RELAY = "/api/v1/relay/health/notices"
HEADERS = {"Content-Type": "application/json", "X-Member-Id": "penal", "X-Purpose": "continuity_of_care"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


@pytest.fixture
async def gateway_on_small_disk(small_disk, tmp_path, receiver):
    gateway = build(make_config(tmp_path / "config", receiver_url=receiver.url,
                                store_url=f"sqlite:///{small_disk / 'gateway.db'}"))
    await gateway.start(port=0)
    yield gateway
    await gateway.stop()


async def test_a_full_disk_gets_no_202_loses_nothing_and_the_gateway_recovers(gateway_on_small_disk, small_disk,
                                                                                receiver, http):
    gateway = gateway_on_small_disk
    await receiver.stop_listening()  # keep messages in the store while the disk fills
    acknowledged: list[str] = []

    async def send(count: int) -> list[int]:
        statuses = []
        for _ in range(count):
            message_id = f"disk-{uuid.uuid4()}"
            async with http.post(gateway.url + RELAY, json=person_payload(),
                                 headers={**HEADERS, "X-Message-Id": message_id}) as response:
                statuses.append(response.status)
                if response.status == 202:
                    acknowledged.append((await response.json())["message_id"])
        return statuses

    assert set(await send(20)) == {202}
    filler = _fill(small_disk)
    during = await send(50)
    assert 202 not in during[-10:], f"acknowledged with the disk full: {during}"
    assert set(during) <= {202, 503}
    async with http.get(gateway.url + "/readyz") as response:
        assert response.status == 503
        assert (await response.json())["checks"]["store"] != "ok"

    filler.unlink()
    async def ready() -> bool:
        async with http.get(gateway.url + "/readyz") as response:
            return response.status == 200
    await wait_until(ready, timeout=30)
    assert set(await send(10)) == {202}
    await receiver.listen()
    await wait_until(lambda: receiver.unique_ids() >= set(acknowledged), timeout=60)
    delivered = receiver.unique_ids()
    assert set(acknowledged) <= delivered
