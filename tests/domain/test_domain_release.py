"""Release notices, and the minimised notices that go to clinics and employment centres."""

import datetime as dt

import pytest
from pydantic import ValidationError

from gateway.domain import (
    Address,
    Attachment,
    AttachmentState,
    ContinuityOfCareNotice,
    DispensaryRegistration,
    Education,
    EmploymentNotice,
    HealthSummary,
    Housing,
    HousingKind,
    IdentityDocument,
    Organisation,
    Person,
    Programme,
    ReleaseNotice,
    ReleaseType,
    Sex,
    make_iin,
)

BIRTH_DATE = dt.date(1990, 3, 10)
IIN_OF_MAN = make_iin(BIRTH_DATE, Sex.MALE, 1)
OTHER_IIN = make_iin(dt.date(1991, 4, 11), Sex.MALE, 1)
RESIDENCE = Address(kato="751110000", locality="Алматы", street="Абая", house="10")


def person(iin=IIN_OF_MAN, birth_date=BIRTH_DATE) -> Person:
    return Person(
        iin=iin, surname="Жақсылықов", given_name="Ерлан", birth_date=birth_date, sex=Sex.MALE
    )


def release_notice(**changes) -> ReleaseNotice:
    fields = {
        "iin": IIN_OF_MAN,
        "facility": Organisation(code="UIS-ALM-155-18", name="Учреждение ЛА-155/18"),
        "release_type": ReleaseType.PAROLE,
        "planned_date": dt.date(2025, 6, 2),
        "destination": RESIDENCE,
        "housing": Housing(available=True, kind=HousingKind.FAMILY),
        "identity_documents": (IdentityDocument.ID_CARD,),
        "education": Education.TECHNICAL_VOCATIONAL,
        "specialty": "электрогазосварщик",
    }
    return ReleaseNotice.model_validate(fields | changes)


def test_employment_notice_has_exactly_the_five_permitted_fields():
    assert set(EmploymentNotice.model_fields) == {
        "age",
        "release_date",
        "residence",
        "education",
        "specialty",
    }


def test_employment_notice_carries_age_in_whole_years_on_the_given_date():
    notice = EmploymentNotice.from_release(release_notice(), person(), as_of=dt.date(2025, 3, 9))

    assert notice.age == 34


def test_employment_notice_counts_the_birthday_itself_as_a_year_older():
    notice = EmploymentNotice.from_release(release_notice(), person(), as_of=dt.date(2025, 3, 10))

    assert notice.age == 35


def test_someone_born_on_29_february_turns_older_on_1_march_in_a_common_year():
    leap_born = make_iin(dt.date(2000, 2, 29), Sex.MALE, 2)
    notice = release_notice(iin=leap_born)
    subject = person(iin=leap_born, birth_date=dt.date(2000, 2, 29))

    ages = [
        EmploymentNotice.from_release(notice, subject, as_of=day).age
        for day in (dt.date(2025, 2, 28), dt.date(2025, 3, 1))
    ]

    assert ages == [24, 25]


def test_employment_notice_takes_the_rest_from_the_release_notice():
    notice = EmploymentNotice.from_release(release_notice(), person(), as_of=dt.date(2025, 6, 2))

    assert (notice.release_date, notice.residence, notice.education, notice.specialty) == (
        dt.date(2025, 6, 2),
        RESIDENCE,
        Education.TECHNICAL_VOCATIONAL,
        "электрогазосварщик",
    )


def test_employment_notice_uses_the_actual_release_date_once_known():
    released = release_notice(actual_date=dt.date(2025, 5, 30))

    notice = EmploymentNotice.from_release(released, person(), as_of=dt.date(2025, 5, 30))

    assert notice.release_date == dt.date(2025, 5, 30)


def test_employment_notice_refuses_a_person_other_than_the_one_released():
    with pytest.raises(ValueError, match="different IINs"):
        EmploymentNotice.from_release(
            release_notice(), person(OTHER_IIN, dt.date(1991, 4, 11)), as_of=dt.date(2025, 6, 2)
        )


def test_employment_notice_refuses_an_age_below_criminal_responsibility():
    with pytest.raises(ValidationError):
        EmploymentNotice.from_release(release_notice(), person(), as_of=dt.date(2003, 1, 1))


def test_a_housing_kind_without_housing_is_refused():
    with pytest.raises(ValidationError):
        Housing(available=False, kind=HousingKind.RENTED)


def test_identity_documents_are_kept_once_each_in_a_fixed_order():
    notice = release_notice(
        identity_documents=("PASSPORT", "ID_CARD", "PASSPORT"),
    )

    assert notice.identity_documents == (IdentityDocument.ID_CARD, IdentityDocument.PASSPORT)


def continuity_notice(health_iin=IIN_OF_MAN, attachment_iin=IIN_OF_MAN) -> ContinuityOfCareNotice:
    clinic = Organisation(code="PMSP-ALM-07", name="Городская поликлиника № 7")
    return ContinuityOfCareNotice(
        person=person(),
        release_date=dt.date(2025, 6, 2),
        residence=RESIDENCE,
        health=HealthSummary(
            iin=health_iin,
            registrations=(
                DispensaryRegistration(
                    programme=Programme.TB,
                    icd10="A15.0",
                    since=dt.date(2024, 11, 1),
                    regimen="2HRZE/4HR",
                    last_dose=dt.date(2025, 6, 2),
                    days_supplied=14,
                    drug_susceptibility="SUSCEPTIBLE",
                ),
            ),
        ),
        attachment=Attachment(
            iin=attachment_iin,
            clinic=Organisation(code="PMSP-UIS-18", name="Медчасть учреждения ЛА-155/18"),
            since=dt.date(2022, 1, 10),
            state=AttachmentState.ATTACHED,
            continuity_hold={"id": "hold-1", "until": dt.date(2025, 7, 2)},
        ),
        receiving_clinic=clinic,
        acknowledge_by=dt.datetime(2025, 6, 5, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=5))),
    )


def test_a_continuity_notice_about_one_person_is_accepted():
    assert continuity_notice().health.registrations[0].days_supplied == 14


def test_a_continuity_notice_with_another_persons_health_summary_is_refused():
    with pytest.raises(ValidationError, match="health summary is about another person"):
        continuity_notice(health_iin=OTHER_IIN)


def test_a_continuity_notice_with_another_persons_attachment_is_refused():
    with pytest.raises(ValidationError, match="attachment is about another person"):
        continuity_notice(attachment_iin=OTHER_IIN)


def test_a_continuity_notice_has_no_field_for_criminal_records():
    assert set(ContinuityOfCareNotice.model_fields) == {
        "person",
        "release_date",
        "residence",
        "health",
        "attachment",
        "receiving_clinic",
        "acknowledge_by",
        "escalation_reason",
    }
