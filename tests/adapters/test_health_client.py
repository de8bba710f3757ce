"""HealthClient against the health simulator, over real HTTP on loopback."""

from __future__ import annotations

import datetime as dt

import pytest
from aiohttp import web

from adapters import rpn
from adapters.health.client import HealthClient
from adapters.health.simulator import create_simulator
from adapters.population import Population
from adapters.simulation import Behaviour, Recorder
from gateway.domain import Address, AttachmentState, Sex, make_iin
from gateway.workflows.ports import NotFound, SourceRejected, SourceUnavailable

POPULATION = Population(size=300)
IN_CUSTODY = next(p for p in POPULATION if p.in_custody and p.health.registrations)
ATTACHED_NOWHERE = next(p for p in POPULATION if not p.in_custody and p.attachment is None)
WITH_DISABILITY = next(p for p in POPULATION if p.health.disability is not None)
UNKNOWN_IIN = make_iin(dt.date(2004, 2, 29), Sex.FEMALE, 4242)
RESOLVED = next(d for d in POPULATION.districts if d.has_clinic)
UNRESOLVED = next(d for d in POPULATION.districts if not d.has_clinic)
UNTIL = dt.date(2027, 2, 1)


@pytest.fixture
def behaviour():
    return Behaviour()


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
async def simulator(aiohttp_server, behaviour, recorder):
    return await aiohttp_server(create_simulator(POPULATION, behaviour, recorder))


@pytest.fixture
def client(simulator, http):
    return HealthClient(str(simulator.make_url("")), http, timeout=2)


async def test_attachment_of_a_person_in_custody_is_the_facility_medical_unit(client):
    attachment = await client.attachment(IN_CUSTODY.iin)
    assert attachment == IN_CUSTODY.attachment
    assert attachment.clinic.code.startswith("MED-")


async def test_a_person_attached_nowhere_has_no_attachment(client):
    assert await client.attachment(ATTACHED_NOWHERE.iin) is None


async def test_health_summary_joins_registers_and_disability(client):
    assert await client.health_summary(IN_CUSTODY.iin) == IN_CUSTODY.health
    assert await client.health_summary(WITH_DISABILITY.iin) == WITH_DISABILITY.health


async def test_unknown_iin_is_not_found(client):
    with pytest.raises(NotFound) as raised:
        await client.attachment(UNKNOWN_IIN)
    assert raised.value.source == "health"
    with pytest.raises(NotFound):
        await client.health_summary(UNKNOWN_IIN)


async def test_placing_a_hold_twice_with_one_reference_returns_the_same_hold(client):
    first = await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-1")
    again = await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-1")
    assert again == first
    assert first.until == UNTIL


async def test_another_reference_places_another_hold(client):
    first = await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-1")
    second = await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-2")
    assert second.id != first.id


async def test_a_later_date_under_the_same_reference_extends_the_hold_and_an_earlier_one_does_not(client):
    first = await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-1")
    extended = await client.place_hold(IN_CUSTODY.iin, UNTIL + dt.timedelta(days=30), "case-1")
    retried = await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-1")
    assert extended.id == first.id and extended.until == UNTIL + dt.timedelta(days=30)
    assert retried == extended


async def test_the_attachment_shows_the_active_hold_until_it_is_released(client):
    hold = await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-1")
    assert (await client.attachment(IN_CUSTODY.iin)).continuity_hold == hold
    await client.release_hold(IN_CUSTODY.iin, hold.id)
    assert (await client.attachment(IN_CUSTODY.iin)).continuity_hold is None


async def test_releasing_a_hold_twice_is_not_an_error(client):
    hold = await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-1")
    await client.release_hold(IN_CUSTODY.iin, hold.id)
    await client.release_hold(IN_CUSTODY.iin, hold.id)


async def test_someone_elses_hold_cannot_be_released(client):
    hold = await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-1")
    with pytest.raises(NotFound):
        await client.release_hold(WITH_DISABILITY.iin, hold.id)


async def test_a_released_reference_cannot_be_placed_again(client):
    hold = await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-1")
    await client.release_hold(IN_CUSTODY.iin, hold.id)
    with pytest.raises(SourceRejected, match="409"):
        await client.place_hold(IN_CUSTODY.iin, UNTIL, "case-1")


async def test_a_person_attached_nowhere_cannot_be_held(client):
    with pytest.raises(SourceRejected, match="409") as raised:
        await client.place_hold(ATTACHED_NOWHERE.iin, UNTIL, "case-1")
    assert not isinstance(raised.value, NotFound)


async def test_clinic_for_an_address_is_the_clinic_of_its_territory(client):
    assert await client.clinic_for(Address(kato=RESOLVED.kato)) == RESOLVED.clinic


async def test_clinic_for_a_territory_without_a_registered_clinic_is_none(client):
    assert await client.clinic_for(Address(kato=UNRESOLVED.kato)) is None


async def test_clinic_for_an_address_without_kato_is_none(client):
    assert await client.clinic_for(Address(locality="Алматы", raw="Алматы, Абай даңғылы, 10")) is None


async def test_a_clinic_attaching_the_person_changes_the_attachment(client, simulator, http):
    request = rpn.attach_request(IN_CUSTODY.iin, RESOLVED.clinic.code, dt.date(2027, 1, 10))
    async with http.post(simulator.make_url("/rpn/v1/attachments"), json=request) as response:
        assert response.status == 201
    attachment = await client.attachment(IN_CUSTODY.iin)
    assert (attachment.clinic, attachment.since, attachment.state) == (
        RESOLVED.clinic, dt.date(2027, 1, 10), AttachmentState.ATTACHED
    )


async def test_attaching_at_a_clinic_outside_the_register_is_refused(simulator, http):
    request = rpn.attach_request(IN_CUSTODY.iin, UNRESOLVED.clinic.code, dt.date(2027, 1, 10))
    async with http.post(simulator.make_url("/rpn/v1/attachments"), json=request) as response:
        assert response.status == 422
        assert response.content_type == "application/problem+json"


async def test_an_outage_makes_the_source_unavailable(client, behaviour):
    behaviour.down = True
    with pytest.raises(SourceUnavailable, match="503"):
        await client.attachment(IN_CUSTODY.iin)


async def test_no_answer_within_the_timeout_makes_the_source_unavailable(simulator, http, behaviour):
    behaviour.latency = (0.5, 0.5)
    client = HealthClient(str(simulator.make_url("")), http, timeout=0.1)
    with pytest.raises(SourceUnavailable, match="no answer within 0.1 s"):
        await client.health_summary(IN_CUSTODY.iin)


async def test_a_closed_port_makes_the_source_unavailable(http, unused_tcp_port):
    client = HealthClient(f"http://127.0.0.1:{unused_tcp_port}", http, timeout=1)
    with pytest.raises(SourceUnavailable, match="cannot reach"):
        await client.attachment(IN_CUSTODY.iin)


async def test_too_many_requests_makes_the_source_unavailable(aiohttp_server, http):
    async def busy(request: web.Request) -> web.Response:
        return web.json_response({"title": "Too many requests"}, status=429)

    app = web.Application()
    app.router.add_post("/rpn/v1/attachments/_search", busy)
    server = await aiohttp_server(app)
    with pytest.raises(SourceUnavailable, match="429"):
        await HealthClient(str(server.make_url("")), http, timeout=1).attachment(IN_CUSTODY.iin)


async def test_an_answer_that_breaks_the_contract_is_rejected_without_quoting_it(aiohttp_server, http):
    async def garbled(request: web.Request) -> web.Response:
        return web.json_response({"iin": str(IN_CUSTODY.iin), "attachment": {"status": "active"}})

    app = web.Application()
    app.router.add_post("/rpn/v1/attachments/_search", garbled)
    server = await aiohttp_server(app)
    with pytest.raises(SourceRejected, match="attachment.medicalOrganisation is missing") as raised:
        await HealthClient(str(server.make_url("")), http, timeout=1).attachment(IN_CUSTODY.iin)
    assert str(IN_CUSTODY.iin) not in str(raised.value)


async def test_a_repeated_release_notice_is_answered_200_and_counted_as_a_duplicate(simulator, http, recorder):
    notice = IN_CUSTODY.release.model_dump(mode="json")
    statuses = []
    for _ in range(2):
        async with http.post(simulator.make_url("/release-notices"), json=notice, headers={"X-Message-Id": "m-1"}) as r:
            statuses.append(r.status)
    assert statuses == [202, 200]
    assert recorder.unique("health/release-notices") == {"m-1"} and recorder.duplicates == 1
