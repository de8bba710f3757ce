"""Reading a pre-trial report's document: filtered for the reader, audited for the subject.

A report holds name, IIN, convictions and health. It is for the court it is addressed to
(which receives it through the workflow's egress) and for the probation office that asked
for it; each read, through the JSON API or the console, is the same disclosure as a
delivery: the policy filters the document for the reader's role and the purpose
``pretrial_report`` (with the legal basis the request cited), and the read is written to the
audit log, naming the reader and the subject, before the document is returned. A role
without a rule is refused and the refusal audited too. Oversight does not read documents:
it sees who read what in the audit log (``gateway audit subject``, the oversight API).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.security.audit import AuditEvent, AuditLog, EventKind, Outcome
from gateway.security.disclosure import DisclosureDenied, DisclosurePolicy

__all__ = ["DOCUMENT_SERVICE", "ReportReader"]

DOCUMENT_TYPE = "PreTrialReport"
PURPOSE = "pretrial_report"
DOCUMENT_SERVICE = "pretrial-reports/document"


class ReportReader:
    def __init__(self, policy: DisclosurePolicy, audit: AuditLog, *, gateway_member: str) -> None:
        self._policy = policy
        self._audit = audit
        self._gateway_member = gateway_member

    async def read(
        self,
        report: Mapping[str, Any],
        *,
        reader: str,
        reader_role: str,
        subject_iin: str,
        legal_basis: str | None,
        case_id: str,
        service: str = DOCUMENT_SERVICE,
    ) -> dict[str, Any]:
        """The report (its JSON form) as ``reader`` may see it, once the read is audited.

        Raises ``DisclosureDenied`` (recorded as a denied disclosure) when no rule lets the
        reader's role see a pre-trial report."""
        event = {"kind": EventKind.DISCLOSURE, "member": reader, "counterpart": self._gateway_member,
                 "member_role": reader_role, "subject": subject_iin, "purpose": PURPOSE, "legal_basis": legal_basis,
                 "document_type": DOCUMENT_TYPE, "service": service, "correlation_id": case_id}
        try:
            disclosure = self._policy.apply(document_type=DOCUMENT_TYPE, payload=report, recipient_role=reader_role,
                                            purpose=PURPOSE, legal_basis=legal_basis)
        except DisclosureDenied as refusal:
            await self._audit.record([AuditEvent(outcome=Outcome.DENIED, reason=refusal.detail, **event)])
            raise
        await self._audit.record([AuditEvent(outcome=Outcome.DISCLOSED, fields=disclosure.disclosed,
                                             withheld=disclosure.withheld, **event)])
        return disclosure.payload
