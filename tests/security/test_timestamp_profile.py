"""The interoperable WS-Security profile: a signature over the Body and the Security header's
``wsu:Timestamp`` (the default of WSS4J, WCF and node ``soap``), and the wrapping attacks on it.

The Timestamp counts only when it is signed and is the one in the Security header that holds
the signature; its Created and Expires then bound the message's freshness within the clock skew.
"""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from lxml import etree

from gateway.security.xmldsig import WSSE, WSU, SignatureRefused, Verifier
from soap.messages import SOAP_HEADERS, relay_request
from soap.signing import BODY, HEADER, WSU_ID, penal, refused, serialise, timestamped

# The time of judgement: now, inside the validity of the certificates the tests make today.
AT = dt.datetime.now(dt.UTC).replace(microsecond=0)
SKEW = 300
TIMESTAMP = f"{{{WSU}}}Timestamp"
ATTACKER = "urn:example:attacker"


def verifier() -> Verifier:
    return Verifier("penal", [penal().pinned()], required=True, max_clock_skew_seconds=SKEW)


def fresh(**changes) -> etree._Element:
    window = {"created": AT - dt.timedelta(seconds=30), "expires": AT + dt.timedelta(minutes=5)} | changes
    return timestamped(relay_request(text="timestamped"), penal(), **window)


def refusal(document: etree._Element) -> SignatureRefused:
    with pytest.raises(SignatureRefused) as caught:
        verifier().verified_body(etree.fromstring(serialise(document)), at=AT)
    return caught.value


def test_a_signature_over_the_body_and_a_fresh_timestamp_is_accepted():
    body = verifier().verified_body(fresh(), at=AT)
    assert body.findtext(".//{urn:example:ping}ping") == "timestamped"


def test_a_timestamp_created_within_the_skew_ahead_of_the_clock_is_accepted():
    assert verifier().verified_body(fresh(created=AT + dt.timedelta(seconds=SKEW - 10)), at=AT) is not None


def test_an_expired_timestamp_is_refused():
    found = refusal(fresh(created=AT - dt.timedelta(minutes=30), expires=AT - dt.timedelta(minutes=20)))
    assert found.slug == "timestamp-expired" and "Expires" in found.detail


def test_a_timestamp_expired_within_the_skew_is_accepted():
    document = fresh(created=AT - dt.timedelta(minutes=10), expires=AT - dt.timedelta(seconds=SKEW - 10))
    assert verifier().verified_body(document, at=AT) is not None


def test_a_timestamp_created_beyond_the_skew_ahead_of_the_clock_is_refused():
    found = refusal(fresh(created=AT + dt.timedelta(minutes=10), expires=AT + dt.timedelta(minutes=15)))
    assert found.slug == "timestamp-in-future" and "ahead of the gateway's clock" in found.detail


def test_a_timestamp_without_expires_counts_from_its_created():
    assert refusal(fresh(created=AT - dt.timedelta(minutes=10), expires=None)).slug == "timestamp-expired"
    assert verifier().verified_body(fresh(created=AT - dt.timedelta(minutes=1), expires=None), at=AT) is not None


def test_a_timestamp_changed_after_signing_is_refused():
    document = fresh(created=AT - dt.timedelta(minutes=30), expires=AT - dt.timedelta(minutes=20))
    document.find(f".//{TIMESTAMP}/{{{WSU}}}Expires").text = (AT + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = refusal(document)
    assert found.slug == "signature-invalid" and "wsu:Timestamp was changed" in found.detail


def test_inclusive_namespace_prefix_lists_as_wss4j_writes_them_are_honoured():
    document = fresh(inclusive_prefixes=("soap", "wsse"))
    assert document.find(".//{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces") is not None
    assert verifier().verified_body(document, at=AT) is not None


def test_an_unsigned_timestamp_does_not_count():
    # Signed over the Body alone: an old Timestamp beside it is not read.
    document = fresh(created=AT - dt.timedelta(days=1), expires=AT - dt.timedelta(hours=23), references=("#id-body",))
    assert verifier().verified_body(document, at=AT) is not None


# ----------------------------------------------------------------- wrapping the Timestamp


def test_a_signed_timestamp_moved_to_another_header_block_with_a_fresh_one_in_its_place_is_refused():
    document = fresh(created=AT - dt.timedelta(hours=2), expires=AT - dt.timedelta(hours=1))
    signed_timestamp = document.find(f".//{TIMESTAMP}")
    wrapper = etree.SubElement(document.find(HEADER), f"{{{ATTACKER}}}Wrapper")
    forged = copy.deepcopy(signed_timestamp)
    forged.attrib.pop(WSU_ID)
    signed_timestamp.addprevious(forged)
    wrapper.append(signed_timestamp)
    found = refusal(document)
    assert found.slug == "timestamp-wrapped" and "outside the wsse:Security header" in found.detail


def test_a_second_timestamp_in_the_security_header_is_refused():
    document = fresh()
    extra = copy.deepcopy(document.find(f".//{TIMESTAMP}"))
    extra.attrib.pop(WSU_ID)
    document.find(f".//{{{WSSE}}}Security").insert(0, extra)
    found = refusal(document)
    assert found.slug == "timestamp-wrapped" and "at most one wsu:Timestamp" in found.detail


def test_a_duplicated_timestamp_with_the_same_id_is_refused():
    document = fresh()
    document.find(HEADER).append(copy.deepcopy(document.find(f".//{TIMESTAMP}")))
    assert refusal(document).slug == "duplicate-id"


def test_a_timestamp_inside_the_body_is_refused():
    document = fresh()
    timestamp = copy.deepcopy(document.find(f".//{TIMESTAMP}"))
    timestamp.attrib.pop(WSU_ID)
    document.find(BODY)[0].append(timestamp)
    assert refusal(document).slug == "timestamp-wrapped"


def test_a_reference_to_another_header_element_beside_the_body_is_refused():
    request = etree.fromstring(relay_request())
    header = etree.SubElement(request, HEADER)
    request.insert(0, header)
    note = etree.SubElement(header, f"{{{ATTACKER}}}Note")
    note.set(WSU_ID, "note-1")
    note.text = "signed, but neither the Body nor the Timestamp"
    document = timestamped(serialise(request), penal(), created=AT, expires=AT + dt.timedelta(minutes=5),
                           references=("#id-body", "#note-1"))
    found = refusal(document)
    assert found.slug == "signature-reference" and "'#note-1'" in found.detail


def test_two_references_to_the_body_are_refused():
    found = refusal(fresh(references=("#id-body", "#id-body")))
    assert found.slug == "signature-reference" and "two ds:References" in found.detail


def test_a_signature_over_the_timestamp_alone_is_refused():
    found = refusal(fresh(references=("#TS-1",)))
    assert found.slug == "signature-reference" and "must cover the soap:Body" in found.detail


# ----------------------------------------------------------------- over HTTP


@pytest.fixture
async def gateway(start_signed_gateway):
    return await start_signed_gateway([penal()])


def now_signed(*, created: dt.timedelta, expires: dt.timedelta, message_id: str = "penal-ts-1") -> bytes:
    now = dt.datetime.now(dt.UTC)
    return serialise(timestamped(relay_request(message_id=message_id), penal(), created=now + created, expires=now + expires))


async def test_the_endpoint_accepts_a_request_signed_over_the_body_and_the_timestamp(gateway, http):
    request = now_signed(created=dt.timedelta(seconds=-5), expires=dt.timedelta(minutes=5))
    async with http.post(f"{gateway.url}/soap/relay", data=request, headers=SOAP_HEADERS) as response:
        assert response.status == 200, await response.read()
    assert len(await gateway.store.list_messages(limit=10)) == 1


async def test_the_endpoint_refuses_an_expired_timestamp(gateway, http):
    request = now_signed(created=dt.timedelta(hours=-2), expires=dt.timedelta(hours=-1))
    fault = await refused(gateway, http, request, SOAP_HEADERS)
    assert fault.error_code == "timestamp-expired"


async def test_the_endpoint_refuses_a_moved_timestamp(gateway, http):
    document = etree.fromstring(now_signed(created=dt.timedelta(hours=-2), expires=dt.timedelta(hours=-1)))
    signed_timestamp = document.find(f".//{TIMESTAMP}")
    forged = copy.deepcopy(signed_timestamp)
    forged.attrib.pop(WSU_ID)
    signed_timestamp.addprevious(forged)
    etree.SubElement(document.find(HEADER), f"{{{ATTACKER}}}Wrapper").append(signed_timestamp)
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "timestamp-wrapped"
