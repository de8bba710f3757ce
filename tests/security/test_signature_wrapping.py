"""XML Signature Wrapping against the gateway's SOAP endpoint, over HTTP with the real store.

The eight variants of McIntosh & Austel ("XML signature element wrapping attacks and
countermeasures", 2005) and Somorovsky et al. ("On breaking SAML", 2012; "All your clouds are
belong to us", 2011), ported to a SOAP envelope whose Body the penal system signed. Each keeps
the genuine signature valid and moves the signed Body where the application does not look;
each must be refused with a Client fault, store nothing, and leave the gateway answering. The
comment variant must be accepted only with the text that was signed.
"""

from __future__ import annotations

import copy

import pytest
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import SignatureConstructionMethod
from signxml.signer import SignatureReference

from gateway.security.xmldsig import DS, SOAP12, WSSE, WSU
from gateway.soap.envelope import SOAP11, parse_envelope, read_request
from soap.messages import SOAP_HEADERS, relay_request
from soap.signing import (
    BODY,
    EXC_C14N,
    HEADER,
    NS,
    WSU_ID,
    genuine,
    penal,
    refused,
    serialise,
    signed,
)

ATTACKER = "urn:example:attacker"
GREETING = "Сәлем, әғқңөұүһі"


def signed_request() -> etree._Element:
    return etree.fromstring(signed(relay_request(text=GREETING), penal()))


def forged_body(*, body_id: str | None = None) -> etree._Element:
    """A Body whose request relays something else, in the penal system's name."""
    forged = etree.fromstring(relay_request(message_id="forged-1", service_id="health/notices", text="forged")).find(BODY)
    if body_id is not None:
        forged.set(WSU_ID, body_id)
    return forged


@pytest.fixture
async def gateway(start_signed_gateway):
    return await start_signed_gateway([penal()])


async def test_signed_body_moved_into_the_header_with_a_forged_body_in_its_place(gateway, http):
    document = signed_request()
    original = document.find(BODY)
    document.find(HEADER).append(original)
    document.append(forged_body(body_id=original.get(WSU_ID)))
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "body-wrapped" and "in the Header" in fault.message


async def test_signed_body_moved_into_ds_object_with_a_forged_body_in_its_place(gateway, http):
    document = signed_request()
    original = document.find(BODY)
    etree.SubElement(document.find(".//ds:Signature", NS), f"{{{DS}}}Object").append(original)
    document.append(forged_body(body_id=original.get(WSU_ID)))
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "body-wrapped"


async def test_forged_body_with_a_new_id_and_the_signed_body_kept_inside_it(gateway, http):
    # The relay's data is a lax wildcard: the signed Body rides along as the "document".
    document = signed_request()
    original = document.find(BODY)
    forged = forged_body(body_id="id-forged")
    data = forged.find(".//requestData/data")
    data.remove(data[0])
    data.append(original)
    document.append(forged)
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "body-wrapped" and "inside another element" in fault.message


async def test_two_elements_with_the_same_wsu_id(gateway, http):
    document = signed_request()
    decoy = etree.SubElement(document.find(HEADER), f"{{{ATTACKER}}}Note")
    decoy.set(WSU_ID, document.find(BODY).get(WSU_ID))
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "duplicate-id"


async def test_an_id_attribute_in_another_namespace_repeating_the_body_id(gateway, http):
    # Resolvers match any attribute named Id, whatever its namespace.
    document = signed_request()
    decoy = etree.SubElement(document.find(HEADER), f"{{{ATTACKER}}}Note")
    decoy.set(f"{{{ATTACKER}}}Id", document.find(BODY).get(WSU_ID))
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "duplicate-id"


async def test_signature_referencing_a_header_element_instead_of_the_body(gateway, http):
    # The penal system's key honestly signs a header block; the Body is then anyone's.
    document = etree.fromstring(relay_request())
    header = etree.SubElement(document, HEADER)
    document.insert(0, header)
    security = etree.SubElement(header, f"{{{WSSE}}}Security", nsmap={"wsse": WSSE})
    timestamp = etree.SubElement(security, f"{{{WSU}}}Timestamp", nsmap={"wsu": WSU})
    timestamp.set(WSU_ID, "ts-1")
    etree.SubElement(timestamp, f"{{{WSU}}}Created").text = "2026-11-26T09:30:00Z"
    document.find(BODY).set(WSU_ID, "id-body")
    signature = XMLSigner(method=SignatureConstructionMethod.detached, c14n_algorithm=EXC_C14N).sign(
        document, key=penal().key, reference_uri=[SignatureReference(URI="#ts-1")], id_attribute="Id"
    )
    security.append(signature)
    document.replace(document.find(BODY), forged_body(body_id="id-body"))
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "signature-reference" and "'#ts-1'" in fault.message


async def test_signed_body_wrapped_in_an_unknown_header_block_with_must_understand_0(gateway, http):
    document = signed_request()
    original = document.find(BODY)
    wrapper = etree.SubElement(document.find(HEADER), f"{{{ATTACKER}}}Wrapper")
    wrapper.set(f"{{{SOAP11}}}mustUnderstand", "0")
    wrapper.append(original)
    document.append(forged_body(body_id=original.get(WSU_ID)))
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "body-wrapped"


async def test_forged_body_in_the_soap_1_2_namespace_after_the_signed_one(gateway, http):
    document = signed_request()
    forged = forged_body()
    forged.tag = f"{{{SOAP12}}}Body"
    document.append(forged)
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "not-soap"


async def test_signed_body_moved_into_the_header_as_a_soap_1_2_body_under_the_same_prefix(gateway, http):
    # Both Bodies read "soap:Body" in the text; the one in the Header has its prefix rebound
    # to SOAP 1.2 and carries the signed content and id.
    document = signed_request()
    original = document.find(BODY)
    relabelled = etree.SubElement(document.find(HEADER), f"{{{SOAP12}}}Body", nsmap={document.prefix: SOAP12})
    relabelled.attrib.update(original.attrib)
    relabelled.extend(list(original))
    document.replace(original, forged_body())
    assert serialise(document).count(f"<{document.prefix}:Body".encode()) == 2
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "body-wrapped" and SOAP12 in fault.message


async def test_comment_in_signed_text_verifies_and_the_signed_text_is_what_is_read(gateway, http):
    # Exclusive C14N without comments does not sign comments. A reader of the received tree
    # would see "pen" and "Сәлем"; the gateway reads only the verified Body.
    document = signed_request()
    message_id = document.find(".//requestInfo/messageId")
    assert message_id.text == "penal-0001"
    message_id.text = "pen"
    comment = etree.Comment(" a comment ")
    comment.tail = "al-0001"
    message_id.append(comment)
    ping = document.find(".//{urn:example:ping}raw")
    head, _, tail = ping.text.partition(",")
    ping.text = head
    comment = etree.Comment("")
    comment.tail = "," + tail
    ping.append(comment)
    async with http.post(f"{gateway.url}/soap/relay", data=serialise(document), headers=SOAP_HEADERS) as response:
        assert response.status == 200, await response.read()
    (stored,) = await gateway.store.list_messages(limit=10)
    assert stored.client_message_id == "penal-0001"
    forwarded = read_request(parse_envelope(stored.body).body)
    assert forwarded.message_id == "penal-0001" and forwarded.data.findtext(".//{urn:example:ping}raw") == GREETING


async def test_signature_outside_the_security_header_is_refused(gateway, http):
    document = signed_request()
    signature = document.find(".//ds:Signature", NS)
    document.find(".//{urn:example:ping}raw").addnext(signature)
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "signature-placement"


async def test_a_second_signature_is_refused(gateway, http):
    document = signed_request()
    security = document.find(f".//{{{WSSE}}}Security")
    security.append(copy.deepcopy(security[0]))
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "signature-placement" and "exactly one ds:Signature" in fault.message


async def test_genuine_request_is_accepted(gateway, http):
    async with http.post(f"{gateway.url}/soap/relay", data=genuine(penal()), headers=SOAP_HEADERS) as response:
        assert response.status == 200
    assert len(await gateway.store.list_messages(limit=10)) == 1
