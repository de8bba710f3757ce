"""The Ministry of Healthcare's JSON ⇄ canonical model: round trips and refusals."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters import rpn
from adapters.health import codec
from adapters.population import Population
from gateway.domain import Attachment, AttachmentState, ContinuityHold, HealthSummary, Organisation, Programme, Sex, make_iin

POPULATION = Population(size=400)
IIN = make_iin(dt.date(1985, 7, 14), Sex.MALE, 17)
CLINIC = Organisation(code="PMSP-751110000", name="Қалалық емхана №1 (Алматы)")


def test_every_attachment_in_the_population_survives_a_round_trip():
    for person in POPULATION:
        assert rpn.attachment_from_json(rpn.attachment_json(person.iin, person.attachment)) == person.attachment


def test_an_attachment_with_a_hold_survives_a_round_trip():
    attachment = Attachment(
        iin=IIN, clinic=CLINIC, since=dt.date(2020, 1, 2), state=AttachmentState.PENDING,
        continuity_hold=ContinuityHold(id="H00000001", until=dt.date(2027, 1, 1)),
    )
    assert rpn.attachment_from_json(rpn.attachment_json(IIN, attachment)) == attachment


def test_every_health_summary_in_the_population_survives_a_round_trip_with_kazakh_and_russian_text():
    for person in POPULATION:
        summary = person.health
        answer = codec.health_summary_from_json(
            codec.registrations_json(summary), codec.disability_json(summary.iin, summary.disability)
        )
        assert answer == summary


def test_registers_are_named_in_full_in_the_ministrys_json():
    summary = next(p.health for p in POPULATION if any(r.programme is Programme.NARCO for r in p.health.registrations))
    registers = {r["register"] for r in codec.registrations_json(summary)["registrations"]}
    assert "NARCOLOGY" in registers and "NARCO" not in registers


def test_a_clinic_survives_a_round_trip():
    assert rpn.clinic_from_json(rpn.clinic_json("751110000", CLINIC)) == CLINIC


def test_a_hold_survives_a_round_trip():
    hold = ContinuityHold(id="H00000042", until=dt.date(2027, 3, 1))
    assert rpn.hold_from_json(rpn.hold_json(hold, iin=IIN, reference="case-1", released=False)) == hold


def test_a_hold_request_survives_a_round_trip():
    assert rpn.hold_request_from_json(rpn.hold_request(IIN, dt.date(2027, 3, 1), "case-1")) == (
        IIN, dt.date(2027, 3, 1), "case-1"
    )


def test_answers_about_two_people_do_not_make_one_summary():
    other = make_iin(dt.date(1990, 1, 1), Sex.FEMALE, 5)
    with pytest.raises(ValueError, match="different people"):
        codec.health_summary_from_json(
            codec.registrations_json(HealthSummary(iin=IIN)), codec.disability_json(other, None)
        )


def test_an_unknown_register_is_refused_with_the_codes_that_are_known():
    answer = {"iin": str(IIN), "registrations": [{"register": "LEPROSY", "icd10": "A30", "registeredOn": "2020-01-01"}]}
    with pytest.raises(ValueError, match=r"registrations\[0\].register must be one of DIABETES"):
        codec.health_summary_from_json(answer, codec.disability_json(IIN, None))


def test_a_malformed_date_is_refused_without_quoting_it():
    answer = {"iin": str(IIN), "registrations": [{"register": "HIV", "icd10": "B20", "registeredOn": "1985-07-45"}]}
    with pytest.raises(ValueError) as raised:
        codec.health_summary_from_json(answer, codec.disability_json(IIN, None))
    assert "registeredOn" in str(raised.value) and "1985-07-45" not in str(raised.value)


def test_an_invalid_iin_in_a_query_is_refused():
    with pytest.raises(ValueError, match="check digit"):
        codec.iin_from_query({"iin": IIN[:-1] + str((int(IIN[-1]) + 1) % 10)})
    with pytest.raises(ValueError, match="query.iin must be a string"):
        codec.iin_from_query({"iin": int(IIN)})
