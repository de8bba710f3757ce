"""The employment-centre notice: the canonical ``EmploymentNotice`` as JSON, and nothing more.

An employment centre learns exactly five things about a released person — age,
release date, residence, education, specialty (Strategy §1.1). The body is the
canonical model's JSON (``schemas/jsonschema/EmploymentNotice.json``), and decoding
refuses a payload with any other field, at the top or inside the residence, so
that a leak is caught by name instead of passing silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.domain import Address, EmploymentNotice

__all__ = ["FIELDS", "employment_notice_from_json", "employment_notice_json"]

FIELDS = tuple(EmploymentNotice.model_fields)
"""The five permitted fields, in the order the Strategy lists them."""

_ADDRESS_FIELDS = frozenset(Address.model_fields)


def employment_notice_json(notice: EmploymentNotice) -> dict[str, Any]:
    return notice.model_dump(mode="json")


def employment_notice_from_json(payload: Any) -> EmploymentNotice:
    """The notice, or ``ValueError`` naming every field that is not permitted or is missing."""
    if not isinstance(payload, Mapping):
        raise ValueError("the notice must be a JSON object")
    extra = sorted(set(payload) - set(FIELDS))
    residence = payload.get("residence")
    if isinstance(residence, Mapping):
        extra += sorted(f"residence.{key}" for key in set(residence) - _ADDRESS_FIELDS)
    if extra:
        raise ValueError(
            f"fields not permitted: {', '.join(extra)}; an employment centre receives exactly "
            f"{', '.join(FIELDS)}"
        )
    missing = [field for field in FIELDS if field not in payload]
    if missing:
        raise ValueError(f"fields missing: {', '.join(missing)}; send null for an unknown education or specialty")
    return EmploymentNotice.model_validate(payload)
