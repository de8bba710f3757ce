"""The pre-trial report (досудебный доклад) for courts — Strategy §3.3.

A probation officer asks for a report on a suspect. The gateway gathers, all at
once, identity, criminal history and the case (interior), custody history
(penal), the health summary (health) and the social situation (social); each
source has a timeout and a few quick tries. The report is assembled with every
section that answered; a section whose source stayed down is marked
unavailable with the reason and time, and is asked for again every
``regather_interval_seconds`` until the due date. Each time more sections
arrive a new version goes to the court. The court's receipt (registration
number) is stored on the version it acknowledges.

States: gathering → delivering → complete; or gathering → partial (a version
with gaps was sent, more are being asked for) → … → complete, or
closed_partial at the due date. ``failed`` when the report cannot be made (the
interior ministry does not know the person) or its delivery was dead-lettered.

Privacy: expunged convictions are dropped on arrival (Criminal Code art. 79);
the court gets health only as flags — continuous treatment, disability — unless
the request names a legal basis for more; and the disclosure policy checks
every version again at egress.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

from pydantic import BaseModel

from gateway.config import PretrialConfig
from gateway.domain import (
    IIN,
    Conviction,
    CustodyEpisode,
    HealthFlags,
    HealthSummary,
    Person,
    PreTrialReport,
    PretrialCase,
    ReportSection,
    ReportSections,
    SectionProvenance,
    SocialStatus,
    SourceStatus,
)
from gateway.errors import BadRequest
from gateway.logs import get_logger
from gateway.store import Case, ConflictError, Message, MessageState, ScheduleTimer, Timer
from gateway.workflows.egress import DisclosureRefused, Egress
from gateway.workflows.ports import HealthPort, InteriorPort, NotFound, PenalPort, SocialPort, SourceError
from gateway.workflows.runtime import Step, WorkflowRuntime, schedule
from gateway.workflows.state import (
    TIMER_PAYLOADS,
    PretrialCaseState,
    PretrialReportRequest,
    PretrialTimer,
    ReportVersion,
    SectionEntry,
    VersionStatus,
    instant,
)

__all__ = ["KIND", "PURPOSE", "FINAL_STATES", "DueDateRefused", "PretrialCaseState", "PretrialReportRequest", "PretrialReports",
           "PretrialState", "PretrialTimer", "report_id_for", "state_of"]

log = get_logger("gateway.workflows.pretrial")

KIND = PretrialCaseState.kind
PURPOSE = "pretrial_report"


class PretrialState(enum.StrEnum):
    GATHERING = "gathering"
    DELIVERING = "delivering"
    PARTIAL = "partial"
    COMPLETE = "complete"
    CLOSED_PARTIAL = "closed_partial"
    FAILED = "failed"


FINAL_STATES = frozenset({PretrialState.COMPLETE, PretrialState.CLOSED_PARTIAL, PretrialState.FAILED})


def state_of(case: Case) -> PretrialCaseState:
    """A report's saved state, upgraded from an older version if need be."""
    return PretrialCaseState.load(case.data)


def _schedule(case_id: str, timer: PretrialTimer, fire_at: float) -> ScheduleTimer:
    return schedule(KIND, case_id, timer, fire_at, TIMER_PAYLOADS[timer]())


class DueDateRefused(BadRequest):
    """A new request's due date is before today or further ahead than ``max_due_days``
    (``defect``: ``past`` or ``too_far``), by the gateway's clock."""

    def __init__(self, defect: str, detail: str) -> None:
        super().__init__(detail, field="due_date", defect=defect)
        self.defect = defect


def check_due_date(due: dt.date, now: float, max_due_days: int) -> None:
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    if due < today:
        raise DueDateRefused("past", f"due_date: {due.isoformat()} is in the past (today is {today.isoformat()})")
    latest = today + dt.timedelta(days=max_due_days)
    if due > latest:
        raise DueDateRefused("too_far", f"due_date: at most {max_due_days} days ahead, by {latest.isoformat()}")


class CourtReceipt(Protocol):
    registration_number: str
    registered_at: dt.datetime


# (report id, version, the delivered message with the court's answer) -> the receipt in it.
ReceiptDecoder = Callable[[str, int, Message], CourtReceipt]


# The sections that come from agencies, and the source member setting of each.
_SOURCED: dict[ReportSection, str] = {
    ReportSection.IDENTITY: "interior",
    ReportSection.CRIMINAL_HISTORY: "interior",
    ReportSection.CUSTODY_HISTORY: "penal",
    ReportSection.SOCIAL_SITUATION: "social",
    ReportSection.HEALTH_SUMMARY: "health",
}


def report_id_for(caller: str, request_key: str) -> str:
    """A report id derived from the caller's idempotency key: asking twice is one report."""
    digest = hashlib.sha256(f"{caller}\x00{request_key}".encode()).hexdigest()[:20]
    return f"ptr-{digest}"


class PretrialReports:
    kind = KIND

    def __init__(
        self,
        runtime: WorkflowRuntime,
        config: PretrialConfig,
        egress: Egress,
        *,
        interior: InteriorPort,
        penal: PenalPort,
        health: HealthPort,
        social: SocialPort,
        decode_receipt: ReceiptDecoder,
        full_health_allowed: Callable[[str | None], bool],
    ) -> None:
        self._runtime = runtime
        self._config = config
        self._egress = egress
        self._interior, self._penal, self._health, self._social = interior, penal, health, social
        self._decode_receipt = decode_receipt
        self._full_health_allowed = full_health_allowed
        runtime.register(self)

    # -- requests

    async def request(self, request: PretrialReportRequest, *, caller: str, request_key: str) -> tuple[Case, bool]:
        """Start a report; the same (caller, request_key) again returns the first (True: duplicate)."""
        report_id = report_id_for(caller, request_key)
        existing = await self._runtime.get(KIND, report_id)
        if existing is not None:
            return existing, True
        now = self._runtime.now()
        check_due_date(request.due_date, now, self._config.max_due_days)
        state = PretrialCaseState(request=request, caller=caller)
        step = Step(PretrialState.GATHERING, state, [_schedule(report_id, PretrialTimer.GATHER, now)])
        try:
            return await self._runtime.start_case(KIND, report_id, step), False
        except ConflictError:
            existing = await self._runtime.get(KIND, report_id)
            if existing is None:
                raise
            return existing, True  # a concurrent duplicate won the race

    # -- timers

    async def on_timer(self, case: Case, timer: Timer, now: float) -> Step | None:
        name = PretrialTimer(timer.name)
        TIMER_PAYLOADS[name].model_validate(timer.payload)
        if name is PretrialTimer.GATHER and case.state not in FINAL_STATES:
            return await self._gather(case, state_of(case), now)
        if name is PretrialTimer.RECONCILE:
            return await self._reconcile(case, state_of(case), now)
        return None

    async def _reconcile(self, case: Case, state: PretrialCaseState, now: float) -> Step | None:
        """Learn outcomes from the store that the in-process notification missed (a restart in between)."""
        pending = [v for v in state.versions if v.status is VersionStatus.QUEUED]
        step: Step | None = None
        for version in pending:
            message = await self._runtime.message(version.message_id)
            if message is None or message.state not in (MessageState.DELIVERED, MessageState.DEAD):
                continue
            current = case.state if step is None else step.state
            dead = message.last_error or "dead-lettered" if message.state is MessageState.DEAD else None
            step = self._outcome(case.id, current, state, message, now, dead=dead) or step
        if any(v.status is VersionStatus.QUEUED for v in state.versions):
            again = _schedule(case.id, PretrialTimer.RECONCILE, now + self._config.regather_interval_seconds)
            return Step(step.state, state, [*step.commands, again]) if step else Step(case.state, state, [again])
        return step

    async def _gather(self, case: Case, state: PretrialCaseState, now: float) -> Step:
        request = state.request
        missing = [s for s in _SOURCED if (entry := state.sections.get(s)) is None or entry.status != SourceStatus.OK]
        fetched, pretrial_case = await self._fetch_all(request, missing, with_case=state.case is None, now=now)
        if pretrial_case is not None:
            state.case = pretrial_case
        for section, entry in fetched.items():
            previous = state.sections.get(section)
            if entry.status == SourceStatus.OK or previous is None or previous.status != SourceStatus.OK:
                state.sections[section] = entry
        overdue = now >= _end_of(request.due_date)
        identity = state.sections.get(ReportSection.IDENTITY)
        if identity is None or identity.status != SourceStatus.OK:
            if identity is not None and identity.not_found:
                state.failure = "the interior ministry has no person with this IIN"
                return Step(PretrialState.FAILED, state)
            if overdue:
                state.failure = "identity could not be established before the due date"
                return Step(PretrialState.FAILED, state)
            # Without identity there is no report to send: keep asking.
            return Step(PretrialState.GATHERING, state,
                        [_schedule(case.id, PretrialTimer.GATHER, now + self._config.regather_interval_seconds)])
        commands: list = []
        ok_now = sorted(s for s, e in state.sections.items() if e.status == SourceStatus.OK)
        last_ok = state.versions[-1].sections_ok if state.versions else None
        if ok_now != last_ok:
            version = len(state.versions) + 1
            report = self._assemble(case.id, version, state, now)
            try:
                message_id, sent = self._egress.send(
                    route=self._config.court, purpose=PURPOSE, document=report,
                    subject_iin=request.subject_iin, correlation_id=case.id,
                    key=f"{case.id}:v{version}", now=now, legal_basis=request.legal_basis,
                    ordering_key=case.id,
                )
            except DisclosureRefused as exc:
                state.failure = f"the disclosure policy refused the report: {exc}"
                return Step(PretrialState.FAILED, state)
            commands += sent
            commands.append(_schedule(case.id, PretrialTimer.RECONCILE, now + self._config.regather_interval_seconds))
            state.versions.append(ReportVersion(version=version, message_id=message_id, sections_ok=ok_now,
                                                status=VersionStatus.QUEUED, queued_at=instant(now)))
            state.report = report
        gaps = [s for s in _SOURCED if s not in ok_now]
        if gaps and not overdue:
            commands.append(_schedule(case.id, PretrialTimer.GATHER, now + self._config.regather_interval_seconds))
            return Step(PretrialState.PARTIAL, state, commands)
        return Step(self._settled_state(state, gaps), state, commands)

    @staticmethod
    def _settled_state(state: PretrialCaseState, gaps: list[ReportSection]) -> PretrialState:
        """No more gathering: complete once the last version is receipted, else waiting for it."""
        last = state.versions[-1]
        if last.status is VersionStatus.DEAD:
            return PretrialState.FAILED
        if last.status is not VersionStatus.DELIVERED:
            return PretrialState.DELIVERING
        return PretrialState.CLOSED_PARTIAL if gaps else PretrialState.COMPLETE

    async def _fetch_all(
        self, request: PretrialReportRequest, missing: list[ReportSection], *, with_case: bool, now: float
    ) -> tuple[dict[ReportSection, SectionEntry], PretrialCase | None]:
        """Each missing section as its source answered, and the pre-trial case if it was asked for."""
        iin = request.subject_iin
        calls: dict[ReportSection | None, tuple[str, Callable[[], Awaitable[Any]]]] = {}
        for section in missing:
            source = getattr(self._config, _SOURCED[section])
            calls[section] = (source, self._fetcher(section, iin))
        if with_case:
            calls[None] = (self._config.interior, lambda: self._interior.pretrial_case(request.erdr_number))
        results = await asyncio.gather(*(self._try(source, call) for source, call in calls.values()))
        fetched: dict[ReportSection, SectionEntry] = {}
        pretrial_case = None
        for (section, (source, _)), (value, error, not_found) in zip(calls.items(), results):
            if section is None:
                pretrial_case = value
                continue
            at = instant(self._runtime.now())
            if error is None:
                fetched[section] = SectionEntry(source=source, fetched_at=at, status=SourceStatus.OK,
                                                content=_dump(value))
            else:
                fetched[section] = SectionEntry(source=source, fetched_at=at, status=SourceStatus.UNAVAILABLE,
                                                reason=error, not_found=not_found)
        return fetched, pretrial_case

    def _fetcher(self, section: ReportSection, iin: IIN) -> Callable[[], Awaitable[Any]]:
        match section:
            case ReportSection.IDENTITY:
                return lambda: self._interior.person(iin)
            case ReportSection.CRIMINAL_HISTORY:
                return lambda: self._interior.convictions(iin)
            case ReportSection.CUSTODY_HISTORY:
                return lambda: self._penal.custody_history(iin)
            case ReportSection.SOCIAL_SITUATION:
                return lambda: self._social.social_status(iin)
            case ReportSection.HEALTH_SUMMARY:
                return lambda: self._health.health_summary(iin)
        raise ValueError(section)

    async def _try(self, source: str, call: Callable[[], Awaitable[Any]]) -> tuple[Any, str | None, bool]:
        """(value, None, False) on success; (None, reason, not_found) after the last try."""
        reason = "not asked"
        for attempt in range(self._config.source_attempts):
            if attempt:
                await asyncio.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
            try:
                return await asyncio.wait_for(call(), self._config.source_timeout_seconds), None, False
            except asyncio.TimeoutError:
                reason = f"{source} did not answer within {self._config.source_timeout_seconds:g} s"
            except NotFound as exc:
                return None, f"{source} has no record: {exc.reason}", True
            except SourceError as exc:
                reason = f"{source}: {exc.reason}"
            except Exception as exc:  # an adapter bug must not kill the whole report
                log.error("source call failed unexpectedly", source=source, error=type(exc).__name__)
                reason = f"{source}: unexpected error ({type(exc).__name__})"
        return None, reason, False

    def _assemble(self, report_id: str, version: int, state: PretrialCaseState, now: float) -> PreTrialReport:
        request = state.request
        sections: dict[str, Any] = {}
        provenance: dict[ReportSection, SectionProvenance] = {}
        for section in ReportSection:
            entry = state.sections.get(section)
            if section in _SOURCED:
                content = None
                if entry is not None and entry.status == SourceStatus.OK:
                    content = self._section_content(section, entry.content,
                                                    full_health=self._full_health_allowed(request.legal_basis))
                provenance[section] = SectionProvenance(
                    source=entry.source if entry else getattr(self._config, _SOURCED[section]),
                    fetched_at=entry.fetched_at if entry else _at(now),
                    status=SourceStatus.OK if content is not None else SourceStatus.UNAVAILABLE,
                    reason=None if content is not None else (entry.reason if entry else "not asked yet"),
                )
                sections[section.value] = content
            else:  # the officer's own contribution, from the request
                content = request.risk_needs if section is ReportSection.RISK_NEEDS else request.officer_conclusion
                provenance[section] = SectionProvenance(
                    source=request.requesting_body.code, fetched_at=_at(now),
                    status=SourceStatus.OK if content is not None else SourceStatus.UNAVAILABLE,
                    reason=None if content is not None else "not provided by the requesting officer",
                )
                sections[section.value] = content
        subject = sections[ReportSection.IDENTITY.value]
        case = state.case or PretrialCase(erdr_number=request.erdr_number)
        return PreTrialReport(
            report_id=report_id, version=version, case=case, subject=subject,
            requesting_body=request.requesting_body, court=request.court, due_date=request.due_date,
            sections=ReportSections(**sections), provenance=provenance,
        )

    @staticmethod
    def _section_content(section: ReportSection, content: Any, *, full_health: bool) -> Any:
        match section:
            case ReportSection.IDENTITY:
                return Person.model_validate(content)
            case ReportSection.CRIMINAL_HISTORY:
                # Expunged convictions have no legal consequence (Criminal Code art. 79).
                return tuple(c for c in map(Conviction.model_validate, content) if not c.expunged)
            case ReportSection.CUSTODY_HISTORY:
                return tuple(map(CustodyEpisode.model_validate, content))
            case ReportSection.SOCIAL_SITUATION:
                return SocialStatus.model_validate(content)
            case ReportSection.HEALTH_SUMMARY:
                summary = HealthSummary.model_validate(content)
                # Diagnoses only where the request cites a basis the policy accepts.
                return summary if full_health else HealthFlags.of(summary)
        raise ValueError(section)

    # -- delivery outcomes

    async def delivered(self, message: Message, answer: bytes) -> None:
        delivered = replace(message, answer=answer)
        await self._runtime.handle(KIND, message.correlation_id,
                                   lambda case, now: self._record_outcome(case, delivered, now))

    async def dead(self, message: Message) -> None:
        await self._runtime.handle(KIND, message.correlation_id,
                                   lambda case, now: self._record_outcome(case, message, now,
                                                                          dead=message.last_error or "dead-lettered"))

    def _receipt(self, report_id: str, version: int, message: Message) -> CourtReceipt | None:
        try:
            return self._decode_receipt(report_id, version, message)
        except Exception as exc:
            log.warning("the court's answer carried no readable receipt", message_id=message.id,
                        error=f"{type(exc).__name__}: {exc}")
            return None

    async def _record_outcome(self, case: Case, message: Message, now: float, dead: str | None = None) -> Step | None:
        return self._outcome(case.id, case.state, state_of(case), message, now, dead=dead)

    def _outcome(self, report_id: str, current: str, state: PretrialCaseState, message: Message, now: float,
                 dead: str | None = None) -> Step | None:
        """Record a version's delivery (with the court's receipt) or its dead letter, in ``state``."""
        version = next((v for v in state.versions if v.message_id == message.id), None)
        if version is None or version.status is VersionStatus.DELIVERED:  # a replayed dead letter may still arrive
            return None
        if dead is not None:
            version.status, version.error = VersionStatus.DEAD, dead
        else:
            version.status, version.delivered_at = VersionStatus.DELIVERED, instant(now)
            receipt = self._receipt(report_id, version.version, message)
            if receipt is not None:
                version.registration_number = receipt.registration_number
                version.registered_at = receipt.registered_at
        if current in (PretrialState.GATHERING, PretrialState.PARTIAL):
            return Step(current, state)  # still gathering: the state moves when gathering ends
        gaps = [s for s in _SOURCED if (entry := state.sections.get(s)) is None or entry.status != SourceStatus.OK]
        if state.versions[-1] is not version and dead is None:
            return Step(current, state)  # an older version's receipt
        return Step(self._settled_state(state, gaps), state)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    return value


def _at(now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, dt.UTC)


def _end_of(day: dt.date) -> float:
    """The end of the due date, in Astana time (UTC+5), as a timestamp."""
    astana = dt.timezone(dt.timedelta(hours=5))
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), astana).timestamp()
