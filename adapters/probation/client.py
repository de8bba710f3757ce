"""The gateway's side of the probation offices' reception: what the outbox stores.

Probation offices are not called synchronously: a notice is stored in the outbox and
delivered to the member ``probation``'s service ``release-notices`` with
store-and-forward guarantees; the office deduplicates by ``X-Message-Id``. Keep the
notices of one release in order (one ordering key per release case): a CANCELLED must
not overtake the PLANNED it cancels.
"""

from __future__ import annotations

import json

from adapters.probation.codec import probation_notice_json
from gateway.domain import ProbationNotice
from gateway.workflows.egress import Envelope

__all__ = ["ProbationNoticeCodec", "CONTENT_TYPE", "SERVICE", "probation_notice_body"]

SERVICE = "release-notices"
CONTENT_TYPE = "application/json"


def probation_notice_body(notice: ProbationNotice) -> bytes:
    """The outbox body (``CONTENT_TYPE``): the notice as UTF-8 JSON."""
    return json.dumps(probation_notice_json(notice), ensure_ascii=False, separators=(",", ":")).encode()


class ProbationNoticeCodec:
    """The outbound codec of probation notices (``gateway.workflows.egress.OutboundCodec``)."""

    content_type = CONTENT_TYPE

    def encode(self, notice: ProbationNotice, envelope: Envelope) -> bytes:
        return probation_notice_body(notice)
