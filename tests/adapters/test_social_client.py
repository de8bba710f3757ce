"""SocialClient and the social simulator's receptions, over real HTTP on loopback."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.population import Population
from adapters.simulation import Behaviour, Recorder
from adapters.social import codec
from adapters.social.client import CONTENT_TYPE, SocialClient, referral_body
from adapters.social.simulator import create_simulator
from gateway.domain import AssistanceCategory, AssistanceReferral, EmploymentNotice, Organisation, ReferralStatus, Sex, make_iin
from gateway.workflows.ports import NotFound, SourceUnavailable

POPULATION = Population(size=200)
PERSON = POPULATION.people[0]
RELEASED = next(p for p in POPULATION if p.release is not None)
UNKNOWN_IIN = make_iin(dt.date(2004, 2, 29), Sex.FEMALE, 4242)
REFERRAL = AssistanceReferral(
    referral_id="case-3/DOCUMENT_RESTORATION", iin=PERSON.iin, category=AssistanceCategory.DOCUMENT_RESTORATION,
    provider=Organisation(code="CSA-711010000", name="Әлеуметтік бейімдеу орталығы (Астана)"),
    referral_date=dt.date(2026, 12, 1), status=ReferralStatus.REFERRED,
)


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
    return SocialClient(str(simulator.make_url("")), http, timeout=2)


async def test_social_status_is_the_one_the_ministry_records(client):
    assert await client.social_status(PERSON.iin) == PERSON.social


async def test_unknown_iin_is_not_found(client):
    with pytest.raises(NotFound) as raised:
        await client.social_status(UNKNOWN_IIN)
    assert raised.value.source == "social"


async def test_an_outage_makes_the_source_unavailable(client, behaviour):
    behaviour.refuse_next = 1
    with pytest.raises(SourceUnavailable, match="503"):
        await client.social_status(PERSON.iin)
    assert behaviour.refused == 1
    assert await client.social_status(PERSON.iin) == PERSON.social  # the outage ended with its refusal


async def test_no_answer_within_the_timeout_makes_the_source_unavailable(simulator, http, behaviour):
    behaviour.latency = (0.5, 0.5)
    client = SocialClient(str(simulator.make_url("")), http, timeout=0.1)
    with pytest.raises(SourceUnavailable, match="no answer"):
        await client.social_status(PERSON.iin)


async def test_a_referral_gets_a_register_number_and_the_same_one_when_resent(simulator, http, recorder):
    answers = []
    headers = {"Content-Type": CONTENT_TYPE, "X-Message-Id": "m-7"}
    for _ in range(2):
        async with http.post(simulator.make_url("/referrals"), data=referral_body(REFERRAL), headers=headers) as response:
            answers.append((response.status, await response.json()))
    (first_status, first), (second_status, second) = answers
    assert (first_status, second_status) == (201, 200)
    assert first == second == {"register_id": "SSS-000001", "referral_id": REFERRAL.referral_id}
    assert recorder.duplicates == 1


async def test_a_referral_without_a_message_id_is_refused(simulator, http):
    async with http.post(simulator.make_url("/referrals"), json=codec.referral_json(REFERRAL)) as response:
        assert response.status == 400
        assert "X-Message-Id" in (await response.json())["detail"]


async def test_a_referral_that_is_not_a_valid_assistance_referral_is_refused(simulator, http):
    payload = codec.referral_json(REFERRAL) | {"status": "COMPLETED"}
    async with http.post(simulator.make_url("/referrals"), json=payload, headers={"X-Message-Id": "m-8"}) as response:
        assert response.status == 422
        assert "needs an outcome" in (await response.json())["detail"]


async def test_the_ministrys_system_also_receives_employment_notices(simulator, http, recorder):
    notice = EmploymentNotice.from_release(RELEASED.release, RELEASED.person, as_of=dt.date(2026, 12, 1))
    async with http.post(
        simulator.make_url("/employment/release-notices"), json=notice.model_dump(mode="json"), headers={"X-Message-Id": "e-1"}
    ) as response:
        assert response.status == 202
    assert recorder.unique("employment/release-notices") == {"e-1"}
