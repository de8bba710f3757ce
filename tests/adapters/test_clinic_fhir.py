"""Continuity-of-care notices as FHIR R4B message Bundles: round trips, validity, security labels."""

from __future__ import annotations

import datetime as dt

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.continuity_fhir import (
    IIN_SYSTEM,
    InvalidBundle,
    ProfileViolation,
    bundle_from_notice,
    notice_from_bundle,
    notice_id_of,
)
from adapters.population import Population
from gateway.domain import (
    Address,
    Attachment,
    AttachmentState,
    ContinuityHold,
    ContinuityOfCareNotice,
    Disability,
    DispensaryRegistration,
    DrugSusceptibility,
    HealthSummary,
    Organisation,
    Person,
    Programme,
    Sex,
    make_iin,
)

ASTANA = dt.timezone(dt.timedelta(hours=5))
SENT_AT = dt.datetime(2026, 11, 26, 9, 30, tzinfo=ASTANA)
POPULATION = Population(size=300)

LETTERS = "ӘәҒғҚқҢңӨөҰұҮүҺһІіАаБбВвДдЕеЖжЗзИиКкЛлМмНнОоПпРрСсТтУуФфХхШшЫыЭэЮюЯя"
NAMES = st.text(alphabet=LETTERS, min_size=1, max_size=20)
TEXT = st.text(alphabet=LETTERS + " -,.№0123456789/", min_size=1, max_size=40).filter(str.strip)
DATES = st.dates(dt.date(1990, 1, 1), dt.date(2040, 12, 31))
IINS = st.builds(
    make_iin, st.dates(dt.date(1930, 1, 1), dt.date(2010, 12, 31)), st.sampled_from(Sex), st.integers(0, 9999)
).filter(lambda iin: iin is not None)
ORGANISATIONS = st.builds(Organisation, code=st.from_regex(r"[A-Z]{2,5}-[0-9]{3,9}", fullmatch=True), name=TEXT)
ADDRESSES = st.builds(
    Address,
    kato=st.one_of(st.none(), st.from_regex(r"[0-9]{9}", fullmatch=True)),
    region=st.one_of(st.none(), TEXT),
    locality=TEXT,
    street=st.one_of(st.none(), TEXT),
    house=st.one_of(st.none(), TEXT),
    flat=st.one_of(st.none(), TEXT),
    raw=st.one_of(st.none(), TEXT),
)
AWARE = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2090, 1, 1), timezones=st.sampled_from(
    [dt.UTC, ASTANA, dt.timezone(dt.timedelta(hours=6)), dt.timezone(dt.timedelta(hours=-3, minutes=-30))]
))


@st.composite
def registrations(draw) -> DispensaryRegistration:
    programme = draw(st.sampled_from(Programme))
    return DispensaryRegistration(
        programme=programme,
        icd10=draw(st.from_regex(r"[A-Z][0-9]{2}(\.[0-9]{1,2})?", fullmatch=True)),
        since=draw(DATES),
        regimen=draw(st.one_of(st.none(), TEXT)),
        last_dose=draw(st.one_of(st.none(), DATES)),
        days_supplied=draw(st.one_of(st.none(), st.integers(0, 365))),
        drug_susceptibility=draw(st.one_of(st.none(), st.sampled_from(DrugSusceptibility)))
        if programme is Programme.TB else None,
    )


@st.composite
def notices(draw) -> ContinuityOfCareNotice:
    iin = draw(IINS)
    person = Person(
        iin=iin, surname=draw(NAMES), given_name=draw(NAMES), patronymic=draw(st.one_of(st.none(), NAMES)),
        birth_date=iin.birth_date, sex=iin.sex, citizenship=draw(st.sampled_from(["KAZ", "RUS", "UZB", "XXA"])),
    )
    hold = draw(st.one_of(st.none(), st.builds(ContinuityHold, id=st.from_regex(r"H[0-9]{8}", fullmatch=True), until=DATES)))
    attachment = draw(st.one_of(st.none(), st.builds(
        Attachment, iin=st.just(iin), clinic=ORGANISATIONS, since=DATES,
        state=st.sampled_from(AttachmentState), continuity_hold=st.just(hold),
    )))
    disability = draw(st.one_of(st.none(), st.builds(
        Disability, group=st.sampled_from([1, 2, 3]), valid_until=st.one_of(st.none(), DATES)
    )))
    return ContinuityOfCareNotice(
        person=person,
        release_date=draw(DATES),
        residence=draw(ADDRESSES),
        health=HealthSummary(iin=iin, registrations=tuple(draw(st.lists(registrations(), max_size=4))), disability=disability),
        attachment=attachment,
        receiving_clinic=draw(ORGANISATIONS),
        acknowledge_by=draw(AWARE),
    )


ICD10 = {Programme.TB: "A15.0", Programme.HIV: "B20", Programme.NARCO: "F11.2", Programme.PSYCH: "F20.0",
         Programme.ONCO: "C34.1", Programme.DIAB: "E11.9"}


def notice_with(*programmes: Programme) -> ContinuityOfCareNotice:
    """A released person from the population, on the registers of ``programmes``."""
    released = next(p for p in POPULATION if p.release is not None)
    registrations = tuple(
        DispensaryRegistration(programme=programme, icd10=ICD10[programme], since=dt.date(2020, 5, 1),
                               regimen="схема", last_dose=dt.date(2026, 11, 25), days_supplied=7)
        for programme in programmes
    )
    return ContinuityOfCareNotice(
        person=released.person,
        release_date=released.release.planned_date,
        residence=released.release.destination,
        health=HealthSummary(iin=released.iin, registrations=registrations),
        attachment=released.attachment,
        receiving_clinic=POPULATION.districts[0].clinic,
        acknowledge_by=dt.datetime(2026, 12, 3, 18, 0, tzinfo=ASTANA),
    )


def resources(bundle: dict, resource_type: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def security_codes(meta_holder: dict) -> set[str]:
    return {label["code"] for label in meta_holder.get("meta", {}).get("security", [])}


@settings(max_examples=60, deadline=None)
@given(notices(), st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True))
def test_any_notice_survives_a_round_trip_through_a_valid_bundle(notice, notice_id):
    bundle = bundle_from_notice(notice, notice_id=notice_id, sent_at=SENT_AT)
    Bundle.model_validate(bundle)
    assert notice_from_bundle(bundle) == notice
    assert notice_id_of(bundle) == notice_id


def test_every_release_in_the_population_gives_a_bundle_that_fhir_resources_accepts():
    for number, person in enumerate(p for p in POPULATION if p.release is not None):
        notice = ContinuityOfCareNotice(
            person=person.person, release_date=person.release.planned_date, residence=person.release.destination,
            health=person.health, attachment=person.attachment,
            receiving_clinic=POPULATION.clinic_for(person.release.destination) or POPULATION.districts[0].clinic,
            acknowledge_by=dt.datetime(2026, 12, 3, 18, 0, tzinfo=ASTANA),
        )
        bundle = bundle_from_notice(notice, notice_id=f"case-{number}", sent_at=SENT_AT)
        assert Bundle.model_validate(bundle).type == "message"
        assert notice_from_bundle(bundle) == notice


def test_the_message_header_comes_first_addressed_to_the_clinic_and_the_notice_id_is_the_identifier():
    bundle = bundle_from_notice(notice_with(Programme.TB), notice_id="case-42.1", sent_at=SENT_AT)
    entry = bundle["entry"][0]
    header = entry["resource"]
    assert header["resourceType"] == "MessageHeader" and entry["fullUrl"] == f"urn:uuid:{header['id']}"
    assert bundle["identifier"]["value"] == "case-42.1" == notice_id_of(bundle)
    assert header["eventCoding"]["code"] == "continuity-of-care-notice" and "reason" not in header
    assert header["destination"][0]["endpoint"] == "urn:reentry-gateway:member:clinic"
    task = resources(bundle, "Task")[0]
    assert header["focus"] == [{"reference": next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is task)}]
    assert "Acknowledge this notice" in task["description"]


def test_the_escalation_is_addressed_to_the_health_authority_and_says_why():
    notice = notice_with(Programme.TB).model_copy(update={"escalation_reason": "the clinic did not acknowledge in time"})
    bundle = bundle_from_notice(notice, notice_id="case-42.escalation.1", sent_at=SENT_AT,
                                destination="health-authority")
    Bundle.model_validate(bundle)
    entry = bundle["entry"][0]
    header = entry["resource"]
    assert entry["fullUrl"] == f"urn:uuid:{header['id']}"
    assert header["eventCoding"]["code"] == "continuity-of-care-escalation"
    assert header["destination"][0]["endpoint"] == "urn:reentry-gateway:member:health-authority"
    assert header["reason"]["text"] == "the clinic did not acknowledge in time"
    (task,) = resources(bundle, "Task")
    assert "No clinic took the patient on" in task["description"]
    assert notice_from_bundle(bundle).escalation_reason == "the clinic did not acknowledge in time"


def test_an_escalation_event_without_a_reason_is_a_profile_violation():
    bundle = bundle_from_notice(notice_with(Programme.TB), notice_id="case-1", sent_at=SENT_AT)
    bundle["entry"][0]["resource"]["eventCoding"]["code"] = "continuity-of-care-escalation"
    with pytest.raises(ProfileViolation, match="reason"):
        notice_from_bundle(bundle)


def test_the_acknowledge_by_deadline_is_the_task_restriction_period_end():
    notice = notice_with(Programme.TB)
    task = resources(bundle_from_notice(notice, notice_id="case-1", sent_at=SENT_AT), "Task")[0]
    assert task["restriction"]["period"]["end"] == "2026-12-03T18:00:00+05:00"
    assert task["owner"]["display"] == notice.receiving_clinic.name


def test_the_patient_is_identified_by_the_iin_as_an_official_national_identifier():
    notice = notice_with(Programme.DIAB)
    (patient,) = resources(bundle_from_notice(notice, notice_id="case-1", sent_at=SENT_AT), "Patient")
    (identifier,) = patient["identifier"]
    assert (identifier["system"], identifier["value"]) == (IIN_SYSTEM, notice.person.iin)
    assert identifier["type"]["coding"][0]["code"] == "NI"
    assert patient["name"][0]["given"] == [notice.person.given_name, notice.person.patronymic]


def test_conditions_are_coded_in_icd_10():
    bundle = bundle_from_notice(notice_with(Programme.TB, Programme.DIAB), notice_id="case-1", sent_at=SENT_AT)
    codings = [c["code"]["coding"][0] for c in resources(bundle, "Condition")]
    assert codings == [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "A15.0"},
                       {"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.9"}]


@pytest.mark.parametrize(("programme", "label"), [(Programme.HIV, "HIV"), (Programme.NARCO, "ETH"), (Programme.PSYCH, "PSY")])
def test_a_stigmatising_programme_is_labelled_restricted_with_its_sensitivity(programme, label):
    bundle = bundle_from_notice(notice_with(programme), notice_id="case-1", sent_at=SENT_AT)
    assert security_codes(bundle) == {"R", label}
    (condition,) = resources(bundle, "Condition")
    (statement,) = resources(bundle, "MedicationStatement")
    assert security_codes(condition) == security_codes(statement) == {"R", label}


def test_diabetes_carries_no_security_label():
    bundle = bundle_from_notice(notice_with(Programme.DIAB), notice_id="case-1", sent_at=SENT_AT)
    assert "meta" not in bundle
    assert all("meta" not in entry["resource"] for entry in bundle["entry"])


def test_only_the_sensitive_resources_are_labelled_when_programmes_are_mixed():
    bundle = bundle_from_notice(notice_with(Programme.TB, Programme.HIV, Programme.NARCO), notice_id="case-1", sent_at=SENT_AT)
    assert security_codes(bundle) == {"R", "HIV", "ETH"}
    assert [security_codes(c) for c in resources(bundle, "Condition")] == [set(), {"R", "HIV"}, {"R", "ETH"}]


def test_the_same_notice_always_gives_the_same_bundle():
    notice = notice_with(Programme.HIV)
    assert bundle_from_notice(notice, notice_id="case-1", sent_at=SENT_AT) == bundle_from_notice(
        notice, notice_id="case-1", sent_at=SENT_AT
    )


def test_a_notice_id_that_is_not_a_fhir_id_is_refused():
    with pytest.raises(ValueError, match="FHIR id"):
        bundle_from_notice(notice_with(Programme.TB), notice_id="case 1/2", sent_at=SENT_AT)


def test_a_bundle_that_is_not_valid_fhir_is_invalid_and_the_message_does_not_quote_the_patient():
    bundle = bundle_from_notice(notice_with(Programme.TB), notice_id="case-1", sent_at=SENT_AT)
    patient = resources(bundle, "Patient")[0]
    patient["maidenName"] = patient["name"][0]["family"]
    with pytest.raises(InvalidBundle, match="maidenName") as raised:
        notice_from_bundle(bundle)
    assert patient["name"][0]["family"] not in str(raised.value)


def test_a_valid_bundle_with_another_event_violates_the_profile():
    bundle = bundle_from_notice(notice_with(Programme.TB), notice_id="case-1", sent_at=SENT_AT)
    bundle["entry"][0]["resource"]["eventCoding"]["code"] = "admit-notification"
    with pytest.raises(ProfileViolation, match="eventCoding"):
        notice_from_bundle(bundle)


def test_a_bundle_without_the_deadline_violates_the_profile():
    bundle = bundle_from_notice(notice_with(Programme.TB), notice_id="case-1", sent_at=SENT_AT)
    del resources(bundle, "Task")[0]["restriction"]
    with pytest.raises(ProfileViolation, match="acknowledge-by"):
        notice_from_bundle(bundle)


def test_a_patient_whose_iin_is_invalid_violates_the_profile():
    bundle = bundle_from_notice(notice_with(Programme.TB), notice_id="case-1", sent_at=SENT_AT)
    identifier = resources(bundle, "Patient")[0]["identifier"][0]
    identifier["value"] = identifier["value"][:-1] + str((int(identifier["value"][-1]) + 1) % 10)
    with pytest.raises(ProfileViolation, match="check digit"):
        notice_from_bundle(bundle)
