"""The WS-Security signer and verifier on their own; outbound signatures checked by xmlsec1."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from adapters.court.client import CourtCodec
from adapters.court.codec import decode_pretrial_report
from adapters.interior import codec as interior_codec
from adapters.penal import codec as penal_codec
from gateway.security.xmldsig import DS, SOAP12, WSSE, SignatureRefused, Verifier, WsSecuritySigner
from gateway.soap.client import ServiceMessages
from gateway.soap.envelope import parse_envelope, read_request
from soap.messages import POPULATION, relay_request
from soap.signing import (
    BODY,
    EXC_C14N,
    HEADER,
    NS,
    WSU_ID,
    credentials,
    needs_xmlsec1,
    penal,
    penal_next,
    serialise,
    signed,
    stranger,
    verifier,
    xmlsec1_verifies,
)
from support import PERSON_IIN, PERSON_NAMES

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "soap" / "pretrial-report-request.xml"
REPORT = decode_pretrial_report(read_request(parse_envelope(EXAMPLE.read_bytes()).body).data)
NOW = dt.datetime.now(dt.UTC)


def court_report(signer: WsSecuritySigner) -> bytes:
    return CourtCodec(signer=signer).request(REPORT, message_id="gw-1", message_date=NOW)


def envelope(document: bytes) -> etree._Element:
    return parse_envelope(document).document


# ----------------------------------------------------------------- what is signed


def test_one_signature_in_the_security_header_references_the_body_by_its_wsu_id():
    document = etree.fromstring(court_report(penal().signer))
    (signature,) = document.iter(f"{{{DS}}}Signature")
    assert signature.getparent().tag == f"{{{WSSE}}}Security" and signature.getparent().getparent().tag == HEADER
    (reference,) = signature.findall("ds:SignedInfo/ds:Reference", NS)
    assert reference.get("URI") == "#" + document.find(BODY).get(WSU_ID)
    algorithms = [element.get("Algorithm") for element in signature.iterfind(".//*[@Algorithm]")]
    assert algorithms == [
        EXC_C14N,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        EXC_C14N,
        "http://www.w3.org/2001/04/xmlenc#sha256",
    ]


def test_key_info_names_the_certificate_by_issuer_and_serial_inside_a_security_token_reference():
    document = etree.fromstring(court_report(penal().signer))
    serial = document.find(".//ds:KeyInfo/{%s}SecurityTokenReference/ds:X509Data/ds:X509IssuerSerial" % WSSE, NS)
    assert int(serial.findtext("ds:X509SerialNumber", namespaces=NS)) == penal().certificate.serial_number
    assert "CN=penal" in serial.findtext("ds:X509IssuerName", namespaces=NS)


def test_the_same_envelope_signs_to_the_same_bytes_with_rsa():
    # A resent answer must stay byte-identical; RSA PKCS#1 v1.5 and the content-derived id keep it so.
    assert signed(relay_request(), penal()) == signed(relay_request(), penal())


def test_signer_refuses_a_key_that_does_not_fit_the_algorithm():
    with pytest.raises(ValueError, match="ecdsa-sha256 needs an ECDSA key"):
        WsSecuritySigner(penal().key, penal().certificate, algorithm="ecdsa-sha256")


def test_signer_refuses_a_certificate_of_another_key():
    with pytest.raises(ValueError, match="certifies another public key"):
        WsSecuritySigner(penal().key, stranger().certificate)


def test_an_envelope_is_signed_once():
    document = penal().signer.sign(etree.fromstring(relay_request()))
    with pytest.raises(ValueError, match="already carries a wsse:Security header"):
        penal().signer.sign(document)


# ----------------------------------------------------------------- xmlsec1, the independent verifier


@needs_xmlsec1
def test_xmlsec1_verifies_the_signed_court_report(tmp_path):
    result = xmlsec1_verifies(court_report(penal().signer), penal().pem(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 1/1" in result.stderr


@needs_xmlsec1
def test_xmlsec1_refuses_the_court_report_changed_after_signing(tmp_path):
    report = court_report(penal().signer)
    changed = report.replace(REPORT.report_id.encode(), b"PTR-2026-9999")
    assert changed != report
    assert xmlsec1_verifies(changed, penal().pem(), tmp_path).returncode != 0


@needs_xmlsec1
def test_xmlsec1_refuses_the_court_report_with_another_certificate(tmp_path):
    assert xmlsec1_verifies(court_report(penal().signer), stranger().pem(), tmp_path).returncode != 0


@needs_xmlsec1
@pytest.mark.parametrize(
    ("wsdl", "service_id", "payload"),
    [
        ("penal.wsdl", "custody-history", lambda iin: penal_codec.encode_custody_history_request(iin)),
        (
            "interior.wsdl",
            "special-records",
            lambda iin: interior_codec.encode_person_query(interior_codec.SPECIAL_RECORDS_REQUEST, iin),
        ),
    ],
)
def test_xmlsec1_verifies_the_signed_requests_to_the_penal_system_and_the_interior_ministry(
    tmp_path, wsdl, service_id, payload
):
    # The messages PenalClient and InteriorClient send, built by the same ServiceMessages.
    messages = ServiceMessages("agency", wsdl, sender_id="gateway", signer=penal().signer)
    request = messages.request(service_id, payload(POPULATION.in_custody()[0].iin), message_id="gw-2", message_date=NOW)
    result = xmlsec1_verifies(request, penal().pem(), tmp_path)
    assert result.returncode == 0, result.stderr


@needs_xmlsec1
@pytest.mark.parametrize("algorithm", ["ecdsa-sha256", "ecdsa-sha384", "rsa-sha512"])
def test_xmlsec1_verifies_the_other_algorithms(tmp_path, algorithm):
    signer = credentials(f"gateway-{algorithm}", algorithm=algorithm)
    result = xmlsec1_verifies(court_report(signer.signer), signer.pem(), tmp_path)
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------- the verifier


def test_the_verified_body_is_parsed_anew_from_the_signed_bytes():
    document = envelope(signed(relay_request(), penal()))
    body = verifier(penal()).verified_body(document, at=NOW)
    received = document.find(BODY)
    assert body.tag == BODY and body is not received and body.getparent() is None
    assert etree.tostring(body, method="c14n", exclusive=True) == etree.tostring(received, method="c14n", exclusive=True)


def test_unsigned_envelope_is_refused_when_signatures_are_required():
    with pytest.raises(SignatureRefused) as refusal:
        verifier(penal()).verified_body(envelope(relay_request()), at=NOW)
    assert (refusal.value.slug, refusal.value.status) == ("signature-required", 401)


def test_unsigned_envelope_passes_untouched_when_the_sender_may_send_unsigned():
    assert verifier(penal(), required=False).verified_body(envelope(relay_request()), at=NOW) is None


def test_signed_envelope_from_a_sender_with_no_pinned_certificate_is_refused():
    with pytest.raises(SignatureRefused, match="no certificate of member penal is pinned") as refusal:
        Verifier("penal", [], required=False).verified_body(envelope(signed(relay_request(), penal())), at=NOW)
    assert refusal.value.slug == "certificate-unknown"


def test_body_changed_after_signing_is_refused():
    changed = signed(relay_request(text="first"), penal()).replace(b">first<", b">other<")
    with pytest.raises(SignatureRefused, match="changed after it was signed") as refusal:
        verifier(penal()).verified_body(envelope(changed), at=NOW)
    assert refusal.value.slug == "signature-invalid"


def test_key_info_naming_a_pinned_certificate_does_not_make_a_strangers_signature_valid():
    # KeyInfo is outside what is signed: anyone can write the pinned certificate's serial there.
    document = etree.fromstring(signed(relay_request(), stranger()))
    document.find(".//ds:X509SerialNumber", NS).text = str(penal().certificate.serial_number)
    with pytest.raises(SignatureRefused, match="does not verify with any certificate pinned") as refusal:
        verifier(penal()).verified_body(envelope(serialise(document)), at=NOW)
    assert refusal.value.slug == "signature-invalid"


def test_signature_without_key_info_is_tried_against_every_pinned_certificate():
    document = etree.fromstring(signed(relay_request(), penal_next()))
    key_info = document.find(".//ds:KeyInfo", NS)
    key_info.getparent().remove(key_info)
    body = verifier(penal(), penal_next()).verified_body(envelope(serialise(document)), at=NOW)
    assert body is not None


def test_certificate_retired_by_its_configured_window_is_refused_at_the_moment_of_receipt():
    retired = Verifier("penal", [penal().pinned(not_after=NOW - dt.timedelta(days=1)), penal_next().pinned()], required=True)
    with pytest.raises(SignatureRefused, match="expired on") as refusal:
        retired.verified_body(envelope(signed(relay_request(), penal())), at=NOW)
    assert refusal.value.slug == "certificate-expired"
    assert retired.verified_body(envelope(signed(relay_request(), penal_next())), at=NOW) is not None


def test_a_soap_1_2_body_anywhere_is_refused_even_past_the_envelope_parser():
    document = etree.fromstring(signed(relay_request(), penal()))
    etree.SubElement(document.find(HEADER), f"{{{SOAP12}}}Body")
    with pytest.raises(SignatureRefused, match="second SOAP Body") as refusal:
        verifier(penal()).verified_body(document, at=NOW)
    assert refusal.value.slug == "body-wrapped"


def test_signing_and_verifying_log_no_personal_data(log_lines):
    # signxml logs each canonicalised document at DEBUG, as escaped bytes; the log here runs at DEBUG.
    request = relay_request(text=f"{PERSON_IIN} {' '.join(PERSON_NAMES)}")
    verifier(penal()).verified_body(envelope(signed(request, penal())), at=NOW)
    text = log_lines.getvalue().replace("\\", "")
    for name in PERSON_NAMES:
        assert name not in text and repr(name.encode())[2:-1].replace("\\", "") not in text


def test_an_empty_signature_value_is_malformed_not_a_crash():
    document = etree.fromstring(signed(relay_request(), penal()))
    document.find(".//ds:SignatureValue", NS).text = None
    with pytest.raises(SignatureRefused) as refusal:
        verifier(penal()).verified_body(envelope(serialise(document)), at=NOW)
    assert (refusal.value.slug, refusal.value.status) == ("signature-malformed", 400)
