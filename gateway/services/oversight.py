"""Oversight use cases: who saw what about a person, asked by an oversight member or an operator.

Looking a person up is itself a disclosure (the person may ask who did it), so the look-up and
its audit entry are one use case, shared by ``GET /api/v1/oversight/subjects/{iin}/disclosures``
and ``gateway audit subject IIN``.
"""

from __future__ import annotations

from gateway.security.audit import AuditEntry, AuditEvent, AuditLog, EventKind, Outcome

__all__ = ["subject_disclosures"]


async def subject_disclosures(
    audit: AuditLog,
    iin: str,
    *,
    viewer: str,
    viewer_role: str | None,
    gateway_member: str,
    reason: str,
    correlation_id: str | None = None,
    after_seq: int = 0,
    limit: int | None = None,
) -> list[AuditEntry]:
    """The audit entries about ``iin`` (a validated IIN), oldest first — every one, or a page
    of ``limit`` after ``after_seq``; the look-up is recorded."""
    entries = await audit.by_subject(iin, after_seq=after_seq, **({"limit": limit} if limit else {}))
    await audit.record([AuditEvent(
        kind=EventKind.DISCLOSURE,
        outcome=Outcome.DISCLOSED,
        member=viewer,
        member_role=viewer_role,
        counterpart=gateway_member,
        subject=iin,
        document_type="AuditTrail",
        fields=("entries",),
        reason=reason,
        correlation_id=correlation_id,
    )])
    return entries
