"""The clinics' simulator: FHIR reception, attachment in РПН, and the acknowledgement call back."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from adapters.clinic.client import CONTENT_TYPE, Acknowledgement, continuity_notice_body
from adapters.clinic.simulator import PATH, create_simulator
from adapters.health.client import HealthClient
from adapters.health.simulator import create_simulator as create_health_simulator
from adapters.population import Population
from adapters.simulation import Recorder
from gateway.domain import ContinuityOfCareNotice, Organisation
from support import RecordingReceiver, wait_until

ASTANA = dt.timezone(dt.timedelta(hours=5))
POPULATION = Population(size=300)
RELEASED = [p for p in POPULATION if p.release is not None and POPULATION.clinic_for(p.release.destination)]


def notice_for(person, clinic: Organisation | None = None) -> ContinuityOfCareNotice:
    return ContinuityOfCareNotice(
        person=person.person,
        release_date=person.release.planned_date,
        residence=person.release.destination,
        health=person.health,
        attachment=person.attachment,
        receiving_clinic=clinic or POPULATION.clinic_for(person.release.destination),
        acknowledge_by=dt.datetime(2026, 12, 3, 18, 0, tzinfo=ASTANA),
    )


def body_of(notice: ContinuityOfCareNotice, notice_id: str) -> bytes:
    return continuity_notice_body(notice, notice_id=notice_id, sent_at=dt.datetime(2026, 11, 26, 9, 0, tzinfo=ASTANA))


@pytest.fixture
async def health(aiohttp_server):
    return await aiohttp_server(create_health_simulator(POPULATION))


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def start_clinics(aiohttp_server, health, receiver, recorder):
    async def start(**options):
        options = {"gateway_url": receiver.url, "health_url": str(health.make_url("")), **options}
        return await aiohttp_server(create_simulator(POPULATION, recorder=recorder, **options))

    return start


async def send(http, clinics, body: bytes, message_id: str = "m-1") -> int:
    headers = {"Content-Type": CONTENT_TYPE, "X-Message-Id": message_id}
    async with http.post(clinics.make_url(PATH), data=body, headers=headers) as response:
        return response.status


async def test_the_clinic_attaches_the_person_in_rpn_and_calls_the_gateway_back(start_clinics, receiver, health, http):
    person = RELEASED[0]
    notice = notice_for(person)
    clinics = await start_clinics()
    assert await send(http, clinics, body_of(notice, "case-1")) == 202
    await wait_until(lambda: receiver.received, timeout=5)
    (acknowledgement,) = receiver.received
    assert acknowledgement.path == "/api/v1/continuity-notices/case-1/acknowledgement"
    assert acknowledgement.headers["X-Member-Id"] == "clinic"
    assert acknowledgement.json() == {
        "clinic": notice.receiving_clinic.code,
        "accepted": True,
        "attached": True,
        "attached_since": notice.release_date.isoformat(),
    }
    assert Acknowledgement.model_validate_json(acknowledgement.body).attached
    attachment = await HealthClient(str(health.make_url("")), http, timeout=2).attachment(person.iin)
    assert attachment.clinic == notice.receiving_clinic and attachment.since == notice.release_date


async def test_a_never_answering_clinic_never_calls_back(start_clinics, receiver, http):
    silent = notice_for(RELEASED[0])
    answering = notice_for(next(p for p in RELEASED if notice_for(p).receiving_clinic != silent.receiving_clinic))
    clinics = await start_clinics(silent_clinics={silent.receiving_clinic.code})
    assert await send(http, clinics, body_of(silent, "case-silent"), "m-1") == 202
    assert await send(http, clinics, body_of(answering, "case-answered"), "m-2") == 202
    # The answering clinic's acknowledgement was sent after the silent one would have been.
    await wait_until(lambda: receiver.received, timeout=5)
    await asyncio.sleep(0.1)
    assert [r.path for r in receiver.received] == ["/api/v1/continuity-notices/case-answered/acknowledgement"]


async def test_a_clinic_that_does_not_attach_acknowledges_without_an_attachment(start_clinics, receiver, health, http):
    person = RELEASED[0]
    clinics = await start_clinics(attach=False, health_url=None)
    await send(http, clinics, body_of(notice_for(person), "case-1"))
    await wait_until(lambda: receiver.received, timeout=5)
    assert receiver.received[0].json()["attached"] is False
    assert receiver.received[0].json()["attached_since"] is None
    attachment = await HealthClient(str(health.make_url("")), http, timeout=2).attachment(person.iin)
    assert attachment == person.attachment


async def test_a_notice_for_a_clinic_nobody_knows_is_acknowledged_as_not_accepted(start_clinics, receiver, http):
    stranger = Organisation(code="PMSP-000000000", name="Белгісіз емхана")
    clinics = await start_clinics()
    await send(http, clinics, body_of(notice_for(RELEASED[0], stranger), "case-1"))
    await wait_until(lambda: receiver.received, timeout=5)
    assert receiver.received[0].json() == {"clinic": stranger.code, "accepted": False, "attached": False, "attached_since": None}


async def test_a_repeated_notice_is_answered_200_and_acknowledged_once(start_clinics, receiver, http, recorder):
    body = body_of(notice_for(RELEASED[0]), "case-1")
    clinics = await start_clinics()
    assert await send(http, clinics, body, "m-1") == 202
    assert await send(http, clinics, body, "m-1") == 200
    await wait_until(lambda: receiver.received, timeout=5)
    await asyncio.sleep(0.1)
    assert len(receiver.received) == 1
    assert recorder.duplicates == 1


async def test_the_acknowledgement_waits_for_the_configured_delay(start_clinics, receiver, http):
    clinics = await start_clinics(ack_delay=0.3)
    sent = asyncio.get_running_loop().time()
    await send(http, clinics, body_of(notice_for(RELEASED[0]), "case-1"))
    await wait_until(lambda: receiver.received, timeout=5)
    assert asyncio.get_running_loop().time() - sent >= 0.3


async def test_the_acknowledgement_is_retried_when_the_gateway_is_unavailable(aiohttp_server, health, http):
    gateway = await RecordingReceiver(respond=lambda body, seen: (503, {}) if seen == 1 else (200, {})).start()
    try:
        clinics = await aiohttp_server(
            create_simulator(POPULATION, gateway_url=gateway.url, health_url=str(health.make_url("")))
        )
        await send(http, clinics, body_of(notice_for(RELEASED[0]), "case-1"))
        await wait_until(lambda: gateway.received, timeout=5)
        assert gateway.seen == {"ack-case-1": 2}
    finally:
        await gateway.close()


async def test_a_bundle_that_is_not_valid_fhir_is_a_400(start_clinics, http, recorder):
    bundle = json.loads(body_of(notice_for(RELEASED[0]), "case-1"))
    bundle["entry"][0]["resource"]["focus"] = "Task"
    clinics = await start_clinics()
    assert await send(http, clinics, json.dumps(bundle).encode()) == 400
    assert recorder.deliveries == []


async def test_valid_fhir_that_breaks_the_profile_is_a_422(start_clinics, http):
    bundle = json.loads(body_of(notice_for(RELEASED[0]), "case-1"))
    bundle["type"] = "collection"
    clinics = await start_clinics()
    assert await send(http, clinics, json.dumps(bundle).encode()) == 422


def test_attaching_without_the_health_simulator_is_a_configuration_error(receiver):
    with pytest.raises(ValueError, match="health_url"):
        create_simulator(POPULATION, gateway_url=receiver.url)


def test_an_acknowledgement_that_claims_an_attachment_without_a_date_is_refused():
    with pytest.raises(ValueError, match="attached_since"):
        Acknowledgement(clinic="PMSP-711010000", accepted=True, attached=True, attached_since=None)
