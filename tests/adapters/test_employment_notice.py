"""The employment-centre notice: exactly five fields, and a reception that refuses any other."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.employment.client import CONTENT_TYPE, employment_notice_body
from adapters.employment.codec import FIELDS, employment_notice_from_json, employment_notice_json
from adapters.employment.simulator import PATH, create_simulator
from adapters.population import Population
from adapters.simulation import Recorder
from gateway.domain import Address, Education, EmploymentNotice

POPULATION = Population(size=100)
DISTRICT = POPULATION.districts[4]
KAZAKH_TEXT = st.text(alphabet="ӘәҒғҚқҢңӨөҰұҮүҺһІіАаБбЕеЖжЗзКкЛлМмНнОоПпСсТтУуШш -,.0123456789", min_size=1, max_size=40).filter(str.strip)
ADDRESSES = st.builds(
    Address,
    kato=st.one_of(st.none(), st.from_regex(r"[0-9]{9}", fullmatch=True)),
    region=st.one_of(st.none(), KAZAKH_TEXT),
    locality=KAZAKH_TEXT,
    street=st.one_of(st.none(), KAZAKH_TEXT),
    house=st.one_of(st.none(), KAZAKH_TEXT),
    flat=st.one_of(st.none(), KAZAKH_TEXT),
    raw=st.one_of(st.none(), KAZAKH_TEXT),
)
NOTICES = st.builds(
    EmploymentNotice,
    age=st.integers(14, 150),
    release_date=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    residence=ADDRESSES,
    education=st.one_of(st.none(), st.sampled_from(Education)),
    specialty=st.one_of(st.none(), KAZAKH_TEXT),
)
NOTICE = EmploymentNotice(
    age=34, release_date=dt.date(2026, 12, 20),
    residence=Address(kato=DISTRICT.kato, region=DISTRICT.region, locality=DISTRICT.locality, street="Сәтбаев көшесі", house="12"),
    education=Education.TECHNICAL_VOCATIONAL, specialty="электрогазосварщик",
)


@given(NOTICES)
def test_any_notice_survives_a_round_trip_with_kazakh_letters(notice):
    assert employment_notice_from_json(employment_notice_json(notice)) == notice


def test_the_json_has_exactly_the_five_fields_of_the_strategy():
    assert tuple(employment_notice_json(NOTICE)) == FIELDS == ("age", "release_date", "residence", "education", "specialty")


def test_decoding_names_a_sixth_field():
    with pytest.raises(ValueError, match="fields not permitted: iin"):
        employment_notice_from_json(employment_notice_json(NOTICE) | {"iin": "900215300028"})


def test_decoding_refuses_a_missing_field_even_when_it_would_be_null():
    payload = employment_notice_json(NOTICE)
    del payload["specialty"]
    with pytest.raises(ValueError, match="fields missing: specialty"):
        employment_notice_from_json(payload)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
async def reception(aiohttp_server, recorder):
    return await aiohttp_server(create_simulator(POPULATION, recorder=recorder))


async def test_the_reception_accepts_the_outbox_body_and_names_the_centre_for_the_residence(reception, http, recorder):
    headers = {"Content-Type": CONTENT_TYPE, "X-Message-Id": "e-1"}
    async with http.post(reception.make_url(PATH), data=employment_notice_body(NOTICE), headers=headers) as r:
        assert r.status == 202
        assert (await r.json())["employment_centre"]["code"] == DISTRICT.employment_centre.code
    assert recorder.unique("employment/release-notices") == {"e-1"}


async def test_the_reception_refuses_a_sixth_field(reception, http, recorder):
    payload = employment_notice_json(NOTICE) | {"birth_date": "1992-03-10"}
    async with http.post(reception.make_url(PATH), json=payload, headers={"X-Message-Id": "e-2"}) as response:
        assert response.status == 422
        assert response.content_type == "application/problem+json"
        assert "birth_date" in (await response.json())["detail"]
    assert recorder.deliveries == []


async def test_the_reception_refuses_a_field_smuggled_into_the_residence(reception, http):
    payload = employment_notice_json(NOTICE)
    payload["residence"] = payload["residence"] | {"facility": "УГ-157/1"}
    async with http.post(reception.make_url(PATH), json=payload) as response:
        assert response.status == 422
        assert "residence.facility" in (await response.json())["detail"]


async def test_a_repeated_message_id_is_answered_200_and_counted_once(reception, http, recorder):
    for expected in (202, 200):
        async with http.post(reception.make_url(PATH), json=employment_notice_json(NOTICE), headers={"X-Message-Id": "e-3"}) as r:
            assert r.status == expected
    assert recorder.duplicates == 1


async def test_malformed_json_is_a_400(reception, http):
    body = b'{"age": 34, "age": 35}'
    async with http.post(reception.make_url(PATH), data=body, headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400
