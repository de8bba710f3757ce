"""The XML signature algorithms the gateway signs and accepts: one provider per algorithm.

A provider turns the canonical SignedInfo into a ``ds:SignatureValue`` and back, and names the
digest its references use. The structure around it — references, transforms, SignedInfo,
exclusive C14N — is ``xmldsig``'s and the same for every provider. RSA and ECDSA are the
``cryptography`` package's; GOST 34.10-2015 (the mathematics of GOST R 34.10-2012) with
Streebog is ``gost``'s, with the algorithm URIs of Kazakhstan's national PKI (pki.gov.kz).

No SHA-1 or MD5 (collisions are practical), no HMAC (a shared secret proves nothing about which
member signed), no DSA, and no GOST 34.310-2004 (the national standard it was replaced by):
an algorithm not listed here is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.security.gost import GostCertificate, GostError, GostPrivateKey, GostPublicKey, streebog

__all__ = [
    "ALGORITHMS",
    "DIGESTS",
    "RETIRED",
    "SignatureAlgorithm",
    "SigningKey",
    "VerificationKey",
    "key_family",
    "verification_key",
]

_PKIGOVKZ = "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:"
_XMLDSIG_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_XMLENC = "http://www.w3.org/2001/04/xmlenc#"

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | GostPrivateKey
VerificationKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | GostPublicKey

DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    _XMLENC + "sha256": lambda data: hashlib.sha256(data).digest(),
    _XMLDSIG_MORE + "sha384": lambda data: hashlib.sha384(data).digest(),
    _XMLENC + "sha512": lambda data: hashlib.sha512(data).digest(),
    _PKIGOVKZ + "gostr34112015-256": lambda data: streebog(data, 32),
    _PKIGOVKZ + "gostr34112015-512": lambda data: streebog(data, 64),
}
"""Reference digests by DigestMethod URI."""

_SHA2 = frozenset({_XMLENC + "sha256", _XMLDSIG_MORE + "sha384", _XMLENC + "sha512"})

RETIRED: dict[str, str] = {
    _XMLDSIG_MORE + "gost34310-gost34311": "GOST 34.310-2004 with GOST 34.311-95",
    _XMLDSIG_MORE + "gost34311": "GOST 34.311-95",
}
"""Algorithms recognised only to be refused by name: the national PKI replaced GOST 34.310-2004
with GOST 34.10-2015 (gostr34102015-*); a sender still using it must be told, not just "unknown"."""


@dataclass(frozen=True)
class SignatureAlgorithm:
    name: str
    """The name the configuration uses (``[signing] algorithm``, ``members.<id>.signature_algorithm``)."""
    signature_uri: str
    digest_uri: str
    """The DigestMethod the gateway's own references use with it."""
    accepted_digests: frozenset[str]
    family: str
    """The kind of key: ``rsa``, ``ecdsa``, ``gost-256`` or ``gost-512``."""
    signature_length: int | None = None
    """The exact length of a signature value, where the algorithm fixes it (GOST: 2 × the key's)."""
    hash: type[hashes.HashAlgorithm] | None = None

    def sign(self, key: SigningKey, data: bytes) -> bytes:
        if isinstance(key, GostPrivateKey):
            return key.sign(data)
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), self.hash())
        # XML Signature's ECDSA value is r ‖ s of fixed length, not DER (RFC 4050 §3.3, RFC 6931).
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(self.hash())))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def verify(self, key: VerificationKey, signature: bytes, data: bytes) -> bool:
        if isinstance(key, GostPublicKey):
            return key.verify(signature, data)
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, data, padding.PKCS1v15(), self.hash())
            else:
                size = (key.curve.key_size + 7) // 8
                if len(signature) != 2 * size:
                    return False
                der = encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))
                key.verify(der, data, ec.ECDSA(self.hash()))
        except InvalidSignature:
            return False
        return True

    def fits(self, key: SigningKey | VerificationKey) -> bool:
        return _family_of_key(key) == self.family


def _rsa(name: str, uri: str, digest: str, hash_: type[hashes.HashAlgorithm]) -> SignatureAlgorithm:
    return SignatureAlgorithm(name, uri, digest, _SHA2, "rsa", hash=hash_)


def _ecdsa(name: str, uri: str, digest: str, hash_: type[hashes.HashAlgorithm]) -> SignatureAlgorithm:
    return SignatureAlgorithm(name, uri, digest, _SHA2, "ecdsa", hash=hash_)


def _gost(bits: int) -> SignatureAlgorithm:
    digest = f"{_PKIGOVKZ}gostr34112015-{bits}"
    return SignatureAlgorithm(
        f"gost2015-{bits}", f"{_PKIGOVKZ}gostr34102015-gostr34112015-{bits}", digest, frozenset({digest}),
        f"gost-{bits}", signature_length=bits // 4,
    )


ALGORITHMS: dict[str, SignatureAlgorithm] = {
    algorithm.name: algorithm
    for algorithm in (
        _rsa("rsa-sha256", _XMLDSIG_MORE + "rsa-sha256", _XMLENC + "sha256", hashes.SHA256),
        _rsa("rsa-sha384", _XMLDSIG_MORE + "rsa-sha384", _XMLDSIG_MORE + "sha384", hashes.SHA384),
        _rsa("rsa-sha512", _XMLDSIG_MORE + "rsa-sha512", _XMLENC + "sha512", hashes.SHA512),
        _ecdsa("ecdsa-sha256", _XMLDSIG_MORE + "ecdsa-sha256", _XMLENC + "sha256", hashes.SHA256),
        _ecdsa("ecdsa-sha384", _XMLDSIG_MORE + "ecdsa-sha384", _XMLDSIG_MORE + "sha384", hashes.SHA384),
        _gost(256),
        _gost(512),
    )
}
"""The signature algorithms the gateway signs and accepts, by configuration name."""

BY_URI: dict[str, SignatureAlgorithm] = {algorithm.signature_uri: algorithm for algorithm in ALGORITHMS.values()}


def _family_of_key(key: SigningKey | VerificationKey) -> str | None:
    if isinstance(key, (GostPrivateKey, GostPublicKey)):
        return f"gost-{key.size * 8}"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ecdsa"
    return None


def verification_key(certificate: x509.Certificate) -> VerificationKey:
    """The certificate's public key; GOST keys, which ``cryptography`` cannot hold, read by ``gost``.

    Raises ``ValueError`` for a key no listed algorithm can use.
    """
    try:
        key = certificate.public_key()
    except UnsupportedAlgorithm:
        try:
            return GostCertificate.from_der(certificate.public_bytes(Encoding.DER)).public_key
        except GostError as error:
            raise ValueError(f"the certificate's key is neither RSA, EC nor GOST R 34.10-2012: {error}") from None
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise ValueError(f"the certificate's key is {type(key).__name__}, which signs no XML here")
    return key


def key_family(key: SigningKey | VerificationKey) -> str:
    family = _family_of_key(key)
    if family is None:
        raise ValueError(f"{type(key).__name__} signs no XML here")
    return family
