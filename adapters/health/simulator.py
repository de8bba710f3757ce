"""A stand-in for the Ministry of Healthcare's services, serving the synthetic population.

The attached-population register is mutable, as the real one is: a clinic that
attaches a person changes the attachment every later lookup sees, and continuity
holds are kept until released. It starts from the population, and the same
requests in the same order always give the same answers (hold ids are counted,
not random), so a test or the demo can be replayed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapters import rpn
from adapters.continuity_fhir import InvalidBundle, ProfileViolation, notice_from_bundle, notice_id_of
from adapters.health import codec
from adapters.population import Population
from adapters.simulation import Behaviour, Recorder, Refused, decoded, read_json, simulator_app, simulator_of
from gateway.domain import IIN, Attachment, AttachmentState, ContinuityHold, Organisation, ReleaseNotice
from gateway.errors import BadRequest, Conflict, NotFound, Unprocessable
from gateway.web.body import parse_json, read_body

__all__ = ["create_simulator"]

_MAX_BODY = 1024 * 1024
_MAX_DEPTH = 32


@dataclass
class _Hold:
    hold: ContinuityHold
    iin: IIN
    reference: str
    released: bool = False

    def json(self) -> dict[str, Any]:
        return rpn.hold_json(self.hold, iin=self.iin, reference=self.reference, released=self.released)


class _Register:
    """РПН as the simulator keeps it: the population's attachments, changed by clinics, and holds."""

    def __init__(self, population: Population) -> None:
        self._population = population
        self._attachments: dict[str, Attachment | None] = {}
        self._holds: dict[str, _Hold] = {}
        self._by_reference: dict[str, _Hold] = {}
        # Only clinics the register can resolve may attach people: the rest are not in it yet.
        self._clinics = {d.clinic.code: d.clinic for d in population.districts if d.has_clinic}

    def _known(self, iin: IIN) -> None:
        if self._population.by_iin(iin) is None:
            raise NotFound("the register has no person with this IIN")

    def _current(self, iin: IIN) -> Attachment | None:
        person = self._population.by_iin(iin)
        return self._attachments.get(iin, person.attachment if person else None)

    def attachment(self, iin: IIN) -> Attachment | None:
        self._known(iin)
        current = self._current(iin)
        active = [h for h in self._holds.values() if h.iin == iin and not h.released]
        if current is None or not active:
            return current
        return current.model_copy(update={"continuity_hold": max(active, key=lambda h: h.hold.until).hold})

    def attach(self, iin: IIN, clinic_code: str, attached_on: dt.date) -> tuple[Attachment, bool]:
        """Attach at a clinic; False as the second value when the person was already attached there."""
        self._known(iin)
        clinic: Organisation | None = self._clinics.get(clinic_code)
        if clinic is None:
            raise Refused("the medical organisation is not in the register")
        current = self._current(iin)
        if current is not None and current.clinic == clinic and current.state is AttachmentState.ATTACHED:
            return self.attachment(iin), False
        self._attachments[iin] = Attachment(iin=iin, clinic=clinic, since=attached_on, state=AttachmentState.ATTACHED)
        return self.attachment(iin), True

    def place_hold(self, iin: IIN, until: dt.date, reference: str) -> tuple[_Hold, bool]:
        """Place a hold; False as the second value when the reference already had one."""
        self._known(iin)
        held = self._by_reference.get(reference)
        if held is not None:
            if held.iin != iin:
                raise Conflict("this reference already holds another person's attachment; use a new reference")
            if held.released:
                raise Conflict("the hold for this reference was released; use a new reference")
            # A repeated request may carry another date (the release moved): keep the later
            # one, so that a delayed retry of an older request cannot shorten the hold.
            if until > held.hold.until:
                held.hold = ContinuityHold(id=held.hold.id, until=until)
            return held, False
        current = self._current(iin)
        if current is None or current.state is AttachmentState.DETACHED:
            raise Conflict("the person is attached nowhere, so there is no attachment to hold")
        held = _Hold(ContinuityHold(id=f"H{len(self._holds) + 1:08d}", until=until), iin, reference)
        self._holds[held.hold.id] = held
        self._by_reference[reference] = held
        return held, True

    def release_hold(self, hold_id: str, iin: IIN) -> _Hold:
        held = self._holds.get(hold_id)
        # Someone else's hold is answered as unknown: the answer must not confirm that it exists.
        if held is None or held.iin != iin:
            raise NotFound("no such hold for this person")
        held.released = True
        return held


_REGISTER = web.AppKey("health_register", _Register)
_POPULATION = web.AppKey("health_population", Population)


def create_simulator(
    population: Population, behaviour: Behaviour | None = None, recorder: Recorder | None = None
) -> web.Application:
    """The Ministry of Healthcare's services (``schemas/openapi/health.json``) on one application."""
    app = simulator_app("health", behaviour, recorder)
    app[_POPULATION] = population
    app[_REGISTER] = _Register(population)
    app.router.add_post("/rpn/v1/attachments/_search", _attachment)
    app.router.add_post("/rpn/v1/attachments", _attach)
    app.router.add_post("/rpn/v1/holds", _place_hold)
    app.router.add_post("/rpn/v1/holds/{hold_id}/release", _release_hold)
    app.router.add_get("/rpn/v1/service-areas/{kato}", _service_area)
    app.router.add_post("/dispensary/v1/registrations/_search", _registrations)
    app.router.add_post("/disability/v1/assessments/_search", _disability)
    app.router.add_post("/release-notices", _release_notice)
    app.router.add_post("/escalations", _escalation)
    return app


async def _read(request: web.Request, decode) -> Any:
    payload, _ = await read_json(request, max_bytes=_MAX_BODY, max_depth=_MAX_DEPTH)
    return decoded(decode, payload)


def _person_of(request: web.Request, iin: IIN):
    person = request.app[_POPULATION].by_iin(iin)
    if person is None:
        raise NotFound("no person with this IIN is known to the Ministry")
    return person


async def _attachment(request: web.Request) -> web.Response:
    iin = await _read(request, codec.iin_from_query)
    return web.json_response(rpn.attachment_json(iin, request.app[_REGISTER].attachment(iin)))


async def _attach(request: web.Request) -> web.Response:
    iin, clinic_code, attached_on = await _read(request, rpn.attach_request_from_json)
    attachment, created = request.app[_REGISTER].attach(iin, clinic_code, attached_on)
    return web.json_response(rpn.attachment_json(iin, attachment), status=201 if created else 200)


async def _place_hold(request: web.Request) -> web.Response:
    iin, until, reference = await _read(request, rpn.hold_request_from_json)
    held, created = request.app[_REGISTER].place_hold(iin, until, reference)
    return web.json_response(held.json(), status=201 if created else 200)


async def _release_hold(request: web.Request) -> web.Response:
    iin = await _read(request, codec.iin_from_query)
    held = request.app[_REGISTER].release_hold(request.match_info["hold_id"], iin)
    return web.json_response(held.json())


async def _service_area(request: web.Request) -> web.Response:
    kato = request.match_info["kato"]
    district = request.app[_POPULATION].district(kato)
    if district is None or not district.has_clinic:
        raise NotFound("the register assigns no medical organisation to this КАТО code")
    return web.json_response(rpn.clinic_json(kato, district.clinic))


async def _registrations(request: web.Request) -> web.Response:
    iin = await _read(request, codec.iin_from_query)
    return web.json_response(codec.registrations_json(_person_of(request, iin).health))


async def _disability(request: web.Request) -> web.Response:
    iin = await _read(request, codec.iin_from_query)
    return web.json_response(codec.disability_json(iin, _person_of(request, iin).health.disability))


async def _release_notice(request: web.Request) -> web.Response:
    """The penal system's release notices, relayed by the gateway: recorded, not acted on."""
    payload, body = await read_json(request, max_bytes=_MAX_BODY, max_depth=_MAX_DEPTH)
    decoded(ReleaseNotice.model_validate, payload)
    seen = simulator_of(request).recorder.record("health/release-notices", request, body)
    return web.json_response({"received": True, "duplicate": seen > 1}, status=202 if seen == 1 else 200)


async def _escalation(request: web.Request) -> web.Response:
    """The regional health authority's reception of escalated continuity-of-care notices
    (no clinic for the address, or no acknowledgement in time): validated and recorded."""
    body = await read_body(request, _MAX_BODY)
    bundle = parse_json(body, _MAX_DEPTH)
    try:
        notice = notice_from_bundle(bundle)
    except InvalidBundle as error:
        raise BadRequest(f"not a valid FHIR R4B bundle: {error}") from None
    except ProfileViolation as error:
        raise Unprocessable(f"not a continuity-of-care notice: {error}") from None
    if notice.escalation_reason is None:
        raise Unprocessable("a clinic's notice, not an escalation: the event must be continuity-of-care-escalation")
    seen = simulator_of(request).recorder.record("health/escalations", request, body)
    return web.json_response({"notice_id": notice_id_of(bundle), "duplicate": seen > 1}, status=202 if seen == 1 else 200)
