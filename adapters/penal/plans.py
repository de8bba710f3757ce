"""The penal system's re-socialisation plans as XML (``schemas/soap/plans.xsd``).

``encode_plan`` is what the penal system sends (its simulator and the tests), ``decode_plan``
what the gateway reads; the receipt goes the other way. Element names are the canonical
fields in camelCase; the plan itself is validated by ``gateway.domain.ResocialisationPlan``.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.domain import ResocialisationPlan

__all__ = ["PLAN", "PLANS", "PLAN_RECEIPT", "decode_plan", "decode_plan_receipt", "encode_plan",
           "encode_plan_receipt"]

PLANS = "urn:reentry-gateway:plans:v1"
PLAN = f"{{{PLANS}}}resocialisationPlan"
PLAN_RECEIPT = f"{{{PLANS}}}planReceipt"
_NSMAP = {"plan": PLANS}
_ASSESSMENT = ("instrument", "assessment_date", "score", "band", "criminal_history", "education_employment",
               "family_marital", "leisure_recreation", "companions", "alcohol_drug", "procriminal_attitude",
               "antisocial_pattern")

def _q(local: str) -> str:
    return f"{{{PLANS}}}{local}"

def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)

def _put(parent: etree._Element, local: str, value: Any) -> etree._Element:
    node = etree.SubElement(parent, _q(local))
    node.text = value if isinstance(value, str) else str(value)
    return node

def _get(parent: etree._Element, local: str) -> str | None:
    node = parent.find(_q(local))
    return None if node is None else (node.text or "").strip()

def _organisation(parent: etree._Element, local: str, code: str, name: str) -> None:
    node = etree.SubElement(parent, _q(local))
    _put(node, "code", code)
    _put(node, "name", name)

def _organisation_fields(node: etree._Element | None) -> dict[str, Any] | None:
    return None if node is None else {"code": _get(node, "code"), "name": _get(node, "name")}

def encode_plan(plan_id: str, version: int, plan: ResocialisationPlan) -> etree._Element:
    root = etree.Element(PLAN, nsmap=_NSMAP)
    _put(root, "planId", plan_id)
    _put(root, "version", version)
    _put(root, "iin", plan.iin)
    _put(root, "stage", plan.stage.value)
    assessment = etree.SubElement(root, _q("assessment"))
    values = plan.assessment.model_dump(mode="json")
    for name in _ASSESSMENT:
        _put(assessment, _camel(name), values[name])
    for measure in plan.measures:
        node = etree.SubElement(root, _q("measure"))
        _put(node, "category", measure.category.value)
        _put(node, "description", measure.description)
        _organisation(node, "responsible", measure.responsible.code, measure.responsible.name)
        _put(node, "due", measure.due.isoformat())
    _organisation(root, "responsibleBody", plan.responsible_body.code, plan.responsible_body.name)
    _put(root, "drawnUp", plan.drawn_up.isoformat())
    _put(root, "reviewBy", plan.review_by.isoformat())
    return root

def decode_plan(element: etree._Element) -> tuple[str, int, ResocialisationPlan]:
    """(plan id, version, plan); ValueError (a pydantic ValidationError) for what the model refuses."""
    if element.tag != PLAN:
        raise ValueError(f"expected the element {PLAN}, found {element.tag}")
    assessment = element.find(_q("assessment"))
    plan = ResocialisationPlan.model_validate({
        "iin": _get(element, "iin"),
        "stage": _get(element, "stage"),
        "assessment": None if assessment is None else {name: _get(assessment, _camel(name)) for name in _ASSESSMENT},
        "measures": [
            {"category": _get(node, "category"), "description": _get(node, "description"),
             "responsible": _organisation_fields(node.find(_q("responsible"))), "due": _get(node, "due")}
            for node in element.iterfind(_q("measure"))],
        "responsible_body": _organisation_fields(element.find(_q("responsibleBody"))),
        "drawn_up": _get(element, "drawnUp"),
        "review_by": _get(element, "reviewBy"),
    })
    return _get(element, "planId") or "", int(_get(element, "version") or 0), plan

def encode_plan_receipt(plan_id: str, version: int, recipients: tuple[str, ...], referrals: tuple[str, ...],
                        duplicate: bool) -> etree._Element:
    root = etree.Element(PLAN_RECEIPT, nsmap=_NSMAP)
    _put(root, "planId", plan_id)
    _put(root, "version", version)
    for recipient in recipients:
        _put(root, "recipient", recipient)
    for referral in referrals:
        _put(root, "referral", referral)
    _put(root, "duplicate", "true" if duplicate else "false")
    return root

def decode_plan_receipt(element: etree._Element) -> dict[str, Any]:
    return {"plan_id": _get(element, "planId"), "version": int(_get(element, "version") or 0),
            "recipients": [(n.text or "").strip() for n in element.iterfind(_q("recipient"))],
            "referrals": [(n.text or "").strip() for n in element.iterfind(_q("referral"))],
            "duplicate": _get(element, "duplicate") == "true"}
