"""The pre-trial report: every section accounted for, about its subject, no expunged conviction."""

import datetime as dt

import pytest
from pydantic import ValidationError

from gateway.domain import (
    Conviction,
    HealthSummary,
    NeedLevel,
    Organisation,
    Person,
    PretrialCase,
    PreTrialReport,
    ReportSection,
    ReportSections,
    RiskBand,
    RiskNeeds,
    SentenceKind,
    Sex,
    SocialStatus,
    SourceStatus,
    make_iin,
)

BIRTH_DATE = dt.date(1995, 8, 30)
SUBJECT_IIN = make_iin(BIRTH_DATE, Sex.MALE, 7)
OTHER_IIN = make_iin(dt.date(1996, 9, 1), Sex.MALE, 7)
FETCHED_AT = dt.datetime(2025, 4, 1, 9, 30, tzinfo=dt.UTC)

SUBJECT = Person(
    iin=SUBJECT_IIN, surname="Нұрланов", given_name="Дәулет", birth_date=BIRTH_DATE, sex=Sex.MALE
)


def conviction(expunged: bool) -> Conviction:
    return Conviction(
        articles=({"article": "188", "part": 2},),
        court="Алмалинский районный суд г. Алматы",
        judgment_date=dt.date(2016, 5, 12),
        sentence={"kind": SentenceKind.RESTRICTION_OF_FREEDOM, "term_months": 24},
        expunged=expunged,
    )


def full_sections() -> dict:
    return {
        "identity": SUBJECT,
        "criminal_history": (conviction(expunged=False),),
        "custody_history": (),
        "social_situation": SocialStatus(iin=SUBJECT_IIN, dependants=2),
        "health_summary": HealthSummary(iin=SUBJECT_IIN),
        "risk_needs": RiskNeeds(
            instrument="LS/CMI",
            assessment_date=dt.date(2025, 3, 28),
            score=17,
            band=RiskBand.MEDIUM,
            criminal_history=NeedLevel.MEDIUM,
            education_employment=NeedLevel.HIGH,
            family_marital=NeedLevel.LOW,
            leisure_recreation=NeedLevel.MEDIUM,
            companions=NeedLevel.MEDIUM,
            alcohol_drug=NeedLevel.LOW,
            procriminal_attitude=NeedLevel.LOW,
            antisocial_pattern=NeedLevel.MEDIUM,
        ),
        "officer_conclusion": "Рекомендуется наказание, не связанное с лишением свободы.\n",
    }


def ok(source: str) -> dict:
    return {"source": source, "fetched_at": FETCHED_AT, "status": SourceStatus.OK}


def full_provenance() -> dict:
    return {section.value: ok("mvd") for section in ReportSection}


def report(sections: dict | None = None, provenance: dict | None = None) -> PreTrialReport:
    return PreTrialReport(
        report_id="ptr-2025-000123",
        version=1,
        case=PretrialCase(erdr_number="251500031000123"),
        subject=SUBJECT,
        requesting_body=Organisation(
            code="PROB-ALM-03", name="Служба пробации Алмалинского района"
        ),
        court=Organisation(code="COURT-ALM-02", name="Алмалинский районный суд г. Алматы"),
        due_date=dt.date(2025, 4, 15),
        sections=ReportSections(**(full_sections() if sections is None else sections)),
        provenance=full_provenance() if provenance is None else provenance,
    )


def test_a_complete_report_is_accepted():
    assert report().sections.risk_needs.band is RiskBand.MEDIUM


def test_a_report_with_an_unavailable_section_is_accepted():
    sections = full_sections() | {"health_summary": None}
    provenance = full_provenance() | {
        "health_summary": {
            "source": "moh",
            "fetched_at": FETCHED_AT,
            "status": SourceStatus.UNAVAILABLE,
            "reason": "no answer after 3 attempts",
        }
    }

    assert report(sections, provenance).sections.health_summary is None


def test_an_unavailable_section_without_a_reason_is_refused():
    provenance = full_provenance() | {
        "health_summary": {"source": "moh", "fetched_at": FETCHED_AT, "status": "UNAVAILABLE"}
    }

    with pytest.raises(ValidationError, match="needs a reason"):
        report(full_sections() | {"health_summary": None}, provenance)


def test_a_section_marked_ok_without_content_is_refused():
    with pytest.raises(ValidationError, match="health_summary is marked OK but has no content"):
        report(full_sections() | {"health_summary": None})


def test_a_report_without_provenance_for_every_section_is_refused():
    provenance = full_provenance()
    del provenance["custody_history"]

    with pytest.raises(ValidationError, match="provenance is missing for the sections: custody"):
        report(provenance=provenance)


def test_an_empty_criminal_history_is_an_answer_not_a_gap():
    assert report(full_sections() | {"criminal_history": ()}).sections.criminal_history == ()


def test_a_report_carrying_an_expunged_conviction_is_refused():
    sections = full_sections() | {
        "criminal_history": (conviction(expunged=False), conviction(expunged=True))
    }

    with pytest.raises(ValidationError, match="expunged conviction"):
        report(sections)


def test_a_section_about_another_person_is_refused():
    with pytest.raises(ValidationError, match="SocialStatus section is about another person"):
        report(full_sections() | {"social_situation": SocialStatus(iin=OTHER_IIN)})


def test_provenance_is_kept_in_section_order_whatever_order_it_arrives_in():
    arrived = dict(reversed(full_provenance().items()))

    assert list(report(provenance=arrived).provenance) == list(ReportSection)


def test_provenance_timestamps_must_carry_a_time_zone():
    naive = ok("mvd") | {"fetched_at": FETCHED_AT.replace(tzinfo=None)}
    provenance = full_provenance() | {"identity": naive}

    with pytest.raises(ValidationError, match="timezone"):
        report(provenance=provenance)


def test_a_report_survives_a_json_round_trip():
    original = report()

    assert PreTrialReport.model_validate_json(original.model_dump_json()) == original


def test_report_versions_start_at_one():
    with pytest.raises(
        ValidationError, match="version\n  Input should be greater than or equal to 1"
    ):
        PreTrialReport.model_validate(report().model_dump() | {"version": 0})


@pytest.mark.parametrize("erdr_number", ["25150003100012", "2515000310001234", "25150003100012X"])
def test_an_erdr_number_must_have_fifteen_digits(erdr_number):
    with pytest.raises(ValidationError):
        PretrialCase(erdr_number=erdr_number)
