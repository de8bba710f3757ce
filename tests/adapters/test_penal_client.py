"""PenalClient against the penal system's simulator over loopback."""

from __future__ import annotations

import pytest
from aiohttp import web

from adapters.penal.client import PenalClient
from adapters.penal.simulator import create_simulator
from adapters.population import Population
from adapters.simulation import Behaviour
from gateway.workflows.ports import NotFound, SourceRejected, SourceUnavailable
from soap.messages import stranger_iin
from soap.signing import credentials, stranger, verifier

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


# ----------------------------------------------------------------- signed both ways


@pytest.fixture
async def signed_penal():
    """The penal system signing with its key and accepting only what the gateway signed."""
    app = create_simulator(
        POPULATION, signer=credentials("penal").signer, verifier=verifier(credentials("gateway"), sender="gateway")
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_signed_request_gets_a_signed_custody_history_that_verifies(signed_penal, http):
    client = PenalClient(signed_penal, http, timeout=5, signer=credentials("gateway").signer,
                         verifier=verifier(credentials("penal")))
    person = POPULATION.in_custody()[0]
    assert await client.custody_history(person.iin) == list(person.custody)


async def test_a_signed_not_found_is_still_not_found(signed_penal, http):
    client = PenalClient(signed_penal, http, timeout=5, signer=credentials("gateway").signer,
                         verifier=verifier(credentials("penal")))
    with pytest.raises(NotFound, match="no record of this IIN"):
        await client.custody_history(stranger_iin(POPULATION))


async def test_a_request_signed_by_someone_else_than_the_gateway_is_refused(signed_penal, http):
    client = PenalClient(signed_penal, http, timeout=5, signer=stranger().signer)
    with pytest.raises(SourceRejected, match="certificate-unknown"):
        await client.custody_history(POPULATION.in_custody()[0].iin)


async def test_a_custody_history_signed_with_an_unpinned_key_is_not_used(signed_penal, http):
    client = PenalClient(signed_penal, http, timeout=5, signer=credentials("gateway").signer,
                         verifier=verifier(stranger()))
    with pytest.raises(SourceUnavailable, match="signature refused"):
        await client.custody_history(POPULATION.in_custody()[0].iin)
