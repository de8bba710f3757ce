"""PostgreSQL goes away under a running gateway — the network to it cut, or the server
restarted: no 202 for anything not stored, no acknowledged message lost, readiness reports the
fault, and the gateway recovers without a restart of its own.

Traffic goes through a TCP proxy on loopback (``tests/tcp_proxy.py``) that the test cuts and
restores, so the outage begins and ends when the test says.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import aiohttp
import pytest

from backends import POSTGRES_URL
from gateway.entrypoints.http.server import build
from support import make_config, person_payload, wait_until
from tcp_proxy import TcpProxy

RELAY = "/api/v1/relay/health/notices"
HEADERS = {"Content-Type": "application/json", "X-Member-Id": "penal", "X-Purpose": "continuity_of_care"}


@pytest.fixture
async def proxied(tmp_path, receiver, postgres_backend):
    target = urlsplit(POSTGRES_URL)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    url = postgres_backend.fresh_url().replace(f"{target.hostname}:{target.port or 5432}", f"127.0.0.1:{proxy.port}")
    gateway = build(make_config(tmp_path / "config", receiver_url=receiver.url, store_url=url))
    await gateway.start(port=0)
    yield gateway, proxy
    await proxy.restore()
    await gateway.stop()
    await proxy.close()


class Sender:
    """Sends relays one at a time, keeping the ids of those answered 202."""

    def __init__(self, gateway, http: aiohttp.ClientSession) -> None:
        self.gateway, self.http = gateway, http
        self.acknowledged: list[str] = []

    async def send(self, count: int, timeout: float = 30.0) -> list[int | str]:
        statuses: list[int | str] = []
        for _ in range(count):
            try:
                async with self.http.post(self.gateway.url + RELAY, json=person_payload(),
                                          headers={**HEADERS, "X-Message-Id": f"pg-{uuid.uuid4()}"},
                                          timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                    statuses.append(response.status)
                    if response.status == 202:
                        self.acknowledged.append((await response.json())["message_id"])
            except TimeoutError:
                statuses.append("timeout")  # the caller gave up; nothing was acknowledged
        return statuses


async def _ready(http, gateway) -> bool:
    async with http.get(gateway.url + "/readyz") as response:
        return response.status == 200


async def _not_ready(http, gateway) -> str:
    async with http.get(gateway.url + "/readyz", timeout=aiohttp.ClientTimeout(total=15)) as response:
        assert response.status == 503
        return (await response.json())["checks"]["store"]


async def _recovers_and_delivers_everything(sender: Sender, receiver, http) -> None:
    await wait_until(lambda: _ready(http, sender.gateway), timeout=90, interval=0.5)
    assert set(await sender.send(10)) == {202}
    await receiver.listen()
    await wait_until(lambda: receiver.unique_ids() >= set(sender.acknowledged), timeout=90)


async def test_a_cut_network_to_postgresql_acknowledges_nothing_unstored_and_recovers(proxied, receiver, http):
    gateway, proxy = proxied
    sender = Sender(gateway, http)
    await receiver.stop_listening()  # messages stay in the store until the end
    assert set(await sender.send(10)) == {202}
    acknowledged_before = list(sender.acknowledged)

    proxy.cut()
    assert (await _not_ready(http, gateway)).startswith("unreachable")
    during = await sender.send(3, timeout=4)
    assert 202 not in during, during  # nothing can be committed while nothing reaches the server
    await proxy.restore()

    await _recovers_and_delivers_everything(sender, receiver, http)
    assert set(acknowledged_before) <= receiver.unique_ids()


async def test_a_restarted_postgresql_refuses_with_503_while_down_and_the_gateway_reconnects(proxied, receiver, http):
    gateway, proxy = proxied
    sender = Sender(gateway, http)
    await receiver.stop_listening()
    assert set(await sender.send(10)) == {202}

    await proxy.restart()
    assert (await _not_ready(http, gateway)).startswith("unreachable")
    during = await sender.send(5, timeout=20)
    assert set(during) == {503}, during  # refused promptly (the pool's acquire timeout), never left hanging
    await proxy.restore()

    await _recovers_and_delivers_everything(sender, receiver, http)
