"""Bad SOAP input: each is a Client fault with a 4xx and an ErrorInfo naming the problem, and
nothing is stored or handed on."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from adapters.penal.codec import encode_custody_history_request
from gateway.soap.envelope import parse_envelope
from gateway.soap.faults import read_fault
from soap.messages import SOAP_HEADERS, release_notice, release_notice_request, relay_request

RELAY, NOTICES = "/soap/relay", "/soap/release-notices"
GOOD_RELAY = relay_request()
GOOD_NOTICE = release_notice_request()
SOAP12 = b"http://www.w3.org/2003/05/soap-envelope"


def _with_invalid_check_digit() -> bytes:
    iin = release_notice().iin
    wrong = iin[:11] + str((int(iin[11]) + 1) % 10)
    return GOOD_NOTICE.replace(iin.encode(), wrong.encode())


def _with_data(document: bytes, payload: etree._Element) -> bytes:
    root = etree.fromstring(document)
    data = root.find(".//{urn:reentry-gateway:bus:v1}data")
    data[0] = payload
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _without(document: bytes, part: str) -> bytes:
    """The document with every child of the release notice's ``part`` removed."""
    root = etree.fromstring(document)
    for node in root.iterfind(f".//{{urn:reentry-gateway:penal:v1}}{part}/*"):
        node.getparent().remove(node)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


CASES = [
    # (id, path, body, extra headers, HTTP status, errorCode, words in errorMessage)
    ("not well-formed", RELAY, GOOD_RELAY[:-20], {}, 400, "invalid-xml", "not well-formed"),
    ("entity declaration", RELAY, b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + GOOD_RELAY[38:], {}, 400, "unsafe-xml", "DOCTYPE"),
    ("SOAP 1.2 envelope", RELAY, GOOD_RELAY.replace(b"http://schemas.xmlsoap.org/soap/envelope/", SOAP12), {}, 400, "not-soap", "SOAP 1.1"),
    ("body element in the wrong namespace", RELAY, GOOD_RELAY.replace(b"urn:reentry-gateway:bus:v1", b"urn:other:bus"), {}, 400,
     "unknown-operation", "expects {urn:reentry-gateway:bus:v1}SendMessage"),
    ("asynchronous message on the synchronous relay", RELAY, GOOD_NOTICE, {}, 400, "unknown-operation", "found {urn:reentry-gateway:bus:async:v1}SendMessage"),
    ("missing element", RELAY, GOOD_RELAY.replace(b"<bus:messageId>penal-0001</bus:messageId>", b""), {}, 400,
     "schema-violation", "Expected is ( {urn:reentry-gateway:bus:v1}messageId )"),
    ("extra element", RELAY, GOOD_RELAY.replace(b"</bus:requestInfo>", b"<bus:priority>1</bus:priority></bus:requestInfo>"), {}, 400,
     "schema-violation", "priority': This element is not expected"),
    ("message id outside its facet", RELAY, GOOD_RELAY.replace(b">penal-0001<", b">penal 0001<"), {}, 400,
     "schema-violation", "[facet 'pattern'] The value is not accepted"),
    ("IIN of eleven digits", NOTICES, GOOD_NOTICE.replace(f">{release_notice().iin}<".encode(), f">{release_notice().iin[:11]}<".encode()), {}, 400,
     "schema-violation", "{urn:reentry-gateway:penal:v1}iin': [facet 'pattern']"),
    ("IIN with a wrong check digit", NOTICES, _with_invalid_check_digit(), {}, 400, "invalid-iin", "check digit"),
    ("release type outside the enumeration", NOTICES, GOOD_NOTICE.replace(b"<pen:releaseType>", b"<pen:releaseType>X"), {}, 400,
     "schema-violation", "is not an element of the set"),
    ("unknown recipient in serviceId", RELAY, relay_request(service_id="nobody/bulk"), {}, 404, "not-found", "no member 'nobody'"),
    ("serviceId without a service", RELAY, relay_request(service_id="health"), {}, 400, "unknown-service", "recipient/service"),
    ("unknown serviceId on release-notices", NOTICES, GOOD_NOTICE.replace(b">release-notices<", b">custody-history<"), {}, 400,
     "unknown-service", "'custody-history' is not offered here"),
    ("declared encoding that does not match the bytes", RELAY,
     GOOD_RELAY.decode().replace("Сәлем, әғқңөұүһі", "Салем").encode("cp1251", errors="replace"), {}, 400, "invalid-xml", "Invalid bytes in character encoding"),
    ("charset that contradicts the document", RELAY, GOOD_RELAY, {"Content-Type": "text/xml; charset=windows-1251"}, 400,
     "encoding-mismatch", "charset=windows-1251"),
    ("body over the size limit", RELAY, GOOD_RELAY.replace(b"</bus:data>", b"<!--" + b"x" * 70_000 + b"--></bus:data>"), {}, 413,
     "payload-too-large", "limit"),
    ("wrong content type", RELAY, GOOD_RELAY, {"Content-Type": "application/soap+xml"}, 415, "unsupported-media-type", "text/xml"),
    ("sender that is not the caller", RELAY, relay_request(sender="interior"), {}, 403, "sender-mismatch", "'interior' is not the calling member"),
    ("caller not identified", RELAY, GOOD_RELAY, {"X-Member-Id": ""}, 401, "unauthenticated", "X-Member-Id"),
    ("caller without a grant", RELAY, relay_request(sender="social"), {"X-Member-Id": "social"}, 403, "forbidden", "may not call health/bulk"),
    ("purpose missing", RELAY, GOOD_RELAY.replace(b"<bus:properties><bus:key>purpose</bus:key><bus:value>relay_test</bus:value></bus:properties>", b""),
     {}, 400, "purpose-required", "add the property purpose"),
    ("SOAPAction of another operation", RELAY, GOOD_RELAY, {"SOAPAction": '"urn:reentry-gateway:penal:SendMessage"'}, 400,
     "unknown-operation", "does not match"),
    ("two elements in the Body", RELAY, GOOD_RELAY.replace(b"</soap:Body>", b"<x:y xmlns:x='urn:x'/></soap:Body>"), {}, 400,
     "not-soap", "exactly one element"),
    ("header block that must be understood", RELAY,
     GOOD_RELAY.replace(b"<soap:Body>", b'<soap:Header><x:t xmlns:x="urn:x" soap:mustUnderstand="1"/></soap:Header><soap:Body>'), {}, 400,
     "must-understand", "mustUnderstand"),
    ("empty data", RELAY, re.sub(rb"<p:ProbationNotice .*</p:ProbationNotice>", b"", GOOD_RELAY, flags=re.S), {}, 400,
     "unexpected-data", "data is empty"),
    ("another document than a release notice", NOTICES, _with_data(GOOD_NOTICE, encode_custody_history_request(release_notice().iin)),
     {}, 400, "unexpected-data", "must hold {urn:reentry-gateway:penal:v1}releaseNotice"),
    ("release notice sent as a REQUEST", NOTICES, GOOD_NOTICE.replace(b">NOTIFICATION<", b">REQUEST<"), {}, 400,
     "unexpected-message-type", "NOTIFICATION"),
    ("release notice that says nowhere", NOTICES, _without(GOOD_NOTICE, "destination"), {}, 400, "invalid-content", "releaseNotice: destination: an address needs"),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "error_code", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_bad_input_is_a_client_fault_and_nothing_is_stored(
    soap_gateway, release_receiver, agency, http, path, body, headers, status, error_code, words
):
    async with http.post(soap_gateway.url + path, data=body, headers={**SOAP_HEADERS, **headers}) as response:
        answer = await response.read()
        assert response.status == status
        assert response.content_type == "text/xml"
    fault = read_fault(parse_envelope(answer).body, http_status=response.status)
    assert fault is not None and fault.is_client_fault
    assert b"<faultcode>soap:Client</faultcode>" in answer
    assert fault.error_code == error_code
    assert words in fault.message
    assert await soap_gateway.store.list_messages(limit=10) == []
    assert release_receiver.received == []
