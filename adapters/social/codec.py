"""The Ministry of Labour and Social Protection's JSON ⇄ the canonical model.

Two directions, two styles. The social-status lookup is the Ministry's own
service: camelCase, codes in lower case, family situation grouped under
``family`` (``schemas/openapi/social.json``). Referrals to special social services
are the gateway's contract: the canonical ``AssistanceReferral`` as JSON, described
by ``schemas/jsonschema/AssistanceReferral.json``.

Pure functions, no I/O. A payload that breaks the contract raises ``ValueError``
naming the field, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.native_json import json_object
from gateway.domain import (
    IIN,
    AssistanceReferral,
    Education,
    EmploymentStatus,
    Housing,
    HousingKind,
    IdentityDocument,
    MaritalStatus,
    SocialStatus,
)

__all__ = [
    "iin_from_query",
    "iin_query",
    "referral_from_json",
    "referral_json",
    "referral_receipt",
    "social_status_from_json",
    "social_status_json",
]


def _lower(value: Any) -> str | None:
    return None if value is None else str(value).lower()


def _upper(enum, value: Any, where: str):
    """The canonical member for a lower-case native code, or None for null."""
    if value is None:
        return None
    if not isinstance(value, str) or value != value.lower() or value.upper() not in enum.__members__:
        codes = ", ".join(member.lower() for member in enum.__members__)
        raise ValueError(f"{where} must be one of {codes}")
    return enum[value.upper()]


def _list(payload: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = payload.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{where}.{key} must be a list")
    return value


def iin_query(iin: IIN) -> dict[str, Any]:
    """The body of a social-status lookup; the IIN travels in the body, never in the URL."""
    return {"iin": str(iin)}


def iin_from_query(payload: Any) -> IIN:
    iin = json_object(payload, "the query").get("iin")
    if not isinstance(iin, str):
        raise ValueError("query.iin must be a string of 12 digits")
    return IIN(iin)


def social_status_json(status: SocialStatus) -> dict[str, Any]:
    housing = status.housing
    return {
        "iin": str(status.iin),
        "family": {"maritalStatus": _lower(status.marital_status), "dependants": status.dependants},
        "housing": None if housing is None else {"hasHousing": housing.available, "kind": _lower(housing.kind)},
        "identityDocuments": [_lower(document) for document in status.identity_documents],
        "education": _lower(status.education),
        "specialty": status.specialty,
        "employment": _lower(status.employment),
        "benefits": list(status.benefits),
    }


def social_status_from_json(payload: Any) -> SocialStatus:
    payload = json_object(payload, "the social status")
    family = json_object(payload.get("family") or {}, "family")
    housing = payload.get("housing")
    if housing is not None:
        housing = json_object(housing, "housing")
        housing = Housing(
            available=housing.get("hasHousing"), kind=_upper(HousingKind, housing.get("kind"), "housing.kind")
        )
    documents = _list(payload, "identityDocuments", "status")
    return SocialStatus(
        iin=payload.get("iin"),
        marital_status=_upper(MaritalStatus, family.get("maritalStatus"), "family.maritalStatus"),
        dependants=family.get("dependants"),
        housing=housing,
        identity_documents=tuple(
            _upper(IdentityDocument, document, f"identityDocuments[{n}]") for n, document in enumerate(documents)
        ),
        education=_upper(Education, payload.get("education"), "education"),
        specialty=payload.get("specialty"),
        employment=_upper(EmploymentStatus, payload.get("employment"), "employment"),
        benefits=tuple(_list(payload, "benefits", "status")),
    )


def referral_json(referral: AssistanceReferral) -> dict[str, Any]:
    """A referral to special social services, as the gateway delivers it to ``social/referrals``."""
    return referral.model_dump(mode="json")


def referral_from_json(payload: Any) -> AssistanceReferral:
    return AssistanceReferral.model_validate(json_object(payload, "the referral"))


def referral_receipt(register_id: str, referral: AssistanceReferral) -> dict[str, Any]:
    """Social services' answer: their register number for the referral, and the gateway's id."""
    return {"register_id": register_id, "referral_id": referral.referral_id}
