"""The gateway's SOAP endpoint verifying what members send: certificates, algorithms, rotation.

Over HTTP with the real store. Every refusal is a Client fault with a 4xx, stores nothing, and
leaves the gateway accepting a genuine request (``soap.signing.refused``).
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from gateway.soap.envelope import SOAP11
from soap.messages import SOAP_HEADERS, relay_request
from soap.signing import (
    XSLT,
    HEADER,
    expired,
    not_yet_valid,
    penal,
    penal_next,
    refused,
    resign,
    serialise,
    signed,
    stranger,
)

SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"


async def post(gateway, http, request: bytes) -> int:
    async with http.post(f"{gateway.url}/soap/relay", data=request, headers=SOAP_HEADERS) as response:
        return response.status


async def test_unsigned_request_from_a_member_that_must_sign(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal()])
    fault = await refused(gateway, http, relay_request(), SOAP_HEADERS)
    assert fault.error_code == "signature-required"
    assert "member penal must sign" in fault.message


async def test_unsigned_request_from_a_member_allowed_to_send_unsigned_is_accepted(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal()], required=False)
    assert await post(gateway, http, relay_request()) == 200


async def test_signed_request_from_a_member_allowed_unsigned_is_still_verified(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal()], required=False)
    fault = await refused(gateway, http, signed(relay_request(), stranger()), SOAP_HEADERS)
    assert fault.error_code == "certificate-unknown"


async def test_signature_by_an_unknown_certificate(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal()])
    fault = await refused(gateway, http, signed(relay_request(), stranger()), SOAP_HEADERS)
    assert fault.error_code == "certificate-unknown"


async def test_signature_by_an_expired_certificate(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([expired(), penal()], entries=['"{0}"', '"{1}"'])
    fault = await refused(gateway, http, signed(relay_request(), expired()), SOAP_HEADERS)
    assert fault.error_code == "certificate-expired"


async def test_signature_by_a_certificate_not_yet_valid(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([not_yet_valid(), penal()], entries=['"{0}"', '"{1}"'])
    fault = await refused(gateway, http, signed(relay_request(), not_yet_valid()), SOAP_HEADERS)
    assert fault.error_code == "certificate-not-yet-valid"


async def test_body_changed_after_signing(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal()])
    request = signed(relay_request(text="to health"), penal()).replace(b"to health", b"to anyone")
    fault = await refused(gateway, http, request, SOAP_HEADERS)
    assert fault.error_code == "signature-invalid"


async def test_sha1_signature(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal()])
    document = etree.fromstring(signed(relay_request(), penal()))
    resign(document, penal(), signature_method=RSA_SHA1)
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "signature-algorithm" and "rsa-sha1" in fault.message


async def test_sha1_digest(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal()])
    document = etree.fromstring(signed(relay_request(), penal()))
    resign(document, penal(), signature_method=RSA_SHA256, digest_method=SHA1_DIGEST)
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "signature-algorithm" and "DigestMethod" in fault.message


async def test_hmac_keyed_with_the_public_certificate(start_signed_gateway, http):  # noqa: F811
    # Key confusion: the certificate is public, so anyone can compute this "signature".
    gateway = await start_signed_gateway([penal()])
    document = etree.fromstring(signed(relay_request(), penal()))
    resign(document, penal(), signature_method=HMAC_SHA256, hmac_secret=penal().pem())
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "signature-algorithm" and "hmac-sha256" in fault.message


async def test_xslt_transform(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal()])
    document = etree.fromstring(signed(relay_request(), penal()))
    resign(document, penal(), signature_method=RSA_SHA256, transforms=[XSLT])
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "signature-algorithm" and "Transform" in fault.message


async def test_enveloped_signature_then_exclusive_c14n_on_a_body_reference_is_accepted(start_signed_gateway, http):  # noqa: F811
    # What WSS4J and node soap write by default: the signature sits in the Security header, so
    # enveloped-signature removes nothing from the Body; exclusive C14N then makes the octets.
    gateway = await start_signed_gateway([penal()])
    document = etree.fromstring(signed(relay_request(), penal()))
    resign(document, penal(), signature_method=RSA_SHA256, transforms=[ENVELOPED, "http://www.w3.org/2001/10/xml-exc-c14n#"])
    assert await post(gateway, http, serialise(document)) == 200


async def test_enveloped_signature_as_the_last_transform_is_refused(start_signed_gateway, http):  # noqa: F811
    # Last, it would leave a node-set for inclusive C14N 1.0: not what the gateway checks.
    gateway = await start_signed_gateway([penal()])
    document = etree.fromstring(signed(relay_request(), penal()))
    resign(document, penal(), signature_method=RSA_SHA256, transforms=[ENVELOPED])
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS)
    assert fault.error_code == "signature-algorithm" and "enveloped-signature" in fault.message


async def test_rotation_accepts_both_certificates_while_both_are_pinned(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal(), penal_next()], entries=['"{0}"', '"{1}"'])
    assert await post(gateway, http, signed(relay_request(message_id="old-key"), penal())) == 200
    assert await post(gateway, http, signed(relay_request(message_id="new-key"), penal_next())) == 200
    assert len(await gateway.store.list_messages(limit=10)) == 2


async def test_rotation_refuses_the_old_certificate_after_its_configured_not_after(start_signed_gateway, http):  # noqa: F811
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    gateway = await start_signed_gateway(
        [penal(), penal_next()], entries=[f'{{{{ path = "{{0}}", not_after = {yesterday} }}}}', '"{1}"']
    )
    fault = await refused(gateway, http, signed(relay_request(), penal()), SOAP_HEADERS, signer=penal_next())
    assert fault.error_code == "certificate-expired"


async def test_security_header_marked_must_understand_is_understood(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal()])
    document = etree.fromstring(signed(relay_request(), penal()))
    document.find(HEADER)[0].set(f"{{{SOAP11}}}mustUnderstand", "1")
    assert await post(gateway, http, serialise(document)) == 200


async def test_sender_that_the_transport_does_not_name_is_refused_as_before(start_signed_gateway, http):  # noqa: F811
    gateway = await start_signed_gateway([penal()])
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    async with http.post(f"{gateway.url}/soap/relay", data=signed(relay_request(), penal()), headers=headers) as response:
        assert response.status == 500 and b"soap:Client" in await response.read()
    assert await gateway.store.list_messages(limit=10) == []
