"""The gateway's side of the probation offices' reception: what the outbox stores.

Probation offices are not called synchronously: a notice is stored in the outbox and
delivered to the member ``probation``'s service ``release-notices`` with
store-and-forward guarantees; the office deduplicates by ``X-Message-Id``. Keep the
notices of one release in order (one ordering key per release case): a CANCELLED must
not overtake the PLANNED it cancels.
"""

from __future__ import annotations

from adapters.outbox_json import JsonOutboundCodec
from adapters.probation.codec import probation_notice_json
from gateway.domain import ProbationNotice

__all__ = ["ProbationNoticeCodec", "CONTENT_TYPE", "SERVICE", "probation_notice_body"]

SERVICE = "release-notices"
CONTENT_TYPE = JsonOutboundCodec.content_type


class ProbationNoticeCodec(JsonOutboundCodec):
    """The outbound codec of probation notices: the canonical notice."""

    document = staticmethod(probation_notice_json)


def probation_notice_body(notice: ProbationNotice) -> bytes:
    """The outbox body (``CONTENT_TYPE``): the notice as UTF-8 JSON."""
    return ProbationNoticeCodec().body(notice)
