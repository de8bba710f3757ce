"""Bad SOAP input: each is a soap:Client Fault, sent with HTTP 500 (WS-I BP R1126), whose
SendMessageFault/ErrorInfo names the problem precisely; nothing is stored or handed on."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from lxml import etree

from adapters.penal.codec import encode_custody_history_request
from gateway.soap.envelope import SYNC_TYPES, Channel, parse_envelope
from gateway.soap.faults import read_fault
from soap.messages import SOAP_HEADERS, release_notice, release_notice_request, relay_request, sent_at

RELAY, NOTICES = "/soap/relay", "/soap/release-notices"
GOOD_RELAY = relay_request()
GOOD_NOTICE = release_notice_request()
LEGACY_NOTICE = release_notice_request(channel=Channel.LEGACY_ASYNC)
SOAP12 = b"http://www.w3.org/2003/05/soap-envelope"
INFO = "/Envelope/Body/v10:SendMessage/request/requestInfo"
# The messageDate the cases are built with at collection; each is sent with the time it is sent.
BUILT_AT = sent_at("penal-0001").isoformat(timespec="milliseconds").encode()


def _current(body: bytes) -> bytes:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(timespec="milliseconds").encode()
    return body.replace(BUILT_AT, now)


def _with_data(document: bytes, payload: etree._Element) -> bytes:
    root = etree.fromstring(document)
    data = root.find(".//requestData/data")
    data[0] = payload
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _without(document: bytes, part: str) -> bytes:
    """The document with every child of the release notice's ``part`` removed."""
    root = etree.fromstring(document)
    for node in root.iterfind(f".//{{urn:reentry-gateway:penal:v1}}{part}/*"):
        node.getparent().remove(node)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _typed_data(document: bytes, type_name: str) -> bytes:
    """The document with data emptied and typed with xsi:type ``type_name`` (prefix pen)."""
    root = etree.fromstring(document)
    data = root.find(".//requestData/data")
    for child in list(data):
        data.remove(child)
    data.set("{http://www.w3.org/2001/XMLSchema-instance}type", type_name)
    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return text.replace(b"<data ", b'<data xmlns:pen="urn:reentry-gateway:penal:v1" ', 1)


def _with_invalid_check_digit() -> bytes:
    iin = release_notice().iin
    wrong = iin[:11] + str((int(iin[11]) + 1) % 10)
    return GOOD_NOTICE.replace(iin.encode(), wrong.encode())


def _message_date(value: str) -> bytes:
    root = etree.fromstring(GOOD_RELAY)
    root.find(".//requestInfo/messageDate").text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _properties(count: int, value: str = "x") -> bytes:
    properties = b"".join(b"<properties><key>k%d</key><value>%s</value></properties>" % (n, value.encode()) for n in range(count))
    return GOOD_RELAY.replace(b"</properties></requestInfo>", b"</properties>" + properties + b"</requestInfo>")


PURPOSE = b"<properties><key>purpose</key><value>relay_test</value></properties>"

CASES = [
    # (id, path, body, extra headers, errorCode, words in errorMessage, errorData or None)
    ("not well-formed", RELAY, GOOD_RELAY[:-20], {}, "invalid-xml", "not well-formed", None),
    ("entity declaration", RELAY, b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + GOOD_RELAY[38:], {}, "unsafe-xml", "DOCTYPE", None),
    ("SOAP 1.2 envelope", RELAY, GOOD_RELAY.replace(b"http://schemas.xmlsoap.org/soap/envelope/", SOAP12), {}, "not-soap", "SOAP 1.1", None),
    ("body element in the wrong namespace", RELAY, GOOD_RELAY.replace(SYNC_TYPES.encode(), b"urn:other:bus"), {},
     "unknown-operation", f"expects {{{SYNC_TYPES}}}SendMessage", "/Envelope/Body"),
    ("SyncChannel v9 namespace", RELAY, GOOD_RELAY.replace(b"/v10/", b"/v9/"), {}, "unknown-operation", "found {http://bip.bee.kz/SyncChannel/v9/Types}SendMessage", None),
    ("deprecated asynchronous envelope on the relay", RELAY, LEGACY_NOTICE, {}, "unknown-operation",
     "found {urn:reentry-gateway:bus:async:v1}SendMessage", None),
    ("missing messageId", RELAY, GOOD_RELAY.replace(b"<messageId>penal-0001</messageId>", b""), {},
     "schema-violation", "Expected is ( messageId )", f"{INFO}/serviceId"),
    ("missing serviceId", RELAY, GOOD_RELAY.replace(b"<serviceId>health/bulk</serviceId>", b""), {},
     "schema-violation", "Expected is one of ( correlationId, serviceId )", f"{INFO}/messageDate"),
    ("missing messageDate", RELAY, _message_date("").replace(b"<messageDate></messageDate>", b""), {},
     "schema-violation", "Expected is ( messageDate )", f"{INFO}/sender"),
    ("missing requestInfo", RELAY, GOOD_RELAY[:GOOD_RELAY.index(b"<requestInfo>")] + GOOD_RELAY[GOOD_RELAY.index(b"</requestInfo>") + 14:], {},
     "schema-violation", "Expected is ( requestInfo )", "/Envelope/Body/v10:SendMessage/request/requestData"),
    ("requestInfo element in a namespace", RELAY, GOOD_RELAY.replace(b"<requestInfo>", b'<requestInfo xmlns="urn:x">').replace(b"</requestInfo>", b"</requestInfo>"), {},
     "schema-violation", "Expected is ( requestInfo )", None),
    ("extra element", RELAY, GOOD_RELAY.replace(b"</requestInfo>", b"<priority>1</priority></requestInfo>"), {},
     "schema-violation", "priority': This element is not expected", f"{INFO}/priority"),
    ("message id outside its facet", RELAY, GOOD_RELAY.replace(b">penal-0001<", b">penal 0001<"), {},
     "schema-violation", "[facet 'pattern'] The value is not accepted", f"{INFO}/messageId"),
    ("messageDate in year 10000", RELAY, _message_date("10000-01-01T00:00:00Z"), {}, "date-out-of-range", "0001-9999", f"{INFO}/messageDate"),
    ("messageDate in year 0", RELAY, _message_date("0000-01-01T00:00:00Z"), {}, "schema-violation", "messageDate", f"{INFO}/messageDate"),
    ("messageDate before year 1", RELAY, _message_date("-0001-01-01T00:00:00Z"), {}, "date-out-of-range", "0001-9999", f"{INFO}/messageDate"),
    ("messageDate at 24:00", RELAY, _message_date("2026-12-04T24:00:00Z"), {}, "date-out-of-range", "00:00 of the next day", f"{INFO}/messageDate"),
    ("messageDate at the first instant xs:dateTime and Python share", RELAY, _message_date("0001-01-01T00:00:00Z"), {}, "stale-message", "behind", None),
    ("messageDate at the last instant", RELAY, _message_date("9999-12-31T23:59:59.999999Z"), {}, "stale-message", "ahead of", None),
    ("messageDate with an offset past 14:00", RELAY, _message_date("2026-12-04T10:00:00+15:00"), {}, "schema-violation", "xs:dateTime", f"{INFO}/messageDate"),
    ("messageDate that is not a date", RELAY, _message_date("yesterday"), {}, "schema-violation", "xs:dateTime", f"{INFO}/messageDate"),
    ("33 properties", RELAY, _properties(32), {}, "schema-violation", "properties': This element is not expected", None),
    ("property value over 1000 characters", RELAY, _properties(1, "x" * 1001), {}, "schema-violation", "[facet 'maxLength']", None),
    ("property key outside its facet", RELAY, GOOD_RELAY.replace(b"<key>purpose</key>", b"<key>pur pose</key>"), {}, "schema-violation", "[facet 'pattern']", None),
    ("password over 256 characters", RELAY, GOOD_RELAY.replace(b"<password></password>", b"<password>" + b"p" * 257 + b"</password>"), {},
     "schema-violation", "[facet 'maxLength']", f"{INFO}/sender/password"),
    ("IIN of eleven digits", NOTICES, GOOD_NOTICE.replace(f">{release_notice().iin}<".encode(), f">{release_notice().iin[:11]}<".encode()), {},
     "schema-violation", "{urn:reentry-gateway:penal:v1}iin': [facet 'pattern']", None),
    ("IIN with a wrong check digit", NOTICES, _with_invalid_check_digit(), {}, "invalid-iin", "check digit", None),
    ("release type outside the enumeration", NOTICES, GOOD_NOTICE.replace(b"<pen:releaseType>", b"<pen:releaseType>X"), {},
     "schema-violation", "is not an element of the set", None),
    ("unknown recipient in serviceId", RELAY, relay_request(service_id="nobody/bulk"), {}, "not-found", "no member 'nobody'", None),
    ("serviceId without a service", RELAY, relay_request(service_id="health"), {}, "unknown-service", "recipient/service", f"{INFO}/serviceId"),
    ("serviceId in capitals, as other buses name theirs", RELAY, relay_request(service_id="GBDFL_Service"), {}, "unknown-service", "recipient/service", f"{INFO}/serviceId"),
    ("unknown serviceId on release-notices", NOTICES, GOOD_NOTICE.replace(b">release-notices<", b">custody-history<"), {},
     "unknown-service", "'custody-history' is not offered here", f"{INFO}/serviceId"),
    ("declared encoding that does not match the bytes", RELAY,
     GOOD_RELAY.decode().replace("Сәлем, әғқңөұүһі", "Салем").encode("cp1251", errors="replace"), {}, "invalid-xml", "Invalid bytes in character encoding", None),
    ("charset that contradicts the document", RELAY, GOOD_RELAY, {"Content-Type": "text/xml; charset=windows-1251"},
     "encoding-mismatch", "charset=windows-1251", None),
    ("body over the size limit", RELAY, GOOD_RELAY.replace(b"</data>", b"<!--" + b"x" * 70_000 + b"--></data>"), {},
     "payload-too-large", "limit", None),
    ("wrong content type", RELAY, GOOD_RELAY, {"Content-Type": "application/soap+xml"}, "unsupported-media-type", "text/xml", None),
    ("senderId that is not the certificate's member", RELAY, relay_request(sender="interior"), {}, "sender-mismatch",
     "'interior' is not the calling member 'penal'", f"{INFO}/sender/senderId"),
    ("senderId in another case than the member", RELAY, relay_request(sender="PENAL"), {}, "sender-mismatch", "'PENAL' is not the calling member", f"{INFO}/sender/senderId"),
    ("caller not identified", RELAY, GOOD_RELAY, {"X-Member-Id": ""}, "unauthenticated", "client certificate", None),
    ("caller without a grant", RELAY, relay_request(sender="social"), {"X-Member-Id": "social"}, "forbidden", "may not call health/bulk", None),
    ("purpose missing", RELAY, GOOD_RELAY.replace(PURPOSE, b""), {}, "purpose-required", "add the property purpose", f"{INFO}/properties"),
    ("SOAPAction of another operation", RELAY, GOOD_RELAY, {"SOAPAction": '"urn:reentry-gateway:penal:SendMessage"'},
     "unknown-operation", "does not match", None),
    ("deprecated SOAPAction with a v10 request", RELAY, GOOD_RELAY, {"SOAPAction": '"urn:reentry-gateway:relay:SendMessage"'},
     "unknown-operation", "does not match", None),
    ("two elements in the Body", RELAY, GOOD_RELAY.replace(b"</soap:Body>", b"<x:y xmlns:x='urn:x'/></soap:Body>"), {},
     "not-soap", "exactly one element", None),
    ("header block that must be understood", RELAY,
     GOOD_RELAY.replace(b"<soap:Body>", b'<soap:Header><x:t xmlns:x="urn:x" soap:mustUnderstand="1"/></soap:Header><soap:Body>'), {},
     "must-understand", "mustUnderstand", None),
    ("empty data", RELAY, re.sub(rb"<p:ProbationNotice .*</p:ProbationNotice>", b"", GOOD_RELAY, flags=re.S), {},
     "unexpected-data", "data is empty", "/Envelope/Body/v10:SendMessage/request/requestData/data"),
    ("two documents in data", RELAY, GOOD_RELAY.replace(b"</data>", b"<q:x xmlns:q='urn:q'/></data>"), {},
     "unexpected-data", "exactly one document element", "/Envelope/Body/v10:SendMessage/request/requestData/data"),
    ("text beside the document in data", RELAY, GOOD_RELAY.replace(b"</data>", b"stray</data>"), {},
     "unexpected-data", "and text", "/Envelope/Body/v10:SendMessage/request/requestData/data"),
    ("data typed with a type of no document", NOTICES, _typed_data(GOOD_NOTICE, "pen:Address"), {}, "unexpected-data",
     "typed {urn:reentry-gateway:penal:v1}Address, which is no document of this service", "/Envelope/Body/v10:SendMessage/request/requestData/data"),
    ("data typed with a type no schema defines", NOTICES, _typed_data(GOOD_NOTICE, "pen:Nothing"), {}, "schema-violation",
     "does not resolve to a type definition", None),
    ("another document than a release notice", NOTICES, _with_data(GOOD_NOTICE, encode_custody_history_request(release_notice().iin)),
     {}, "unexpected-data", "must hold {urn:reentry-gateway:penal:v1}releaseNotice", "/Envelope/Body/v10:SendMessage/request/requestData/data"),
    ("deprecated release notice sent as a REQUEST", NOTICES, LEGACY_NOTICE.replace(b">NOTIFICATION<", b">REQUEST<"), {},
     "unexpected-message-type", "NOTIFICATION", None),
    ("release notice that says nowhere", NOTICES, _without(GOOD_NOTICE, "destination"), {}, "invalid-content", "releaseNotice: destination: an address needs", None),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "error_code", "words", "error_data"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_bad_input_is_a_client_fault_and_nothing_is_stored(
    soap_gateway, release_receiver, agency, http, path, body, headers, error_code, words, error_data
):
    async with http.post(soap_gateway.url + path, data=_current(body), headers={**SOAP_HEADERS, **headers}) as response:
        answer = await response.read()
        assert response.status == 500
        assert response.content_type == "text/xml"
    envelope = parse_envelope(answer)
    fault = read_fault(envelope.body)
    assert fault is not None and fault.is_client_fault
    assert b"<faultcode>soap:Client</faultcode>" in answer
    detail = envelope.body.find("detail")
    # Answered in the request's own envelope: v10, or the deprecated one's bus:ErrorInfo.
    legacy = b"urn:reentry-gateway:bus" in body
    assert detail[0].tag == ("{urn:reentry-gateway:bus:v1}ErrorInfo" if legacy else f"{{{SYNC_TYPES}}}SendMessageFault")
    assert fault.error_code == error_code
    assert words in fault.message
    if error_data is not None:
        assert fault.error_data == error_data
    assert await soap_gateway.store.list_messages(limit=10) == []
    assert release_receiver.received == []
