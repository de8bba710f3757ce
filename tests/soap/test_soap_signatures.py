"""Signed SOAP end to end: the gateway's signed answers, a signed push, the whole exchange signed."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization

from adapters.penal.simulator import push_release_notices
from gateway.domain import ReleaseEvent
from gateway.security.xmldsig import PinnedCertificate, Verifier
from gateway.entrypoints.tools.simulate import running_system
from gateway.soap.envelope import parse_envelope, read_request
from gateway.workflows.pretrial import PretrialState
from gateway.workflows.ports import SourceRejected, SourceUnavailable
from soap.messages import SOAP_HEADERS, release_notice, relay_request
from soap.signing import (
    fault_of,
    needs_xmlsec1,
    penal,
    stranger,
    xmlsec1_verifies,
)
from support import wait_until
from workflow_steps import FAST, POPULATION, SUSPECT, report_status, request_report


def trusting(certificate) -> Verifier:
    """What a member verifies the gateway's messages with: the gateway's certificate, pinned."""
    return Verifier("gateway", [PinnedCertificate.of(certificate, "gateway.pem")], required=True)


@needs_xmlsec1
async def test_the_gateways_answer_is_signed_and_xmlsec1_verifies_it(soap_gateway, http, tmp_path):
    async with http.post(f"{soap_gateway.url}/soap/relay", data=relay_request(), headers=SOAP_HEADERS) as response:
        assert response.status == 200
        answer = await response.read()
    certificate = soap_gateway.signer.certificate.public_bytes(serialization.Encoding.PEM)
    result = xmlsec1_verifies(answer, certificate, tmp_path)
    assert result.returncode == 0, result.stderr


async def test_the_gateways_faults_are_signed_too(soap_gateway, http):
    request = relay_request(service_id="no-such-recipient")
    async with http.post(f"{soap_gateway.url}/soap/relay", data=request, headers=SOAP_HEADERS) as response:
        status, answer = response.status, await response.read()
    assert fault_of(status, answer).is_client_fault
    verified = trusting(soap_gateway.signer.certificate).verified_body(
        parse_envelope(answer).document, at=dt.datetime.now(dt.UTC)
    )
    assert verified[0].tag == "{http://schemas.xmlsoap.org/soap/envelope/}Fault"


async def test_release_notice_signed_by_the_penal_system_reaches_the_receiver(
    start_signed_gateway, release_receiver, http  # noqa: F811
):
    gateway = await start_signed_gateway([penal()], release_notice_receiver=release_receiver)
    notice = release_notice()
    case_ids = await push_release_notices(
        gateway.url, [(ReleaseEvent.PLANNED, notice)], http,
        signer=penal().signer, verifier=trusting(gateway.signer.certificate),
    )
    assert case_ids == ["release-case-1"] and release_receiver.received[0]["notice"] == notice


async def test_an_answer_not_signed_by_the_pinned_gateway_certificate_is_not_believed(
    start_signed_gateway, release_receiver, http  # noqa: F811
):
    gateway = await start_signed_gateway([penal()], release_notice_receiver=release_receiver)
    with pytest.raises(SourceUnavailable, match="signature refused: certificate-unknown"):
        await push_release_notices(
            gateway.url, [(ReleaseEvent.PLANNED, release_notice())], http,
            signer=penal().signer, verifier=trusting(stranger().certificate),
        )


async def test_unsigned_release_notice_from_a_penal_system_that_must_sign_is_refused(
    start_signed_gateway, release_receiver, http  # noqa: F811
):
    gateway = await start_signed_gateway([penal()], release_notice_receiver=release_receiver)
    with pytest.raises(SourceRejected, match="signature-required"):
        await push_release_notices(gateway.url, [(ReleaseEvent.PLANNED, release_notice())], http)
    assert release_receiver.received == []


async def test_the_whole_exchange_runs_signed_on_loopback(tmp_path, http):
    # The interior ministry and the court must sign; their simulators refuse what the gateway
    # does not sign. A complete report shows every message verified both ways.
    settings = {**FAST, "members.interior.require_signature": True, "members.court.require_signature": True,
                "members.penal.require_signature": True}
    async with running_system(tmp_path / "system", population=POPULATION, settings=settings) as system:
        report_id = await request_report(http, system, SUSPECT)

        async def complete():
            return (await report_status(http, system, report_id))["status"] == PretrialState.COMPLETE

        await wait_until(complete, timeout=20)
        (delivery,) = system.simulation.recorder("court").deliveries
        envelope = parse_envelope(delivery.body)
        body = trusting(system.gateway.signer.certificate).verified_body(envelope.document, at=dt.datetime.now(dt.UTC))
        assert read_request(body[0]).service_id == "pretrial-reports"
        assert system.simulation.keys is not None and set(system.simulation.keys.signers) == {"penal", "interior", "court"}


@needs_xmlsec1
async def test_soap_the_gateway_relays_arrives_signed_by_the_gateway(soap_gateway, agency, http, tmp_path):
    async with http.post(f"{soap_gateway.url}/soap/relay", data=relay_request(), headers=SOAP_HEADERS) as response:
        assert response.status == 200
    await wait_until(lambda: agency.deliveries, timeout=10)
    delivered = agency.deliveries[0].body
    stored = (await soap_gateway.store.list_messages(limit=1))[0].body
    assert b"Signature" not in stored  # stored as accepted; signed when it leaves, at each attempt
    certificate = soap_gateway.signer.certificate.public_bytes(serialization.Encoding.PEM)
    assert xmlsec1_verifies(delivered, certificate, tmp_path).returncode == 0
    body = trusting(soap_gateway.signer.certificate).verified_body(parse_envelope(delivered).document,
                                                                   at=dt.datetime.now(dt.UTC))
    assert read_request(body[0]).sender_id == "penal"
