"""Reading query parameters strictly: one reader for every route, so each refuses the same way.

A page size or a position in a sequence is a whole number in a documented range: ASCII digits
only (no sign, no spaces, no ``1e3``, no ``²``), sent at most once, and within its bounds —
``limit=0``, ``limit=-1`` and ``limit=501`` where 500 is the maximum are the caller's mistake,
answered with a 400 that names the valid range, never clamped and never passed on to the store
(where a number past 64 bits overflows). The message never quotes what was sent.
"""

from __future__ import annotations

import re

from aiohttp import web

from gateway.errors import BadRequest

__all__ = ["SEQUENCE_MAX", "token", "whole_number"]

SEQUENCE_MAX = 2**63 - 1
"""The largest position a store keeps (a signed 64-bit integer in both backends)."""

_DIGITS = re.compile(r"[0-9]{1,19}")
_TOKEN = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


def _one(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"the query parameter {name} must be sent at most once")
    return values[0] if values else None


def whole_number(request: web.Request, name: str, *, minimum: int, maximum: int, default: int | None = None) -> int:
    """The query parameter ``name`` as a whole number in ``[minimum, maximum]``; ``default`` when
    absent, or a 400 if there is none."""
    text = _one(request, name)
    if text is None:
        if default is None:
            raise BadRequest(f"the query parameter {name} is required: a whole number from {minimum} to {maximum}")
        return default
    if _DIGITS.fullmatch(text) is None or not minimum <= int(text) <= maximum:
        raise BadRequest(f"the query parameter {name} must be a whole number from {minimum} to {maximum}")
    return int(text)


def token(request: web.Request, name: str, *, default: str = "") -> str:
    """The query parameter ``name`` as an id (letters, digits and ``._:@-``, at most 128 characters)."""
    text = _one(request, name)
    if not text:  # absent, or sent empty (``after=`` for the first page)
        return default
    if _TOKEN.fullmatch(text) is None:
        raise BadRequest(f"the query parameter {name} must be an id: 1 to 128 letters, digits or ._:@-")
    return text
