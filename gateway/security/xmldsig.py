"""XML signatures in the WS-Security header of a SOAP envelope: signing the Body, and verifying it.

What is signed is the SOAP Body and nothing else: ``ds:Signature`` lives in
``soap:Header/wsse:Security`` and holds one ``ds:Reference`` to the Body's ``wsu:Id``, with
exclusive C14N (``http://www.w3.org/2001/10/xml-exc-c14n#``) and RSA-SHA256 unless configured
otherwise (OASIS WS-Security 1.1, X.509 Token Profile 1.1).

``Signer`` is the seam for another cryptography provider (a national GOST one): anything that
turns an unsigned envelope into a signed one. ``WsSecuritySigner`` is the one built on signxml.

``Verifier`` checks an envelope against the sender's pinned certificates and returns only the
Body the signature covers, parsed anew from the bytes that were signed: the application reads
that element and never the tree it came in. Before any cryptography runs, the envelope's shape
is held to the one the gateway signs, because the classic attacks on XML signatures (McIntosh
& Austel 2005; Somorovsky et al. 2011, 2012) keep a valid signature and move the signed element
somewhere the application does not look. docs/security.md ("Signatures") gives each check and
its reason. Every refusal says what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLSigner, XMLVerifier
from signxml.algorithms import SignatureConstructionMethod
from signxml.exceptions import InvalidDigest, InvalidSignature
from signxml.signer import SignatureReference

from gateway.errors import GatewayError
from gateway.security.xmlparse import MalformedXMLError, UnsafeXMLError, parse_untrusted

__all__ = [
    "ALGORITHMS",
    "SECURITY",
    "PinnedCertificate",
    "PrivateKey",
    "SignatureRefused",
    "Signer",
    "Verifier",
    "WsSecuritySigner",
]

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
_XML = "http://www.w3.org/XML/1998/namespace"

SECURITY = f"{{{WSSE}}}Security"
"""The WS-Security header block, which a verifying endpoint understands (SOAP 1.1 §4.2.3)."""

_ENVELOPE = f"{{{SOAP11}}}Envelope"
_HEADER = f"{{{SOAP11}}}Header"
_BODY = f"{{{SOAP11}}}Body"
_WSU_ID = f"{{{WSU}}}Id"
_EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0

ALGORITHMS: dict[str, tuple[SignatureMethod, DigestAlgorithm]] = {
    "rsa-sha256": (SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA256),
    "rsa-sha384": (SignatureMethod.RSA_SHA384, DigestAlgorithm.SHA384),
    "rsa-sha512": (SignatureMethod.RSA_SHA512, DigestAlgorithm.SHA512),
    "ecdsa-sha256": (SignatureMethod.ECDSA_SHA256, DigestAlgorithm.SHA256),
    "ecdsa-sha384": (SignatureMethod.ECDSA_SHA384, DigestAlgorithm.SHA384),
}
"""The signature algorithms the gateway signs and accepts, by configuration name, with the
digest each signs with. No SHA-1 or MD5 (collisions are practical), no HMAC (a shared secret
proves nothing about which member signed), no DSA."""

# signxml logs every document it canonicalises at DEBUG, and a Body carries IINs and names.
logging.getLogger("signxml").setLevel(logging.INFO)

_SIGNATURE_METHODS = frozenset(method for method, _ in ALGORITHMS.values())
_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class SignatureRefused(GatewayError):
    """An envelope whose signature the gateway does not accept; ``slug`` says which check failed.

    A message that is unsigned, or signed with a key the gateway cannot tie to the sender, is
    not authenticated (401); one whose signature is malformed, misplaced or wrapped is a bad
    request (400).
    """

    title = "The message's XML signature is not accepted"
    _UNAUTHENTICATED: ClassVar[frozenset[str]] = frozenset({
        "signature-required", "certificate-unknown", "certificate-expired", "certificate-not-yet-valid",
        "signature-invalid",
    })

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.slug = code
        self.status = 401 if code in self._UNAUTHENTICATED else 400


# ------------------------------------------------------------------------------ signing


class Signer(Protocol):
    """Puts a signature over the Body into the envelope's WS-Security header.

    A provider for other algorithms (GOST 34.310 keys of the National Certification Centre, in
    a token or an HSM) implements this; the envelope it returns must have the shape
    ``Verifier`` checks: one ``ds:Signature`` in ``soap:Header/wsse:Security`` referencing the
    Body's ``wsu:Id``, exclusive C14N.
    """

    def sign(self, envelope: etree._Element) -> etree._Element:
        """The signed envelope: ``envelope`` itself, changed, or a new element."""
        ...


class WsSecuritySigner:
    """Signs with one private key and names its certificate (issuer and serial) in KeyInfo."""

    def __init__(self, key: PrivateKey, certificate: x509.Certificate, *, algorithm: str = "rsa-sha256") -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown signature algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
        wanted = rsa.RSAPrivateKey if algorithm.startswith("rsa") else ec.EllipticCurvePrivateKey
        if not isinstance(key, wanted):
            raise ValueError(f"{algorithm} needs an {algorithm.partition('-')[0].upper()} key, not {type(key).__name__}")
        if certificate.public_key() != key.public_key():
            raise ValueError("the certificate is not the private key's: it certifies another public key")
        self.certificate = certificate
        self.algorithm = algorithm
        self._key = key
        self._method, self._digest = ALGORITHMS[algorithm]

    def sign(self, envelope: etree._Element) -> etree._Element:
        if envelope.tag != _ENVELOPE:
            raise ValueError(f"only a SOAP 1.1 Envelope is signed here, not {envelope.tag}")
        header = envelope.find(_HEADER)
        if header is None:
            header = etree.SubElement(envelope, _HEADER)
            envelope.insert(0, header)
        elif header.find(SECURITY) is not None:
            raise ValueError("the envelope already carries a wsse:Security header")
        body_id = _identify_body(envelope)
        signer = XMLSigner(
            method=SignatureConstructionMethod.detached,
            signature_algorithm=self._method,
            digest_algorithm=self._digest,
            c14n_algorithm=_EXC_C14N,
        )
        signature = signer.sign(
            envelope,
            key=self._key,
            reference_uri=[SignatureReference(URI=f"#{body_id}")],
            key_info=self._key_info(),
            id_attribute="Id",
        )
        etree.SubElement(header, SECURITY, nsmap={"wsse": WSSE}).append(signature)
        return envelope

    def _key_info(self) -> etree._Element:
        # X.509 Token Profile 1.1 §3.2: issuer and serial let a verifier pick among the
        # sender's pinned certificates without sending the certificate along.
        key_info = etree.Element(f"{{{DS}}}KeyInfo", nsmap={"ds": DS})
        reference = etree.SubElement(key_info, f"{{{WSSE}}}SecurityTokenReference", nsmap={"wsse": WSSE})
        issuer_serial = etree.SubElement(etree.SubElement(reference, f"{{{DS}}}X509Data"), f"{{{DS}}}X509IssuerSerial")
        etree.SubElement(issuer_serial, f"{{{DS}}}X509IssuerName").text = self.certificate.issuer.rfc4514_string()
        etree.SubElement(issuer_serial, f"{{{DS}}}X509SerialNumber").text = str(self.certificate.serial_number)
        return key_info


def _identify_body(envelope: etree._Element) -> str:
    """Give the Body a ``wsu:Id`` (declared on the Body, as ``wsu``) and return it.

    The id is derived from the Body's content, so the same envelope signs to the same bytes
    with a deterministic algorithm (RSA PKCS#1 v1.5): a resent answer stays byte-identical.
    """
    bodies = envelope.findall(_BODY)
    if len(bodies) != 1:
        raise ValueError(f"the envelope must have one soap:Body, not {len(bodies)}")
    (body,) = bodies
    content = hashlib.sha256(b"".join(etree.tostring(child, method="c14n", exclusive=True) for child in body))
    body_id = "id-" + content.hexdigest()[:32]
    # A new Body element declares wsu itself; setting the attribute on the old one would make
    # lxml invent a prefix (ns0) for it.
    signed = etree.SubElement(envelope, _BODY, nsmap={"wsu": WSU})
    signed.attrib.update(body.attrib)
    signed.set(_WSU_ID, body_id)
    signed.text = body.text
    signed.extend(list(body))
    envelope.remove(body)
    return body_id


# ------------------------------------------------------------------------------ verifying


@dataclass(frozen=True, slots=True)
class PinnedCertificate:
    """A sender's certificate as configured, and the window in which it is accepted.

    The window is the certificate's own validity, narrowed by the configured ``not_before`` and
    ``not_after`` (to retire a certificate before it expires, when its key is rotated).
    """

    certificate: x509.Certificate
    name: str
    """Where it came from (the file), for messages."""
    not_before: dt.datetime
    not_after: dt.datetime

    @classmethod
    def of(
        cls,
        certificate: x509.Certificate,
        name: str,
        *,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> PinnedCertificate:
        start = max(filter(None, (certificate.not_valid_before_utc, _utc(not_before))))
        end = min(filter(None, (certificate.not_valid_after_utc, _utc(not_after))))
        return cls(certificate, name, start, end)

    def window_problem(self, at: dt.datetime) -> tuple[str, str] | None:
        """(code, message) when ``at`` is outside the window, else None."""
        if at < self.not_before:
            return "certificate-not-yet-valid", f"certificate {self.name} is not valid before {self.not_before.isoformat()}"
        if at > self.not_after:
            return "certificate-expired", f"certificate {self.name} expired on {self.not_after.isoformat()}"
        return None


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class Verifier:
    """Verifies envelopes from one sender against the certificates pinned for it.

    ``required``: an unsigned envelope is refused; otherwise it is let through as it is (for a
    member that cannot sign yet). A signed envelope is always verified, and refused if it does
    not verify: a signature nobody checks would only look like protection.
    """

    def __init__(self, sender: str, pinned: Sequence[PinnedCertificate], *, required: bool) -> None:
        if required and not pinned:
            raise ValueError(f"{sender}: signatures are required but no certificate is pinned")
        self.sender = sender
        self.pinned = tuple(pinned)
        self.required = required
        self._expect = SignatureConfiguration(
            location=f"./{{{SOAP11}}}Header/{{{WSSE}}}Security/",
            expect_references=1,
            signature_methods=_SIGNATURE_METHODS,
            digest_algorithms=_DIGESTS,
            default_reference_c14n_method=_EXC_C14N,
        )

    def verified_body(self, envelope: etree._Element, *, at: dt.datetime) -> etree._Element | None:
        """The soap:Body that the signature covers, parsed from the signed bytes alone.

        None when ``envelope`` is unsigned and this sender may send unsigned messages.
        ``at`` is when the message was received: every certificate is judged at that moment,
        not at a date the sender wrote, which whoever holds a retired key could backdate.
        Raises ``SignatureRefused`` naming the first check that failed.
        """
        body = _envelope_body(envelope)
        signatures = list(envelope.iter(f"{{{DS}}}Signature"))
        header = envelope.find(_HEADER)
        blocks = [] if header is None else header.findall(SECURITY)
        if not signatures and not blocks:
            if self.required:
                raise SignatureRefused(
                    "signature-required",
                    f"member {self.sender} must sign its messages: put a ds:Signature over the soap:Body "
                    "in a wsse:Security header (docs/integration-soap.md, Signatures)",
                )
            return None
        signature = _placed_signature(signatures, blocks)
        _refuse_wrapping(envelope, body)
        body_id = body.get(_WSU_ID)
        if not body_id:
            raise SignatureRefused("signature-reference", "the soap:Body carries no wsu:Id for the signature to reference")
        _check_signed_info(signature, body_id)
        verified = self._verify(envelope, signature, at)
        # The signed bytes are what the application reads; the Body in the received tree must
        # canonicalise to the same bytes, or something other than the Body was signed.
        if verified != etree.tostring(body, method="c14n", exclusive=True, with_comments=False):
            raise SignatureRefused("signature-reference", "the signature covers an element other than the soap:Body")
        try:
            return parse_untrusted(verified)
        except (UnsafeXMLError, MalformedXMLError):
            raise SignatureRefused("signature-malformed", "the signed Body cannot be read back as safe, "
                                   "well-formed XML") from None

    def _verify(self, envelope: etree._Element, signature: etree._Element, at: dt.datetime) -> bytes:
        """The canonical bytes of the signed Body, once a pinned certificate verifies the signature."""
        hinted = _named_certificates(signature, self.pinned)
        candidates = sorted(self.pinned, key=lambda pinned: pinned not in hinted)
        for pinned in candidates:
            if pinned.window_problem(at) is not None:
                continue
            try:
                result = XMLVerifier().verify(
                    envelope,
                    x509_cert=pinned.certificate,
                    id_attribute="Id",
                    expect_config=replace(self._expect, verification_time=at),
                )
            except InvalidDigest:
                raise SignatureRefused(
                    "signature-invalid", "the soap:Body was changed after it was signed (its digest does not match)"
                ) from None
            except InvalidSignature:
                continue  # another pinned certificate may be the one (rotation)
            # Schema-invalid, undecodable or empty values (signxml reads an empty SignatureValue as None).
            # The library's text quotes the values sent and names its internals: say what, not that.
            except etree.DocumentInvalid:
                raise SignatureRefused(
                    "signature-malformed", "the ds:Signature does not follow the XML Signature schema "
                    "(xmldsig-core-schema.xsd): check its elements and that every value has its type"
                ) from None
            except (ValueError, TypeError):
                raise SignatureRefused(
                    "signature-malformed", "the ds:Signature holds a value that cannot be decoded "
                    "(an empty or non-base64 SignatureValue, DigestValue or certificate)"
                ) from None
            return result.signed_data
        for pinned in hinted:
            problem = pinned.window_problem(at)
            if problem is not None:
                raise SignatureRefused(problem[0], f"member {self.sender}: {problem[1]}; it was judged at {at.isoformat()}")
        if not self.pinned:
            raise SignatureRefused(
                "certificate-unknown",
                f"the message is signed, but no certificate of member {self.sender} is pinned: "
                f"add it to members.{self.sender}.certificates",
            )
        if not hinted and _names_a_certificate(signature):
            raise SignatureRefused(
                "certificate-unknown",
                f"the message is signed with a certificate not pinned for member {self.sender}",
            )
        raise SignatureRefused(
            "signature-invalid", f"the signature does not verify with any certificate pinned for member {self.sender}"
        )


def _envelope_body(envelope: etree._Element) -> etree._Element:
    """The soap:Body that is a child of the Envelope: the only one the application reads."""
    if envelope.tag != _ENVELOPE:
        raise SignatureRefused("signature-placement", f"the document element is {envelope.tag}, not a SOAP 1.1 Envelope")
    bodies = envelope.findall(_BODY)
    if len(bodies) != 1:
        raise SignatureRefused("body-wrapped", f"the Envelope must have exactly one soap:Body child, not {len(bodies)}")
    return bodies[0]


def _placed_signature(signatures: list[etree._Element], blocks: list[etree._Element]) -> etree._Element:
    """The one ds:Signature, which must sit in the one wsse:Security block of the Header."""
    if len(blocks) != 1:
        raise SignatureRefused(
            "signature-placement", f"the soap:Header must hold exactly one wsse:Security block, not {len(blocks)}"
        )
    if len(signatures) != 1:
        # A second signature is where wrapped content hides; the gateway signs once.
        raise SignatureRefused(
            "signature-placement", f"the message must carry exactly one ds:Signature, not {len(signatures)}"
        )
    (signature,) = signatures
    if signature.getparent() is not blocks[0]:
        raise SignatureRefused(
            "signature-placement", "the ds:Signature must be a child of soap:Header/wsse:Security, not anywhere else"
        )
    return signature


# Attributes an XML Signature reference can resolve against: signxml and most verifiers match
# any attribute named Id whatever its namespace (wsu:Id among them); ID and xml:id by habit.
_ID_ATTRIBUTES = (
    "//@*[local-name()='Id' or local-name()='ID' or (local-name()='id' and namespace-uri()='" + _XML + "')]"
)


def _refuse_wrapping(envelope: etree._Element, body: etree._Element) -> None:
    """Refuse the shapes signature wrapping needs: a second Body, or ids that point twice."""
    for other in envelope.iter(_BODY, f"{{{SOAP12}}}Body"):
        if other is not body:
            where = "in the Header" if any(a.tag == _HEADER for a in other.iterancestors()) else "inside another element"
            raise SignatureRefused(
                "body-wrapped",
                f"a second SOAP Body ({other.tag}) sits {where}: only the Envelope's own soap:Body is signed and read",
            )
    seen: set[str] = set()
    for value in envelope.xpath(_ID_ATTRIBUTES):
        if value in seen:
            raise SignatureRefused(
                "duplicate-id", "two elements carry the same id: every Id/wsu:Id/xml:id in the message must be unique"
            )
        seen.add(value)


def _check_signed_info(signature: etree._Element, body_id: str) -> None:
    """One reference, to the Body, and only the algorithms and transforms the gateway accepts."""
    unexpected = [child.tag for child in signature if child.tag not in _SIGNATURE_CHILDREN]
    if unexpected:
        # ds:Object and ds:Manifest are where XSW variants park the signed content.
        raise SignatureRefused(
            "signature-placement",
            f"the ds:Signature holds {unexpected[0]}; only SignedInfo, SignatureValue and KeyInfo belong there",
        )
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    if signed_info is None:
        raise SignatureRefused("signature-malformed", "the ds:Signature has no ds:SignedInfo")
    _expect_algorithm(signed_info.find(f"{{{DS}}}CanonicalizationMethod"), "CanonicalizationMethod", {_EXC_C14N.value})
    _expect_algorithm(
        signed_info.find(f"{{{DS}}}SignatureMethod"), "SignatureMethod", {method.value for method in _SIGNATURE_METHODS}
    )
    references = signed_info.findall(f"{{{DS}}}Reference")
    if len(references) != 1:
        raise SignatureRefused(
            "signature-reference",
            f"the signature must have exactly one ds:Reference, to the soap:Body, not {len(references)}",
        )
    (reference,) = references
    uri = reference.get("URI")
    if uri != f"#{body_id}":
        target = "the whole document" if uri == "" else "nothing" if uri is None else repr(uri[:100])
        raise SignatureRefused(
            "signature-reference", f"the ds:Reference must point at the soap:Body (#{body_id}), but points at {target}"
        )
    transforms = reference.find(f"{{{DS}}}Transforms")
    for transform in () if transforms is None else transforms:
        if not isinstance(transform.tag, str):
            continue
        # XSLT, XPath and XPointer transforms run code or select other content than the
        # Body; enveloped-signature has nothing to remove from a Body.
        _expect_algorithm(transform, "Transform", {_EXC_C14N.value})
    _expect_algorithm(reference.find(f"{{{DS}}}DigestMethod"), "DigestMethod", {digest.value for digest in _DIGESTS})


_SIGNATURE_CHILDREN = frozenset({f"{{{DS}}}SignedInfo", f"{{{DS}}}SignatureValue", f"{{{DS}}}KeyInfo"})


def _expect_algorithm(element: etree._Element | None, what: str, allowed: set[str]) -> None:
    if element is None:
        raise SignatureRefused("signature-malformed", f"the signature has no ds:{what}")
    algorithm = element.get("Algorithm")
    if algorithm not in allowed:
        raise SignatureRefused(
            "signature-algorithm",
            f"ds:{what} {str(algorithm)[:120]!r} is not accepted; accepted: {', '.join(sorted(allowed))}",
        )


def _names_a_certificate(signature: etree._Element) -> bool:
    key_info = signature.find(f"{{{DS}}}KeyInfo")
    return key_info is not None and next(
        key_info.iter(f"{{{DS}}}X509IssuerSerial", f"{{{DS}}}X509Certificate"), None
    ) is not None


_SERIAL = re.compile(r"[0-9]{1,49}")


def _named_certificates(signature: etree._Element, pinned: Sequence[PinnedCertificate]) -> list[PinnedCertificate]:
    """The pinned certificates KeyInfo names (by serial number or whole), to try first.

    KeyInfo only orders the attempts: whatever it says, only a pinned certificate verifies.
    """
    key_info = signature.find(f"{{{DS}}}KeyInfo")
    if key_info is None:
        return []
    serials, certificates = set(), set()
    for serial in key_info.iter(f"{{{DS}}}X509SerialNumber"):
        # ASCII digits, at most what 20 octets hold (RFC 5280 §4.1.2.2): str.isdigit() admits
        # "²", and int() refuses more than 4,300 digits.
        if _SERIAL.fullmatch((serial.text or "").strip()):
            serials.add(int(serial.text.strip()))
    for encoded in key_info.iter(f"{{{DS}}}X509Certificate"):
        try:
            certificates.add(base64.b64decode("".join((encoded.text or "").split()), validate=True))
        except binascii.Error:
            continue
    return [
        candidate
        for candidate in pinned
        if candidate.certificate.serial_number in serials
        or candidate.certificate.public_bytes(Encoding.DER) in certificates
    ]
