"""The JSON API of the workflows: pre-trial reports, release notices and cases, clinic acknowledgements.

Who may do what is decided by the caller's member role (``members.toml``):
probation requests reports and reads its own; the penal system posts release
notices; a clinic acknowledges the notices sent to it; operators and oversight
read cases. Views carry ids, states and provenance — never names, and IINs
only where the caller asked about that IIN itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.domain import ReleaseEvent, ReleaseNotice
from gateway.entrypoints.http.context import services_of
from gateway.web.identity import caller_of
from gateway.web.query import token, whole_number
from gateway.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthenticated
from gateway.entrypoints.http.api import json_response as _json
from gateway.web.body import parse_json, read_body, require_json_media_type
from gateway.entrypoints.http.rendering import render_report
from gateway.entrypoints.http.schemas import (
    AcknowledgementRecorded,
    ReleaseAccepted,
    ReleaseCasePage,
    ReleaseCaseView,
    ReportAccepted,
    ReportStatus,
    SectionView,
    VersionView,
)
from gateway.security.jws import SIGNATURE_HEADER
from gateway.workflows import pretrial, release
from gateway.workflows.pretrial import PretrialReportRequest
from gateway.workflows.release import ClinicAcknowledgement

PREFIX = "/api/v1"
_PAGE_MAX = 500
_READERS = {"operator", "oversight"}


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX + "/pretrial-reports", request_report)
    app.router.add_get(PREFIX + "/pretrial-reports/{report_id}", report_status)
    app.router.add_get(PREFIX + "/pretrial-reports/{report_id}/document", report_document)
    app.router.add_post(PREFIX + "/release-notices", release_notice)
    app.router.add_get(PREFIX + "/release-cases", release_cases)
    app.router.add_get(PREFIX + "/release-cases/{case_id}", release_case)
    app.router.add_post(PREFIX + "/continuity-notices/{notice_id}/acknowledgement", acknowledge)


class ReleaseNoticeEnvelope(BaseModel):
    """A release notice posted as JSON: the event and the notice."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event: ReleaseEvent
    notice: ReleaseNotice


def _gateway(request: web.Request):
    gateway = services_of(request)
    if gateway.workflows is None:
        raise NotFound("the workflows are not enabled on this gateway ([workflows] is absent from its configuration)")
    return gateway


def _member(request: web.Request, *roles: str) -> str:
    """The caller, who must have one of ``roles`` (its role, or a role it holds)."""
    gateway = _gateway(request)
    caller = caller_of(request)
    member = gateway.config.members.get(caller or "")
    if member is None:
        raise Unauthenticated("identify yourself with X-Member-Id")
    if member.role not in roles and not set(member.roles) & set(roles):
        raise Forbidden(f"member {caller!r} ({member.role}) may not do this; it takes: {', '.join(roles)}")
    return caller


async def _body(request: web.Request, model: type[BaseModel], caller: str) -> Any:
    gateway = _gateway(request)
    require_json_media_type(request)
    body = await read_body(request, gateway.config.server.max_body_bytes)
    document = parse_json(body, gateway.config.server.max_json_depth)
    # A member that signs its JSON signs it here too (gateway.security.jws), before anything is kept.
    await gateway.json_signatures.verify(caller, request.headers.get(SIGNATURE_HEADER), body,
                                   message_id=request.headers.get("X-Message-Id"))
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise BadRequest(
            "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()),
        ) from None


def _require_purpose(request: web.Request, purpose: str) -> None:
    if request.headers.get("X-Purpose") != purpose:
        raise BadRequest(f"send X-Purpose: {purpose}")


def _message_id(request: web.Request) -> str:
    message_id = request.headers.get("X-Message-Id")
    if not message_id or len(message_id) > 128:
        raise BadRequest("send X-Message-Id (1 to 128 characters): it makes resending safe")
    return message_id


# -- pre-trial reports


async def request_report(request: web.Request) -> web.Response:
    caller = _member(request, "probation")
    _require_purpose(request, pretrial.PURPOSE)
    key = _message_id(request)
    wanted = await _body(request, PretrialReportRequest, caller)
    case, duplicate = await _gateway(request).workflows.pretrial.request(wanted, caller=caller, request_key=key)
    return _json(ReportAccepted(report_id=case.id, status=case.state, duplicate=duplicate), status=202,
                 headers={"Location": f"{PREFIX}/pretrial-reports/{case.id}"})


async def _report_case(request: web.Request):
    caller = _member(request, "probation", *_READERS)
    case = await _gateway(request).workflows.runtime.get(pretrial.KIND, request.match_info["report_id"])
    member = _gateway(request).config.members[caller]
    state = pretrial.state_of(case) if case is not None else None
    if state is None or (state.caller != caller and not set(member.roles) & _READERS):
        raise NotFound("no pre-trial report with this id was requested by you")
    return case, state


async def report_status(request: web.Request) -> web.Response:
    case, state = await _report_case(request)
    sections = {
        str(name): SectionView(**entry.model_dump(mode="json", include={"status", "source", "fetched_at", "reason"}))
        for name, entry in state.sections.items()
    }
    return _json(ReportStatus(
        report_id=case.id,
        status=case.state,
        version=len(state.versions),
        due_date=state.request.due_date.isoformat(),
        sections=sections,
        gaps=sorted(name for name, entry in sections.items() if entry.status != "OK"),
        versions=[VersionView(**v.model_dump(mode="json", include=set(VersionView.model_fields)))
                  for v in state.versions],
        failure=state.failure,
    ))


async def report_document(request: web.Request) -> web.Response:
    """The latest version as a page, for the court it is for and the office that requested it:
    filtered by the disclosure policy for the reader and audited for the subject."""
    gateway = _gateway(request)
    caller = _member(request, "probation", "court")
    member = gateway.config.members[caller]
    case = await gateway.workflows.runtime.get(pretrial.KIND, request.match_info["report_id"])
    state = pretrial.state_of(case) if case is not None else None
    reads = state is not None and (
        state.caller == caller if member.role == "probation" else caller == gateway.config.workflows.pretrial.court.member
    )
    if not reads:
        raise NotFound("no pre-trial report with this id is for you")
    language = request.query.get("lang", "ru")
    if language not in ("ru", "kk"):
        raise BadRequest("lang must be ru or kk")
    if state.report is None:
        raise NotFound("no version of this report has been assembled yet")
    document = await gateway.report_reader.read(
        state.report.model_dump(mode="json"), reader=caller, reader_role=member.role,
        subject_iin=state.request.subject_iin, legal_basis=state.request.legal_basis, case_id=case.id)
    return web.Response(text=render_report(document, language), content_type="text/html", charset="utf-8")


# -- release


async def release_notice(request: web.Request) -> web.Response:
    caller = _member(request, "penal")
    _require_purpose(request, "continuity_of_care")
    message_id = _message_id(request)
    envelope = await _body(request, ReleaseNoticeEnvelope, caller)
    gateway = _gateway(request)
    # The same intake as SOAP: a notice counts once per message id, and an id reused with
    # other content is refused (422) instead of answered with the first notice's receipt.
    receipt = await gateway.release_intake.receive(
        envelope.event, envelope.notice, sender=caller, message_id=message_id,
        correlation_id=request.headers.get("X-Correlation-Id"),
        received_at=dt.datetime.fromtimestamp(gateway.clock(), dt.UTC),
    )
    return _json(ReleaseAccepted(case_id=receipt.case_id, status="accepted"), status=202,
                 headers={"Location": f"{PREFIX}/release-cases/{receipt.case_id}"})


def _case_view(case) -> ReleaseCaseView:
    state = release.state_of(case)
    notice = state.notice
    return ReleaseCaseView(
        case_id=case.id,
        state=case.state,
        facility=notice.facility.code,
        release_type=notice.release_type.value,
        release_date=notice.release_date.isoformat(),
        destination_region=notice.destination.region,
        events=[e.model_dump(mode="json") for e in state.events],
        clinic=state.clinic.code if state.clinic else None,
        notices={str(name): len(sent.message_ids) for name, sent in state.sent.items()},
        acknowledgement=state.acknowledgement.model_dump(mode="json") if state.acknowledgement else None,
        hold=state.hold.model_dump(mode="json") if state.hold else None,
        escalations=[e.model_dump(mode="json") for e in state.escalations],
        problem=state.problem,
        updated_at=case.updated_at,
    )


async def release_case(request: web.Request) -> web.Response:
    _member(request, "penal", "health", *_READERS)
    case = await _gateway(request).workflows.runtime.get(release.KIND, request.match_info["case_id"])
    if case is None:
        raise NotFound("no release case with this id")
    return _json(_case_view(case))


async def release_cases(request: web.Request) -> web.Response:
    _member(request, *_READERS)
    state = request.query.get("state")
    if state is not None and state not in set(release.ReleaseState):
        raise BadRequest(f"state must be one of: {', '.join(release.ReleaseState)}")
    limit = whole_number(request, "limit", minimum=1, maximum=_PAGE_MAX, default=100)
    cases = await _gateway(request).store.list_cases(release.KIND, state=state, after_id=token(request, "after"),
                                                     limit=limit)
    return _json(ReleaseCasePage(items=[_case_view(c) for c in cases],
                                 next_after=cases[-1].id if len(cases) == limit else None))


async def acknowledge(request: web.Request) -> web.Response:
    caller = _member(request, "clinic")
    ack = await _body(request, ClinicAcknowledgement, caller)
    try:
        case = await _gateway(request).workflows.release.acknowledge(request.match_info["notice_id"], ack)
    except release.AcknowledgementConflict as exc:
        raise Conflict(str(exc)) from None
    if case is None:
        raise NotFound("no continuity-of-care notice with this id was sent to this clinic")
    return _json(AcknowledgementRecorded(case_id=case.id, state=case.state))
