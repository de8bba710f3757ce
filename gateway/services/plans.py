"""Taking in re-socialisation plans: the individual programme and its RNR assessment, sent by the
penal system before release (SOAP ``resocialisation-plans``) and by probation as it changes
(``PUT /api/v1/plans/{plan_id}``).

A plan is known by its id and numbered by versions. Every version is kept (a case of kind
``resocialisation-plan``, its versions in order) and routed once (``gateway.workflows.plans``),
in the same transaction that stores it: stored and not sent, or sent and not stored, cannot
happen. The rules, each refused with nothing stored:

- the sender must be the penal system or probation, and the person must have a release case
  (a release notice from the penal system): a plan for an unknown person is 404;
- a version lower than the latest is stale (409), even unchanged; the latest version number with
  other content is 409; the latest version again with the same content is a duplicate, answered
  as before and sent to nobody again;
- a message id used before for other content is 422 (``IdempotencyKeyReused``);
- the plan and its assessment cannot be drawn up in the future; a plan of the adaptation stage
  (after release) is drawn up on or after the release, and only once the release happened (422);
- the plan belongs to the person it was opened for (422).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.domain import AccompanimentStage, ReleaseNotice, ResocialisationPlan
from gateway.domain.canonical import Text
from gateway.errors import Conflict, Forbidden, IdempotencyKeyReused, NotFound, Unprocessable
from gateway.store import Case, ConflictError, RecordInbound, SaveCase, Store
from gateway.workflows import release
from gateway.workflows.plans import PlanRouting

__all__ = ["KIND", "PLAN_SENDERS", "PlanIntake", "PlanReceipt", "PlanSubmission", "UnknownPerson"]

KIND = "resocialisation-plan"
PLAN_SENDERS = ("penal", "probation")
"""The penal system draws the plan up with probation before release; probation carries it on."""
_ANSWER_KEY = "plans:"
_ASTANA = dt.timezone(dt.timedelta(hours=5))
_ATTEMPTS = 3


class UnknownPerson(NotFound):
    slug, title = "unknown-person", "No release of this person is known"


class PlanSubmission(BaseModel):
    """One version of a plan, as a sender submits it."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    plan_id: Text
    version: int = Field(ge=1, le=1_000_000)
    plan: ResocialisationPlan


@dataclass(frozen=True, slots=True)
class PlanReceipt:
    plan_id: str
    version: int
    recipients: tuple[str, ...]
    referrals: tuple[str, ...]
    duplicate: bool


class PlanIntake:
    def __init__(self, store: Store, routing: PlanRouting, *, subject_key: Callable[[str], str],
                 clock: Callable[[], float], senders: Collection[str] = PLAN_SENDERS) -> None:
        self._store = store
        self._routing = routing
        self._subject_key = subject_key
        self._clock = clock
        self.senders = frozenset(senders)

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self._clock(), _ASTANA).date()

    def authorise(self, sender: str) -> None:
        if sender not in self.senders:
            raise Forbidden(f"member {sender!r} may not send re-socialisation plans; only "
                            f"{', '.join(sorted(self.senders))} may")

    async def versions(self, plan_id: str) -> list[dict[str, Any]]:
        """The stored versions of a plan, oldest first (empty for an unknown plan)."""
        case = await self._store.get_case(KIND, plan_id)
        return list(case.data["versions"]) if case is not None else []

    async def receive(self, submission: PlanSubmission, *, sender: str, message_id: str | None = None) -> PlanReceipt:
        self.authorise(sender)
        plan, today = submission.plan, self.today()
        for name, day in (("plan.drawn_up", plan.drawn_up), ("plan.assessment.assessment_date",
                                                             plan.assessment.assessment_date)):
            if day > today:
                raise Unprocessable(f"{name} {day.isoformat()} is in the future (today is {today.isoformat()})")
        subject_key = self._subject_key(plan.iin)
        notice = await self._release_of(subject_key)
        if plan.stage is AccompanimentStage.ADAPTATION:
            if notice.actual_date is None:
                raise Unprocessable("an ADAPTATION-stage plan follows the release, and the release has not "
                                      "happened yet: send it as CORRECTIONAL")
            if plan.drawn_up < notice.actual_date:
                raise Unprocessable(f"plan.drawn_up {plan.drawn_up.isoformat()} is before the release on "
                                      f"{notice.actual_date.isoformat()}: an ADAPTATION-stage plan follows it")
        digest = _digest(submission)
        for _ in range(_ATTEMPTS):
            if message_id is not None:
                answered = await self._answered(sender, message_id, digest)
                if answered is not None:
                    return answered
            case = await self._store.get_case(KIND, submission.plan_id)
            if case is not None:
                earlier = self._earlier(case, submission, subject_key, digest)
                if earlier is not None:
                    return earlier
            now = self._clock()
            routed = self._routing.route(submission.plan_id, submission.version, plan, notice, today=today, now=now)
            version = {"version": submission.version, "digest": digest, "sender": sender, "received_at": now,
                       "message_id": message_id, "recipients": list(routed.recipients),
                       "referrals": list(routed.referrals), "plan": plan.model_dump(mode="json")}
            versions = [*(case.data["versions"] if case is not None else []), version]
            commands: list = [SaveCase(KIND, submission.plan_id, "current", {"versions": versions},
                                       expected_version=case.version if case is not None else 0,
                                       subject_key=subject_key), *routed.commands]
            receipt = PlanReceipt(submission.plan_id, submission.version, routed.recipients, routed.referrals,
                                  duplicate=False)
            if message_id is not None:
                commands.append(RecordInbound(sender, _ANSWER_KEY + message_id, _answer(receipt, digest)))
            try:
                await self._store.apply(commands, now)
            except ConflictError:
                continue  # another version (or this one, resent) was stored first: check against it
            return receipt
        raise Conflict("the plan kept changing while this version was stored; send it again")

    async def _release_of(self, subject_key: str) -> ReleaseNotice:
        cases = [c for c in await self._store.list_cases(release.KIND, subject_key=subject_key)
                 if c.state != release.ReleaseState.CANCELLED]
        if not cases:
            raise UnknownPerson("no release of this person is known: the penal system's release notice comes first")
        return release.state_of(max(cases, key=lambda c: c.created_at)).notice

    def _earlier(self, case: Case, submission: PlanSubmission, subject_key: str, digest: str) -> PlanReceipt | None:
        """The receipt of this very version if it is stored already; raises if it cannot follow."""
        if case.subject_key != subject_key:
            raise Unprocessable(f"plan {submission.plan_id!r} is the plan of another person")
        versions = case.data["versions"]
        latest = versions[-1]
        if submission.version < latest["version"]:
            raise Conflict(f"version {submission.version} of plan {submission.plan_id!r} is stale: version "
                           f"{latest['version']} is stored")
        if submission.version == latest["version"]:
            if latest["digest"] != digest:
                raise Conflict(f"version {submission.version} of plan {submission.plan_id!r} is already "
                               "stored with other content: send the change as a new version")
            return PlanReceipt(submission.plan_id, submission.version, tuple(latest["recipients"]),
                               tuple(latest["referrals"]), duplicate=True)
        return None

    async def _answered(self, sender: str, message_id: str, digest: str) -> PlanReceipt | None:
        answer = await self._store.find_inbound(sender, _ANSWER_KEY + message_id)
        if answer is None:
            return None
        data = json.loads(answer)
        if data["digest"] != digest:
            raise IdempotencyKeyReused(f"message id {message_id!r} was already used for another plan version; "
                                       "send each version with a message id of its own")
        return PlanReceipt(data["plan_id"], data["version"], tuple(data["recipients"]), tuple(data["referrals"]),
                           duplicate=True)


def _digest(submission: PlanSubmission) -> str:
    canonical = json.dumps(submission.model_dump(mode="json"), sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _answer(receipt: PlanReceipt, digest: str) -> bytes:
    return json.dumps({"plan_id": receipt.plan_id, "version": receipt.version, "recipients": list(receipt.recipients),
                       "referrals": list(receipt.referrals), "digest": digest}).encode()
