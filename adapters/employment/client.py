"""The gateway's side of the employment centres' reception: what the outbox stores.

Employment centres are not called synchronously: a notice is stored in the outbox and
delivered to the member ``employment``'s service ``release-notices`` with
store-and-forward guarantees; the centre deduplicates by ``X-Message-Id``.
"""

from __future__ import annotations

import json

from adapters.employment.codec import employment_notice_json
from gateway.domain import EmploymentNotice
from gateway.workflows.egress import Envelope

__all__ = ["EmploymentNoticeCodec", "CONTENT_TYPE", "SERVICE", "employment_notice_body"]

SERVICE = "release-notices"
CONTENT_TYPE = "application/json"


def employment_notice_body(notice: EmploymentNotice) -> bytes:
    """The outbox body (``CONTENT_TYPE``): the five fields as UTF-8 JSON."""
    return json.dumps(employment_notice_json(notice), ensure_ascii=False, separators=(",", ":")).encode()


class EmploymentNoticeCodec:
    """The outbound codec of employment notices (``gateway.workflows.egress.OutboundCodec``)."""

    content_type = CONTENT_TYPE

    def encode(self, notice: EmploymentNotice, envelope: Envelope) -> bytes:
        return employment_notice_body(notice)
