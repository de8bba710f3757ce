"""InteriorClient against the interior ministry's simulator over loopback."""

from __future__ import annotations

import pytest
from aiohttp import web

from adapters.interior.client import InteriorClient
from adapters.interior.simulator import create_simulator
from adapters.population import Population
from adapters.simulation import Behaviour
from gateway.workflows.ports import NotFound, SourceUnavailable
from soap.messages import stranger_iin

POPULATION = Population(size=200)


@pytest.fixture
async def interior(http):
    behaviour = Behaviour()
    runner = web.AppRunner(create_simulator(POPULATION, behaviour), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield InteriorClient(f"http://127.0.0.1:{runner.addresses[0][1]}", http, timeout=5), behaviour
    await runner.cleanup()


async def test_person_is_the_population_s_with_kazakh_letters_intact(interior):
    client, _ = interior
    kazakh = next(p for p in POPULATION if any(letter in p.person.surname for letter in "әғқңөұүһі"))
    assert await client.person(kazakh.iin) == kazakh.person


async def test_convictions_include_the_expunged_ones(interior):
    client, _ = interior
    person = next(p for p in POPULATION if any(c.expunged for c in p.convictions))
    convictions = await client.convictions(person.iin)
    assert convictions == list(person.convictions)
    assert any(conviction.expunged for conviction in convictions)


async def test_pretrial_case_is_found_by_its_erdr_number(interior):
    client, _ = interior
    suspect = POPULATION.suspects()[0]
    assert await client.pretrial_case(suspect.pretrial_case.erdr_number) == suspect.pretrial_case


async def test_registered_residence_is_the_population_s(interior):
    client, _ = interior
    person = POPULATION.people[3]
    assert await client.registered_residence(person.iin) == person.residence


async def test_unknown_iin_is_not_found(interior):
    client, _ = interior
    with pytest.raises(NotFound, match="not-found"):
        await client.person(stranger_iin(POPULATION))


async def test_unknown_erdr_number_is_not_found(interior):
    client, _ = interior
    with pytest.raises(NotFound, match="ЕРДР"):
        await client.pretrial_case("999999999999999")


async def test_simulator_outage_is_source_unavailable(interior):
    client, behaviour = interior
    behaviour.down = True
    with pytest.raises(SourceUnavailable, match="HTTP 503"):
        await client.convictions(POPULATION.people[0].iin)
