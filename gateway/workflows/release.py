"""Release and continuity of care — Strategy §1.1, §1.2, §3.2.

On release a person's attachment to the clinic at the place of custody lapses
automatically, and until they attach at the new address they cannot get care:
for someone on TB or HIV treatment, a gap breeds drug resistance. When the penal
system notifies a release, the gateway:

1. asks health for the dispensary registrations and the РПН attachment, and
   interior for the person's identity;
2. places a continuity hold on an attachment that would lapse;
3. finds the clinic for the destination address and sends it the
   continuity-of-care notice (when there is a registration to continue), with a
   deadline to acknowledge — past it, the regional health authority is told;
   with no resolvable clinic, the authority is told at once;
4. in parallel notifies the employment centre (age, release date, residence,
   education, specialty: nothing else, §1.1), refers the person to social
   services when there is no housing or no identity document, and notifies the
   probation office when post-release probation applies;
5. watches for the new attachment — the clinic's acknowledgement or, failing
   that, the register itself — then lifts the hold and closes the case.

A changed release date updates the case and re-sends the notices; a cancelled
release lifts the hold and closes it. Every step is a persisted, idempotent
transition; every deadline is a stored timer.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Callable

from pydantic import BaseModel

from gateway.config import ReleaseConfig, Route
from gateway.domain import (
    AssistanceCategory,
    AssistanceReferral,
    Attachment,
    AttachmentState,
    ContinuityHold,
    ContinuityOfCareNotice,
    EmploymentNotice,
    Organisation,
    ProbationNotice,
    ReferralStatus,
    ReleaseEvent,
    ReleaseNotice,
)
from gateway.logs import get_logger
from gateway.store import Case, ConflictError, Message, RecordRelease, ScheduleTimer, Timer
from gateway.workflows.egress import DisclosureRefused, Egress, message_id_for
from gateway.workflows.outcomes import OutcomeTracking
from gateway.workflows.ports import HealthPort, InteriorPort, NotFound, SourceError
from gateway.workflows.runtime import Step, WorkflowRuntime, cancel, schedule
from gateway.workflows.state import (
    TIMER_PAYLOADS,
    ClinicAcknowledgement,
    Escalation,
    EventRecord,
    Hold,
    Recipient,
    RecordedAcknowledgement,
    ReleaseCaseState,
    ReleaseTimer,
    Retrying,
    SentNotices,
    instant,
)

__all__ = ["KIND", "FINAL_STATES", "ClinicAcknowledgement", "ReleaseCases", "ReleaseCaseState", "ReleaseState",
           "ReleaseTimer", "state_of"]

log = get_logger("gateway.workflows.release")

KIND = ReleaseCaseState.kind
_DAY = 86_400.0


class ReleaseState(enum.StrEnum):
    NOTIFIED = "notified"  # a release is announced; preparation is under way
    AWAITING_ACKNOWLEDGEMENT = "awaiting_acknowledgement"  # the clinic has the notice
    ESCALATED = "escalated"  # the authority was told: no clinic, or no acknowledgement in time
    AWAITING_ATTACHMENT = "awaiting_attachment"  # watching РПН for the new attachment
    CLOSED = "closed"  # attached at the new clinic; hold lifted
    UNRESOLVED = "unresolved"  # the watch ended without a new attachment
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({ReleaseState.CLOSED, ReleaseState.UNRESOLVED, ReleaseState.CANCELLED})


def state_of(case: Case) -> ReleaseCaseState:
    """A release case's saved state, upgraded from an older version if need be."""
    return ReleaseCaseState.load(case.data)


def _schedule(case_id: str, timer: ReleaseTimer, fire_at: float) -> ScheduleTimer:
    return schedule(KIND, case_id, timer, fire_at, TIMER_PAYLOADS[timer]())


class AcknowledgementConflict(Exception):
    """A notice already acknowledged otherwise: the first acknowledgement stands."""


class ReleaseCases:
    kind = KIND

    def __init__(
        self,
        runtime: WorkflowRuntime,
        config: ReleaseConfig,
        egress: Egress,
        *,
        interior: InteriorPort,
        health: HealthPort,
        subject_key: Callable[[str], str],
        today: Callable[[float], dt.date] | None = None,
        outcomes: OutcomeTracking | None = None,
    ) -> None:
        self._runtime = runtime
        self._config = config
        self._egress = egress
        self._interior = interior
        self._health = health
        self._subject_key = subject_key
        self._today = today or (lambda now: dt.datetime.fromtimestamp(now, _ASTANA).date())
        self._outcomes = outcomes
        runtime.register(self)

    # -- notices from the penal system

    async def receive_release_notice(
        self, event: ReleaseEvent, notice: ReleaseNotice, *, sender: str, message_id: str,
        correlation_id: str | None = None,
    ) -> str:
        """Open or update the release case for ``notice``; returns the case id."""
        subject_key = self._subject_key(notice.iin)
        fresh_id = _case_id(subject_key, notice.facility.code, notice.planned_date)
        for _ in range(3):
            latest = await self._latest_case(subject_key, notice.facility.code)
            # A planned release after a finished case is a new release (a later term);
            # anything else about this facility's release updates the case it belongs to.
            if latest is None or (event is ReleaseEvent.PLANNED and latest.state in FINAL_STATES
                                  and latest.id != fresh_id):
                step = self._opened(fresh_id, event, notice, message_id)
                try:
                    await self._runtime.start_case(KIND, fresh_id, step, subject_key=subject_key)
                    return fresh_id
                except ConflictError:
                    continue  # the same release arrived twice at once: update the one that won
            await self._runtime.handle(KIND, latest.id,
                                       lambda c, now: self._updated_and_tracked(c, event, notice, message_id, now))
            return latest.id
        raise ConflictError("the release case kept changing; send the notice again")

    async def _latest_case(self, subject_key: str, facility: str) -> Case | None:
        cases = [c for c in await self._runtime.cases(KIND, subject_key=subject_key)
                 if state_of(c).notice.facility.code == facility]
        return max(cases, key=lambda c: c.created_at, default=None)

    def _opened(self, case_id: str, event: ReleaseEvent, notice: ReleaseNotice, message_id: str) -> Step:
        now = self._runtime.now()
        state = ReleaseCaseState(notice=notice, events=[_event(event, message_id, now)])
        if event is ReleaseEvent.CANCELLED:
            return Step(ReleaseState.CANCELLED, state)
        return Step(ReleaseState.NOTIFIED, state, [_schedule(case_id, ReleaseTimer.PREPARE, now),
                                                   *self._released(event, state.notice)])

    async def _updated_and_tracked(self, case: Case, event: ReleaseEvent, notice: ReleaseNotice, message_id: str,
                                   now: float) -> Step | None:
        step = await self._updated(case, event, notice, message_id, now)
        if step is None or step.state == ReleaseState.CANCELLED:
            return step
        return Step(step.state, step.data, [*step.commands, *self._released(event, notice)], step.after_commit)

    def _released(self, event: ReleaseEvent, notice: ReleaseNotice) -> list[RecordRelease]:
        """An actual release starts the indicators' 36-month watch (gateway.workflows.outcomes)."""
        if self._outcomes is None or event is not ReleaseEvent.ACTUAL:
            return []
        return self._outcomes.released(notice)

    async def _updated(self, case: Case, event: ReleaseEvent, notice: ReleaseNotice, message_id: str, now: float
                       ) -> Step | None:
        state = state_of(case)
        if any(e.message_id == message_id for e in state.events):
            return None  # the same notice again
        state.events.append(_event(event, message_id, now))
        previous, state.notice = state.notice, notice
        if case.state in FINAL_STATES and (event is not ReleaseEvent.CANCELLED or case.state == ReleaseState.CANCELLED):
            return Step(case.state, state)  # recorded; nothing left to do for a finished case
        if event is ReleaseEvent.CANCELLED:
            commands = [*self._cancel_timers(case.id), _schedule(case.id, ReleaseTimer.LIFT_HOLD, now)]
            if Recipient.PROBATION in state.sent and previous.probation_office is not None \
                    and state.person is not None:
                # The office expecting the person is told not to.
                cancelled = ProbationNotice.from_release(ReleaseEvent.CANCELLED, previous, state.person)
                commands += self._send(Recipient.PROBATION, self._config.probation, "probation_supervision",
                                       cancelled, notice.iin, case.id, f"{case.id}:probation:cancelled", now, state)
            return Step(ReleaseState.CANCELLED, state, commands)
        if case.state == ReleaseState.NOTIFIED:
            return Step(case.state, state)  # preparation will read the newest notice
        commands: list = []
        if _notice_changed(previous, notice):
            commands.append(_schedule(case.id, ReleaseTimer.RENOTIFY, now))
        if event is ReleaseEvent.ACTUAL:
            commands.append(_schedule(case.id, ReleaseTimer.CHECK_ATTACHMENT, now))
        return Step(case.state, state, commands)

    # -- the clinic's acknowledgement

    async def acknowledge(self, notice_id: str, ack: ClinicAcknowledgement) -> Case | None:
        """Record a clinic's acknowledgement of the notice ``notice_id``; None if there is no such notice."""
        case_id = await self._runtime.case_of_message(notice_id)
        if case_id is None:
            return None
        case = await self._runtime.get(KIND, case_id)
        clinic_notice = state_of(case).sent.get(Recipient.CLINIC) if case else None
        if clinic_notice is None or notice_id not in clinic_notice.message_ids or ack.clinic != clinic_notice.clinic:
            return None
        return await self._runtime.handle(KIND, case_id, lambda c, now: self._acknowledged(c, ack, now))

    async def _acknowledged(self, case: Case, ack: ClinicAcknowledgement, now: float) -> Step | None:
        state = state_of(case)
        if state.acknowledgement is not None:
            if ClinicAcknowledgement.model_validate(state.acknowledgement.model_dump(exclude={"at"})) == ack:
                return None  # the same acknowledgement again: answered as the first
            raise AcknowledgementConflict("this notice was already acknowledged with other content; "
                                          "the first acknowledgement stands")
        state.acknowledgement = RecordedAcknowledgement(**ack.model_dump(), at=instant(now))
        commands = [cancel(KIND, case.id, ReleaseTimer.ACK_DEADLINE)]
        if case.state in FINAL_STATES:
            return Step(case.state, state, commands)
        then = ReleaseTimer.LIFT_HOLD if ack.attached else ReleaseTimer.CHECK_ATTACHMENT
        return Step(ReleaseState.AWAITING_ATTACHMENT, state, [*commands, _schedule(case.id, then, now)])

    # -- delivery outcomes of the clinic notice

    async def delivered(self, message: Message, answer: bytes) -> None:
        """The clinic took the notice; its acknowledgement comes separately."""

    async def dead(self, message: Message) -> None:
        """The clinic could not be given the notice at all: the authority must step in."""
        await self._runtime.handle(KIND, message.correlation_id, lambda case, now: self._notice_dead(case, message, now))

    async def _notice_dead(self, case: Case, message: Message, now: float) -> Step | None:
        state = state_of(case)
        clinic_notice = state.sent.get(Recipient.CLINIC)
        if case.state in FINAL_STATES or clinic_notice is None or message.id not in clinic_notice.message_ids:
            return None
        return self._escalate(case.id, state, now, reason=f"the notice could not be delivered to the clinic: "
                              f"{message.last_error or 'dead-lettered'}")

    # -- timers

    async def on_timer(self, case: Case, timer: Timer, now: float) -> Step | None:
        name = ReleaseTimer(timer.name)
        TIMER_PAYLOADS[name].model_validate(timer.payload)
        handlers = {
            ReleaseTimer.PREPARE: self._prepare,
            ReleaseTimer.RENOTIFY: self._renotify,
            ReleaseTimer.ACK_DEADLINE: self._ack_deadline,
            ReleaseTimer.CHECK_ATTACHMENT: self._check_attachment,
            ReleaseTimer.LIFT_HOLD: self._lift_hold,
        }
        if name is not ReleaseTimer.LIFT_HOLD and case.state in FINAL_STATES:
            return None
        return await handlers[name](case, state_of(case), now)

    async def _prepare(self, case: Case, state: ReleaseCaseState, now: float) -> Step:
        notice = state.notice
        try:
            person = await self._interior.person(notice.iin)
            health = await self._health.health_summary(notice.iin)
            attachment = await self._health.attachment(notice.iin)
            clinic = await self._health.clinic_for(notice.destination)
            hold = None
            if _lapses(attachment, clinic):
                until = notice.release_date + dt.timedelta(days=self._config.hold_days_after_release)
                hold = await self._health.place_hold(notice.iin, until, reference=case.id)
        except NotFound as exc:
            state.problem = f"{exc.source} does not know the person: {exc.reason}"
            return self._escalate(case.id, state, now, reason=state.problem)
        except SourceError as exc:
            state.retrying = Retrying(reason=str(exc), at=instant(now))
            return Step(case.state, state, [_schedule(case.id, ReleaseTimer.PREPARE, now + self._config.retry_seconds)])
        state.retrying = None
        state.person, state.health, state.attachment, state.clinic = person, health, attachment, clinic
        if hold is not None:
            state.hold = Hold(id=hold.id, until=hold.until)
        commands: list = []
        try:
            commands += self._side_notices(case.id, state, now)
            if clinic is None:
                return self._escalate(case.id, state, now, reason="no clinic serves the destination address",
                                      commands=commands)
            if health.registrations:
                commands += self._send_clinic_notice(case.id, state, now)
                return Step(ReleaseState.AWAITING_ACKNOWLEDGEMENT, state, commands)
        except DisclosureRefused as exc:
            state.problem = str(exc)
            return self._escalate(case.id, state, now, reason="a notice was refused by the disclosure policy",
                                  commands=commands)
        # Nothing to continue: no notice to the clinic, but the attachment is still watched.
        commands.append(_schedule(case.id, ReleaseTimer.CHECK_ATTACHMENT, self._first_check(notice, now)))
        return Step(ReleaseState.AWAITING_ATTACHMENT, state, commands)

    def _send_clinic_notice(self, case_id: str, state: ReleaseCaseState, now: float) -> list:
        """The continuity-of-care notice to the clinic, from what preparation found."""
        notice, clinic, attachment = state.notice, state.clinic, state.attachment
        sent = state.sent.setdefault(Recipient.CLINIC, SentNotices())
        revision = len(sent.message_ids)
        acknowledge_by = dt.datetime.fromtimestamp(now + self._config.acknowledge_within_seconds, dt.UTC)
        if attachment is not None and state.hold is not None:
            hold = ContinuityHold(id=state.hold.id, until=state.hold.until)
            attachment = attachment.model_copy(update={"continuity_hold": hold})
        document = ContinuityOfCareNotice(
            person=state.person, release_date=notice.release_date, residence=notice.destination,
            health=state.health, attachment=attachment, receiving_clinic=clinic, acknowledge_by=acknowledge_by,
        )
        message_id, commands = self._egress.send(
            route=self._config.clinic, purpose="continuity_of_care", document=document, subject_iin=notice.iin,
            correlation_id=case_id, key=f"{case_id}:clinic:{revision}", now=now, ordering_key=case_id,
        )
        sent.message_ids.append(message_id)
        sent.clinic, sent.acknowledge_by = clinic.code, acknowledge_by
        return [*commands, _schedule(case_id, ReleaseTimer.ACK_DEADLINE, now + self._config.acknowledge_within_seconds)]

    def _side_notices(self, case_id: str, state: ReleaseCaseState, now: float, revision: int = 0) -> list:
        """Employment centre, social services and probation, as the case calls for them."""
        notice, person = state.notice, state.person
        commands: list = []
        suffix = f":{revision}" if revision else ""
        employment = EmploymentNotice.from_release(notice, person, as_of=self._today(now))
        commands += self._send(Recipient.EMPLOYMENT, self._config.employment, "employment_assistance", employment,
                               notice.iin, case_id, f"{case_id}:employment{suffix}", now, state)
        if not revision and self._outcomes is not None:
            # The centre knows the notice by its X-Message-Id: that is the referral it reports on.
            commands.append(self._outcomes.referred_on_release(
                message_id_for(f"{case_id}:employment"), notice, recipient=self._config.employment.member,
                category=AssistanceCategory.EMPLOYMENT, sent_on=self._today(now)))
        if not revision and (not notice.housing.available or not notice.identity_documents):
            # A place to stay first: it also gives the address to register at (Strategy §3.2).
            category = (AssistanceCategory.PLACE_TO_STAY if not notice.housing.available
                        else AssistanceCategory.DOCUMENT_RESTORATION)
            reasons = [text for missing, text in ((not notice.housing.available, "no housing"),
                                                  (not notice.identity_documents, "no identity document")) if missing]
            referral = AssistanceReferral(
                referral_id=f"{case_id}-social", iin=notice.iin, category=category,
                provider=Organisation(code=self._config.social.member, name="Special social services"),
                referral_date=self._today(now), reason=", ".join(reasons), status=ReferralStatus.REFERRED,
            )
            commands += self._send(Recipient.SOCIAL, self._config.social, "social_assistance", referral, notice.iin,
                                   case_id, f"{case_id}:social", now, state)
            if self._outcomes is not None:
                commands.append(self._outcomes.referred_on_release(
                    referral.referral_id, notice, recipient=self._config.social.member, category=category,
                    sent_on=self._today(now)))
        if notice.probation_office is not None:
            event = ReleaseEvent.CHANGED if revision else ReleaseEvent.PLANNED
            commands += self._send(Recipient.PROBATION, self._config.probation, "probation_supervision",
                                   ProbationNotice.from_release(event, notice, person), notice.iin, case_id,
                                   f"{case_id}:probation{suffix}", now, state)
        return commands

    def _send(self, recipient: Recipient, route: Route, purpose: str, document: BaseModel, iin: str, case_id: str,
              key: str, now: float, state: ReleaseCaseState) -> list:
        message_id, commands = self._egress.send(route=route, purpose=purpose, document=document, subject_iin=iin,
                                                 correlation_id=case_id, key=key, now=now, ordering_key=case_id)
        state.sent.setdefault(recipient, SentNotices()).message_ids.append(message_id)
        return commands

    def _escalate(self, case_id: str, state: ReleaseCaseState, now: float, *, reason: str,
                  commands: list | None = None) -> Step:
        commands = list(commands or [])
        notice = state.notice
        state.escalations.append(Escalation(reason=reason, at=instant(now)))
        if state.person is not None and state.health is not None:
            # The authority gets the same notice the clinic would have, to place the patient itself.
            document = ContinuityOfCareNotice(
                person=state.person, release_date=notice.release_date, residence=notice.destination,
                health=state.health, attachment=None,
                receiving_clinic=Organisation(code=self._config.escalation.member, name="Regional health authority"),
                acknowledge_by=dt.datetime.fromtimestamp(now + self._config.acknowledge_within_seconds, dt.UTC),
                escalation_reason=reason,
            )
            try:
                commands += self._send(Recipient.ESCALATION, self._config.escalation, "continuity_of_care", document,
                                       notice.iin, case_id, f"{case_id}:escalation:{len(state.escalations)}", now,
                                       state)
            except DisclosureRefused as exc:
                state.problem = str(exc)
        commands.append(_schedule(case_id, ReleaseTimer.CHECK_ATTACHMENT, self._first_check(notice, now)))
        return Step(ReleaseState.ESCALATED, state, commands)

    async def _renotify(self, case: Case, state: ReleaseCaseState, now: float) -> Step | None:
        """The release changed: tell those already told, with the new notice."""
        if state.person is None:
            return None
        revision = sum(1 for e in state.events if e.event is ReleaseEvent.CHANGED)
        commands = self._side_notices(case.id, state, now, revision=revision)
        if Recipient.CLINIC in state.sent and state.clinic is not None and state.acknowledgement is None:
            commands += self._send_clinic_notice(case.id, state, now)
        return Step(case.state, state, commands)

    async def _ack_deadline(self, case: Case, state: ReleaseCaseState, now: float) -> Step | None:
        if state.acknowledgement is not None:
            return None
        return self._escalate(case.id, state, now, reason="the clinic did not acknowledge in time")

    async def _check_attachment(self, case: Case, state: ReleaseCaseState, now: float) -> Step:
        notice = state.notice
        try:
            attachment = await self._health.attachment(notice.iin)
        except SourceError as exc:
            state.retrying = Retrying(reason=str(exc), at=instant(now))
            return Step(case.state, state,
                        [_schedule(case.id, ReleaseTimer.CHECK_ATTACHMENT, now + self._config.retry_seconds)])
        clinic = state.clinic
        if attachment is not None and attachment.state is AttachmentState.ATTACHED and clinic is not None \
                and attachment.clinic.code == clinic.code:
            state.attached = attachment
            return Step(case.state, state, [_schedule(case.id, ReleaseTimer.LIFT_HOLD, now)])
        watch_until = _start_of(notice.release_date) + self._config.attachment_watch_days * _DAY
        if now >= watch_until:
            state.problem = "no attachment at the new clinic within the watch period"
            return Step(ReleaseState.UNRESOLVED, state, [_schedule(case.id, ReleaseTimer.LIFT_HOLD, now)])
        return Step(case.state, state, [_schedule(case.id, ReleaseTimer.CHECK_ATTACHMENT,
                                                  now + self._config.attachment_check_seconds)])

    async def _lift_hold(self, case: Case, state: ReleaseCaseState, now: float) -> Step | None:
        hold = state.hold
        if hold is not None and hold.released is None:
            try:
                await self._health.release_hold(state.notice.iin, hold.id)
            except SourceError as exc:
                state.retrying = Retrying(reason=str(exc), at=instant(now))
                return Step(case.state, state,
                            [_schedule(case.id, ReleaseTimer.LIFT_HOLD, now + self._config.retry_seconds)])
            hold.released = instant(now)
        if case.state in FINAL_STATES:
            return Step(case.state, state)
        return Step(ReleaseState.CLOSED, state, self._cancel_timers(case.id, keep=ReleaseTimer.LIFT_HOLD))

    def _cancel_timers(self, case_id: str, keep: ReleaseTimer | None = None) -> list:
        return [cancel(KIND, case_id, name) for name in ReleaseTimer if name != keep]

    def _first_check(self, notice: ReleaseNotice, now: float) -> float:
        return max(now + self._config.attachment_check_seconds, _start_of(notice.release_date))


_ASTANA = dt.timezone(dt.timedelta(hours=5))


def _lapses(attachment: Attachment | None, clinic: Organisation | None) -> bool:
    """An attachment somewhere other than the destination clinic lapses on release."""
    return (attachment is not None and attachment.state is AttachmentState.ATTACHED
            and (clinic is None or attachment.clinic.code != clinic.code))


def _notice_changed(old: ReleaseNotice, new: ReleaseNotice) -> bool:
    return (old.release_date, old.destination, old.probation_office) != (new.release_date, new.destination,
                                                                         new.probation_office)


def _case_id(subject_key: str, facility: str, planned: dt.date) -> str:
    digest = hashlib.sha256(f"{subject_key}\x00{facility}\x00{planned.isoformat()}".encode()).hexdigest()[:20]
    return f"rel-{digest}"


def _event(event: ReleaseEvent, message_id: str, now: float) -> EventRecord:
    return EventRecord(event=event, message_id=message_id, at=instant(now))


def _start_of(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), _ASTANA).timestamp()
