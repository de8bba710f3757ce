"""Continuity-of-care notices as FHIR R4B messages ⇄ the canonical ``ContinuityOfCareNotice``.

The profile is the gateway's, and no one agency's: the receiving clinic gets each notice
(``adapters.clinic``), and so does the regional health authority when a notice escalates
(``adapters.health`` simulates its reception), so both adapters read it from here.

A clinic's system receives one message ``Bundle`` per notice. The profile, in short
(``docs/integration-json.md`` has the whole of it):

- ``Bundle.identifier.value`` is the notice id (the receiver acknowledges by it).
- ``MessageHeader`` first, its ``fullUrl`` ``urn:uuid:`` of its own ``id``: ``eventCoding``
  is ``continuity-of-care-notice`` for a clinic, ``continuity-of-care-escalation`` for the
  regional health authority (with the reason it escalates in ``reason.text``); the
  destination's ``endpoint`` is the receiving member (``urn:reentry-gateway:member:<id>``)
  and its ``receiver`` the receiving organisation; ``focus`` is the ``Task``.
- ``Task`` (status requested): the clinic is its ``owner``; the acknowledge-by
  deadline is ``restriction.period.end``; ``focus`` is the ``ServiceRequest``.
- ``ServiceRequest``: continue care from the release date (``occurrenceDateTime``),
  for the dispensary ``Condition``s (``reasonReference``) and the
  ``MedicationStatement``s of their regimens (``supportingInfo``).
- ``Patient``: the IIN as an official identifier, name (patronymic as the second
  given name), birth date, gender, the destination as home address (КАТО code as an
  extension), citizenship, disability and the current РПН attachment as extensions.
- ``Organization``: the receiving clinic and the clinic of the current attachment.

Programmes that carry stigma — HIV, addiction, psychiatry — are labelled: their
``Condition`` and ``MedicationStatement`` carry ``meta.security`` restricted (``R``)
plus the sensitivity (``HIV``, ``ETH``, ``PSY``), and the Bundle carries the union, so
a clinic system can keep them from staff without a need to know. Tuberculosis,
diabetes and oncology are not labelled.

Every bundle produced is validated with ``fhir.resources`` before it leaves, and every
bundle read is validated before it is trusted. Identifiers and fullUrls are derived
from the notice id, so the same notice always gives the same bundle.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from gateway.domain import (
    Address,
    Attachment,
    ContinuityHold,
    ContinuityOfCareNotice,
    Disability,
    DispensaryRegistration,
    HealthSummary,
    Organisation,
    Person,
    Programme,
    Sex,
)

__all__ = [
    "IIN_SYSTEM",
    "MEDIA_TYPE",
    "InvalidBundle",
    "ProfileViolation",
    "bundle_from_notice",
    "notice_from_bundle",
    "notice_id_of",
]

MEDIA_TYPE = "application/fhir+json"

# No national FHIR naming system for the IIN or for agency codes is published, so the
# gateway names its own, in the same URN space as its problem types. They are offline
# names, never fetched; replace them when the Ministry publishes its own.
_BASE = "urn:reentry-gateway:fhir"
IIN_SYSTEM = f"{_BASE}:sid:iin"
_ORGANISATION_SYSTEM = f"{_BASE}:sid:organisation"
_NOTICE_SYSTEM = f"{_BASE}:sid:continuity-notice"
_EVENT_SYSTEM = f"{_BASE}:CodeSystem:message-event"
_EVENT_CODE = "continuity-of-care-notice"
_ESCALATION_CODE = "continuity-of-care-escalation"
_EVENTS = {_EVENT_CODE: "Continuity-of-care notice", _ESCALATION_CODE: "Continuity-of-care escalation"}
_ESCALATION_REASON_SYSTEM = f"{_BASE}:CodeSystem:escalation-reason"
_PROGRAMME_SYSTEM = f"{_BASE}:CodeSystem:dispensary-programme"
_CARE_REQUEST_SYSTEM = f"{_BASE}:CodeSystem:care-request"
_KATO = f"{_BASE}:StructureDefinition:kato"
_DRUG_SUSCEPTIBILITY = f"{_BASE}:StructureDefinition:drug-susceptibility"
_DAYS_SUPPLIED = f"{_BASE}:StructureDefinition:days-supplied"
_DISABILITY = f"{_BASE}:StructureDefinition:disability"
_ATTACHMENT = f"{_BASE}:StructureDefinition:rpn-attachment"
_MEMBER_ENDPOINT = "urn:reentry-gateway:member:"
_GATEWAY_ENDPOINT = f"{_MEMBER_ENDPOINT}gateway"
_TASKS = {
    _EVENT_CODE: "Acknowledge this notice and take the patient on without a gap in treatment",
    _ESCALATION_CODE: "No clinic took the patient on: place the patient with a clinic without a gap in treatment, "
                      "and acknowledge this notice",
}

_ICD10 = "http://hl7.org/fhir/sid/icd-10"
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
_CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
_UCUM = "http://unitsofmeasure.org"
_ISO_3166 = "urn:iso:std:iso:3166"
_CITIZENSHIP = "http://hl7.org/fhir/StructureDefinition/patient-citizenship"
_DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
_STREET = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetName"
_HOUSE = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-houseNumber"
_FLAT = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-unitID"

_PROGRAMMES = {
    Programme.TB: "Tuberculosis",
    Programme.HIV: "HIV infection",
    Programme.NARCO: "Addiction (narcology)",
    Programme.PSYCH: "Mental disorders (psychiatry)",
    Programme.ONCO: "Oncology",
    Programme.DIAB: "Diabetes",
}
# HL7 v3 information-sensitivity codes for the programmes whose disclosure stigmatises.
_SENSITIVITY = {
    Programme.HIV: ("HIV", "HIV/AIDS information sensitivity"),
    Programme.NARCO: ("ETH", "substance abuse information sensitivity"),
    Programme.PSYCH: ("PSY", "psychiatry information sensitivity"),
}
_RESTRICTED = {"system": _CONFIDENTIALITY, "code": "R", "display": "restricted"}
_GENDERS = {Sex.MALE: "male", Sex.FEMALE: "female"}
_SEXES = {gender: sex for sex, gender in _GENDERS.items()}
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, _BASE)


class InvalidBundle(ValueError):
    """Not a valid FHIR R4B Bundle (a 400 for whoever sent it)."""


class ProfileViolation(ValueError):
    """Valid FHIR, but not a continuity-of-care notice as this profile defines it (a 422)."""


# -- encoding


def bundle_from_notice(
    notice: ContinuityOfCareNotice, *, notice_id: str, sent_at: dt.datetime, destination: str = "clinic",
) -> dict[str, Any]:
    """The message Bundle for a notice to the member ``destination``.

    ``notice_id`` is ``Bundle.identifier.value`` (acknowledged by it); the ``MessageHeader`` is
    addressed to ``urn:reentry-gateway:member:<destination>``, and a notice with an
    ``escalation_reason`` is the escalation event, its reason in ``MessageHeader.reason``.
    The bundle is valid FHIR R4B for every notice the canonical model admits (the adapter's tests
    prove it with fhir.resources); it is not validated again on each call."""
    if not _FHIR_ID.fullmatch(notice_id):
        raise ValueError("notice_id must be a FHIR id: 1-64 letters, digits, '-' or '.'")
    if sent_at.utcoffset() is None:
        raise ValueError("sent_at must carry a time zone")

    def url(kind: str, number: int = 0) -> str:
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{notice_id}/{kind}/{number}')}"

    organisations: dict[Organisation, str] = {}
    for number, organisation in enumerate(
        [notice.receiving_clinic] + ([notice.attachment.clinic] if notice.attachment else [])
    ):
        organisations.setdefault(organisation, url("Organization", number))

    patient_url, task_url, request_url = url("Patient"), url("Task"), url("ServiceRequest")
    registrations = notice.health.registrations
    condition_urls = [url("Condition", n) for n in range(len(registrations))]
    statements = [
        (url("MedicationStatement", n), condition_url, registration)
        for n, (condition_url, registration) in enumerate(zip(condition_urls, registrations, strict=True))
        if _has_medication(registration)
    ]
    clinic = _reference(notice.receiving_clinic, organisations)
    event = _ESCALATION_CODE if notice.escalation_reason else _EVENT_CODE

    resources: list[tuple[str, dict[str, Any]]] = [
        (url("MessageHeader"), {
            "resourceType": "MessageHeader",
            "eventCoding": {"system": _EVENT_SYSTEM, "code": event, "display": _EVENTS[event]},
            "destination": [{"name": notice.receiving_clinic.name, "endpoint": f"{_MEMBER_ENDPOINT}{destination}",
                             "receiver": clinic}],
            "source": {"name": "reentry-gateway", "endpoint": _GATEWAY_ENDPOINT},
            **({"reason": {"coding": [{"system": _ESCALATION_REASON_SYSTEM, "code": "no-clinic-took-the-patient-on"}],
                           "text": notice.escalation_reason}} if notice.escalation_reason else {}),
            "focus": [{"reference": task_url}],
        }),
        (task_url, {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": {"coding": [{"system": _TASK_CODE, "code": "fulfill"}]},
            "description": _TASKS[event],
            "focus": {"reference": request_url},
            "for": {"reference": patient_url},
            "authoredOn": sent_at.isoformat(),
            "owner": clinic,
            "restriction": {"period": {"end": notice.acknowledge_by.isoformat()}},
        }),
        (request_url, {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"coding": [{
                "system": _CARE_REQUEST_SYSTEM, "code": "continuity-of-care",
                "display": "Continue care and treatment after release from custody",
            }]},
            "subject": {"reference": patient_url},
            "occurrenceDateTime": notice.release_date.isoformat(),
            "performer": [clinic],
            **({"reasonReference": [{"reference": u} for u in condition_urls]} if condition_urls else {}),
            **({"supportingInfo": [{"reference": u} for u, _, _ in statements]} if statements else {}),
        }),
        (patient_url, _patient(notice, organisations)),
        *((u, _organisation(o)) for o, u in organisations.items()),
        *((u, _condition(r, patient_url)) for u, r in zip(condition_urls, registrations, strict=True)),
        *((u, _medication_statement(r, patient_url, c)) for u, c, r in statements),
    ]
    entries = [
        {
            "fullUrl": full_url,
            "resource": {"resourceType": resource["resourceType"], "id": full_url.removeprefix("urn:uuid:")} | resource,
        }
        for full_url, resource in resources
    ]

    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": url("Bundle").removeprefix("urn:uuid:")}
    labels = _labels(registrations)
    if labels:
        bundle["meta"] = {"security": labels}
    bundle |= {
        "identifier": {"system": _NOTICE_SYSTEM, "value": notice_id},
        "type": "message",
        "timestamp": sent_at.isoformat(),
        "entry": entries,
    }
    # Not validated again here with fhir.resources (a third of a release case's CPU): every notice
    # the canonical model admits gives a valid R4B bundle, which the adapter's property test checks
    # with fhir.resources for arbitrary notices and for every release in the population.
    return bundle


def _labels(registrations: tuple[DispensaryRegistration, ...]) -> list[dict[str, str]]:
    """Restricted plus each sensitivity present, in programme order; empty when nothing is sensitive."""
    present = {r.programme for r in registrations}
    sensitivities = [
        {"system": _ACT_CODE, "code": code, "display": display}
        for programme, (code, display) in _SENSITIVITY.items()
        if programme in present
    ]
    return [_RESTRICTED, *sensitivities] if sensitivities else []


def _has_medication(registration: DispensaryRegistration) -> bool:
    return any(v is not None for v in (registration.regimen, registration.last_dose, registration.days_supplied))


def _reference(organisation: Organisation, organisations: Mapping[Organisation, str]) -> dict[str, str]:
    return {"reference": organisations[organisation], "display": organisation.name}


def _organisation(organisation: Organisation) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": _ORGANISATION_SYSTEM, "value": organisation.code}],
        "name": organisation.name,
    }


def _patient(notice: ContinuityOfCareNotice, organisations: Mapping[Organisation, str]) -> dict[str, Any]:
    person = notice.person
    given = [person.given_name] + ([person.patronymic] if person.patronymic else [])
    extensions: list[dict[str, Any]] = [{
        "url": _CITIZENSHIP,
        "extension": [{"url": "code", "valueCodeableConcept": {"coding": [{"system": _ISO_3166, "code": person.citizenship}]}}],
    }]
    disability = notice.health.disability
    if disability is not None:
        parts: list[dict[str, Any]] = [{"url": "group", "valueInteger": disability.group}]
        if disability.valid_until is not None:
            parts.append({"url": "validUntil", "valueDate": disability.valid_until.isoformat()})
        extensions.append({"url": _DISABILITY, "extension": parts})
    attachment = notice.attachment
    if attachment is not None:
        parts = [
            {"url": "clinic", "valueReference": _reference(attachment.clinic, organisations)},
            {"url": "since", "valueDate": attachment.since.isoformat()},
            {"url": "state", "valueCode": attachment.state.value},
        ]
        if attachment.continuity_hold is not None:
            parts += [
                {"url": "holdId", "valueString": attachment.continuity_hold.id},
                {"url": "holdUntil", "valueDate": attachment.continuity_hold.until.isoformat()},
            ]
        extensions.append({"url": _ATTACHMENT, "extension": parts})
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "extension": extensions,
        "identifier": [{
            "use": "official",
            "type": {"coding": [{"system": _IDENTIFIER_TYPE, "code": "NI"}], "text": "ИИН"},
            "system": IIN_SYSTEM,
            "value": str(person.iin),
        }],
        "name": [{"use": "official", "text": " ".join([person.surname, *given]), "family": person.surname, "given": given}],
        "gender": _GENDERS[person.sex],
        "birthDate": person.birth_date.isoformat(),
        "address": [_address(notice.residence)],
    }
    if attachment is not None:
        # The attachment clinic is the patient's primary-care provider, for readers that ignore extensions.
        patient["generalPractitioner"] = [_reference(attachment.clinic, organisations)]
    return patient


def _address(address: Address) -> dict[str, Any]:
    result: dict[str, Any] = {"use": "home"}
    if address.kato is not None:
        result["extension"] = [{"url": _KATO, "valueCode": address.kato}]
    if address.raw is not None:
        result["text"] = address.raw
    parts = [(url, value) for url, value in ((_STREET, address.street), (_HOUSE, address.house), (_FLAT, address.flat)) if value]
    if parts:
        result["line"] = [", ".join(value for _, value in parts)]
        result["_line"] = [{"extension": [{"url": url, "valueString": value} for url, value in parts]}]
    if address.locality is not None:
        result["city"] = address.locality
    if address.region is not None:
        result["state"] = address.region
    return result


def _meta(registration: DispensaryRegistration) -> dict[str, Any]:
    sensitivity = _SENSITIVITY.get(registration.programme)
    if sensitivity is None:
        return {}
    code, display = sensitivity
    return {"meta": {"security": [_RESTRICTED, {"system": _ACT_CODE, "code": code, "display": display}]}}


def _condition(registration: DispensaryRegistration, patient_url: str) -> dict[str, Any]:
    condition: dict[str, Any] = {"resourceType": "Condition", **_meta(registration)}
    if registration.drug_susceptibility is not None:
        condition["extension"] = [{"url": _DRUG_SUSCEPTIBILITY, "valueCode": registration.drug_susceptibility.value}]
    programme = registration.programme
    return condition | {
        "clinicalStatus": {"coding": [{"system": _CLINICAL_STATUS, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": _VERIFICATION_STATUS, "code": "confirmed"}]},
        "category": [{"coding": [{"system": _PROGRAMME_SYSTEM, "code": programme.value, "display": _PROGRAMMES[programme]}]}],
        "code": {"coding": [{"system": _ICD10, "code": registration.icd10}]},
        "subject": {"reference": patient_url},
        "recordedDate": registration.since.isoformat(),
    }


def _medication_statement(registration: DispensaryRegistration, patient_url: str, condition_url: str) -> dict[str, Any]:
    statement: dict[str, Any] = {"resourceType": "MedicationStatement", **_meta(registration)}
    if registration.days_supplied is not None:
        # Core R4B has daysSupply on MedicationDispense only; the statement carries it so that
        # the clinic reads, in one resource, by when the person runs out of medicine.
        statement["extension"] = [{
            "url": _DAYS_SUPPLIED,
            "valueQuantity": {"value": registration.days_supplied, "unit": "days", "system": _UCUM, "code": "d"},
        }]
    statement |= {
        "status": "active",
        "medicationCodeableConcept": (
            {"text": registration.regimen}
            if registration.regimen is not None
            else {"extension": [{"url": _DATA_ABSENT, "valueCode": "unknown"}]}
        ),
        "subject": {"reference": patient_url},
    }
    if registration.last_dose is not None:
        # effective[x] is when the medicine was taken: here, the last dose taken under observation.
        statement["effectiveDateTime"] = registration.last_dose.isoformat()
    statement["reasonReference"] = [{"reference": condition_url}]
    return statement


# -- decoding


def _validate(bundle: Any) -> None:
    if not isinstance(bundle, Mapping):
        raise InvalidBundle("the body must be a JSON object: a FHIR Bundle")
    if bundle.get("resourceType") != "Bundle":
        raise InvalidBundle("resourceType must be Bundle")
    try:
        Bundle.model_validate(bundle)
    except ValidationError as error:
        # Locations and messages only: the input values are a patient's data.
        problems = [
            f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
            for detail in error.errors(include_input=False, include_url=False)
        ]
        raise InvalidBundle("; ".join(problems[:10])) from None


def notice_id_of(bundle: Mapping[str, Any]) -> str:
    """The notice id, ``Bundle.identifier.value``, of a bundle ``notice_from_bundle`` accepted."""
    return bundle["identifier"]["value"]


def notice_from_bundle(bundle: Any) -> ContinuityOfCareNotice:
    """The notice a message Bundle carries.

    ``InvalidBundle`` when it is not valid FHIR R4B, ``ProfileViolation`` when it is but
    does not follow this profile; both messages name the element, never its value.
    """
    _validate(bundle)
    try:
        return _Reader(bundle).notice()
    except ProfileViolation:
        raise
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in detail['loc']) or 'value'}: {detail['msg']}"
            for detail in error.errors(include_input=False, include_url=False)
        ]
        raise ProfileViolation("; ".join(problems)) from None
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ProfileViolation(f"a required element is missing or malformed ({type(error).__name__})") from None


class _Reader:
    def __init__(self, bundle: Mapping[str, Any]) -> None:
        if bundle.get("type") != "message":
            raise ProfileViolation("Bundle.type must be message")
        entries = bundle.get("entry") or []
        self._resources = {entry.get("fullUrl"): entry.get("resource") for entry in entries}
        self._header = entries[0]["resource"] if entries else {}

    def _resolve(self, reference: Mapping[str, Any] | None, resource_type: str, where: str) -> Mapping[str, Any]:
        resource = self._resources.get((reference or {}).get("reference"))
        if resource is None or resource.get("resourceType") != resource_type:
            raise ProfileViolation(f"{where} must reference a {resource_type} in the bundle")
        return resource

    def notice(self) -> ContinuityOfCareNotice:
        header = self._header
        if header.get("resourceType") != "MessageHeader":
            raise ProfileViolation("the first entry must be the MessageHeader")
        event = header.get("eventCoding") or {}
        if event.get("system") != _EVENT_SYSTEM or event.get("code") not in _EVENTS:
            raise ProfileViolation(f"MessageHeader.eventCoding must be {_EVENT_SYSTEM}#{_EVENT_CODE} "
                                   f"or #{_ESCALATION_CODE}")
        reason = (header.get("reason") or {}).get("text")
        if (event["code"] == _ESCALATION_CODE) != (reason is not None):
            raise ProfileViolation("MessageHeader.reason.text is given exactly when the event is an escalation")
        destinations = header.get("destination") or [{}]
        clinic = self._resolve(destinations[0].get("receiver"), "Organization", "MessageHeader.destination.receiver")
        task = self._resolve((header.get("focus") or [{}])[0], "Task", "MessageHeader.focus")
        request = self._resolve(task.get("focus"), "ServiceRequest", "Task.focus")
        patient = self._resolve(task.get("for"), "Patient", "Task.for")
        deadline = ((task.get("restriction") or {}).get("period") or {}).get("end")
        if deadline is None:
            raise ProfileViolation("Task.restriction.period.end (the acknowledge-by deadline) is missing")
        if request.get("occurrenceDateTime") is None:
            raise ProfileViolation("ServiceRequest.occurrenceDateTime (the release date) is missing")
        person = self._person(patient)
        extensions = _extensions(patient)
        return ContinuityOfCareNotice(
            person=person,
            release_date=dt.date.fromisoformat(request["occurrenceDateTime"]),
            residence=self._residence(patient),
            health=HealthSummary(
                iin=person.iin,
                registrations=self._registrations(request),
                disability=_disability(extensions.get(_DISABILITY)),
            ),
            attachment=self._attachment(person, extensions.get(_ATTACHMENT)),
            receiving_clinic=_organisation_from(clinic),
            acknowledge_by=dt.datetime.fromisoformat(deadline),
            escalation_reason=reason,
        )

    def _person(self, patient: Mapping[str, Any]) -> Person:
        iins = [i.get("value") for i in patient.get("identifier") or [] if i.get("system") == IIN_SYSTEM]
        if len(iins) != 1:
            raise ProfileViolation(f"Patient.identifier must hold exactly one IIN ({IIN_SYSTEM})")
        names = [n for n in patient.get("name") or [] if n.get("use") == "official"]
        if len(names) != 1 or len(names[0].get("given") or []) not in (1, 2):
            raise ProfileViolation("Patient.name must hold one official name with a given name and at most a patronymic")
        name = names[0]
        citizenship = _extensions(patient).get(_CITIZENSHIP, {}).get("code")
        return Person(
            iin=iins[0],
            surname=name.get("family"),
            given_name=name["given"][0],
            patronymic=name["given"][1] if len(name["given"]) == 2 else None,
            birth_date=dt.date.fromisoformat(patient["birthDate"]),
            sex=_SEXES.get(patient.get("gender")),
            **({"citizenship": citizenship["valueCodeableConcept"]["coding"][0]["code"]} if citizenship else {}),
        )

    def _residence(self, patient: Mapping[str, Any]) -> Address:
        homes = [a for a in patient.get("address") or [] if a.get("use") == "home"]
        if len(homes) != 1:
            raise ProfileViolation("Patient.address must hold exactly one home address: the destination")
        home = homes[0]
        lines = home.get("_line") or [{}]
        parts = {part["url"]: part.get("valueString") for part in (lines[0] or {}).get("extension") or []}
        kato = {part["url"]: part.get("valueCode") for part in home.get("extension") or []}.get(_KATO)
        return Address(
            kato=kato, region=home.get("state"), locality=home.get("city"),
            street=parts.get(_STREET), house=parts.get(_HOUSE), flat=parts.get(_FLAT), raw=home.get("text"),
        )

    def _registrations(self, request: Mapping[str, Any]) -> tuple[DispensaryRegistration, ...]:
        statements = {}
        for reference in request.get("supportingInfo") or []:
            statement = self._resolve(reference, "MedicationStatement", "ServiceRequest.supportingInfo")
            condition_url = (statement.get("reasonReference") or [{}])[0].get("reference")
            statements[condition_url] = statement
        return tuple(
            _registration(
                self._resolve(reference, "Condition", "ServiceRequest.reasonReference"),
                statements.get(reference.get("reference")),
            )
            for reference in request.get("reasonReference") or []
        )

    def _attachment(self, person: Person, extension: Mapping[str, Any] | None) -> Attachment | None:
        if extension is None:
            return None
        hold = None
        if "holdId" in extension:
            hold = ContinuityHold(id=extension["holdId"]["valueString"], until=extension["holdUntil"]["valueDate"])
        clinic = self._resolve(extension["clinic"]["valueReference"], "Organization", "the attachment's clinic")
        return Attachment(
            iin=person.iin,
            clinic=_organisation_from(clinic),
            since=extension["since"]["valueDate"],
            state=extension["state"]["valueCode"],
            continuity_hold=hold,
        )


def _extensions(resource: Mapping[str, Any]) -> dict[str, Any]:
    """Extensions by url; a complex one as a dict of its parts by url."""
    found: dict[str, Any] = {}
    for extension in resource.get("extension") or []:
        parts = extension.get("extension")
        found[extension["url"]] = {part["url"]: part for part in parts} if parts else extension
    return found


def _coding(concept: Mapping[str, Any] | None, system: str) -> str | None:
    codes = [c.get("code") for c in (concept or {}).get("coding") or [] if c.get("system") == system]
    return codes[0] if codes else None


def _organisation_from(resource: Mapping[str, Any]) -> Organisation:
    codes = [i.get("value") for i in resource.get("identifier") or [] if i.get("system") == _ORGANISATION_SYSTEM]
    if len(codes) != 1:
        raise ProfileViolation(f"an Organization must hold exactly one code ({_ORGANISATION_SYSTEM})")
    return Organisation(code=codes[0], name=resource.get("name"))


def _disability(extension: Mapping[str, Any] | None) -> Disability | None:
    if extension is None:
        return None
    valid_until = extension.get("validUntil")
    return Disability(group=extension["group"]["valueInteger"], valid_until=valid_until and valid_until["valueDate"])


def _registration(condition: Mapping[str, Any], statement: Mapping[str, Any] | None) -> DispensaryRegistration:
    programmes = [_coding(category, _PROGRAMME_SYSTEM) for category in condition.get("category") or []]
    programmes = [p for p in programmes if p is not None]
    icd10 = _coding(condition.get("code"), _ICD10)
    if len(programmes) != 1 or icd10 is None:
        raise ProfileViolation(f"a Condition needs one programme category ({_PROGRAMME_SYSTEM}) and an ICD-10 code")
    susceptibility = _extensions(condition).get(_DRUG_SUSCEPTIBILITY)
    medication: dict[str, Any] = {}
    if statement is not None:
        days = _extensions(statement).get(_DAYS_SUPPLIED)
        medication = {
            "regimen": statement.get("medicationCodeableConcept", {}).get("text"),
            "last_dose": statement.get("effectiveDateTime"),
            "days_supplied": days and days["valueQuantity"]["value"],
        }
    return DispensaryRegistration(
        programme=programmes[0],
        icd10=icd10,
        since=condition.get("recordedDate"),
        drug_susceptibility=susceptibility and susceptibility["valueCode"],
        **medication,
    )
