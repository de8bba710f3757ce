"""CourtCodec and the court simulator: reports delivered as SOAP, receipts read back, through the
gateway's outbox as well as directly."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from aiohttp import web
from lxml import etree

from adapters.court.client import CONTENT_TYPE, CourtCodec
from adapters.court.codec import decode_pretrial_report
from adapters.court.simulator import create_simulator
from adapters.simulation import Recorder
from gateway.entrypoints.http.server import build
from gateway.security.xmldsig import SOAP11, WSSE
from gateway.soap.envelope import parse_envelope, read_request
from gateway.store import NewMessage
from gateway.workflows.ports import SourceRejected, SourceUnavailable
from soap.signing import credentials, stranger, verifier
from support import make_config, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "soap" / "pretrial-report-request.xml"
# The documented report: Kazakh text, an unavailable section, convictions and custody.
REPORT = decode_pretrial_report(read_request(parse_envelope(EXAMPLE.read_bytes()).body).data)


@pytest.fixture
async def court():
    recorder = Recorder()
    runner = web.AppRunner(create_simulator(recorder=recorder), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", recorder
    await runner.cleanup()


async def _deliver(http, url: str, body: bytes, message_id: str):
    headers = {"Content-Type": CONTENT_TYPE, "X-Message-Id": message_id}
    async with http.post(f"{url}/soap/court", data=body, headers=headers) as response:
        return response.status, response.content_type, await response.read()


async def test_court_registers_a_report_and_answers_with_a_receipt(court, http):
    url, recorder = court
    codec = CourtCodec()
    body = codec.request(REPORT, message_id="gw-1", message_date=dt.datetime.now(dt.UTC))
    status, media_type, answer = await _deliver(http, url, body, "gw-1")
    receipt = codec.receipt(REPORT.report_id, REPORT.version, message_id="gw-1", status=status, media_type=media_type, body=answer)
    assert (receipt.report_id, receipt.version) == (REPORT.report_id, REPORT.version)
    assert receipt.registration_number.startswith("ДД-")
    assert recorder.of("pretrial-reports")[0].body == body


async def test_redelivery_with_the_same_message_id_gets_the_same_receipt(court, http):
    url, recorder = court
    codec = CourtCodec()
    receipts = []
    for attempt in range(2):
        body = codec.request(REPORT, message_id="gw-2", message_date=dt.datetime(2026, 11, 26, 9, attempt, tzinfo=dt.UTC))
        status, media_type, answer = await _deliver(http, url, body, "outbox-7")
        receipts.append(codec.receipt(REPORT.report_id, REPORT.version, message_id="gw-2", status=status, media_type=media_type, body=answer))
    assert receipts[0] == receipts[1]
    assert recorder.duplicates == 1


async def test_report_the_court_cannot_accept_is_refused_and_not_recorded(court, http):
    url, recorder = court
    codec = CourtCodec()
    body = codec.request(REPORT, message_id="gw-3", message_date=dt.datetime.now(dt.UTC))
    # Break the subject's IIN check digit inside a schema-valid document.
    iin = REPORT.subject.iin
    broken = body.replace(iin.encode(), (iin[:11] + str((int(iin[11]) + 1) % 10)).encode())
    status, media_type, answer = await _deliver(http, url, broken, "gw-3")
    with pytest.raises(SourceRejected, match="invalid-iin"):
        codec.receipt(REPORT.report_id, REPORT.version, message_id="gw-3", status=status, media_type=media_type, body=answer)
    assert recorder.deliveries == []


async def test_report_stored_in_the_gateway_outbox_reaches_the_court_once(court, tmp_path):
    url, recorder = court
    config = make_config(
        tmp_path / "gateway",
        receiver_url="http://127.0.0.1:1",
        extra_members=f'[members.court]\nname = "Courts"\nrole = "court"\nendpoint = "{url}"\n'
        'services.pretrial-reports = { path = "/soap/court", ordered = true }\n',
    )
    gateway = build(config)
    await gateway.start(port=0)
    try:
        body = CourtCodec().request(REPORT, message_id=str(uuid.uuid4()), message_date=dt.datetime.now(dt.UTC))
        now = gateway.clock()
        await gateway.store.accept(
            NewMessage(
                sender="gateway", recipient="court", service="pretrial-reports", body=body, content_type=CONTENT_TYPE,
                correlation_id="report-case-1", max_attempts=3, deadline_at=now + 60, purpose="pretrial_report",
            ),
            now,
        )
        await wait_until(lambda: recorder.deliveries)
        (delivery,) = recorder.of("pretrial-reports")
        # The court gets the stored request signed by the gateway on the way out: the same Body.
        sent, stored = parse_envelope(delivery.body), parse_envelope(body)
        assert etree.tostring(sent.body, method="c14n", exclusive=True) == etree.tostring(stored.body, method="c14n",
                                                                                   exclusive=True)
        assert sent.document.find(f"{{{SOAP11}}}Header/{{{WSSE}}}Security") is not None
        assert delivery.message_id is not None
    finally:
        await gateway.stop()


# ----------------------------------------------------------------- signed both ways


@pytest.fixture
async def signed_court():
    """A court signing its receipts and accepting only reports the gateway signed."""
    recorder = Recorder()
    app = create_simulator(
        recorder=recorder, signer=credentials("court").signer, verifier=verifier(credentials("gateway"), sender="gateway")
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", recorder
    await runner.cleanup()


def signed_codec(court_key=None) -> CourtCodec:
    return CourtCodec(signer=credentials("gateway").signer, verifier=verifier(court_key or credentials("court"), sender="court"))


async def test_signed_report_gets_a_signed_receipt_that_verifies(signed_court, http):
    url, recorder = signed_court
    codec = signed_codec()
    body = codec.request(REPORT, message_id="gw-s1", message_date=dt.datetime.now(dt.UTC))
    status, media_type, answer = await _deliver(http, url, body, "gw-s1")
    receipt = codec.receipt(REPORT.report_id, REPORT.version, message_id="gw-s1", status=status, media_type=media_type, body=answer)
    assert receipt.registration_number.startswith("ДД-")
    assert recorder.of("pretrial-reports")[0].body == body


async def test_court_refuses_an_unsigned_report_and_records_nothing(signed_court, http):
    url, recorder = signed_court
    body = CourtCodec().request(REPORT, message_id="gw-s2", message_date=dt.datetime.now(dt.UTC))
    status, media_type, answer = await _deliver(http, url, body, "gw-s2")
    assert status == 500
    with pytest.raises(SourceRejected, match="signature-required"):
        signed_codec().receipt(REPORT.report_id, REPORT.version, message_id="gw-s2", status=status,
                               media_type=media_type, body=answer)
    assert recorder.deliveries == []


async def test_court_refuses_a_report_changed_after_the_gateway_signed_it(signed_court, http):
    url, recorder = signed_court
    body = signed_codec().request(REPORT, message_id="gw-s3", message_date=dt.datetime.now(dt.UTC))
    changed = body.replace(REPORT.report_id.encode(), b"PTR-2026-9999")
    status, _, answer = await _deliver(http, url, changed, "gw-s3")
    assert status == 500 and b"signature-invalid" in answer
    assert recorder.deliveries == []


async def test_a_receipt_signed_with_a_key_not_pinned_for_the_court_is_not_recorded_as_one(signed_court, http):
    url, _ = signed_court
    codec = signed_codec(court_key=stranger())
    body = codec.request(REPORT, message_id="gw-s4", message_date=dt.datetime.now(dt.UTC))
    status, media_type, answer = await _deliver(http, url, body, "gw-s4")
    with pytest.raises(SourceUnavailable, match="signature refused"):
        codec.receipt(REPORT.report_id, REPORT.version, message_id="gw-s4", status=status, media_type=media_type, body=answer)
