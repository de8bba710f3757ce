"""InteriorClient against the interior ministry's simulator over loopback."""

from __future__ import annotations

import pytest
from aiohttp import web
from lxml import etree

from adapters.interior.client import InteriorClient
from adapters.interior.simulator import RELEASE_NOTICE, RELEASE_NOTICES, create_simulator
from adapters.population import Population
from adapters.simulation import Behaviour, Recorder
from gateway.soap.envelope import BusRequest, build_envelope, build_request, parse_envelope, read_response, serialise
from gateway.soap.faults import read_fault
from gateway.workflows.ports import NotFound, SourceRejected, SourceUnavailable
from soap.messages import sent_at, stranger_iin
from soap.signing import Credentials, credentials, stranger, verifier

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


# ----------------------------------------------------------------- signed both ways


def gateway() -> Credentials:
    return credentials("gateway")


def ministry() -> Credentials:
    return credentials("interior")


@pytest.fixture
async def serve():
    """Start the ministry's simulator with the given signing; returns its URL."""
    runners = []

    async def start(**signing) -> str:
        runner = web.AppRunner(create_simulator(POPULATION, **signing), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def signed_ministry(serve):
    """The ministry signing with its key and accepting only what the gateway signed."""
    return serve(signer=ministry().signer, verifier=verifier(gateway(), sender="gateway"))


async def test_signed_requests_get_signed_answers_that_verify(serve, http):
    client = InteriorClient(await signed_ministry(serve), http, timeout=5, signer=gateway().signer,
                            verifier=verifier(ministry(), sender="interior"))
    person = next(p for p in POPULATION if p.convictions)
    assert await client.convictions(person.iin) == list(person.convictions)


async def test_the_ministry_refuses_a_request_the_gateway_did_not_sign(serve, http):
    client = InteriorClient(await signed_ministry(serve), http, timeout=5)
    with pytest.raises(SourceRejected, match="signature-required"):
        await client.person(POPULATION.in_custody()[0].iin)


async def test_an_answer_signed_with_a_key_not_pinned_for_the_ministry_is_not_used(serve, http):
    client = InteriorClient(await signed_ministry(serve), http, timeout=5, signer=gateway().signer,
                            verifier=verifier(stranger(), sender="interior"))
    with pytest.raises(SourceUnavailable, match="signature refused: certificate-unknown"):
        await client.person(POPULATION.in_custody()[0].iin)


async def test_an_unsigned_answer_from_a_ministry_that_must_sign_is_not_used(serve, http):
    client = InteriorClient(await serve(), http, timeout=5, signer=gateway().signer,
                            verifier=verifier(ministry(), sender="interior"))
    with pytest.raises(SourceUnavailable, match="signature refused: signature-required"):
        await client.person(POPULATION.in_custody()[0].iin)


async def test_a_relayed_release_notice_is_recorded_and_anything_else_refused(http):
    recorder = Recorder()
    runner = web.AppRunner(create_simulator(POPULATION, recorder=recorder), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/soap/interior"

    async def send(data: etree._Element) -> tuple[int, bytes]:
        body = serialise(build_envelope(build_request(BusRequest(
            message_id="gw-1", service_id=RELEASE_NOTICES, message_date=sent_at("gw-1"), sender_id="gateway",
            data=data))))
        async with http.post(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"}) as response:
            return response.status, await response.read()

    try:
        notice = etree.Element(RELEASE_NOTICE)
        etree.SubElement(notice, f"{{{etree.QName(RELEASE_NOTICE).namespace}}}release_type").text = "PAROLE"
        status, answer = await send(notice)
        assert status == 200 and read_response(parse_envelope(answer).body).status_code == "OK"
        assert len(recorder.of(f"interior/{RELEASE_NOTICES}")) == 1
        status, answer = await send(etree.Element("{urn:example:ping}ping"))
        assert status == 500 and read_fault(parse_envelope(answer).body).error_code == "unexpected-data"
        assert len(recorder.deliveries) == 1
    finally:
        await runner.cleanup()
