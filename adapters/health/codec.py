"""The Ministry of Healthcare's JSON ⇄ the canonical model.

The Ministry's services speak camelCase JSON with their own codes: registers are
named in full (``TUBERCULOSIS``, ``NARCOLOGY``). The contract is
``schemas/openapi/health.json``; its attached-population register (РПН) part is
``adapters.rpn``, which the clinics share.
Pure functions, no I/O: the client decodes what the services answer, the simulator
encodes what it serves, and the tests check that the two agree.

Every lookup sends the IIN in the request body, never in the URL: URLs are written
to access logs by every proxy on the way, bodies are not.

A payload that does not follow the contract raises ``ValueError`` naming the field,
never its value, because the message may reach a log.
"""

from __future__ import annotations

from typing import Any

from adapters.native_json import coded, date_at, iin_at, iso, json_object, required
from gateway.domain import IIN, Disability, DispensaryRegistration, HealthSummary, Programme

__all__ = [
    "disability_json",
    "health_summary_from_json",
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


# -- lookups by IIN


def iin_query(iin: IIN) -> dict[str, Any]:
    """The body of every lookup about one person."""
    return {"iin": str(iin)}


def iin_from_query(payload: Any) -> IIN:
    return iin_at(required(json_object(payload, "the query"), "iin", "query"), "query.iin")


# -- dispensary registers and disability


def _registration_json(registration: DispensaryRegistration) -> dict[str, Any]:
    return {
        "register": _REGISTERS[registration.programme],
        "icd10": registration.icd10,
        "registeredOn": registration.since.isoformat(),
        "regimen": registration.regimen,
        "lastDoseOn": iso(registration.last_dose),
        "daysSupplied": registration.days_supplied,
        "drugSusceptibility": registration.drug_susceptibility,
    }


def _registration(payload: Any, where: str) -> DispensaryRegistration:
    payload = json_object(payload, where)
    return DispensaryRegistration(
        programme=coded(_PROGRAMMES, payload.get("register"), f"{where}.register"),
        icd10=required(payload, "icd10", where),
        since=date_at(required(payload, "registeredOn", where), f"{where}.registeredOn"),
        regimen=payload.get("regimen"),
        last_dose=date_at(payload.get("lastDoseOn"), f"{where}.lastDoseOn"),
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
    return {"iin": str(iin), "disability": {"group": disability.group, "validUntil": iso(disability.valid_until)}}


def health_summary_from_json(registrations: Any, disability: Any) -> HealthSummary:
    """One summary from the two answers about the same person."""
    registrations = json_object(registrations, "the registrations answer")
    disability = json_object(disability, "the disability answer")
    iin = required(registrations, "iin", "registrations answer")
    if required(disability, "iin", "disability answer") != iin:
        raise ValueError("the registrations and disability answers are about different people")
    entries = required(registrations, "registrations", "registrations answer")
    if not isinstance(entries, list):
        raise ValueError("registrations answer.registrations must be a list")
    native = disability.get("disability")
    if native is not None:
        native = json_object(native, "disability")
        native = Disability(group=required(native, "group", "disability"), valid_until=date_at(native.get("validUntil"), "disability.validUntil"))
    return HealthSummary(
        iin=iin,
        registrations=tuple(_registration(entry, f"registrations[{n}]") for n, entry in enumerate(entries)),
        disability=native,
    )
