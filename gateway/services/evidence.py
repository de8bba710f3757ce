"""The sender's signed document, kept as evidence, handed to the two sides of the message.

A relayed signed SOAP request reaches its recipient under the gateway's signature; what the
sender signed is kept verbatim beside the message (``gateway.store.Evidence``), as the bus's
message log keeps it, so that either side can later show who said what: the sender and the
recipient may read it, nobody else (its existence is not disclosed to anyone else). Each
reading is audited, before the document leaves.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config import MemberConfig
from gateway.errors import NotFound, Unauthenticated
from gateway.security.audit import AuditEvent, AuditLog, EventKind, Outcome
from gateway.store import Outbox, StoredEvidence

__all__ = ["EVIDENCE_DOCUMENT", "signed_evidence"]

EVIDENCE_DOCUMENT = "SignedEvidence"
"""The audit log's document type for a reading of the evidence."""


async def signed_evidence(store: Outbox, audit: AuditLog, members: Mapping[str, MemberConfig], *,
                          caller: str | None, message_id: str, what: str = "document") -> StoredEvidence:
    """The evidence of ``message_id`` for ``caller``, its sender or recipient; audited as a
    disclosure of ``what`` (the document, or only the certificate that verified it)."""
    if not caller or caller not in members:
        raise Unauthenticated("identify yourself as the message's sender or recipient")
    evidence = await store.get_evidence(message_id)
    if evidence is None or caller not in (evidence.sender, evidence.recipient):
        raise NotFound("no signed message with this id was sent by you or to you")
    counterpart = evidence.recipient if caller == evidence.sender else evidence.sender
    await audit.record([AuditEvent(
        kind=EventKind.DISCLOSURE, outcome=Outcome.DISCLOSED, member=caller, counterpart=counterpart,
        member_role=members[caller].role, document_type=EVIDENCE_DOCUMENT, message_id=message_id,
        fields=(what,), reason=f"the {'sender' if caller == evidence.sender else 'recipient'} read the evidence "
                               "of the sender's signature",
    )])
    return evidence
