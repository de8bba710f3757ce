"""A relayed signed SOAP request: the recipient gets it under the gateway's signature, and the
sender's own signed envelope is kept verbatim as evidence that the sender and the recipient —
and nobody else — can read, each reading audited. On SQLite and PostgreSQL; ``xmlsec1``
verifies both signatures independently."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.config import load_config
from gateway.entrypoints.http.server import build
from gateway.security.audit import AuditEntry
from soap.messages import SOAP_HEADERS, relay_request
from soap.signing import needs_xmlsec1, penal, signed, write_pins, xmlsec1_verifies
from support import wait_until, write_config

pytestmark = needs_xmlsec1


@pytest.fixture
async def gateway(tmp_path, agency, store_url):
    """penal pins its certificate and must sign; health (``agency``) receives the relay."""
    directory = write_config(tmp_path / "config", receiver_url=agency.url, store_url=store_url)
    (name,) = write_pins(directory, [penal()])
    started = build(load_config(directory, environ={"GATEWAY__MEMBERS__PENAL__CERTIFICATES": f'["{name}"]'}))
    await started.start(port=0)
    yield started
    await started.stop()


def fresh_request(prefix: str) -> bytes:
    """A relay request under an id of its own, so it is dated now (message dates are kept per id)."""
    return relay_request(message_id=f"{prefix}-{uuid.uuid4().hex[:12]}")


async def relayed(gateway, http, agency, request: bytes) -> str:
    """Relay ``request``; the gateway's message id, once the recipient has it."""
    async with http.post(f"{gateway.url}/soap/relay", data=request, headers=SOAP_HEADERS) as response:
        assert response.status == 200, await response.text()
    await wait_until(lambda: agency.deliveries, timeout=10)
    return agency.deliveries[-1].message_id


async def read(http, gateway, message_id: str, member: str | None, suffix: str = ""):
    headers = {"X-Member-Id": member} if member else {}
    async with http.get(f"{gateway.url}/api/v1/messages/{message_id}/evidence{suffix}", headers=headers) as response:
        return response.status, response.headers.copy(), await response.read()


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


async def test_the_recipient_gets_the_gateways_signature_and_the_senders_signed_bytes_as_evidence(
        gateway, agency, http, tmp_path):
    sent = signed(fresh_request("evidence"), penal())
    message_id = await relayed(gateway, http, agency, sent)

    delivered = agency.deliveries[-1].body
    (tmp_path / "delivery").mkdir()
    assert xmlsec1_verifies(delivered, pem(gateway.signer.certificate), tmp_path / "delivery").returncode == 0
    assert delivered.count(b"SignatureValue>") == 2  # one ds:SignatureValue: the gateway's, open and close tags
    assert xmlsec1_verifies(delivered, penal().pem(), tmp_path / "delivery").returncode != 0

    status, headers, evidence = await read(http, gateway, message_id, "health")
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    assert evidence == sent  # verbatim
    assert headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(sent).digest()).decode()}:"
    assert headers["X-Evidence-Sender"] == "penal"
    (tmp_path / "evidence").mkdir()
    check = xmlsec1_verifies(evidence, penal().pem(), tmp_path / "evidence")
    assert check.returncode == 0, check.stderr


async def test_the_certificate_that_verified_the_evidence_is_kept_with_it(gateway, agency, http, tmp_path):
    message_id = await relayed(gateway, http, agency, signed(fresh_request("evidence"), penal()))
    status, headers, certificate = await read(http, gateway, message_id, "health", "/certificate")
    assert status == 200 and headers["Content-Type"] == "application/pem-certificate-chain"
    assert x509.load_pem_x509_certificate(certificate) == penal().certificate
    _, _, evidence = await read(http, gateway, message_id, "health")
    (tmp_path / "kept").mkdir()
    assert xmlsec1_verifies(evidence, certificate, tmp_path / "kept").returncode == 0


async def test_the_sender_may_read_its_evidence_too(gateway, agency, http):
    sent = signed(fresh_request("evidence"), penal())
    message_id = await relayed(gateway, http, agency, sent)
    status, _, evidence = await read(http, gateway, message_id, "penal")
    assert (status, evidence) == (200, sent)


async def test_another_member_learns_nothing_of_the_evidence(gateway, agency, http):
    message_id = await relayed(gateway, http, agency, signed(fresh_request("evidence"), penal()))
    for suffix in ("", "/certificate"):
        status, headers, body = await read(http, gateway, message_id, "interior", suffix)
        assert status == 404 and headers["Content-Type"].startswith("application/problem+json")
        assert b"Envelope" not in body
    status, _, _ = await read(http, gateway, "no-such-message", "health")
    assert status == 404


async def test_an_unidentified_caller_is_refused(gateway, agency, http):
    message_id = await relayed(gateway, http, agency, signed(fresh_request("evidence"), penal()))
    status, headers, _ = await read(http, gateway, message_id, None)
    assert status == 401 and headers["Content-Type"].startswith("application/problem+json")


async def test_every_reading_is_audited_before_the_document_leaves(gateway, agency, http):
    message_id = await relayed(gateway, http, agency, signed(fresh_request("evidence"), penal()))
    await read(http, gateway, message_id, "health")
    await read(http, gateway, message_id, "penal", "/certificate")
    await read(http, gateway, message_id, "interior")  # refused: nothing disclosed, nothing recorded
    entries = [AuditEntry.parse(record).event for record in await gateway.store.read_audit()]
    readings = [(e.member, e.counterpart, e.fields) for e in entries
                if e.document_type == "SignedEvidence" and e.message_id == message_id]
    assert readings == [("health", "penal", ("document",)), ("penal", "health", ("certificate",))]


async def test_an_unsigned_request_keeps_no_evidence(tmp_path, agency, http, store_url):
    directory = write_config(tmp_path / "unsigned", receiver_url=agency.url, store_url=store_url)
    unsigned_gateway = build(load_config(directory, environ={}))
    await unsigned_gateway.start(port=0)
    try:
        message_id = await relayed(unsigned_gateway, http, agency, fresh_request("evidence"))
        status, _, _ = await read(http, unsigned_gateway, message_id, "health")
        assert status == 404
    finally:
        await unsigned_gateway.stop()
