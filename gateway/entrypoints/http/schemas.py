"""The JSON API's response and request models; ``/openapi.json`` is generated from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.store import Attempt, Message

Status = Literal["accepted", "in_flight", "delivered", "dead"]


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RelayAccepted(_Model):
    """The answer to a relay request: the message is durably stored."""

    message_id: str = Field(description="The gateway's id of the message; also sent to the recipient as X-Message-Id")
    status: Status
    duplicate: bool = Field(description="True when this X-Message-Id was accepted before: nothing new was stored")


class MessageStatus(_Model):
    message_id: str
    status: Status
    sender: str
    recipient: str
    service: str
    correlation_id: str
    client_message_id: str | None
    purpose: str | None
    attempts: int
    max_attempts: int
    replays: int
    accepted_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None

    @classmethod
    def of(cls, message: Message) -> MessageStatus:
        return cls(
            message_id=message.id,
            status=message.state.value,
            sender=message.sender,
            recipient=message.recipient,
            service=message.service,
            correlation_id=message.correlation_id,
            client_message_id=message.client_message_id,
            purpose=message.purpose,
            attempts=message.attempts,
            max_attempts=message.max_attempts,
            replays=message.replays,
            accepted_at=_time(message.accepted_at),
            next_attempt_at=_time(message.next_attempt_at) if message.state.value == "accepted" else None,
            delivered_at=_time(message.delivered_at),
            last_status=message.last_status,
            last_error=message.last_error,
        )


class AttemptView(_Model):
    number: int
    started_at: datetime
    finished_at: datetime
    outcome: Literal["delivered", "retry", "dead"]
    status: int | None
    error: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptView:
        return cls(
            number=attempt.number,
            started_at=_time(attempt.started_at),
            finished_at=_time(attempt.finished_at),
            outcome=attempt.outcome,
            status=attempt.status,
            error=attempt.error,
        )


class DeadLetter(MessageStatus):
    history: list[AttemptView] = []


class DeadLetterPage(_Model):
    items: list[MessageStatus]
    next_after: int | None = Field(description="Pass as ?after= to get the next page; null on the last page")


class ReplayRequest(_Model):
    """Which dead letters to queue again: explicit ids, or all of one recipient's."""

    # At least one of the two: an empty request names nothing to replay (400).
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["message_ids"], "properties": {"message_ids": {"minItems": 1}}},
        {"required": ["recipient"]},
    ]})

    message_ids: list[str] = Field(default_factory=list, max_length=10_000)
    recipient: str | None = Field(None, min_length=1)


class ReplayResult(_Model):
    replayed: list[str]
    not_dead: list[str] = Field(description="Ids that were not in the dead-letter queue (unknown, or not dead)")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class Health(_Model):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


# ---------------------------------------------------------------- workflows


class ReportAccepted(_Model):
    """A pre-trial report request was stored; gathering has begun."""

    report_id: str
    status: str
    duplicate: bool = Field(description="True when this X-Message-Id asked for the same report before")


class SectionView(_Model):
    status: Literal["OK", "UNAVAILABLE"]
    source: str
    fetched_at: str
    reason: str | None = None


class VersionView(_Model):
    version: int
    status: Literal["queued", "delivered", "dead"]
    queued_at: str
    delivered_at: str | None = None
    registration_number: str | None = Field(None, description="The court's registration number of this version")
    registered_at: str | None = None
    sections_ok: list[str]
    error: str | None = None


class ReportStatus(_Model):
    report_id: str
    status: Literal["gathering", "delivering", "partial", "complete", "closed_partial", "failed"]
    version: int = Field(description="How many versions have been sent to the court")
    due_date: str
    sections: dict[str, SectionView]
    gaps: list[str] = Field(description="Sections still unavailable")
    versions: list[VersionView]
    failure: str | None = None


class ReleaseAccepted(_Model):
    case_id: str
    status: Literal["accepted"]


class ReleaseCaseView(_Model):
    """A release case as operators see it: states and what went out — no names, no IINs."""

    case_id: str
    state: Literal["notified", "awaiting_acknowledgement", "escalated", "awaiting_attachment", "closed",
                   "unresolved", "cancelled"]
    facility: str
    release_type: str
    release_date: str
    destination_region: str | None
    events: list[dict]
    clinic: str | None
    notices: dict[str, int] = Field(description="How many notices went to each recipient")
    acknowledgement: dict | None
    hold: dict | None
    escalations: list[dict]
    problem: str | None
    updated_at: float


class ReleaseCasePage(_Model):
    items: list[ReleaseCaseView]
    next_after: str | None


class AcknowledgementRecorded(_Model):
    case_id: str
    state: str


class OutcomeRecorded(_Model):
    """The answer to a referral registration, an outcome report or a re-offence signal."""

    referral_id: str | None = Field(None, description="The referral, for registrations and outcome reports")
    state: str = Field(description="Where the referral stands now; `recorded` for a re-offence signal")
    duplicate: bool = Field(description="True when exactly this was recorded before: nothing changed")


class PlanRecorded(_Model):
    """The answer to a re-socialisation plan's version."""

    plan_id: str
    version: int
    recipients: list[str] = Field(description="The members the version was sent to, each as its role may see it")
    referrals: list[str] = Field(description="The referrals the plan's measures make (their outcomes are reported "
                                             "on /api/v1/referrals/{referral_id}/outcomes)")
    duplicate: bool = Field(description="True when exactly this version was stored before: nothing was sent again")


class PlanVersionView(_Model):
    """One stored version of a plan: who sent it, when, and where it went (not its content)."""

    version: int
    sender: str
    received_at: float
    recipients: list[str]
    referrals: list[str]


class PlanVersions(_Model):
    plan_id: str
    versions: list[PlanVersionView]


class PersonCopyView(_Model):
    """One hand-over of the person's own copy of a pre-trial report."""

    copy_id: str
    report_version: int
    handed_over_on: str
    language: str
    form: str
    to: str = Field(description="person or representative")
    representative: dict[str, str] | None = Field(None, description="name and basis of the representation")
    recorded_by: str


class PersonCopies(_Model):
    report_id: str
    copies: list[PersonCopyView]
