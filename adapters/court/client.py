"""The court's side of the gateway's outbox: a report's SOAP request, and the receipt answering it.

Courts are not asked synchronously: a report is stored in the outbox and delivered with
store-and-forward guarantees (``X-Message-Id`` stays the same across redeliveries, so the court
registers it once). ``CourtCodec`` builds the stored request body with zeep from the local
court.wsdl, signed with the gateway's key, and reads the court's answer into a
``CourtReceipt`` once the court's signature on it is verified.
"""

from __future__ import annotations

import datetime as dt

from adapters.court import codec
from adapters.court.codec import CourtReceipt
from gateway.domain import PreTrialReport
from gateway.security.xmldsig import Signer, Verifier
from gateway.soap.client import ServiceMessages
from gateway.store import Message
from gateway.workflows.egress import Envelope
from gateway.workflows.ports import SourceUnavailable

__all__ = ["CONTENT_TYPE", "PRETRIAL_REPORTS", "SERVICE_PATH", "CourtCodec"]

SOURCE = "court"
SERVICE_PATH = "/soap/court"
PRETRIAL_REPORTS = "pretrial-reports"
CONTENT_TYPE = "text/xml; charset=utf-8"


class CourtCodec:
    """Pre-trial reports to the court's SOAP requests, and the court's answers to receipts.

    ``signer`` signs each request (the gateway's key); ``verifier`` holds the court's pinned
    certificates for its answers.
    """

    def __init__(self, *, sender_id: str = "gateway", signer: Signer | None = None, verifier: Verifier | None = None) -> None:
        self._messages = ServiceMessages(SOURCE, "court.wsdl", sender_id=sender_id, signer=signer, verifier=verifier)

    @property
    def soap_action(self) -> str:
        return self._messages.soap_action

    def request(
        self, report: PreTrialReport, *, message_id: str, message_date: dt.datetime, correlation_id: str | None = None
    ) -> bytes:
        """The whole SOAP request (``CONTENT_TYPE``) delivering one version of ``report``.

        ``message_id`` is the bus messageId: keep it stable for one report version, so that a
        resent request is registered once.
        """
        return self._messages.request(
            PRETRIAL_REPORTS,
            codec.encode_pretrial_report(report),
            message_id=message_id,
            message_date=message_date,
            correlation_id=correlation_id,
        )

    def receipt(
        self, report_id: str, version: int, *, message_id: str, status: int, media_type: str, body: bytes
    ) -> CourtReceipt:
        """The court's receipt for version ``version`` of report ``report_id`` in its answer to request ``message_id``.

        Raises ``SourceRejected`` when the court refused the report (a Client fault),
        ``SourceUnavailable`` when it failed or answered something else.
        """
        data = self._messages.answer(PRETRIAL_REPORTS, message_id, status=status, media_type=media_type, content=body)
        receipt = self._messages.decoded(data, codec.decode_court_receipt)
        if (receipt.report_id, receipt.version) != (report_id, version):
            raise SourceUnavailable(SOURCE, "the receipt is for another report or version")
        return receipt

    # -- as the outbound codec of pre-trial reports (gateway.workflows.egress.OutboundCodec)

    content_type = CONTENT_TYPE

    def encode(self, report: PreTrialReport, envelope: Envelope) -> bytes:
        return self.request(report, message_id=envelope.message_id, message_date=envelope.created_at,
                            correlation_id=envelope.correlation_id)

    def decode_receipt(self, report_id: str, version: int, message: Message) -> CourtReceipt:
        """The receipt in a delivered message's stored answer."""
        return self.receipt(report_id, version, message_id=message.id, status=message.last_status or 200,
                            media_type="text/xml", body=message.answer or b"")
