"""The court's XML (schemas/soap/court.xsd): the pre-trial report and the court's receipt.

Pure functions on lxml elements, as in the other adapters' codecs. Identity, convictions and
the case are written with the interior ministry's types, facilities, housing and documents
with the penal system's, so the report says the same thing in the same words as its sources.
A section is absent exactly when its source was unavailable; an empty criminal or custody
history is present and empty. The canonical ``PreTrialReport`` refuses expunged convictions,
so none can be encoded (Criminal Code art. 79).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from lxml import etree

from adapters.interior import codec as interior
from adapters.penal import codec as penal
from gateway.domain import (
    Disability,
    DispensaryRegistration,
    HealthFlags,
    HealthSummary,
    IdentityDocument,
    PreTrialReport,
    ReportSection,
    ReportSections,
    RiskNeeds,
    SectionProvenance,
    SocialStatus,
)

__all__ = [
    "COURT",
    "COURT_RECEIPT",
    "PRETRIAL_REPORT",
    "CourtReceipt",
    "decode_court_receipt",
    "decode_pretrial_report",
    "encode_court_receipt",
    "encode_pretrial_report",
]

COURT = "urn:reentry-gateway:court:v1"
_NSMAP = {"court": COURT, "int": interior.INTERIOR, "pen": penal.PENAL}


def _q(local: str) -> str:
    return f"{{{COURT}}}{local}"


PRETRIAL_REPORT = _q("preTrialReport")
COURT_RECEIPT = _q("courtReceipt")

# Canonical field name -> element name, for the flat parts.
_RISK_FIELDS = {
    "instrument": "instrument",
    "assessment_date": "assessmentDate",
    "score": "score",
    "band": "band",
    "criminal_history": "criminalHistory",
    "education_employment": "educationEmployment",
    "family_marital": "familyMarital",
    "leisure_recreation": "leisureRecreation",
    "companions": "companions",
    "alcohol_drug": "alcoholDrug",
    "procriminal_attitude": "procriminalAttitude",
    "antisocial_pattern": "antisocialPattern",
}
_REGISTRATION_FIELDS = {
    "programme": "programme",
    "icd10": "icd10",
    "since": "since",
    "regimen": "regimen",
    "last_dose": "lastDose",
    "days_supplied": "daysSupplied",
    "drug_susceptibility": "drugSusceptibility",
}


@dataclass(frozen=True, slots=True)
class CourtReceipt:
    """The court's acknowledgement that it registered one version of a report."""

    report_id: str
    version: int
    registration_number: str
    registered_at: dt.datetime


# ---------------------------------------------------------------- the report


def encode_pretrial_report(report: PreTrialReport) -> etree._Element:
    root = etree.Element(PRETRIAL_REPORT, nsmap=_NSMAP)
    _put(root, "reportId", report.report_id)
    _put(root, "version", str(report.version))
    interior.write_pretrial_case(etree.SubElement(root, _q("case")), report.case)
    interior.write_person(etree.SubElement(root, _q("subject")), report.subject)
    penal.write_organisation(etree.SubElement(root, _q("requestingBody")), report.requesting_body)
    penal.write_organisation(etree.SubElement(root, _q("court")), report.court)
    _put(root, "dueDate", report.due_date.isoformat())
    _write_sections(etree.SubElement(root, _q("sections")), report.sections)
    provenance = etree.SubElement(root, _q("provenance"))
    for section, origin in report.provenance.items():
        entry = etree.SubElement(provenance, _q("section"))
        _put(entry, "name", section.value)
        _put(entry, "source", origin.source)
        _put(entry, "fetchedAt", origin.fetched_at.isoformat())
        _put(entry, "status", origin.status.value)
        _put(entry, "reason", origin.reason)
    return root


def decode_pretrial_report(element: etree._Element) -> PreTrialReport:
    _expect(element, PRETRIAL_REPORT)
    provenance = {}
    for entry in element.iterfind(f"{_q('provenance')}/{_q('section')}"):
        provenance[ReportSection(_get(entry, "name"))] = SectionProvenance.model_validate(
            {
                "source": _get(entry, "source"),
                "fetched_at": _get(entry, "fetchedAt"),
                "status": _get(entry, "status"),
                "reason": _get(entry, "reason"),
            }
        )
    return PreTrialReport.model_validate(
        {
            "report_id": _get(element, "reportId"),
            "version": _get(element, "version"),
            "case": interior.read_pretrial_case(element.find(_q("case"))),
            "subject": interior.read_person(element.find(_q("subject"))),
            "requesting_body": penal.read_organisation(element.find(_q("requestingBody"))),
            "court": penal.read_organisation(element.find(_q("court"))),
            "due_date": _get(element, "dueDate"),
            "sections": _read_sections(element.find(_q("sections"))),
            "provenance": provenance,
        }
    )


def _write_sections(element: etree._Element, sections: ReportSections) -> None:
    if sections.identity is not None:
        interior.write_person(etree.SubElement(element, _q("identity")), sections.identity)
    if sections.criminal_history is not None:
        history = etree.SubElement(element, _q("criminalHistory"))
        for conviction in sections.criminal_history:
            interior.write_conviction(etree.SubElement(history, _q("conviction")), conviction)
    if sections.custody_history is not None:
        custody = etree.SubElement(element, _q("custodyHistory"))
        for episode in sections.custody_history:
            penal.write_custody_episode(etree.SubElement(custody, _q("episode")), episode)
    if sections.social_situation is not None:
        _write_social(etree.SubElement(element, _q("socialSituation")), sections.social_situation)
    if sections.health_summary is not None:
        _write_health(etree.SubElement(element, _q("healthSummary")), sections.health_summary)
    if sections.risk_needs is not None:
        risk = etree.SubElement(element, _q("riskNeeds"))
        for field, local in _RISK_FIELDS.items():
            _put(risk, local, _text(getattr(sections.risk_needs, field)))
    _put(element, "officerConclusion", sections.officer_conclusion)


def _read_sections(element: etree._Element) -> ReportSections:
    identity = element.find(_q("identity"))
    criminal = element.find(_q("criminalHistory"))
    custody = element.find(_q("custodyHistory"))
    social = element.find(_q("socialSituation"))
    health = element.find(_q("healthSummary"))
    risk = element.find(_q("riskNeeds"))
    return ReportSections(
        identity=None if identity is None else interior.read_person(identity),
        criminal_history=None
        if criminal is None
        else tuple(interior.read_conviction(node) for node in criminal.iterfind(_q("conviction"))),
        custody_history=None
        if custody is None
        else tuple(penal.read_custody_episode(node) for node in custody.iterfind(_q("episode"))),
        social_situation=None if social is None else _read_social(social),
        health_summary=None if health is None else _read_health(health),
        risk_needs=None
        if risk is None
        else RiskNeeds.model_validate({field: _get(risk, local) for field, local in _RISK_FIELDS.items()}),
        officer_conclusion=_get(element, "officerConclusion"),
    )


def _write_social(element: etree._Element, social: SocialStatus) -> None:
    _put(element, "iin", social.iin)
    _put(element, "maritalStatus", _text(social.marital_status))
    _put(element, "dependants", _text(social.dependants))
    if social.housing is not None:
        penal.write_housing(etree.SubElement(element, _q("housing")), social.housing)
    for document in social.identity_documents:
        _put(element, "identityDocument", document.value)
    _put(element, "education", _text(social.education))
    _put(element, "specialty", social.specialty)
    _put(element, "employment", _text(social.employment))
    for benefit in social.benefits:
        _put(element, "benefit", benefit)


def _read_social(element: etree._Element) -> SocialStatus:
    housing = element.find(_q("housing"))
    return SocialStatus.model_validate(
        {
            "iin": _get(element, "iin"),
            "marital_status": _get(element, "maritalStatus"),
            "dependants": _get(element, "dependants"),
            "housing": None if housing is None else penal.read_housing(housing),
            "identity_documents": tuple(IdentityDocument(_strip(n.text)) for n in element.iterfind(_q("identityDocument"))),
            "education": _get(element, "education"),
            "specialty": _get(element, "specialty"),
            "employment": _get(element, "employment"),
            "benefits": tuple(_strip(node.text) for node in element.iterfind(_q("benefit"))),
        }
    )


def _write_health(element: etree._Element, health: HealthSummary | HealthFlags) -> None:
    _put(element, "iin", health.iin)
    if isinstance(health, HealthFlags):
        _put(element, "continuousTreatment", "true" if health.continuous_treatment else "false")
    for registration in getattr(health, "registrations", ()):
        entry = etree.SubElement(element, _q("registration"))
        for field, local in _REGISTRATION_FIELDS.items():
            _put(entry, local, _text(getattr(registration, field)))
    if health.disability is not None:
        disability = etree.SubElement(element, _q("disability"))
        _put(disability, "group", str(health.disability.group))
        _put(disability, "validUntil", _text(health.disability.valid_until))


def _read_health(element: etree._Element) -> HealthSummary | HealthFlags:
    disability = element.find(_q("disability"))
    if element.find(_q("continuousTreatment")) is not None:
        return HealthFlags(
            iin=_get(element, "iin"),
            continuous_treatment=_get(element, "continuousTreatment") == "true",
            disability=None if disability is None else Disability.model_validate(
                {"group": int(_get(disability, "group")), "valid_until": _get(disability, "validUntil")}),
        )
    return HealthSummary(
        iin=_get(element, "iin"),
        registrations=tuple(
            DispensaryRegistration.model_validate({field: _get(node, local) for field, local in _REGISTRATION_FIELDS.items()})
            for node in element.iterfind(_q("registration"))
        ),
        disability=None
        if disability is None
        else Disability.model_validate({"group": int(_get(disability, "group")), "valid_until": _get(disability, "validUntil")}),
    )


# ---------------------------------------------------------------- the receipt


def encode_court_receipt(receipt: CourtReceipt) -> etree._Element:
    root = etree.Element(COURT_RECEIPT, nsmap={"court": COURT})
    _put(root, "reportId", receipt.report_id)
    _put(root, "version", str(receipt.version))
    _put(root, "registrationNumber", receipt.registration_number)
    _put(root, "registeredAt", receipt.registered_at.isoformat())
    return root


def decode_court_receipt(element: etree._Element) -> CourtReceipt:
    _expect(element, COURT_RECEIPT)
    return CourtReceipt(
        report_id=_get(element, "reportId"),
        version=int(_get(element, "version")),
        registration_number=_get(element, "registrationNumber"),
        registered_at=dt.datetime.fromisoformat(_get(element, "registeredAt")),
    )


# ---------------------------------------------------------------- text


def _text(value: Any) -> str | None:
    """An optional value as element text: enums by value, dates in ISO form."""
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(getattr(value, "value", value))


def _put(parent: etree._Element, local: str, value: str | None) -> None:
    if value is not None:
        etree.SubElement(parent, _q(local)).text = value


def _get(parent: etree._Element, local: str) -> Any:
    node = parent.find(_q(local))
    return None if node is None else _strip(node.text)


def _strip(text: str | None) -> str:
    # The schema's simple types collapse whitespace around dates, numbers and codes.
    return (text or "").strip()


def _expect(element: etree._Element, tag: str) -> None:
    if element.tag != tag:
        raise ValueError(f"expected the element {tag}, found {element.tag}")
