"""The relay use case: accept a message from one member for another member's service.

Shared by every entry point (JSON API, SOAP): it checks who may send what for
which purpose, enforces idempotency, and stores the message durably. The
caller acknowledges only after ``submit`` returns.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.errors import BadRequest, Forbidden, IdempotencyKeyReused, NotFound, Unauthenticated
from gateway.metrics import Metrics
from gateway.security.audit import AuditEvent, AuditLog, EventKind, Outcome
from gateway.store import AcceptMessage, Acceptance, ConflictError, Evidence, NewMessage, Transactions

# Opaque ids and keys: printable, no spaces, bounded (they end up in headers and indexes).
_TOKEN = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


@dataclass(frozen=True, slots=True)
class RelayRequest:
    caller: str | None
    recipient: str
    service: str
    body: bytes
    content_type: str
    client_message_id: str | None = None
    correlation_id: str | None = None
    purpose: str | None = None
    ordering_key: str | None = None
    evidence: Evidence | None = None
    """The sender's signed document as it arrived, kept with the message (a signed SOAP request)."""


class Relay:
    def __init__(
        self, config: GatewayConfig, store: Transactions, metrics: Metrics, audit: AuditLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._metrics = metrics
        self._audit = audit
        self._clock = clock
        # Looked up twice for every message (before and after its body is read): by key, not by
        # walking each member's grants. The configuration is frozen.
        self._grants = {(caller, grant.service): grant
                        for caller, member in config.members.items() for grant in reversed(member.may_call)}

    def authorise(self, request: RelayRequest) -> None:
        """Raise unless the caller may send this message. Checks nothing stored."""
        members = self._config.members
        if not request.caller:
            raise Unauthenticated("the caller did not identify itself: send X-Member-Id with your member id")
        if request.caller not in members:
            raise Unauthenticated(f"{request.caller!r} is not a member of this exchange")
        recipient = members.get(request.recipient)
        if recipient is None:
            raise NotFound(f"no member {request.recipient!r}: check the recipient in the URL")
        if request.service not in recipient.services:
            offered = ", ".join(sorted(recipient.services)) or "none"
            raise NotFound(f"member {request.recipient!r} offers no service {request.service!r} (it offers: {offered})")
        grant = self._grants.get((request.caller, f"{request.recipient}/{request.service}"))
        if grant is None:
            raise Forbidden(
                f"member {request.caller!r} may not call {request.recipient}/{request.service}; "
                "ask the exchange operator for a grant"
            )
        if request.purpose is None:
            raise BadRequest(
                "X-Purpose is required: say why you send this message "
                f"(allowed here: {', '.join(grant.purposes)})"
            )
        if request.purpose not in grant.purposes:
            raise Forbidden(
                f"purpose {request.purpose!r} is not allowed for {request.recipient}/{request.service} "
                f"(allowed: {', '.join(grant.purposes)})"
            )
        for header, value in (
            ("X-Message-Id", request.client_message_id),
            ("X-Correlation-Id", request.correlation_id),
            ("X-Ordering-Key", request.ordering_key),
        ):
            if value is not None and not _TOKEN.match(value):
                raise BadRequest(
                    f"{header} must be 1 to 128 characters of letters, digits and ._:@/+=- (no spaces)"
                )

    async def submit(self, request: RelayRequest) -> Acceptance:
        """Authorise and durably store the message; returns once it is committed."""
        self.authorise(request)
        delivery = self._config.delivery
        now = self._clock()
        service = self._config.members[request.recipient].services[request.service]
        message = NewMessage(
            id=str(uuid.uuid4()),
            sender=request.caller or "",
            recipient=request.recipient,
            service=request.service,
            body=request.body,
            content_type=request.content_type,
            correlation_id=request.correlation_id or str(uuid.uuid4()),
            max_attempts=delivery.max_attempts,
            deadline_at=now + delivery.max_age_seconds,
            client_message_id=request.client_message_id,
            purpose=request.purpose,
            ordering_key=request.ordering_key if service.ordered else None,
        )
        # Every inbound message is audited, in the transaction that stores it. A resend is
        # answered from the store in the same transaction: nothing new is stored or audited.
        received = AuditEvent(
            kind=EventKind.INBOUND, outcome=Outcome.ACCEPTED, member=message.sender, counterpart=message.recipient,
            member_role=self._config.members[message.sender].role, purpose=message.purpose,
            service=f"{message.recipient}/{message.service}", message_id=message.id,
            correlation_id=message.correlation_id, at=now,
        )
        try:
            (acceptance,) = await self._store.apply(
                [AcceptMessage(message, audit=self._audit.command([received]).entries, evidence=request.evidence)], now)
        except ConflictError as exc:
            raise IdempotencyKeyReused(str(exc)) from None
        if acceptance.duplicate:
            return self._duplicate(acceptance, request, service.ordered)
        self._metrics.accepted.labels(request.recipient, "new").inc()
        return acceptance

    def _duplicate(self, acceptance: Acceptance, request: RelayRequest, ordered: bool) -> Acceptance:
        stored = acceptance.message
        if (stored.recipient, stored.service, stored.body) != (request.recipient, request.service, request.body):
            raise IdempotencyKeyReused(
                f"X-Message-Id {request.client_message_id!r} was already used for a different message: "
                "use a new id for a new message, or resend the original unchanged"
            )
        self._metrics.accepted.labels(request.recipient, "duplicate").inc()
        return acceptance
