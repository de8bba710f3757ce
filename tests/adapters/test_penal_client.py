"""PenalClient against the penal system's simulator over loopback."""

from __future__ import annotations

import pytest
from aiohttp import web

from adapters.penal.client import PenalClient
from adapters.penal.simulator import create_simulator
from adapters.population import Population
from adapters.simulation import Behaviour
from gateway.workflows.ports import NotFound, SourceUnavailable
from soap.messages import stranger_iin

POPULATION = Population(size=150)


@pytest.fixture
async def penal():
    behaviour = Behaviour()
    runner = web.AppRunner(create_simulator(POPULATION, behaviour), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", behaviour
    await runner.cleanup()


async def test_custody_history_is_the_population_s(penal, http):
    url, _ = penal
    client = PenalClient(url, http, timeout=5)
    for person in POPULATION.in_custody()[:5] + [p for p in POPULATION if not p.custody][:2]:
        assert await client.custody_history(person.iin) == list(person.custody)


async def test_unknown_iin_is_not_found(penal, http):
    url, _ = penal
    with pytest.raises(NotFound, match="no record of this IIN"):
        await PenalClient(url, http, timeout=5).custody_history(stranger_iin(POPULATION))


async def test_simulator_outage_is_source_unavailable(penal, http):
    url, behaviour = penal
    behaviour.down = True
    with pytest.raises(SourceUnavailable, match="HTTP 503"):
        await PenalClient(url, http, timeout=5).custody_history(POPULATION.in_custody()[0].iin)


async def test_slow_simulator_is_source_unavailable_after_the_timeout(penal, http):
    url, behaviour = penal
    behaviour.latency = (1.0, 1.0)
    with pytest.raises(SourceUnavailable, match="no answer within 0.2 s"):
        await PenalClient(url, http, timeout=0.2).custody_history(POPULATION.in_custody()[0].iin)


async def test_closed_port_is_source_unavailable(http):
    with pytest.raises(SourceUnavailable, match="cannot connect"):
        await PenalClient("http://127.0.0.1:1", http, timeout=2).custody_history(POPULATION.in_custody()[0].iin)


async def test_simulator_publishes_its_wsdl(penal, http):
    url, _ = penal
    async with http.get(f"{url}/soap/penal?wsdl") as response:
        assert response.status == 200
        assert f'location="{url}/soap/penal"'.encode() in await response.read()
