"""The Ministry of Healthcare's JSON ⇄ the canonical model.

The Ministry's services speak camelCase JSON with their own codes: registers are
named in full (``TUBERCULOSIS``, ``NARCOLOGY``), attachment states are lower case,
a clinic is a "medical organisation". The contract is ``schemas/openapi/health.json``.
Pure functions, no I/O: the client decodes what the services answer, the simulator
encodes what it serves, and the tests check that the two agree.

Every lookup sends the IIN in the request body, never in the URL: URLs are written
to access logs by every proxy on the way, bodies are not.

A payload that does not follow the contract raises ``ValueError`` naming the field,
never its value, because the message may reach a log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from gateway.domain import (
    IIN,
    Attachment,
    AttachmentState,
    ContinuityHold,
    Disability,
    DispensaryRegistration,
    HealthSummary,
    Organisation,
    Programme,
)

__all__ = [
    "attach_request",
    "attach_request_from_json",
    "attachment_from_json",
    "attachment_json",
    "clinic_from_json",
    "clinic_json",
    "disability_json",
    "health_summary_from_json",
    "hold_from_json",
    "hold_json",
    "hold_request",
    "hold_request_from_json",
    "iin_from_query",
    "iin_query",
    "registrations_json",
]

_REGISTERS = {
    Programme.TB: "TUBERCULOSIS",
    Programme.HIV: "HIV",
    Programme.NARCO: "NARCOLOGY",
    Programme.PSYCH: "PSYCHIATRY",
    Programme.ONCO: "ONCOLOGY",
    Programme.DIAB: "DIABETES",
}
_PROGRAMMES = {register: programme for programme, register in _REGISTERS.items()}

_STATES = {
    AttachmentState.ATTACHED: "active",
    AttachmentState.DETACHED: "detached",
    AttachmentState.PENDING: "pending",
}
_ATTACHMENT_STATES = {state: canonical for canonical, state in _STATES.items()}


def _object(payload: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise ValueError(f"{where} must be a JSON object")
    return payload


def _required(payload: Mapping[str, Any], key: str, where: str) -> Any:
    if payload.get(key) is None:
        raise ValueError(f"{where}.{key} is missing")
    return payload[key]


def _iin(value: Any, where: str) -> IIN:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string of 12 digits")
    return IIN(value)


def _code(table: Mapping[str, Any], code: Any, where: str) -> Any:
    if code not in table:
        raise ValueError(f"{where} must be one of {', '.join(sorted(table))}")
    return table[code]


def _date(value: Any, where: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        # The value stays out of the message: it may be a birth date.
        raise ValueError(f"{where} must be a date written YYYY-MM-DD") from None


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


# -- lookups by IIN


def iin_query(iin: IIN) -> dict[str, Any]:
    """The body of every lookup about one person."""
    return {"iin": str(iin)}


def iin_from_query(payload: Any) -> IIN:
    return _iin(_required(_object(payload, "the query"), "iin", "query"), "query.iin")


# -- the attached-population register (РПН)


def _organisation_json(organisation: Organisation) -> dict[str, str]:
    return {"code": organisation.code, "name": organisation.name}


def _organisation(payload: Any, where: str) -> Organisation:
    payload = _object(payload, where)
    return Organisation(code=_required(payload, "code", where), name=_required(payload, "name", where))


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
    payload = _object(payload, "the attachment answer")
    iin = _required(payload, "iin", "answer")
    native = payload.get("attachment")
    if native is None:
        return None
    native = _object(native, "attachment")
    hold = native.get("hold")
    if hold is not None:
        hold = _object(hold, "attachment.hold")
        hold = ContinuityHold(
            id=_required(hold, "holdId", "attachment.hold"),
            until=_date(_required(hold, "until", "attachment.hold"), "attachment.hold.until"),
        )
    return Attachment(
        iin=iin,
        clinic=_organisation(_required(native, "medicalOrganisation", "attachment"), "attachment.medicalOrganisation"),
        since=_date(_required(native, "attachedOn", "attachment"), "attachment.attachedOn"),
        state=_code(_ATTACHMENT_STATES, native.get("status"), "attachment.status"),
        continuity_hold=hold,
    )


def attach_request(iin: IIN, clinic_code: str, attached_on: dt.date) -> dict[str, Any]:
    """A clinic's request to attach a person from a date (what a clinic sends, not the gateway)."""
    return {"iin": str(iin), "medicalOrganisationCode": clinic_code, "attachedOn": attached_on.isoformat()}


def attach_request_from_json(payload: Any) -> tuple[IIN, str, dt.date]:
    payload = _object(payload, "the attach request")
    return (
        _iin(_required(payload, "iin", "request"), "request.iin"),
        _required(payload, "medicalOrganisationCode", "request"),
        _date(_required(payload, "attachedOn", "request"), "request.attachedOn"),
    )


def hold_request(iin: IIN, until: dt.date, reference: str) -> dict[str, Any]:
    return {"iin": str(iin), "until": until.isoformat(), "reference": reference}


def hold_request_from_json(payload: Any) -> tuple[IIN, dt.date, str]:
    payload = _object(payload, "the hold request")
    reference = _required(payload, "reference", "request")
    if not isinstance(reference, str) or not 1 <= len(reference.strip()) <= 128:
        raise ValueError("request.reference must be a string of 1-128 characters")
    return _iin(_required(payload, "iin", "request"), "request.iin"), _date(_required(payload, "until", "request"), "request.until"), reference


def hold_json(hold: ContinuityHold, *, iin: IIN, reference: str, released: bool) -> dict[str, Any]:
    return {
        "holdId": hold.id,
        "iin": str(iin),
        "until": hold.until.isoformat(),
        "reference": reference,
        "released": released,
    }


def hold_from_json(payload: Any) -> ContinuityHold:
    payload = _object(payload, "the hold")
    return ContinuityHold(id=_required(payload, "holdId", "hold"), until=_date(_required(payload, "until", "hold"), "hold.until"))


def clinic_json(kato: str, clinic: Organisation) -> dict[str, Any]:
    """The clinic serving a territory, by its КАТО code."""
    return {"kato": kato, "medicalOrganisation": _organisation_json(clinic)}


def clinic_from_json(payload: Any) -> Organisation:
    payload = _object(payload, "the service-area answer")
    return _organisation(_required(payload, "medicalOrganisation", "answer"), "medicalOrganisation")


# -- dispensary registers and disability


def _registration_json(registration: DispensaryRegistration) -> dict[str, Any]:
    return {
        "register": _REGISTERS[registration.programme],
        "icd10": registration.icd10,
        "registeredOn": registration.since.isoformat(),
        "regimen": registration.regimen,
        "lastDoseOn": _iso(registration.last_dose),
        "daysSupplied": registration.days_supplied,
        "drugSusceptibility": registration.drug_susceptibility,
    }


def _registration(payload: Any, where: str) -> DispensaryRegistration:
    payload = _object(payload, where)
    return DispensaryRegistration(
        programme=_code(_PROGRAMMES, payload.get("register"), f"{where}.register"),
        icd10=_required(payload, "icd10", where),
        since=_date(_required(payload, "registeredOn", where), f"{where}.registeredOn"),
        regimen=payload.get("regimen"),
        last_dose=_date(payload.get("lastDoseOn"), f"{where}.lastDoseOn"),
        days_supplied=payload.get("daysSupplied"),
        drug_susceptibility=payload.get("drugSusceptibility"),
    )


def registrations_json(summary: HealthSummary) -> dict[str, Any]:
    """The answer to a dispensary-register lookup."""
    return {"iin": str(summary.iin), "registrations": [_registration_json(r) for r in summary.registrations]}


def disability_json(iin: IIN, disability: Disability | None) -> dict[str, Any]:
    """The answer to a disability lookup: the established group, or null."""
    if disability is None:
        return {"iin": str(iin), "disability": None}
    return {"iin": str(iin), "disability": {"group": disability.group, "validUntil": _iso(disability.valid_until)}}


def health_summary_from_json(registrations: Any, disability: Any) -> HealthSummary:
    """One summary from the two answers about the same person."""
    registrations = _object(registrations, "the registrations answer")
    disability = _object(disability, "the disability answer")
    iin = _required(registrations, "iin", "registrations answer")
    if _required(disability, "iin", "disability answer") != iin:
        raise ValueError("the registrations and disability answers are about different people")
    entries = _required(registrations, "registrations", "registrations answer")
    if not isinstance(entries, list):
        raise ValueError("registrations answer.registrations must be a list")
    native = disability.get("disability")
    if native is not None:
        native = _object(native, "disability")
        native = Disability(group=_required(native, "group", "disability"), valid_until=_date(native.get("validUntil"), "disability.validUntil"))
    return HealthSummary(
        iin=iin,
        registrations=tuple(_registration(entry, f"registrations[{n}]") for n, entry in enumerate(entries)),
        disability=native,
    )
