"""Outcomes in, indicators out.

- ``POST /api/v1/referrals`` — probation registers a referral it made (category, provider).
- ``POST /api/v1/referrals/{referral_id}/outcomes`` — the provider the referral went to reports
  where it stands; the same outcome again is answered as a duplicate, a contradicting one is 409.
- ``POST /api/v1/reoffence-signals`` — the interior ministry's new case or conviction for a person
  released in the last 36 months; kept only as a pseudonymous event.
- ``POST /api/v1/plans`` — a version of a person's re-socialisation plan (probation, or the penal
  system), stored and routed to post-release probation and the adaptation partners; the same
  version again is a duplicate, a stale one or another content under a used version 409.
- ``GET /api/v1/plans/{plan_id}`` — the versions of a plan as stored (probation): who sent each,
  when, and where it went.
- ``GET /api/v1/indicators`` — the Strategy's target indicators, open data: no credentials,
  aggregates only, no cell under 5; JSON or ``?format=csv``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.bootstrap import Services
from gateway.domain import ImplausibleDate, InvalidIIN, ReferralConflict, ReoffenceSignal
from gateway.entrypoints.http.api import json_response
from gateway.entrypoints.http.context import services_of
from gateway.entrypoints.http.schemas import OutcomeRecorded, PlanRecorded, PlanVersions, PlanVersionView
from gateway.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthenticated, Unprocessable
from gateway.security.jws import SIGNATURE_HEADER
from gateway.services.indicators import IndicatorFilter, InvalidFilter
from gateway.services.outcomes import NotWatched, OutcomeReport, ReferralRegistration, UnknownReferral
from gateway.services.plans import PLAN_SENDERS, PlanIntake, PlanSubmission
from gateway.web.body import parse_json, read_body, require_json_media_type
from gateway.web.identity import caller_of

PREFIX = "/api/v1"
_PROVIDERS = ("social", "employment_centre", "health", "clinic", "probation", "akimat_social", "adaptation_centre",
              "ngo")


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX + "/referrals", register_referral)
    app.router.add_post(PREFIX + "/referrals/{referral_id}/outcomes", report_outcome)
    app.router.add_post(PREFIX + "/reoffence-signals", reoffence_signal)
    app.router.add_post(PREFIX + "/plans", submit_plan)
    app.router.add_get(PREFIX + "/plans/{plan_id}", plan_versions)
    app.router.add_get(PREFIX + "/indicators", indicators)


def require_member(request: web.Request, *roles: str) -> str:
    """The calling member, which must have one of ``roles``."""
    services = services_of(request)
    caller = caller_of(request)
    member = services.config.members.get(caller or "")
    if member is None:
        raise Unauthenticated("identify yourself with X-Member-Id")
    if member.role not in roles:
        raise Forbidden(f"member {caller!r} ({member.role}) may not do this; it takes: {', '.join(roles)}")
    return caller


async def read_model(request: web.Request, model: type[BaseModel], caller: str) -> Any:
    """The JSON body, its signature checked when the caller signs, as ``model`` (422 naming what is wrong)."""
    services: Services = services_of(request)
    require_json_media_type(request)
    body = await read_body(request, services.config.server.max_body_bytes)
    document = parse_json(body, services.config.server.max_json_depth)
    await services.json_signatures.verify(caller, request.headers.get(SIGNATURE_HEADER), body,
                                    message_id=request.headers.get("X-Message-Id"))
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        # Well-formed JSON that cannot be recorded (an unknown category, a date that is not one): 422.
        raise Unprocessable(
            "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        ) from None


def _refused(exc: Exception) -> Exception:
    if isinstance(exc, ReferralConflict):
        return Conflict(str(exc))
    if isinstance(exc, (UnknownReferral, NotWatched)):
        return NotFound(str(exc))
    return Unprocessable(str(exc))


async def register_referral(request: web.Request) -> web.Response:
    caller = require_member(request, "probation")
    registration = await read_model(request, ReferralRegistration, caller)
    try:
        recorded = await services_of(request).outcomes.register(registration)
    except (ReferralConflict, ImplausibleDate, InvalidIIN, ValueError) as exc:
        raise _refused(exc) from None
    return json_response(OutcomeRecorded(referral_id=registration.referral_id, state=recorded.state,
                                         duplicate=recorded.duplicate), status=200 if recorded.duplicate else 201)


async def report_outcome(request: web.Request) -> web.Response:
    caller = require_member(request, *_PROVIDERS)
    referral_id = request.match_info["referral_id"]
    outcome = await read_model(request, OutcomeReport, caller)
    try:
        recorded = await services_of(request).outcomes.report(caller, referral_id, outcome)
    except (UnknownReferral, ReferralConflict, ImplausibleDate) as exc:
        raise _refused(exc) from None
    return json_response(OutcomeRecorded(referral_id=referral_id, state=recorded.state, duplicate=recorded.duplicate))


async def reoffence_signal(request: web.Request) -> web.Response:
    caller = require_member(request, "interior")
    signal = await read_model(request, ReoffenceSignal, caller)
    try:
        recorded = await services_of(request).outcomes.reoffence(signal)
    except (NotWatched, ImplausibleDate) as exc:
        raise _refused(exc) from None
    return json_response(OutcomeRecorded(state=recorded.state, duplicate=recorded.duplicate))


# -- re-socialisation plans


def _plans(request: web.Request) -> PlanIntake:
    plans = services_of(request).plans
    if plans is None:
        raise NotFound("re-socialisation plans are not taken here: [workflows.plans] is not configured")
    return plans


async def submit_plan(request: web.Request) -> web.Response:
    plans = _plans(request)
    caller = require_member(request, *PLAN_SENDERS)
    submission = await read_model(request, PlanSubmission, caller)
    receipt = await plans.receive(submission, sender=caller, message_id=request.headers.get("X-Message-Id"))
    return json_response(PlanRecorded(plan_id=receipt.plan_id, version=receipt.version,
                                      recipients=list(receipt.recipients), referrals=list(receipt.referrals),
                                      duplicate=receipt.duplicate), status=200 if receipt.duplicate else 201)


async def plan_versions(request: web.Request) -> web.Response:
    plans = _plans(request)
    require_member(request, "probation")
    plan_id = request.match_info["plan_id"]
    versions = await plans.versions(plan_id)
    if not versions:
        raise NotFound("no plan with this id is stored")
    return json_response(PlanVersions(plan_id=plan_id, versions=[
        PlanVersionView(version=v["version"], sender=v["sender"], received_at=v["received_at"],
                        recipients=v["recipients"], referrals=v["referrals"]) for v in versions]))


# -- the open indicators


async def indicators(request: web.Request) -> web.Response:
    services = services_of(request)
    query = request.query
    unknown = sorted(set(query) - {"from", "to", "region", "format"})
    if unknown:
        raise BadRequest(f"unknown parameters: {', '.join(unknown)}; valid: from, to, region, format")
    output = query.get("format", "json")
    if output not in ("json", "csv"):
        raise BadRequest("format must be json or csv")
    try:
        wanted = IndicatorFilter.parse(query.get("from"), query.get("to"), query.get("region"),
                                       today=services.indicators.today())
    except InvalidFilter as exc:
        raise BadRequest(str(exc)) from None
    body, digest = await services.indicators.published(wanted, output)
    content_type = "text/csv" if output == "csv" else "application/json"
    etag = '"' + digest[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={services.config.indicators.cache_seconds}",
               "Vary": "Accept-Encoding", "Access-Control-Allow-Origin": "*"}
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)
