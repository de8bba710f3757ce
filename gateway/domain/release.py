"""Release from custody and the notices that follow it (Strategy §1.1, §1.2, §3.2)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Self

from pydantic import AwareDatetime, Field, model_validator

from gateway.domain.canonical import CanonicalModel, ExchangeDate, Organisation, Text
from gateway.domain.health import Attachment, HealthSummary
from gateway.domain.iin import IIN
from gateway.domain.justice import ReleaseType
from gateway.domain.person import Address, Person
from gateway.domain.social import Education, Housing, IdentityDocuments

__all__ = ["ContinuityOfCareNotice", "EmploymentNotice", "ProbationNotice", "ReleaseEvent", "ReleaseNotice"]

# Criminal liability starts at 14 for the gravest offences (16 otherwise), so nobody
# released from a penal facility is younger.
_YOUNGEST_RELEASED_AGE = 14


class ReleaseEvent(StrEnum):
    """What a release notice announces. The penal system notifies a planned release weeks
    ahead, may change its date or cancel it, and notifies the actual release on the day."""

    PLANNED = "PLANNED"
    CHANGED = "CHANGED"
    CANCELLED = "CANCELLED"
    ACTUAL = "ACTUAL"


class ReleaseNotice(CanonicalModel):
    """The penal system's notice of a release: first planned (weeks ahead), then actual.

    Housing and identity documents are here because lacking either is what triggers a
    referral to social services on release.
    """

    iin: IIN
    facility: Organisation
    release_type: ReleaseType
    planned_date: ExchangeDate
    actual_date: ExchangeDate | None = None
    """Empty until the person has actually been released."""
    destination: Address
    housing: Housing
    identity_documents: IdentityDocuments = ()
    education: Education | None = None
    specialty: Text | None = None
    probation_office: Organisation | None = None
    """The probation office that takes over, when post-release probation applies (e.g. parole)."""

    @property
    def release_date(self) -> dt.date:
        """The actual release date once known, the planned one until then."""
        return self.actual_date or self.planned_date


class ContinuityOfCareNotice(CanonicalModel):
    """Tells the clinic serving the destination address that a patient is coming, on what treatment.

    It carries identity, address and health only — nothing about the conviction: the
    clinic's purpose is care, and who may see criminal records is limited (Strategy §3.2).
    """

    person: Person
    release_date: dt.date
    residence: Address
    health: HealthSummary
    attachment: Attachment | None = None
    """The current attachment, with the continuity hold that keeps it alive until the new one."""
    receiving_clinic: Organisation
    acknowledge_by: AwareDatetime
    """Without an acknowledgement by then, the case escalates to the regional health authority."""
    escalation_reason: Text | None = None
    """Set on the notice that escalates to the regional health authority: why no clinic took the
    patient on (no clinic serves the address, no acknowledgement in time…). None for a clinic."""

    @model_validator(mode="after")
    def _records_are_about_the_person(self) -> Self:
        # Sending one patient's regimen under another's name is a patient-safety failure.
        if self.health.iin != self.person.iin:
            raise ValueError("the health summary is about another person")
        if self.attachment is not None and self.attachment.iin != self.person.iin:
            raise ValueError("the attachment is about another person")
        return self


def _age_in_whole_years(birth_date: dt.date, on: dt.date) -> int:
    # Counting by (month, day): someone born on 29 February turns a year older on
    # 1 March in common years.
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - before_birthday


class EmploymentNotice(CanonicalModel):
    """What an employment centre learns about a released person, and nothing more (Strategy §1.1).

    Exactly age, release date, residence, education and specialty. Age rather than
    birth date: the centre needs to know whether someone can work, not who they are;
    with a birth date and an address the person would be identifiable.
    """

    age: int = Field(ge=_YOUNGEST_RELEASED_AGE, le=150)
    release_date: dt.date
    residence: Address
    education: Education | None
    specialty: Text | None

    @classmethod
    def from_release(cls, notice: ReleaseNotice, person: Person, *, as_of: dt.date) -> Self:
        """Build the notice for a release, with the person's age in whole years on ``as_of``."""
        if notice.iin != person.iin:
            raise ValueError("the release notice and the person have different IINs")
        return cls(
            age=_age_in_whole_years(person.birth_date, as_of),
            release_date=notice.release_date,
            residence=notice.destination,
            education=notice.education,
            specialty=notice.specialty,
        )


class ProbationNotice(CanonicalModel):
    """A release that the probation office at the destination must supervise (post-release probation).

    Identity, release data, the destination and the office — nothing of health, nothing of the
    criminal record: the office receives the judgment through its own channel (Strategy §3.2).
    """

    event: ReleaseEvent
    """PLANNED weeks ahead, CHANGED or CANCELLED when the penal system says so, ACTUAL on the day."""
    person: Person
    release_type: ReleaseType
    release_date: dt.date
    """The actual date for an ACTUAL release, the planned one otherwise."""
    facility: Organisation
    destination: Address
    probation_office: Organisation

    @classmethod
    def from_release(cls, event: ReleaseEvent, release: ReleaseNotice, person: Person) -> Self:
        if release.iin != person.iin:
            raise ValueError("the release notice and the person have different IINs")
        if release.probation_office is None:
            raise ValueError("the release names no probation office: post-release probation does not apply")
        return cls(
            event=event,
            person=person,
            release_type=release.release_type,
            release_date=release.release_date,
            facility=release.facility,
            destination=release.destination,
            probation_office=release.probation_office,
        )
