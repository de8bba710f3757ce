"""The person's own copy of the pre-trial report (Strategy §3.3: the suspect and the defence see the
report the court gets).

The probation officer records each hand-over: when, in which language (ru, kk), in which form
(paper, electronic), to the person or to their representative (name and the basis of the
representation, as the officer checked it). The hand-over is a disclosure like any other: the
report is filtered by the disclosure policy for the recipient's role (``person`` or
``representative``, purpose ``person_copy``: expunged convictions never, health as flags only) and
the disclosure is written to the audit log in the same transaction as the record. A representative
who asks again later is given the same filtered document on request (``document``), audited again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator

from gateway.domain import PreTrialReport
from gateway.domain.canonical import Text
from gateway.errors import Conflict, NotFound, Unprocessable
from gateway.store import Command, ConflictError, SaveCase, Store

__all__ = ["KIND", "PURPOSE", "HandOver", "PersonCopies", "Representative"]

KIND = "pretrial-person-copy"
PURPOSE = "person_copy"
_ASTANA = dt.timezone(dt.timedelta(hours=5))
_ATTEMPTS = 3


class Representative(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    name: Text
    basis: Text
    """What the representation rests on, as the officer saw it: an advocate's warrant, a power of attorney."""


class HandOver(BaseModel):
    """A copy of the report handed over, as the officer records it."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    handed_over_on: dt.date
    language: Literal["ru", "kk"]
    form: Literal["paper", "electronic"]
    to: Literal["person", "representative"]
    representative: Representative | None = None

    @model_validator(mode="after")
    def _representative_when_to_one(self) -> Self:
        if (self.to == "representative") != (self.representative is not None):
            raise ValueError("representative is given exactly when the copy goes to the representative")
        return self


class PersonCopies:
    def __init__(self, store: Store, policy: Any, audit: Any, clock: Callable[[], float]) -> None:
        self._store = store
        self._policy = policy
        self._audit = audit
        self._clock = clock

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self._clock(), _ASTANA).date()

    async def copies(self, report_id: str) -> list[dict[str, Any]]:
        case = await self._store.get_case(KIND, report_id)
        return list(case.data["copies"]) if case is not None else []

    async def record(self, report: PreTrialReport, hand_over: HandOver, *, caller: str,
                     requested_on: dt.date) -> dict[str, Any]:
        """Record a hand-over of ``report`` (its latest version) and audit the disclosure with it."""
        today = self.today()
        if hand_over.handed_over_on > today:
            raise Unprocessable(f"handed_over_on {hand_over.handed_over_on.isoformat()} is in the future "
                                f"(today is {today.isoformat()})")
        if hand_over.handed_over_on < requested_on:
            raise Unprocessable(f"handed_over_on {hand_over.handed_over_on.isoformat()} is before the report was "
                                f"requested on {requested_on.isoformat()}")
        for _ in range(_ATTEMPTS):
            case = await self._store.get_case(KIND, report.report_id)
            copies = list(case.data["copies"]) if case is not None else []
            copy = {"copy_id": f"{report.report_id}-copy-{len(copies) + 1}", "report_version": report.version,
                    "recorded_by": caller, "recorded_at": self._clock(), **hand_over.model_dump(mode="json")}
            if any({k: v for k, v in c.items() if k not in ("copy_id", "recorded_at")}
                   == {k: v for k, v in copy.items() if k not in ("copy_id", "recorded_at")} for c in copies):
                raise Conflict("this hand-over is recorded already")
            _, audit = self._disclose(report, copy, caller)
            commands: list[Command] = [
                SaveCase(KIND, report.report_id, "recorded", {"copies": [*copies, copy]},
                         expected_version=case.version if case is not None else 0,
                         subject_key=self._audit.subject_key(report.subject.iin)), audit]
            try:
                await self._store.apply(commands, self._clock())
            except ConflictError:
                continue
            return copy
        raise Conflict("the report's hand-overs kept changing; send it again")

    async def document(self, report: PreTrialReport, copy_id: str, *, caller: str) -> tuple[dict[str, Any], str]:
        """The report as the recipient of hand-over ``copy_id`` may see it, and its language; the
        disclosure is audited before the document is given."""
        copy = next((c for c in await self.copies(report.report_id) if c["copy_id"] == copy_id), None)
        if copy is None:
            raise NotFound("no such hand-over of this report is recorded")
        payload, audit = self._disclose(report, copy, caller)
        await self._store.apply([audit], self._clock())
        return payload, copy["language"]

    def _disclose(self, report: PreTrialReport, copy: dict[str, Any], caller: str) -> tuple[dict[str, Any], Command]:
        disclosure = self._policy.apply(document_type="PreTrialReport", payload=report.model_dump(mode="json"),
                                        recipient_role=copy["to"], purpose=PURPOSE)
        audit = self._audit.disclosure(
            document_type="PreTrialReport", recipient=caller, recipient_role=copy["to"], service="person-copy",
            subject_iin=report.subject.iin, fields=tuple(disclosure.disclosed), withheld=tuple(disclosure.withheld),
            purpose=PURPOSE, message_id=copy["copy_id"], correlation_id=report.report_id, at=self._clock())
        return disclosure.payload, audit
