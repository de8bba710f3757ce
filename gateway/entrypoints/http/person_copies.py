"""The person's own copy of the pre-trial report (``gateway.services.person_copies``), for the
probation office that requested the report.

- ``POST /api/v1/pretrial-reports/{report_id}/person-copies`` — record a hand-over (date, language,
  form, to the person or a representative); the disclosure is audited with it. 201.
- ``GET /api/v1/pretrial-reports/{report_id}/person-copies`` — the hand-overs recorded.
- ``GET /api/v1/pretrial-reports/{report_id}/person-copies/{copy_id}/document`` — the copy as its
  recipient may see it (HTML in the hand-over's language), for a representative who asks for it
  again; audited each time.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from gateway.entrypoints.http.api import json_response
from gateway.entrypoints.http.context import services_of
from gateway.entrypoints.http.outcomes import read_model, require_member
from gateway.entrypoints.http.rendering import render_report
from gateway.entrypoints.http.schemas import PersonCopies as PersonCopiesView
from gateway.entrypoints.http.schemas import PersonCopyView
from gateway.errors import NotFound
from gateway.services.person_copies import HandOver
from gateway.workflows import pretrial

PREFIX = "/api/v1/pretrial-reports/{report_id}/person-copies"
_ASTANA = dt.timezone(dt.timedelta(hours=5))


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX, record_hand_over)
    app.router.add_get(PREFIX, hand_overs)
    app.router.add_get(PREFIX + "/{copy_id}/document", copy_document)


async def _report(request: web.Request, caller: str):
    """The latest version of a report this probation member requested, and the day it asked."""
    services = services_of(request)
    case = None
    if services.workflows is not None:
        case = await services.workflows.runtime.get(pretrial.KIND, request.match_info["report_id"])
    state = pretrial.state_of(case) if case is not None else None
    if state is None or state.caller != caller:
        raise NotFound("no pre-trial report with this id was requested by you")
    if state.report is None:
        raise NotFound("no version of this report has been assembled yet: there is nothing to hand over")
    return state.report, dt.datetime.fromtimestamp(case.created_at, _ASTANA).date()


def _view(copy: dict) -> PersonCopyView:
    return PersonCopyView.model_validate({k: v for k, v in copy.items() if k in PersonCopyView.model_fields})


async def record_hand_over(request: web.Request) -> web.Response:
    caller = require_member(request, "probation")
    hand_over = await read_model(request, HandOver, caller)
    report, requested_on = await _report(request, caller)
    copy = await services_of(request).person_copies.record(report, hand_over, caller=caller, requested_on=requested_on)
    return json_response(_view(copy), status=201)


async def hand_overs(request: web.Request) -> web.Response:
    caller = require_member(request, "probation")
    report, _ = await _report(request, caller)
    copies = await services_of(request).person_copies.copies(report.report_id)
    return json_response(PersonCopiesView(report_id=report.report_id, copies=[_view(c) for c in copies]))


async def copy_document(request: web.Request) -> web.Response:
    caller = require_member(request, "probation")
    report, _ = await _report(request, caller)
    payload, language = await services_of(request).person_copies.document(
        report, request.match_info["copy_id"], caller=caller)
    return web.Response(text=render_report(payload, language), content_type="text/html", charset="utf-8")
