"""The gateway's side of the employment centres' reception: what the outbox stores.

Employment centres are not called synchronously: a notice is stored in the outbox and
delivered to the member ``employment``'s service ``release-notices`` with
store-and-forward guarantees; the centre deduplicates by ``X-Message-Id``.
"""

from __future__ import annotations

from adapters.employment.codec import employment_notice_json
from adapters.outbox_json import JsonOutboundCodec
from gateway.domain import EmploymentNotice

__all__ = ["EmploymentNoticeCodec", "CONTENT_TYPE", "SERVICE", "employment_notice_body"]

SERVICE = "release-notices"
CONTENT_TYPE = JsonOutboundCodec.content_type


class EmploymentNoticeCodec(JsonOutboundCodec):
    """The outbound codec of employment notices: the five fields, nothing more."""

    document = staticmethod(employment_notice_json)


def employment_notice_body(notice: EmploymentNotice) -> bytes:
    """The outbox body (``CONTENT_TYPE``): the five fields as UTF-8 JSON."""
    return EmploymentNoticeCodec().body(notice)
