"""Reading an agency's native JSON against its contract, one field at a time.

Each reader raises ``ValueError`` naming the field (``where``), never its value: the
message may reach a log, and the value may be an IIN or a birth date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from gateway.domain import IIN

__all__ = ["coded", "date_at", "iin_at", "iso", "json_object", "required"]


def json_object(payload: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise ValueError(f"{where} must be a JSON object")
    return payload


def required(payload: Mapping[str, Any], key: str, where: str) -> Any:
    if payload.get(key) is None:
        raise ValueError(f"{where}.{key} is missing")
    return payload[key]


def iin_at(value: Any, where: str) -> IIN:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string of 12 digits")
    return IIN(value)


def coded(table: Mapping[str, Any], code: Any, where: str) -> Any:
    """The canonical value for a native code of ``table``."""
    if code not in table:
        raise ValueError(f"{where} must be one of {', '.join(sorted(table))}")
    return table[code]


def date_at(value: Any, where: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        # The value stays out of the message: it may be a birth date.
        raise ValueError(f"{where} must be a date written YYYY-MM-DD") from None


def iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()
