"""Everything a workflow sends leaves through here.

``Egress.send`` turns a canonical document into store commands: the disclosure
policy filters it for the recipient's role and the purpose (default deny), the
filtered document is encoded by the recipient's codec, queued in the outbox,
and the disclosure is written to the audit log — all in the caller's
transaction, so a message is never sent without its audit entry, nor audited
without being sent.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from gateway.config import GatewayConfig, Route
from gateway.store import AcceptMessage, Command, NewMessage

# Message ids are derived from the step's idempotency key, so a step that runs
# again produces the same id, and the store recognises the message as a duplicate.
_MESSAGE_NAMESPACE = uuid.UUID("5d1b6c0e-8a47-4f7e-9b7f-2a1f3c9e6d10")


class DisclosureRefused(Exception):
    """The policy does not let this document go to this recipient for this purpose."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a codec may need besides the document: ids, parties and time."""

    message_id: str
    correlation_id: str
    sender: str
    recipient: str
    service: str
    created_at: dt.datetime


class OutboundCodec(Protocol):
    content_type: str

    def encode(self, document: Any, envelope: Envelope) -> bytes: ...


class DisclosurePolicy(Protocol):
    def apply(self, *, document_type: str, payload: dict, recipient_role: str, purpose: str,
              legal_basis: str | None = None) -> Any: ...


class AuditTrail(Protocol):
    def disclosure(self, **fields: Any) -> Command: ...


def message_id_for(key: str) -> str:
    return str(uuid.uuid5(_MESSAGE_NAMESPACE, key))


class Egress:
    def __init__(
        self,
        config: GatewayConfig,
        policy: DisclosurePolicy,
        audit: AuditTrail,
        codecs: Mapping[tuple[str, str], OutboundCodec],
    ) -> None:
        self._config = config
        self._policy = policy
        self._audit = audit
        self._codecs = dict(codecs)

    def send(
        self,
        *,
        route: Route,
        purpose: str,
        document: BaseModel,
        subject_iin: str,
        correlation_id: str,
        key: str,
        now: float,
        legal_basis: str | None = None,
        ordering_key: str | None = None,
    ) -> tuple[str, list[Command]]:
        """The message id and the commands that send ``document`` along ``route``.

        ``key`` makes the step idempotent: the same key is the same message.
        Raises ``DisclosureRefused`` when the policy forbids the disclosure.
        """
        member = self._config.members[route.member]
        codec = self._codecs.get((route.member, route.service))
        if codec is None:
            raise LookupError(f"no codec for {route.member}/{route.service}")
        try:
            disclosure = self._policy.apply(
                document_type=type(document).__name__,
                payload=document.model_dump(mode="json"),
                recipient_role=member.role,
                purpose=purpose,
                legal_basis=legal_basis,
            )
        except Exception as exc:  # the policy's own refusal, whatever its type
            raise DisclosureRefused(f"{type(document).__name__} to {route.member} for {purpose}: {exc}") from exc
        try:
            # Re-validate what the policy let through: a document the policy had to cut
            # required parts out of was built wrongly, and is not sent half.
            released = type(document).model_validate(disclosure.payload)
        except ValidationError as exc:
            raise DisclosureRefused(
                f"{type(document).__name__} to {route.member} for {purpose} lost required fields "
                f"to the policy ({exc.error_count()} errors)"
            ) from None
        message_id = message_id_for(key)
        envelope = Envelope(
            message_id=message_id,
            correlation_id=correlation_id,
            sender=self._config.server.member_id,
            recipient=route.member,
            service=route.service,
            created_at=dt.datetime.fromtimestamp(now, dt.UTC),
        )
        service = member.services[route.service]
        delivery = self._config.delivery
        message = NewMessage(
            sender=self._config.server.member_id,
            recipient=route.member,
            service=route.service,
            body=codec.encode(released, envelope),
            content_type=codec.content_type,
            correlation_id=correlation_id,
            max_attempts=delivery.max_attempts,
            deadline_at=now + delivery.max_age_seconds,
            client_message_id=message_id,
            id=message_id,
            purpose=purpose,
            ordering_key=ordering_key if service.ordered else None,
        )
        audit = self._audit.disclosure(
            document_type=type(document).__name__,
            recipient=route.member,
            recipient_role=member.role,
            service=route.service,
            subject_iin=subject_iin,
            fields=tuple(disclosure.disclosed),
            withheld=tuple(disclosure.withheld),
            purpose=purpose,
            legal_basis=legal_basis,
            message_id=message_id,
            correlation_id=correlation_id,
            at=now,
        )
        return message_id, [AcceptMessage(message), audit]
