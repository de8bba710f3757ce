"""The gateway's side of the clinics' reception: the stored notice, and the acknowledgement that follows.

Clinics are not called synchronously. A continuity-of-care notice is stored in the
outbox and delivered to the member ``clinic``'s service ``continuity-of-care`` with
store-and-forward guarantees (the same ``X-Message-Id`` on every redelivery); the
clinic answers 202 at once and acknowledges later by calling the gateway back at
``/api/v1/continuity-notices/{notice_id}/acknowledgement`` with ``X-Member-Id: clinic``
and the JSON of ``Acknowledgement``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, model_validator

from adapters.continuity_fhir import MEDIA_TYPE, bundle_from_notice
from adapters.outbox_json import json_body
from gateway.domain import ContinuityOfCareNotice
from gateway.workflows.egress import Envelope

__all__ = ["ContinuityNoticeCodec", "CONTENT_TYPE", "SERVICE", "Acknowledgement", "continuity_notice_body"]

SERVICE = "continuity-of-care"
CONTENT_TYPE = MEDIA_TYPE


def continuity_notice_body(notice: ContinuityOfCareNotice, *, notice_id: str, sent_at: dt.datetime,
                           destination: str = "clinic") -> bytes:
    """The outbox body (``CONTENT_TYPE``) for a notice: its FHIR message Bundle as UTF-8 JSON.

    ``notice_id`` becomes ``Bundle.identifier.value`` and comes back in the acknowledgement's
    URL; keep it stable for one notice, so that a resent notice is acknowledged once.
    """
    return json_body(bundle_from_notice(notice, notice_id=notice_id, sent_at=sent_at, destination=destination))


class Acknowledgement(BaseModel):
    """A clinic's answer to a notice: taken on or not, and whether the person is attached there now."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clinic: str
    """The acknowledging clinic's code."""
    accepted: bool
    attached: bool
    attached_since: dt.date | None

    @model_validator(mode="after")
    def _attached_since_exactly_when_attached(self) -> Self:
        if self.attached != (self.attached_since is not None):
            raise ValueError("attached_since is given exactly when attached is true")
        if self.attached and not self.accepted:
            raise ValueError("a clinic that did not accept the notice cannot have attached the person")
        return self

    def json_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ContinuityNoticeCodec:
    """The outbound codec of continuity-of-care notices (``gateway.workflows.egress.OutboundCodec``):
    the envelope's message id is the notice id the acknowledgement comes back with."""

    content_type = CONTENT_TYPE

    def encode(self, notice: ContinuityOfCareNotice, envelope: Envelope) -> bytes:
        # Addressed to the member it goes to: the clinic, or the health authority it escalates to.
        return continuity_notice_body(notice, notice_id=envelope.message_id, sent_at=envelope.created_at,
                                      destination=envelope.recipient)
