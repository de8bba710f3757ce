"""The saved state of each workflow's cases: its shape, its version, and the upgrades of older ones.

A case's ``data`` in the store is the JSON of one of these models, with its schema
version in ``v``. Loading a case (``ReleaseCaseState.load(case.data)``) runs the upgrade
of each older version in turn, then validates: the notice, the person, the sections
are parsed once, as canonical models, and code reads ``state.notice.release_date``.
A loaded case is written back at the current version with its next step.

Version 1 is what the gateway saved before the state had a declared shape: the same
JSON without ``v``. To change the shape, raise ``SCHEMA_VERSION``, change the model,
and add to ``_UPGRADES`` the function that turns the previous version's JSON into the
new one (``docs/workflows.md``, "Saved state"); cases already saved keep working.

Timers are named by an enum per workflow (the stored names are its values), and each
name has the model of its payload.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, PlainSerializer, SerializerFunctionWrapHandler, model_serializer, model_validator

from gateway.domain import (
    IIN,
    Attachment,
    HealthSummary,
    Organisation,
    Person,
    PreTrialReport,
    PretrialCase,
    ReleaseEvent,
    ReleaseNotice,
    ReportSection,
    RiskNeeds,
    SourceStatus,
)
from gateway.domain.canonical import ExchangeDate, Narrative, Text
from gateway.domain.justice import ErdrNumber

SCHEMA_VERSION = 2

# An instant, written as Python's isoformat (``2026-12-03T15:57:22.123456+00:00``), as version 1 was.
Instant = Annotated[dt.datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str)]


def instant(now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, dt.UTC)


class _Part(BaseModel):
    # Unknown keys are refused: a field saved by mistake, or lost by a missing upgrade, fails loudly.
    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A part not there yet is left out, not written as null, as version 1 did (its readers
        # asked whether a key was present); the canonical documents inside are written whole.
        return {key: value for key, value in handler(self).items() if value is not None}


class CaseState(_Part):
    """The saved state of one case: ``load`` it from the stored JSON, ``dump`` it to save it."""

    v: int = SCHEMA_VERSION
    kind: ClassVar[str]

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Self:
        return cls.model_validate(upgrade(cls.kind, data))

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ---------------------------------------------------------------- release cases


class ReleaseTimer(enum.StrEnum):
    PREPARE = "prepare"  # gather identity, health, attachment and clinic; place the hold; send the notices
    RENOTIFY = "renotify"  # the release changed: tell those already told
    ACK_DEADLINE = "ack_deadline"  # the clinic's time to acknowledge is up: escalate
    CHECK_ATTACHMENT = "check_attachment"  # look in РПН for the new attachment
    LIFT_HOLD = "lift_hold"  # the hold has done its work (or the case ended)


class Recipient(enum.StrEnum):
    """Those a release case sends notices to."""

    CLINIC = "clinic"
    EMPLOYMENT = "employment"
    SOCIAL = "social"
    PROBATION = "probation"
    ESCALATION = "escalation"  # the regional health authority


class ClinicAcknowledgement(BaseModel):
    """A clinic's answer to a continuity-of-care notice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clinic: str
    accepted: bool
    attached: bool = False
    attached_since: dt.date | None = None

    @model_validator(mode="after")
    def _since_exactly_when_attached(self) -> ClinicAcknowledgement:
        if self.attached != (self.attached_since is not None):
            raise ValueError("attached_since is the date the person was attached: send it exactly when attached is true")
        return self


class RecordedAcknowledgement(ClinicAcknowledgement):
    at: Instant


class EventRecord(_Part):
    event: ReleaseEvent
    message_id: str
    at: Instant


class SentNotices(_Part):
    """The messages sent to one recipient, one per revision; the clinic's also name it and its deadline."""

    message_ids: list[str] = []
    clinic: str | None = None
    acknowledge_by: Instant | None = None


class Escalation(_Part):
    reason: str
    at: Instant


class Retrying(_Part):
    """A source was down at the last attempt; the step is tried again."""

    reason: str
    at: Instant


class Hold(_Part):
    """The continuity hold placed in РПН for this case, and when it was lifted."""

    id: Text
    until: dt.date
    released: Instant | None = None


class ReleaseCaseState(CaseState):
    kind: ClassVar[str] = "release_case"

    notice: ReleaseNotice
    events: list[EventRecord]
    sent: dict[Recipient, SentNotices] = {}
    escalations: list[Escalation] = []
    person: Person | None = None
    health: HealthSummary | None = None
    attachment: Attachment | None = None
    """The attachment at preparation time (the one the hold keeps)."""
    clinic: Organisation | None = None
    """The clinic serving the destination address; None when the register cannot tell."""
    hold: Hold | None = None
    acknowledgement: RecordedAcknowledgement | None = None
    attached: Attachment | None = None
    """The new attachment, once РПН shows it."""
    problem: str | None = None
    retrying: Retrying | None = None


# ---------------------------------------------------------------- pre-trial reports


class PretrialTimer(enum.StrEnum):
    GATHER = "gather"  # ask the sources still missing
    RECONCILE = "reconcile"  # learn delivery outcomes from the store (missed across a restart)


class PretrialReportRequest(BaseModel):
    """What a probation officer sends to ask for a report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject_iin: IIN
    erdr_number: ErdrNumber
    court: Organisation
    requesting_body: Organisation
    due_date: ExchangeDate
    risk_needs: RiskNeeds | None = None
    officer_conclusion: Narrative | None = None
    legal_basis: Text | None = None
    """A legal basis that allows the court the full health summary, not only flags."""


class SectionEntry(_Part):
    """One section as its source last answered: its content (the canonical model's JSON) or why not."""

    source: str
    fetched_at: Instant
    status: SourceStatus
    content: Any = None
    reason: str | None = None
    not_found: bool | None = None
    """Only for a section unavailable: whether the source said it has no record."""


class VersionStatus(enum.StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    DEAD = "dead"


class ReportVersion(_Part):
    """A version sent to the court, its delivery, and the court's receipt."""

    version: int
    message_id: str
    sections_ok: list[ReportSection]
    status: VersionStatus
    queued_at: Instant
    delivered_at: Instant | None = None
    registration_number: str | None = None
    registered_at: Instant | None = None
    error: str | None = None


class PretrialCaseState(CaseState):
    kind: ClassVar[str] = "pretrial_report"

    request: PretrialReportRequest
    caller: str
    sections: dict[ReportSection, SectionEntry] = {}
    versions: list[ReportVersion] = []
    case: PretrialCase | None = None
    report: PreTrialReport | None = None
    """The latest version assembled."""
    failure: str | None = None


# ---------------------------------------------------------------- timer payloads


class NoPayload(_Part):
    """A timer that carries nothing: the case holds all it needs."""


TIMER_PAYLOADS: Mapping[enum.StrEnum, type[BaseModel]] = {
    **{name: NoPayload for name in ReleaseTimer},
    **{name: NoPayload for name in PretrialTimer},
}


# ---------------------------------------------------------------- upgrades


def _stamp_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (no ``v``) has the shape of version 2: only the version is new."""
    return {**data, "v": 2}


# kind -> {version: the function turning that version's JSON into the next version's}
_UPGRADES: Mapping[str, Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    ReleaseCaseState.kind: {1: _stamp_v2},
    PretrialCaseState.kind: {1: _stamp_v2},
}


class UnknownVersion(ValueError):
    """A case saved by a newer gateway (or damaged): this one cannot read it."""


def upgrade(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The stored JSON of a ``kind`` case at ``SCHEMA_VERSION``, upgraded step by step from its own."""
    current = dict(data)
    version = current.get("v", 1)
    while version != SCHEMA_VERSION:
        step = _UPGRADES[kind].get(version) if isinstance(version, int) else None
        if step is None:
            raise UnknownVersion(f"a {kind} saved at version {version!r}: this gateway reads up to {SCHEMA_VERSION}")
        current = step(current)
        version = current["v"]
    return current
