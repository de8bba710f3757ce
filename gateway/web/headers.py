"""The headers the gateway reads and keeps, checked in one place.

``X-Message-Id``, ``X-Correlation-Id``, ``X-Purpose``, ``X-Ordering-Key`` and ``X-Member-Id`` are
stored, audited, logged and sent on: each must be sent at most once and be 1 to 128 characters
of ASCII letters, digits and ``._:@/+=-``. Anything else — spaces, tabs, bytes that are not
UTF-8 (aiohttp hands them on as lone surrogates that no store can encode), Cyrillic, a value
too long — is a 400 that names the header, never the value. Control characters other than tab
never get this far: aiohttp's parser refuses them. ``caller_identification`` runs the check as
soon as the caller is known, so the refusal is audited like any other.
"""

from __future__ import annotations

import re

from aiohttp import web

from gateway.errors import BadRequest

__all__ = ["CHECKED_HEADERS", "MalformedHeader", "check_headers", "well_formed"]

CHECKED_HEADERS = ("X-Message-Id", "X-Correlation-Id", "X-Purpose", "X-Ordering-Key", "X-Member-Id")
_TOKEN = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


class MalformedHeader(BadRequest):
    slug, title = "malformed-header", "A request header is not of the accepted shape"


def well_formed(value: str) -> bool:
    """Whether a header value has the one shape the gateway keeps."""
    return _TOKEN.fullmatch(value) is not None


def check_headers(request: web.Request) -> None:
    """Raise ``MalformedHeader`` for the first checked header sent twice or misshapen."""
    for name in CHECKED_HEADERS:
        values = request.headers.getall(name, [])
        if len(values) > 1:
            raise MalformedHeader(f"send {name} at most once")
        # An empty value is read as no header at all, as everywhere in the gateway.
        if values and values[0] and not well_formed(values[0]):
            raise MalformedHeader(f"{name} must be 1 to 128 characters of ASCII letters, digits and ._:@/+=- "
                                  "(no spaces or control characters)")
