"""The post-release probation notice: what a probation office needs to take over supervision.

When a release comes with post-release probation (parole, УДО), the office at the
destination must expect the person: who they are (to identify them when they
report), when and from where they are released, where they will live, and which
office takes over. Nothing about health, and nothing of the criminal record: the
office receives the judgment through its own channel, and who may see criminal
records is limited (Strategy §3.2).

The body is ``ProbationNotice`` as JSON (``schemas/jsonschema/ProbationNotice.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.domain import ProbationNotice

__all__ = ["ProbationNotice", "probation_notice_from_json", "probation_notice_json"]


def probation_notice_json(notice: ProbationNotice) -> dict[str, Any]:
    return notice.model_dump(mode="json")


def probation_notice_from_json(payload: Any) -> ProbationNotice:
    if not isinstance(payload, Mapping):
        raise ValueError("the notice must be a JSON object")
    return ProbationNotice.model_validate(payload)
