"""The whole exchange in mTLS mode: every hop on loopback is TLS with a certificate from one CA.

The penal system notifies a release with its certificate, the gateway calls the agency
simulators (HTTPS, client certificate required) with its own, and the clinic acknowledges by
calling the gateway back with the clinic's certificate, until the case closes.
"""

from __future__ import annotations

import aiohttp

from gateway.entrypoints.tools.simulate import running_system
from support import wait_until
from workflow_steps import FAST, POPULATION, TREATED, case_reaches, notify_release


def client(system, member: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=system.client_ssl(member)))


async def test_a_release_case_closes_with_every_hop_on_mutual_tls(tmp_path):
    async with running_system(tmp_path / "system", population=POPULATION, settings=FAST, mtls=True) as system:
        assert system.gateway.url.startswith("https://")
        assert all(url.startswith("https://") for url in system.simulation.urls.values())
        async with client(system, "penal") as penal, client(system, "operations") as operations:
            case_id = await notify_release(penal, system, TREATED)
            case = await case_reaches(operations, system, case_id, "closed")
        assert case["acknowledgement"]["attached"] is True  # the clinic's callback got through
        clinic = system.simulation.recorder("clinic")
        await wait_until(lambda: clinic.deliveries)
        assert clinic.deliveries[0].headers["X-Sender"] == "gateway"

