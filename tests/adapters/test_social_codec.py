"""The Ministry of Labour and Social Protection's JSON ⇄ canonical model."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.population import Population
from adapters.social import codec
from gateway.domain import (
    AssistanceCategory,
    AssistanceReferral,
    Housing,
    HousingKind,
    Organisation,
    ReferralOutcome,
    ReferralStatus,
    Sex,
    SocialStatus,
    make_iin,
)

POPULATION = Population(size=400)
IIN = make_iin(dt.date(1979, 12, 1), Sex.FEMALE, 33)


def test_every_social_status_in_the_population_survives_a_round_trip():
    for person in POPULATION:
        assert codec.social_status_from_json(codec.social_status_json(person.social)) == person.social


def test_an_unknown_social_status_survives_a_round_trip_as_unknown():
    status = SocialStatus(iin=IIN)
    assert codec.social_status_from_json(codec.social_status_json(status)) == status


def test_codes_are_lower_case_and_family_is_grouped_in_the_ministrys_json():
    status = SocialStatus(
        iin=IIN, dependants=2, housing=Housing(available=True, kind=HousingKind.ADAPTATION_CENTRE),
        specialty="тігінші", benefits=("Әлеуметтік жәрдемақы",),
    )
    native = codec.social_status_json(status)
    assert native["family"] == {"maritalStatus": None, "dependants": 2}
    assert native["housing"] == {"hasHousing": True, "kind": "adaptation_centre"}
    assert codec.social_status_from_json(native) == status


def test_an_upper_case_code_from_the_ministry_is_refused():
    native = codec.social_status_json(SocialStatus(iin=IIN)) | {"education": "HIGHER"}
    with pytest.raises(ValueError, match="education must be one of none, primary"):
        codec.social_status_from_json(native)


def test_a_completed_referral_survives_a_round_trip():
    referral = AssistanceReferral(
        referral_id="case-7/DOCUMENT_RESTORATION", iin=IIN, category=AssistanceCategory.DOCUMENT_RESTORATION,
        provider=Organisation(code="CSA-711010000", name="Әлеуметтік бейімдеу орталығы (Астана)"),
        referral_date=dt.date(2026, 12, 1), reason="жеке куәлігі жоқ", status=ReferralStatus.COMPLETED,
        outcome=ReferralOutcome.ASSISTED,
    )
    assert codec.referral_from_json(codec.referral_json(referral)) == referral
