"""The pre-trial report (досудебный доклад) a court receives before the trial (Strategy §3.3)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Self

from pydantic import AwareDatetime, Field, field_validator, model_validator

from gateway.domain.canonical import CanonicalModel, Narrative, Organisation, Text
from gateway.domain.health import HealthFlags, HealthSummary
from gateway.domain.justice import Conviction, CustodyEpisode, PretrialCase
from gateway.domain.person import Person
from gateway.domain.social import SocialStatus

__all__ = [
    "NeedLevel",
    "PreTrialReport",
    "ReportSection",
    "ReportSections",
    "RiskBand",
    "RiskNeeds",
    "SectionProvenance",
    "SourceStatus",
]


class RiskBand(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    VERY_HIGH = "VERY_HIGH"


class NeedLevel(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class RiskNeeds(CanonicalModel):
    """The probation officer's risk-need-responsivity (RNR) assessment.

    The gateway carries the assessment as the officer made it with the named instrument;
    it does not compute risk. The need domains are the eight of the RNR model (Andrews
    and Bonta's "central eight"), each with the level the instrument gave it.
    """

    instrument: Text
    assessment_date: dt.date
    score: int = Field(ge=0)
    band: RiskBand
    criminal_history: NeedLevel
    education_employment: NeedLevel
    family_marital: NeedLevel
    leisure_recreation: NeedLevel
    companions: NeedLevel
    alcohol_drug: NeedLevel
    procriminal_attitude: NeedLevel
    antisocial_pattern: NeedLevel


class ReportSection(StrEnum):
    """The sections of a pre-trial report; each value is the field name in ReportSections."""

    IDENTITY = "identity"
    CRIMINAL_HISTORY = "criminal_history"
    CUSTODY_HISTORY = "custody_history"
    SOCIAL_SITUATION = "social_situation"
    HEALTH_SUMMARY = "health_summary"
    RISK_NEEDS = "risk_needs"
    OFFICER_CONCLUSION = "officer_conclusion"


class SourceStatus(StrEnum):
    OK = "OK"
    UNAVAILABLE = "UNAVAILABLE"


class SectionProvenance(CanonicalModel):
    """Where a section came from, so the court can weigh it and see what is missing."""

    source: Text
    """The member (agency system) that supplied the section, or was asked for it."""
    fetched_at: AwareDatetime
    """When the source answered, or for an unavailable section when it was last tried."""
    status: SourceStatus
    reason: Text | None = None
    """Why the section is unavailable; empty when it is not."""

    @model_validator(mode="after")
    def _reason_exactly_when_unavailable(self) -> Self:
        unavailable = self.status is SourceStatus.UNAVAILABLE
        if unavailable and self.reason is None:
            raise ValueError("an unavailable section needs a reason")
        if not unavailable and self.reason is not None:
            raise ValueError("a reason is given but the section is available")
        return self


class ReportSections(CanonicalModel):
    """The content of a report; a section is empty (None) exactly when its source was unavailable.

    An empty tuple is a real answer: the source was asked and holds no convictions or
    custody episodes.
    """

    identity: Person | None = None
    criminal_history: tuple[Conviction, ...] | None = None
    custody_history: tuple[CustodyEpisode, ...] | None = None
    social_situation: SocialStatus | None = None
    health_summary: HealthSummary | HealthFlags | None = None
    """Flags only, unless the request carries a legal basis for the full summary."""
    risk_needs: RiskNeeds | None = None
    officer_conclusion: Narrative | None = None


class PreTrialReport(CanonicalModel):
    """One version of a pre-trial report on the subject of a pre-trial case.

    A report is delivered even when a source stays down, with that section marked
    unavailable; when the source answers, a new version follows, until the due date.
    """

    report_id: Text
    version: int = Field(ge=1)
    case: PretrialCase
    subject: Person
    requesting_body: Organisation
    court: Organisation
    due_date: dt.date
    sections: ReportSections
    provenance: dict[ReportSection, SectionProvenance]

    @field_validator("provenance")
    @classmethod
    def _provenance_in_section_order(
        cls, provenance: dict[ReportSection, SectionProvenance]
    ) -> dict[ReportSection, SectionProvenance]:
        # Section order, not arrival order, so that every serialisation of the same
        # report is byte-identical and its signature reproducible.
        return {section: provenance[section] for section in ReportSection if section in provenance}

    @model_validator(mode="after")
    def _every_section_accounted_for(self) -> Self:
        missing = [section.value for section in ReportSection if section not in self.provenance]
        if missing:
            raise ValueError(f"provenance is missing for the sections: {', '.join(missing)}")
        for section, provenance in self.provenance.items():
            content = getattr(self.sections, section.value)
            if provenance.status is SourceStatus.OK and content is None:
                raise ValueError(f"section {section.value} is marked OK but has no content")
            if provenance.status is SourceStatus.UNAVAILABLE and content is not None:
                raise ValueError(f"section {section.value} is marked unavailable but has content")
        return self

    @model_validator(mode="after")
    def _sections_are_about_the_subject(self) -> Self:
        # A section fetched for the wrong IIN would put someone else's record before the court.
        sections = self.sections
        for section in (sections.identity, sections.social_situation, sections.health_summary):
            if section is not None and section.iin != self.subject.iin:
                raise ValueError(f"a {type(section).__name__} section is about another person")
        return self

    @model_validator(mode="after")
    def _no_expunged_conviction(self) -> Self:
        # Expunged convictions have no legal consequences (Criminal Code art. 79) and
        # never leave the gateway; a report that carries one must not exist.
        if any(conviction.expunged for conviction in self.sections.criminal_history or ()):
            raise ValueError("criminal_history contains an expunged conviction; leave it out")
        return self
