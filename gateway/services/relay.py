"""The relay use case: accept a message from one member for another member's service.

Shared by every entry point (JSON API, SOAP): it checks who may send what for
which purpose, puts the document under the disclosure policy, enforces idempotency,
and stores the message durably. The caller acknowledges only after ``submit`` returns.

What is relayed leaves the gateway like anything a workflow sends: the service names the
canonical document it takes (``services.<name>.document``), and the document must be one
the policy lets go, whole, to the recipient's role for the purpose
(``DisclosurePolicy.admit``). A field outside the rule refuses the message at acceptance,
naming the field: nothing is stored, nothing forwarded. An accepted message's disclosure
is audited in the transaction that stores it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from pydantic import BaseModel, ValidationError

from gateway.config import GatewayConfig
from gateway.errors import BadRequest, Forbidden, IdempotencyKeyReused, NotFound, Unauthenticated, Unprocessable
from gateway.metrics import Metrics
from gateway.security.audit import AuditEvent, AuditLog, EventKind, Outcome
from gateway.security.disclosure import DOCUMENT_TYPES, Disclosure, DisclosureDenied, DisclosurePolicy, holds_list
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
    # The document the body carries, as the policy reads it: the parsed JSON, or the XML
    # element a SOAP message's data holds.
    document: Any = None


XmlWriter = Callable[[BaseModel], etree._Element]
"""Writes a canonical document in the XML the agencies that take it speak (the courts' schema
for a PreTrialReport, say)."""


class Relay:
    def __init__(
        self, config: GatewayConfig, store: Transactions, metrics: Metrics, audit: AuditLog,
        policy: DisclosurePolicy, clock: Callable[[], float] = time.time,
        xml_writers: Mapping[str, XmlWriter] | None = None,
    ) -> None:
        self._xml_writers = dict(xml_writers or {})
        self._config = config
        self._policy = policy
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

    def wire_xml(self, recipient: str, service: str, data: etree._Element) -> etree._Element:
        """The XML a SOAP recipient gets for the canonical document ``data``: written in its
        agencies' own schema where the exchange knows one for the document type (what the
        gateway's own workflows send that document in), otherwise ``data`` as it is.

        Called once the caller is authorised; a document that is not a valid one of its type
        comes back unchanged, and ``submit`` refuses it with the reason.
        """
        member = self._config.members[recipient]
        document_type = member.services[service].document
        write = self._xml_writers.get(document_type) if document_type else None
        if write is None:
            return data
        try:
            document = DOCUMENT_TYPES[document_type].model_validate(document_from_xml(data, document_type))
        except (Unprocessable, ValidationError):
            return data
        return write(document)

    async def submit(self, request: RelayRequest) -> Acceptance:
        """Authorise, check the document against the disclosure policy and durably store the
        message; returns once it is committed."""
        self.authorise(request)
        document_type, disclosure, subject = self._admit(request)
        delivery = self._config.delivery
        now = self._clock()
        recipient = self._config.members[request.recipient]
        service = recipient.services[request.service]
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
        disclosed = self._audit.disclosure(
            document_type=document_type, recipient=message.recipient, recipient_role=recipient.role,
            service=f"{message.recipient}/{message.service}", subject_iin=subject, fields=disclosure.disclosed,
            purpose=message.purpose or "", message_id=message.id, correlation_id=message.correlation_id, at=now,
        )
        entries = (*self._audit.command([received]).entries, *disclosed.entries)
        try:
            (acceptance,) = await self._store.apply(
                [AcceptMessage(message, audit=entries, evidence=request.evidence)], now)
        except ConflictError as exc:
            raise IdempotencyKeyReused(str(exc)) from None
        if acceptance.duplicate:
            return self._duplicate(acceptance, request, service.ordered)
        self._metrics.accepted.labels(request.recipient, "new").inc()
        return acceptance

    def _admit(self, request: RelayRequest) -> tuple[str, Disclosure, str | None]:
        """The document type, what the policy lets through (all of it, or a refusal) and the
        subject's IIN, if the document names one."""
        recipient = self._config.members[request.recipient]
        document_type = recipient.services[request.service].document
        if document_type is None:
            raise DisclosureDenied(
                f"{request.recipient}/{request.service} takes no relayed documents: the disclosure policy "
                "denies what it cannot check"
            )
        document = request.document
        if isinstance(document, etree._Element):
            document = document_from_xml(document, document_type)
        if not isinstance(document, dict):
            raise Unprocessable(f"{request.recipient}/{request.service} takes a {document_type}: send one JSON object")
        disclosure = self._policy.admit(document_type=document_type, payload=document,
                                        recipient_role=recipient.role, purpose=request.purpose or "")
        try:
            parsed = DOCUMENT_TYPES[document_type].model_validate(document)
        except ValidationError as exc:
            raise Unprocessable(
                f"not a valid {document_type}: " + "; ".join(
                    f"{'.'.join(str(p) for p in error['loc']) or 'document'}: {error['msg']}" for error in exc.errors()
                )
            ) from None
        return document_type, disclosure, _subject_of(parsed)

    def _duplicate(self, acceptance: Acceptance, request: RelayRequest, ordered: bool) -> Acceptance:
        stored = acceptance.message
        if (stored.recipient, stored.service, stored.body) != (request.recipient, request.service, request.body):
            raise IdempotencyKeyReused(
                f"X-Message-Id {request.client_message_id!r} was already used for a different message: "
                "use a new id for a new message, or resend the original unchanged"
            )
        self._metrics.accepted.labels(request.recipient, "duplicate").inc()
        return acceptance


def _subject_of(document: Any) -> str | None:
    """The IIN of the person a canonical document is about, where it names one."""
    for holder in (document, getattr(document, "person", None), getattr(document, "subject", None)):
        iin = getattr(holder, "iin", None)
        if iin is not None:
            return str(iin)
    return None


def document_from_xml(element: etree._Element, document_type: str) -> dict[str, Any]:
    """A canonical document written as XML, in the JSON form the policy and the model read.

    The root is the document (its local name the type), each child element a field by its
    local name, a list field's items repeated elements of its name, an empty element null.
    Whatever else could carry data the policy would not see — attributes, text beside child
    elements, comments, processing instructions — is refused rather than passed on unread.
    """
    if etree.QName(element).localname != document_type:
        raise Unprocessable(
            f"data holds {etree.QName(element).localname!r}; this service takes a {document_type} element"
        )
    return _xml_object(element, document_type, ())


def _xml_object(element: etree._Element, document_type: str, path: tuple[str, ...]) -> Any:
    where = "/".join((document_type, *(p for p in path if p != "[]")))
    if any(not name.startswith("{http://www.w3.org/2000/xmlns/}") for name in element.attrib):
        # An attribute is a field the rules cannot name: it is reported as one to remove.
        return {f"@{etree.QName(name).localname}": value for name, value in element.attrib.items()}
    children = list(element)
    if not children:
        text = element.text
        return None if text is None or text == "" else text
    if (element.text or "").strip() or any((child.tail or "").strip() for child in children):
        raise Unprocessable(f"{where}: text beside child elements; give each value an element of its own")
    fields: dict[str, Any] = {}
    for child in children:
        if not isinstance(child.tag, str):
            raise Unprocessable(f"{where}: comments and processing instructions are not relayed; remove them")
        key = etree.QName(child).localname
        if holds_list(document_type, (*path, key)):
            fields.setdefault(key, []).append(_xml_object(child, document_type, (*path, key, "[]")))
        elif key in fields:
            raise Unprocessable(f"{where}/{key} appears twice and is not a list")
        else:
            fields[key] = _xml_object(child, document_type, (*path, key))
    return fields
