"""Social situation and social-legal assistance (Strategy §1.1, §4)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from gateway.domain.canonical import CanonicalModel, Organisation, Text
from gateway.domain.iin import IIN

__all__ = [
    "AssistanceCategory",
    "AssistanceReferral",
    "Education",
    "EmploymentStatus",
    "Housing",
    "HousingKind",
    "IdentityDocument",
    "MaritalStatus",
    "ReferralOutcome",
    "ReferralStatus",
    "SocialStatus",
]


class MaritalStatus(StrEnum):
    SINGLE = "SINGLE"
    MARRIED = "MARRIED"
    DIVORCED = "DIVORCED"
    WIDOWED = "WIDOWED"


class HousingKind(StrEnum):
    OWN = "OWN"
    FAMILY = "FAMILY"
    RENTED = "RENTED"
    DORMITORY = "DORMITORY"
    SOCIAL_HOUSING = "SOCIAL_HOUSING"
    ADAPTATION_CENTRE = "ADAPTATION_CENTRE"
    """Temporary place in a social adaptation centre (ЦСА) for people without a fixed abode."""


class Housing(CanonicalModel):
    """Whether the person has somewhere to live; the kind when the source knows it.

    No housing is one of the two conditions on which a released person is referred to
    social services, so ``available`` is what workflows decide on.
    """

    # A kind only where there is housing, for JSON Schema readers too.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"properties": {"available": {"const": True}}},
        {"properties": {"kind": {"type": "null"}}},
    ]})

    available: bool
    kind: HousingKind | None = None

    @model_validator(mode="after")
    def _kind_only_when_available(self) -> Self:
        if self.kind is not None and not self.available:
            raise ValueError("a housing kind is given but housing is not available")
        return self


class IdentityDocument(StrEnum):
    ID_CARD = "ID_CARD"
    PASSPORT = "PASSPORT"
    BIRTH_CERTIFICATE = "BIRTH_CERTIFICATE"
    RESIDENCE_PERMIT = "RESIDENCE_PERMIT"
    STATELESS_PERSON_CERTIFICATE = "STATELESS_PERSON_CERTIFICATE"


def _as_set(documents: tuple[IdentityDocument, ...]) -> tuple[IdentityDocument, ...]:
    # Order carries no meaning, and a fixed one keeps signed documents byte-identical.
    return tuple(sorted(set(documents)))


IdentityDocuments = Annotated[tuple[IdentityDocument, ...], AfterValidator(_as_set)]
"""The identity documents a person holds; empty means none, which calls for restoring them."""


class Education(StrEnum):
    """Levels of education in Kazakhstan."""

    NONE = "NONE"
    PRIMARY = "PRIMARY"
    BASIC_SECONDARY = "BASIC_SECONDARY"
    """Grades 1-9."""
    GENERAL_SECONDARY = "GENERAL_SECONDARY"
    """Grades 1-11."""
    TECHNICAL_VOCATIONAL = "TECHNICAL_VOCATIONAL"
    """Техническое и профессиональное образование (ТиПО)."""
    POST_SECONDARY = "POST_SECONDARY"
    HIGHER = "HIGHER"
    POSTGRADUATE = "POSTGRADUATE"


class EmploymentStatus(StrEnum):
    EMPLOYED = "EMPLOYED"
    SELF_EMPLOYED = "SELF_EMPLOYED"
    UNEMPLOYED = "UNEMPLOYED"
    STUDENT = "STUDENT"
    RETIRED = "RETIRED"
    UNABLE_TO_WORK = "UNABLE_TO_WORK"


class SocialStatus(CanonicalModel):
    """A person's social situation as labour and social protection records it.

    Every part may be unknown to the source (None); an empty tuple means the source
    knows there is none.
    """

    iin: IIN
    marital_status: MaritalStatus | None = None
    dependants: int | None = Field(default=None, ge=0)
    housing: Housing | None = None
    identity_documents: IdentityDocuments = ()
    education: Education | None = None
    specialty: Text | None = None
    employment: EmploymentStatus | None = None
    benefits: tuple[Text, ...] = ()
    """Social benefits and payments currently received, as the source names them."""


class AssistanceCategory(StrEnum):
    """The categories of social-legal assistance whose delivery the Strategy monitors (§1.1, §3.3, §4).

    §3.3 lists what social adaptation and rehabilitation consist of; each item is one category.
    """

    TREATMENT = "TREATMENT"
    """Medical care (медицинская помощь)."""
    PSYCHOLOGICAL_SUPPORT = "PSYCHOLOGICAL_SUPPORT"
    EDUCATION = "EDUCATION"
    """Education and vocational training: training, retraining, raising qualifications."""
    EMPLOYMENT = "EMPLOYMENT"
    DOCUMENT_RESTORATION = "DOCUMENT_RESTORATION"
    """Identity documents and registration at a place of residence or temporary stay."""
    BENEFITS = "BENEFITS"
    """Benefits and social payments the law provides."""
    SOCIAL_TIES = "SOCIAL_TIES"
    """Restoring family and other socially positive ties, social patronage."""
    PLACE_TO_STAY = "PLACE_TO_STAY"
    """A place to stay: a medico-social institution or a social adaptation centre (ЦСА)."""
    OTHER = "OTHER"


class ReferralStatus(StrEnum):
    REFERRED = "REFERRED"
    ACCEPTED = "ACCEPTED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    DECLINED = "DECLINED"
    CANCELLED = "CANCELLED"


class ReferralOutcome(StrEnum):
    ASSISTED = "ASSISTED"
    PARTIALLY_ASSISTED = "PARTIALLY_ASSISTED"
    NOT_ASSISTED = "NOT_ASSISTED"


class AssistanceReferral(CanonicalModel):
    """A referral of a person to a provider for one category of assistance.

    The Strategy's target indicators are counted from these records, so a completed
    referral must say how it ended, and an open one must not claim an outcome yet.
    """

    referral_id: Text
    iin: IIN
    category: AssistanceCategory
    provider: Organisation
    referral_date: dt.date
    reason: Text | None = None
    status: ReferralStatus
    outcome: ReferralOutcome | None = None

    @model_validator(mode="after")
    def _outcome_exactly_when_completed(self) -> Self:
        completed = self.status is ReferralStatus.COMPLETED
        if completed and self.outcome is None:
            raise ValueError("a completed referral needs an outcome")
        if not completed and self.outcome is not None:
            raise ValueError(
                f"only a completed referral has an outcome, and this one is {self.status}"
            )
        return self
