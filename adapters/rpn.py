"""The attached-population register (РПН) as JSON ⇄ the canonical model.

The register's part of the Ministry of Healthcare's contract (``/rpn/v1/`` in
``schemas/openapi/health.json``): attachments, the request a clinic sends to attach a
person, continuity holds and the clinics serving a territory. It stands apart from
``adapters.health`` because the clinics speak it too: a clinic attaches a person at the
register and reads back the attachment it made. ``adapters.health.codec`` offers it
with the rest of the Ministry's contract.

Attachment states are lower case, a clinic is a "medical organisation". Pure functions,
no I/O; a payload that breaks the contract raises ``ValueError`` naming the field, never
its value.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from adapters.native_json import coded, date_at, iin_at, json_object, required
from gateway.domain import IIN, Attachment, AttachmentState, ContinuityHold, Organisation

__all__ = [
    "attach_request",
    "attach_request_from_json",
    "attachment_from_json",
    "attachment_json",
    "clinic_from_json",
    "clinic_json",
    "hold_from_json",
    "hold_json",
    "hold_request",
    "hold_request_from_json",
]

_STATES = {
    AttachmentState.ATTACHED: "active",
    AttachmentState.DETACHED: "detached",
    AttachmentState.PENDING: "pending",
}
_ATTACHMENT_STATES = {state: canonical for canonical, state in _STATES.items()}


def _organisation_json(organisation: Organisation) -> dict[str, str]:
    return {"code": organisation.code, "name": organisation.name}


def _organisation(payload: Any, where: str) -> Organisation:
    payload = json_object(payload, where)
    return Organisation(code=required(payload, "code", where), name=required(payload, "name", where))


def attachment_json(iin: IIN, attachment: Attachment | None) -> dict[str, Any]:
    """The answer to an attachment lookup: the attachment, or null when attached nowhere."""
    if attachment is None:
        return {"iin": str(iin), "attachment": None}
    hold = attachment.continuity_hold
    return {
        "iin": str(iin),
        "attachment": {
            "medicalOrganisation": _organisation_json(attachment.clinic),
            "attachedOn": attachment.since.isoformat(),
            "status": _STATES[attachment.state],
            "hold": None if hold is None else {"holdId": hold.id, "until": hold.until.isoformat()},
        },
    }


def attachment_from_json(payload: Any) -> Attachment | None:
    payload = json_object(payload, "the attachment answer")
    iin = required(payload, "iin", "answer")
    native = payload.get("attachment")
    if native is None:
        return None
    native = json_object(native, "attachment")
    hold = native.get("hold")
    if hold is not None:
        hold = json_object(hold, "attachment.hold")
        hold = ContinuityHold(
            id=required(hold, "holdId", "attachment.hold"),
            until=date_at(required(hold, "until", "attachment.hold"), "attachment.hold.until"),
        )
    return Attachment(
        iin=iin,
        clinic=_organisation(required(native, "medicalOrganisation", "attachment"), "attachment.medicalOrganisation"),
        since=date_at(required(native, "attachedOn", "attachment"), "attachment.attachedOn"),
        state=coded(_ATTACHMENT_STATES, native.get("status"), "attachment.status"),
        continuity_hold=hold,
    )


def attach_request(iin: IIN, clinic_code: str, attached_on: dt.date) -> dict[str, Any]:
    """A clinic's request to attach a person from a date (what a clinic sends, not the gateway)."""
    return {"iin": str(iin), "medicalOrganisationCode": clinic_code, "attachedOn": attached_on.isoformat()}


def attach_request_from_json(payload: Any) -> tuple[IIN, str, dt.date]:
    payload = json_object(payload, "the attach request")
    return (
        iin_at(required(payload, "iin", "request"), "request.iin"),
        required(payload, "medicalOrganisationCode", "request"),
        date_at(required(payload, "attachedOn", "request"), "request.attachedOn"),
    )


def hold_request(iin: IIN, until: dt.date, reference: str) -> dict[str, Any]:
    return {"iin": str(iin), "until": until.isoformat(), "reference": reference}


def hold_request_from_json(payload: Any) -> tuple[IIN, dt.date, str]:
    payload = json_object(payload, "the hold request")
    reference = required(payload, "reference", "request")
    if not isinstance(reference, str) or not 1 <= len(reference.strip()) <= 128:
        raise ValueError("request.reference must be a string of 1-128 characters")
    return iin_at(required(payload, "iin", "request"), "request.iin"), date_at(required(payload, "until", "request"), "request.until"), reference


def hold_json(hold: ContinuityHold, *, iin: IIN, reference: str, released: bool) -> dict[str, Any]:
    return {
        "holdId": hold.id,
        "iin": str(iin),
        "until": hold.until.isoformat(),
        "reference": reference,
        "released": released,
    }


def hold_from_json(payload: Any) -> ContinuityHold:
    payload = json_object(payload, "the hold")
    return ContinuityHold(id=required(payload, "holdId", "hold"), until=date_at(required(payload, "until", "hold"), "hold.until"))


def clinic_json(kato: str, clinic: Organisation) -> dict[str, Any]:
    """The clinic serving a territory, by its КАТО code."""
    return {"kato": kato, "medicalOrganisation": _organisation_json(clinic)}


def clinic_from_json(payload: Any) -> Organisation:
    payload = json_object(payload, "the service-area answer")
    return _organisation(required(payload, "medicalOrganisation", "answer"), "medicalOrganisation")
