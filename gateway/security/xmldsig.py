"""XML signatures in the WS-Security header of a SOAP envelope: signing the Body, and verifying it.

What the gateway signs is the SOAP Body: ``ds:Signature`` lives in ``soap:Header/wsse:Security``
and holds one ``ds:Reference`` to the Body's ``wsu:Id``, with exclusive C14N
(``http://www.w3.org/2001/10/xml-exc-c14n#``) and RSA-SHA256 unless configured otherwise (OASIS
WS-Security 1.1, X.509 Token Profile 1.1). What it accepts is that, or a second reference to the
``wsu:Timestamp`` of the same Security header (the default of WSS4J, WCF and node ``soap``),
whose Created and Expires then bound the message's freshness.

The algorithm is a provider of ``signature_algorithms`` (RSA, ECDSA, GOST 34.10-2015 with
Streebog); the reference and SignedInfo structure around it is built and checked here, the same
for every provider. ``Signer`` is the seam for a key held elsewhere (a token, an HSM).

``Verifier`` checks an envelope against the sender's pinned certificates and returns only the
Body the signature covers, parsed anew from the bytes that were signed: the application reads
that element and never the tree it came in. Before any cryptography runs, the envelope's shape
is held to the one the gateway accepts, because the classic attacks on XML signatures (McIntosh
& Austel 2005; Somorovsky et al. 2011, 2012) keep a valid signature and move the signed element
somewhere the application does not look. docs/security.md ("Signatures") gives each check and
its reason. Every refusal says what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.errors import GatewayError
from gateway.security.signature_algorithms import (
    ALGORITHMS,
    BY_URI,
    DIGESTS,
    RETIRED,
    SignatureAlgorithm,
    SigningKey,
    VerificationKey,
    key_family,
    verification_key,
)
from gateway.security.xmlparse import MalformedXMLError, UnsafeXMLError, parse_untrusted

__all__ = [
    "ALGORITHMS",
    "SECURITY",
    "PinnedCertificate",
    "PrivateKey",
    "SignatureRefused",
    "Signer",
    "Verified",
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
_TIMESTAMP = f"{{{WSU}}}Timestamp"
_EXC_C14N_URI = "http://www.w3.org/2001/10/xml-exc-c14n#"
_ENVELOPED_URI = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_INCLUSIVE_NAMESPACES = f"{{{_EXC_C14N_URI}}}InclusiveNamespaces"

PrivateKey = SigningKey

_KEY_NAMES = {"rsa": "an RSA key", "ecdsa": "an ECDSA key", "gost-256": "a 256-bit GOST R 34.10-2012 key",
              "gost-512": "a 512-bit GOST R 34.10-2012 key"}


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

    ``WsSecuritySigner`` is the one the gateway uses, for every algorithm of
    ``signature_algorithms``; a provider whose key lives in a token or an HSM implements this,
    and the envelope it returns must have the shape ``Verifier`` checks: one ``ds:Signature``
    in ``soap:Header/wsse:Security`` referencing the Body's ``wsu:Id``, exclusive C14N.
    """

    def sign(self, envelope: etree._Element) -> etree._Element:
        """The signed envelope: ``envelope`` itself, changed, or a new element."""
        ...


class WsSecuritySigner:
    """Signs with one private key and names its certificate (issuer and serial) in KeyInfo.

    The signature is built here for every algorithm alike (XML Signature 1.1 §3.1): the
    Reference's digest over the exclusive C14N of the Body, then the exclusive C14N of
    SignedInfo signed by the algorithm's provider. A key held elsewhere (a token, an HSM) is
    another ``Signer``.
    """

    def __init__(self, key: SigningKey, certificate: x509.Certificate, *, algorithm: str = "rsa-sha256") -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown signature algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
        provider = ALGORITHMS[algorithm]
        if not provider.fits(key):
            raise ValueError(f"{algorithm} needs {_KEY_NAMES[provider.family]}, not {type(key).__name__}")
        if verification_key(certificate) != key.public_key():
            raise ValueError("the certificate is not the private key's: it certifies another public key")
        self.certificate = certificate
        self.algorithm = algorithm
        self._key = key
        self._provider = provider

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
        security = etree.SubElement(header, SECURITY, nsmap={"wsse": WSSE})
        signature = etree.SubElement(security, f"{{{DS}}}Signature", nsmap={"ds": DS})
        signed_info = etree.SubElement(signature, f"{{{DS}}}SignedInfo")
        etree.SubElement(signed_info, f"{{{DS}}}CanonicalizationMethod", Algorithm=_EXC_C14N_URI)
        etree.SubElement(signed_info, f"{{{DS}}}SignatureMethod", Algorithm=self._provider.signature_uri)
        reference = etree.SubElement(signed_info, f"{{{DS}}}Reference", URI=f"#{body_id}")
        transforms = etree.SubElement(reference, f"{{{DS}}}Transforms")
        etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=_EXC_C14N_URI)
        etree.SubElement(reference, f"{{{DS}}}DigestMethod", Algorithm=self._provider.digest_uri)
        digest = DIGESTS[self._provider.digest_uri](_canonical(envelope.find(_BODY)))
        etree.SubElement(reference, f"{{{DS}}}DigestValue").text = base64.b64encode(digest).decode()
        value = etree.SubElement(signature, f"{{{DS}}}SignatureValue")
        signature.append(self._key_info())
        # SignedInfo is canonicalised where it stands, as the verifier will read it.
        value.text = base64.b64encode(self._provider.sign(self._key, _canonical(signed_info))).decode()
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


def _canonical(element: etree._Element, inclusive_prefixes: Sequence[str] = ()) -> bytes:
    """Exclusive XML Canonicalization 1.0 without comments of ``element`` where it stands."""
    return etree.tostring(
        element, method="c14n", exclusive=True, with_comments=False, inclusive_ns_prefixes=list(inclusive_prefixes) or None
    )


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


@dataclass(frozen=True, slots=True)
class _Reference:
    """One ds:Reference of SignedInfo and the element it resolves to."""

    element: etree._Element
    target: etree._Element
    what: str
    """"the soap:Body" or "the wsu:Timestamp", for messages."""
    digest: str
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verified:
    """What a signature check established: the signed Body, and the certificate that verified it."""

    body: etree._Element
    certificate: PinnedCertificate


class Verifier:
    """Verifies envelopes from one sender against the certificates pinned for it.

    ``required``: an unsigned envelope is refused; otherwise it is let through as it is (for a
    member that cannot sign yet). A signed envelope is always verified, and refused if it does
    not verify: a signature nobody checks would only look like protection.

    ``algorithm`` (a name from ``signature_algorithms.ALGORITHMS``) is the one algorithm the
    sender signs with; any other is refused, so a signature cannot be downgraded to a weaker
    one. Without it, every listed algorithm whose key type one of the pinned certificates holds
    is accepted. ``max_clock_skew_seconds`` bounds how far a signed ``wsu:Timestamp`` may be
    ahead of the moment of receipt, or its Expires behind it.
    """

    def __init__(
        self,
        sender: str,
        pinned: Sequence[PinnedCertificate],
        *,
        required: bool,
        algorithm: str | None = None,
        max_clock_skew_seconds: float = 300.0,
    ) -> None:
        if required and not pinned:
            raise ValueError(f"{sender}: signatures are required but no certificate is pinned")
        if algorithm is not None and algorithm not in ALGORITHMS:
            raise ValueError(f"unknown signature algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
        self.sender = sender
        self.pinned = tuple(pinned)
        self.required = required
        self.algorithm = algorithm
        self.max_clock_skew = dt.timedelta(seconds=max_clock_skew_seconds)
        self._keys: list[tuple[PinnedCertificate, VerificationKey, str]] = []
        for certificate in self.pinned:
            key = verification_key(certificate.certificate)
            family = key_family(key)
            if algorithm is not None and family != ALGORITHMS[algorithm].family:
                raise ValueError(
                    f"certificate {certificate.name} holds {_KEY_NAMES[family]}, which cannot verify {algorithm} "
                    f"signatures (they need {_KEY_NAMES[ALGORITHMS[algorithm].family]})"
                )
            self._keys.append((certificate, key, family))
        self._methods = (
            {ALGORITHMS[algorithm].signature_uri} if algorithm is not None
            else {provider.signature_uri for provider in ALGORITHMS.values()}
        )

    def verified_body(self, envelope: etree._Element, *, at: dt.datetime) -> etree._Element | None:
        """The soap:Body that the signature covers, parsed from the signed bytes alone (see ``verify``)."""
        verified = self.verify(envelope, at=at)
        return None if verified is None else verified.body

    def verify(self, envelope: etree._Element, *, at: dt.datetime) -> Verified | None:
        """The soap:Body that the signature covers, parsed from the signed bytes alone, and the
        pinned certificate that verified it (for its revocation to be checked next).

        None when ``envelope`` is unsigned and this sender may send unsigned messages.
        ``at`` is when the message was received: every certificate is judged at that moment,
        not at a date the sender wrote, which whoever holds a retired key could backdate; a
        signed ``wsu:Timestamp`` must hold it too (within the clock skew).
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
        timestamp = _placed_timestamp(envelope, blocks[0])
        if not _ids(body):
            raise SignatureRefused("signature-reference", "the soap:Body carries no wsu:Id for the signature to reference")
        provider, references, prefixes = self._signed_info(signature, body, timestamp)
        # The bytes each digest was checked over: what is read back below, canonicalised once.
        certificate, signed = self._verify(signature, provider, references, prefixes, at)
        if _TIMESTAMP_WHAT in signed:
            self._check_timestamp(signed[_TIMESTAMP_WHAT], at)
        try:
            return Verified(parse_untrusted(signed[_BODY_WHAT]), certificate)
        except (UnsafeXMLError, MalformedXMLError):
            raise SignatureRefused("signature-malformed", "the signed Body cannot be read back as safe, "
                                   "well-formed XML") from None

    def _signed_info(
        self, signature: etree._Element, body: etree._Element, timestamp: etree._Element | None
    ) -> tuple[SignatureAlgorithm, list[_Reference], tuple[str, ...]]:
        """The algorithm and the references, once SignedInfo has the shape the gateway accepts."""
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
        c14n = signed_info.find(f"{{{DS}}}CanonicalizationMethod")
        _expect_algorithm(c14n, "CanonicalizationMethod", {_EXC_C14N_URI})
        method = signed_info.find(f"{{{DS}}}SignatureMethod")
        _expect_algorithm(method, "SignatureMethod", self._methods, self._method_hint())
        provider = BY_URI[method.get("Algorithm")]
        references = signed_info.findall(f"{{{DS}}}Reference")
        if not 1 <= len(references) <= 2:
            raise SignatureRefused(
                "signature-reference",
                "the signature must have one ds:Reference to the soap:Body, and at most one more to the "
                f"wsu:Timestamp of its wsse:Security header, not {len(references)}",
            )
        resolved = [self._reference(reference, body, timestamp, provider) for reference in references]
        covered = [reference.what for reference in resolved]
        if len(set(covered)) != len(covered):
            raise SignatureRefused("signature-reference", f"two ds:References point at {covered[0]}")
        if _BODY_WHAT not in covered:
            pointed = ", ".join(repr(reference.element.get("URI", "")[:100]) for reference in resolved)
            raise SignatureRefused(
                "signature-reference",
                f"the signature must cover the soap:Body (#{sorted(_ids(body))[0]}), but points only at {pointed}",
            )
        return provider, resolved, _prefix_list(c14n)

    def _method_hint(self) -> str:
        if self.algorithm is not None:
            return f"member {self.sender} signs with {self.algorithm} (members.{self.sender}.signature_algorithm)"
        return ""

    def _reference(
        self, reference: etree._Element, body: etree._Element, timestamp: etree._Element | None,
        provider: SignatureAlgorithm,
    ) -> _Reference:
        uri = reference.get("URI")
        target = what = None
        if uri is not None and uri.startswith("#"):
            if uri[1:] in _ids(body):
                target, what = body, _BODY_WHAT
            elif timestamp is not None and uri[1:] in _ids(timestamp):
                target, what = timestamp, _TIMESTAMP_WHAT
        if target is None:
            body_id = sorted(_ids(body))[0]
            named = "the whole document" if uri == "" else "nothing" if uri is None else repr(uri[:100])
            raise SignatureRefused(
                "signature-reference",
                f"a ds:Reference must point at the soap:Body (#{body_id}) or at the wsu:Timestamp of the "
                f"signature's wsse:Security header, but points at {named}",
            )
        prefixes: tuple[str, ...] = ()
        transforms = reference.find(f"{{{DS}}}Transforms")
        steps = [] if transforms is None else [t for t in transforms if isinstance(t.tag, str)]
        for number, transform in enumerate(steps):
            # XSLT, XPath and XPointer transforms run code or select other content than the
            # element. Enveloped-signature removes the signature from what it references, and
            # the signature lives in the Security header, outside the Body and the Timestamp:
            # there it changes nothing, so it is accepted where stacks write it by default
            # (WSS4J, node soap), before the exclusive C14N that then makes the octets. Last, it
            # would leave a node-set for inclusive C14N 1.0, which is not what is checked here.
            allowed = {_EXC_C14N_URI, _ENVELOPED_URI} if number < len(steps) - 1 else {_EXC_C14N_URI}
            _expect_algorithm(transform, "Transform", allowed)
            prefixes += _prefix_list(transform)
        digest = reference.find(f"{{{DS}}}DigestMethod")
        _expect_algorithm(
            digest, "DigestMethod", set(provider.accepted_digests),
            f"{provider.name} signatures digest with {' or '.join(sorted(provider.accepted_digests))}",
        )
        return _Reference(reference, target, what, digest.get("Algorithm"), prefixes)

    def _verify(
        self, signature: etree._Element, provider: SignatureAlgorithm, references: list[_Reference],
        prefixes: tuple[str, ...], at: dt.datetime,
    ) -> tuple[PinnedCertificate, dict[str, bytes]]:
        """Once a pinned certificate verifies SignedInfo and every reference's digest matches: that
        certificate, and the canonical bytes of each reference's target (by what it is) that the
        digests cover."""
        value = _signature_value(signature)
        if provider.signature_length is not None and len(value) != provider.signature_length:
            half = provider.signature_length // 2
            raise SignatureRefused(
                "signature-key-length",
                f"the ds:SignatureValue is {len(value)} bytes, but {provider.signature_uri} signatures are "
                f"{provider.signature_length} bytes (s and r of {half} bytes each): it was not made with "
                f"{_KEY_NAMES[provider.family]}",
            )
        fitting = [entry for entry in self._keys if entry[2] == provider.family]
        if self._keys and not fitting:
            held = " and ".join(sorted({_KEY_NAMES[family] for _, _, family in self._keys}))
            raise SignatureRefused(
                "signature-algorithm",
                f"the message is signed with {provider.name}, but the certificates pinned for member {self.sender} "
                f"hold {held}: sign with the key they certify",
            )
        signed_info = _canonical(signature.find(f"{{{DS}}}SignedInfo"), prefixes)
        hinted = _named_certificates(signature, self.pinned)
        for pinned, key, _ in sorted(fitting, key=lambda entry: entry[0] not in hinted):
            if pinned.window_problem(at) is not None:
                continue
            if not provider.verify(key, value, signed_info):
                continue  # another pinned certificate may be the one (rotation)
            return pinned, {reference.what: _check_digest(reference) for reference in references}
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

    def _check_timestamp(self, signed: bytes, at: dt.datetime) -> None:
        """A signed Timestamp (WS-Security 1.1 §10) is the message's freshness: ``at`` must lie
        between its Created and Expires, each widened by the clock skew."""
        try:
            timestamp = parse_untrusted(signed)
        except (UnsafeXMLError, MalformedXMLError) as error:
            raise SignatureRefused("timestamp-malformed", f"the signed wsu:Timestamp cannot be read back: {error}") from None
        created = _instant(timestamp, "Created", required=True)
        expires = _instant(timestamp, "Expires", required=False)
        skew = self.max_clock_skew
        if expires is not None and expires <= created:
            raise SignatureRefused(
                "timestamp-malformed", f"wsu:Timestamp Expires {expires.isoformat()} is not after Created {created.isoformat()}"
            )
        if created > at + skew:
            raise SignatureRefused(
                "timestamp-in-future",
                f"wsu:Timestamp Created {created.isoformat()} is {(created - at).total_seconds():.0f} s ahead of the "
                f"gateway's clock ({at.isoformat()}); at most {skew.total_seconds():g} s is allowed: check the sender's clock",
            )
        end = expires if expires is not None else created
        if end < at - skew:
            which = f"Expires {expires.isoformat()}" if expires is not None else f"Created {created.isoformat()} (no Expires)"
            raise SignatureRefused(
                "timestamp-expired",
                f"wsu:Timestamp {which} is {(at - end).total_seconds():.0f} s before the gateway's clock "
                f"({at.isoformat()}); at most {skew.total_seconds():g} s is allowed: send the message anew",
            )


_BODY_WHAT = "the soap:Body"
_TIMESTAMP_WHAT = "the wsu:Timestamp"


def _ids(element: etree._Element) -> set[str]:
    """The values of the id attributes a reference can resolve against on ``element``."""
    return {
        value for name, value in element.attrib.items()
        if etree.QName(name).localname in ("Id", "ID") or name == f"{{{_XML}}}id"
    }


def _prefix_list(element: etree._Element) -> tuple[str, ...]:
    """The InclusiveNamespaces PrefixList of an exclusive C14N method or transform (Exc-C14N §3)."""
    inclusive = element.find(_INCLUSIVE_NAMESPACES)
    if inclusive is None:
        return ()
    return tuple(prefix for prefix in (inclusive.get("PrefixList") or "").split() if prefix != "#default")


def _signature_value(signature: etree._Element) -> bytes:
    element = signature.find(f"{{{DS}}}SignatureValue")
    text = "".join((element.text or "").split()) if element is not None else ""
    try:
        value = base64.b64decode(text, validate=True)
    except binascii.Error:
        value = b""
    if not value:
        raise SignatureRefused("signature-malformed", "the ds:Signature is malformed: its ds:SignatureValue is missing, empty or not base64")
    return value


def _check_digest(reference: _Reference) -> bytes:
    """The target's canonical bytes, once their digest is the one the reference states."""
    element = reference.element.find(f"{{{DS}}}DigestValue")
    try:
        expected = base64.b64decode("".join((element.text or "").split()) if element is not None else "", validate=True)
    except binascii.Error:
        expected = b""
    if not expected:
        raise SignatureRefused("signature-malformed", f"the ds:Reference to {reference.what} has no base64 ds:DigestValue")
    canonical = _canonical(reference.target, reference.prefixes)
    if not hmac.compare_digest(DIGESTS[reference.digest](canonical), expected):
        raise SignatureRefused(
            "signature-invalid", f"{reference.what} was changed after it was signed (its digest does not match)"
        )
    return canonical


def _instant(timestamp: etree._Element, name: str, *, required: bool) -> dt.datetime | None:
    elements = timestamp.findall(f"{{{WSU}}}{name}")
    if len(elements) > 1 or (required and not elements):
        raise SignatureRefused("timestamp-malformed", f"the signed wsu:Timestamp must have {'exactly' if required else 'at most'} one wsu:{name}")
    if not elements:
        return None
    text = (elements[0].text or "").strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise SignatureRefused(
            "timestamp-malformed", f"wsu:{name} {text[:40]!r} is not a UTC time such as 2026-12-03T10:00:00Z"
        )
    return moment.astimezone(dt.UTC)


def _placed_timestamp(envelope: etree._Element, block: etree._Element) -> etree._Element | None:
    """The one wsu:Timestamp, which may only be a child of the signature's wsse:Security block."""
    timestamps = list(envelope.iter(_TIMESTAMP))
    for timestamp in timestamps:
        if timestamp.getparent() is not block:
            raise SignatureRefused(
                "timestamp-wrapped",
                "a wsu:Timestamp sits outside the wsse:Security header that holds the signature: only that "
                "header's own Timestamp is signed and read",
            )
    if len(timestamps) > 1:
        raise SignatureRefused(
            "timestamp-wrapped", f"the wsse:Security header must hold at most one wsu:Timestamp, not {len(timestamps)}"
        )
    return timestamps[0] if timestamps else None


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


_SIGNATURE_CHILDREN = frozenset({f"{{{DS}}}SignedInfo", f"{{{DS}}}SignatureValue", f"{{{DS}}}KeyInfo"})


def _expect_algorithm(element: etree._Element | None, what: str, allowed: set[str], hint: str = "") -> None:
    if element is None:
        raise SignatureRefused("signature-malformed", f"the signature has no ds:{what}")
    algorithm = element.get("Algorithm")
    if algorithm in RETIRED:
        raise SignatureRefused(
            "signature-algorithm-unsupported",
            f"ds:{what} {algorithm} ({RETIRED[algorithm]}) is not supported: sign with GOST 34.10-2015 "
            f"({ALGORITHMS['gost2015-256'].signature_uri} or its -512 pair, with the Streebog digest of the same size)",
        )
    if algorithm not in allowed:
        raise SignatureRefused(
            "signature-algorithm",
            f"ds:{what} {str(algorithm)[:120]!r} is not accepted; accepted: {', '.join(sorted(allowed))}"
            + (f" ({hint})" if hint else ""),
        )
    # The only child a method or transform may have is exclusive C14N's InclusiveNamespaces.
    for child in element:
        if isinstance(child.tag, str) and not (algorithm == _EXC_C14N_URI and child.tag == _INCLUSIVE_NAMESPACES):
            raise SignatureRefused("signature-algorithm", f"ds:{what} {algorithm} may not hold {child.tag}")


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
