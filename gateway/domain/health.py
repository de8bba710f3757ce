"""Health records that decide whether treatment continues after release.

Release ends the attachment to the clinic at the place of custody, and a person on a
dispensary register who is not attached anywhere cannot get their medicine (Strategy
§1.2, §3.2). These records are what the gateway needs to keep them on treatment.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from gateway.domain.canonical import CanonicalModel, Organisation, Text
from gateway.domain.iin import IIN

__all__ = [
    "Attachment",
    "AttachmentState",
    "ContinuityHold",
    "Disability",
    "DispensaryRegistration",
    "DrugSusceptibility",
    "HealthFlags",
    "HealthSummary",
    "Programme",
]

Icd10Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9]{2}(\.[0-9]{1,2})?$")]
"""An ICD-10 category ("B20") or subcategory ("A15.0"); a second digit after the point
allows the five-character codes some national registers use."""


class Programme(StrEnum):
    """The dispensary registers (диспансерный учёт) the gateway follows."""

    TB = "TB"
    HIV = "HIV"
    NARCO = "NARCO"
    """Addiction (наркологический учёт)."""
    PSYCH = "PSYCH"
    ONCO = "ONCO"
    DIAB = "DIAB"


class DrugSusceptibility(StrEnum):
    """Tuberculosis drug-resistance category, WHO definitions (2021)."""

    SUSCEPTIBLE = "SUSCEPTIBLE"
    ISONIAZID_RESISTANT = "ISONIAZID_RESISTANT"
    RIFAMPICIN_RESISTANT = "RIFAMPICIN_RESISTANT"
    MDR = "MDR"
    PRE_XDR = "PRE_XDR"
    XDR = "XDR"


class DispensaryRegistration(CanonicalModel):
    """A person's place on one dispensary register, with what the next clinic needs to go on.

    last_dose and days_supplied tell the receiving clinic by when the person runs out of
    medicine: an interruption is what breeds drug resistance in TB and HIV.
    """

    programme: Programme
    icd10: Icd10Code
    since: dt.date
    regimen: Text | None = None
    last_dose: dt.date | None = None
    days_supplied: int | None = Field(default=None, ge=0)
    drug_susceptibility: DrugSusceptibility | None = None
    """Only for TB; empty when not tested."""

    @model_validator(mode="after")
    def _susceptibility_only_for_tuberculosis(self) -> Self:
        if self.drug_susceptibility is not None and self.programme is not Programme.TB:
            raise ValueError("drug_susceptibility applies to the TB programme only")
        return self


class Disability(CanonicalModel):
    group: Literal[1, 2, 3]
    valid_until: dt.date | None = None
    """Empty when the disability is established without a re-examination date."""


class HealthSummary(CanonicalModel):
    """What the health system discloses about a person: registers and disability, no history."""

    iin: IIN
    registrations: tuple[DispensaryRegistration, ...] = ()
    disability: Disability | None = None


class HealthFlags(CanonicalModel):
    """What a court may learn of a person's health without a legal basis for more.

    Whether continuous treatment must not be interrupted (a custodial measure must then
    provide for it) and whether a disability limits the person — not which diagnoses or
    programmes lie behind it (Strategy §3.3; medical secrecy, врачебная тайна, under the Health Code).
    """

    iin: IIN
    continuous_treatment: bool
    disability: Disability | None = None

    @classmethod
    def of(cls, summary: HealthSummary) -> HealthFlags:
        treated = any(r.regimen or r.days_supplied for r in summary.registrations)
        return cls(iin=summary.iin, continuous_treatment=treated, disability=summary.disability)


class AttachmentState(StrEnum):
    ATTACHED = "ATTACHED"
    DETACHED = "DETACHED"
    PENDING = "PENDING"
    """An application to attach at a new clinic awaits the clinic's decision."""


class ContinuityHold(CanonicalModel):
    """The gateway's request that РПН keep an attachment alive past release, until a date.

    Without it the attachment to the clinic at the place of custody lapses on release,
    before the person can attach at the new address.
    """

    id: Text
    until: dt.date


class Attachment(CanonicalModel):
    """A person's attachment to a primary-care clinic in РПН, the attached-population register."""

    iin: IIN
    clinic: Organisation
    since: dt.date
    state: AttachmentState
    continuity_hold: ContinuityHold | None = None
