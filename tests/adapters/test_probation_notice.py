"""The post-release probation notice and the probation offices' reception."""

from __future__ import annotations

import pytest

from adapters.population import Population
from adapters.probation.client import CONTENT_TYPE, probation_notice_body
from adapters.probation.codec import probation_notice_from_json, probation_notice_json
from gateway.domain import ProbationNotice
from adapters.probation.simulator import PATH, create_simulator
from adapters.simulation import Recorder
from gateway.domain import Organisation, ReleaseEvent

POPULATION = Population(size=300)
PAROLED = next(p for p in POPULATION if p.release is not None and p.release.probation_office is not None)
END_OF_TERM = next(p for p in POPULATION if p.release is not None and p.release.probation_office is None)
NOTICE = ProbationNotice.from_release(ReleaseEvent.PLANNED, PAROLED.release, PAROLED.person)


def test_a_notice_built_from_a_parole_release_survives_a_round_trip():
    assert probation_notice_from_json(probation_notice_json(NOTICE)) == NOTICE


def test_the_notice_carries_identity_release_and_office_but_no_health_or_record():
    assert set(probation_notice_json(NOTICE)) == {
        "event", "person", "release_type", "release_date", "facility", "destination", "probation_office"
    }


def test_a_release_without_post_release_probation_gives_no_notice():
    with pytest.raises(ValueError, match="no probation office"):
        ProbationNotice.from_release(ReleaseEvent.PLANNED, END_OF_TERM.release, END_OF_TERM.person)


def test_a_notice_about_another_person_is_refused():
    with pytest.raises(ValueError, match="different IINs"):
        ProbationNotice.from_release(ReleaseEvent.ACTUAL, PAROLED.release, END_OF_TERM.person)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
async def reception(aiohttp_server, recorder):
    return await aiohttp_server(create_simulator(POPULATION, recorder=recorder))


async def test_the_office_records_a_notice_and_counts_a_repeat_as_a_duplicate(reception, http, recorder):
    headers = {"Content-Type": CONTENT_TYPE, "X-Message-Id": "p-1"}
    for expected in (202, 200):
        async with http.post(reception.make_url(PATH), data=probation_notice_body(NOTICE), headers=headers) as r:
            assert r.status == expected
    assert recorder.unique("probation/release-notices") == {"p-1"} and recorder.duplicates == 1


async def test_a_notice_for_an_office_outside_the_register_is_refused(reception, http, recorder):
    notice = NOTICE.model_copy(update={"probation_office": Organisation(code="PROB-000000000", name="Жоқ")})
    async with http.post(reception.make_url(PATH), json=probation_notice_json(notice)) as response:
        assert response.status == 422
        assert "probation_office" in (await response.json())["detail"]
    assert recorder.deliveries == []


async def test_a_notice_with_an_unknown_field_is_refused(reception, http):
    payload = probation_notice_json(NOTICE) | {"convictions": []}
    async with http.post(reception.make_url(PATH), json=payload) as response:
        assert response.status == 422
        assert "convictions" in (await response.json())["detail"]
