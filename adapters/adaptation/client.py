"""The gateway's side of a re-socialisation plan's recipients: what the outbox stores.

Every version of a plan is one ``PlanNotice`` as JSON (``schemas/jsonschema/PlanNotice.json``),
already filtered for the recipient's role by the disclosure policy, delivered to the member's
service ``plans`` with store-and-forward guarantees; the recipient deduplicates by
``X-Message-Id`` and keeps the highest ``version``. One ordering key per plan: a version never
overtakes the one before it.
"""

from __future__ import annotations

from typing import Any

from adapters.outbox_json import JsonOutboundCodec
from gateway.domain import PlanNotice

__all__ = ["CONTENT_TYPE", "SERVICE", "PlanNoticeCodec", "plan_notice_from_json"]

SERVICE = "plans"
CONTENT_TYPE = JsonOutboundCodec.content_type


def _document(notice: PlanNotice) -> dict[str, Any]:
    return notice.model_dump(mode="json", exclude_none=True)


class PlanNoticeCodec(JsonOutboundCodec):
    """The outbound codec of plan notices: the canonical notice, without the fields withheld."""

    document = staticmethod(_document)


def plan_notice_from_json(payload: Any) -> PlanNotice:
    if not isinstance(payload, dict):
        raise ValueError("the notice must be a JSON object")
    return PlanNotice.model_validate(payload)
