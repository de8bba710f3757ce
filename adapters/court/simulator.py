"""A stand-in for a court receiving pre-trial reports over SOAP.

Every report delivered is recorded (``Recorder``, with its duplicate count by X-Message-Id)
and answered with a receipt. The registration number is derived from the delivery's
X-Message-Id (the bus messageId when the header is absent), and the first receipt for an id is
kept, so a redelivery gets exactly the receipt the first delivery got. A report the canonical
model refuses — one carrying an expunged conviction, say — is refused with a Client fault and
not recorded.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from adapters.court import codec
from adapters.court.client import PRETRIAL_REPORTS
from adapters.population import Population
from adapters.simulation import Behaviour, Recorder, simulator_of, soap_simulator
from gateway.security.xmldsig import Signer, Verifier
from gateway.soap.envelope import BusResponse
from gateway.soap.server import SoapCall

__all__ = ["create_simulator"]

# Pre-trial reports with their sections run to some hundred kilobytes at most.
_MAX_BODY_BYTES = 4 * 1024 * 1024


def create_simulator(population: Population | None = None, behaviour: Behaviour | None = None,
                     recorder: Recorder | None = None, *, signer: Signer | None = None,
                     verifier: Verifier | None = None) -> web.Application:
    """A court's SOAP service at /soap/court; the keys as in ``soap_simulator``.

    ``population`` is accepted for symmetry with the other simulators; a court registers
    whatever report arrives and looks nobody up.
    """
    receipts: dict[str, codec.CourtReceipt] = {}

    async def send_message(call: SoapCall) -> BusResponse:
        call.expect_service(PRETRIAL_REPORTS)
        report = call.decode(codec.decode_pretrial_report, codec.PRETRIAL_REPORT)
        delivery = call.http.headers.get("X-Message-Id") or call.message.message_id
        simulator_of(call.http).recorder.record(PRETRIAL_REPORTS, call.http, call.raw)
        receipt = receipts.get(delivery)
        if receipt is None:
            digest = hashlib.sha256(delivery.encode()).hexdigest()[:10].upper()
            receipt = receipts[delivery] = codec.CourtReceipt(
                report_id=report.report_id,
                version=report.version,
                registration_number=f"ДД-{digest}",
                registered_at=call.received_at.replace(microsecond=call.received_at.microsecond // 1000 * 1000),
            )
        return call.reply(codec.encode_court_receipt(receipt), message="registered")

    return soap_simulator("court", "court.wsdl", send_message, behaviour, recorder,
                          max_bytes=_MAX_BODY_BYTES, signer=signer, verifier=verifier)
