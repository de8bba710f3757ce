"""GOST R 34.10-2012 keys (the mathematics of GOST 34.10-2015) and their certificates.

The curve arithmetic and Streebog (GOST 34.11-2015 = GOST R 34.11-2012) are gostcrypto's; the
ASN.1 of keys and certificates is asn1crypto's. Nothing here does arithmetic on a curve.

**Byte order**, the one thing every GOST implementation must agree on, follows RFC 4491 (§2.2.2
signature values, §2.3.2 public keys) as RFC 9215 carries it over to GOST R 34.10-2012, and is
what OpenSSL's GOST engine reads and writes (``tests/security/test_gost_openssl.py`` checks both
directions):

- a **signature** is ``s ‖ r``, each big-endian and as long as the key (32 or 64 bytes); the
  same bytes go into ``ds:SignatureValue`` (base64) and into a certificate's signature;
- the **digest** (Streebog's output, in the byte order gostcrypto and OpenSSL both print) is
  read as a *little-endian* integer — the number GOST R 34.10-2012 §6.1 calls alpha; gostcrypto
  reads the bytes it is given as big-endian, so they are reversed before it sees them;
- a **public key** is ``x ‖ y``, each little-endian, inside an OCTET STRING in the
  SubjectPublicKeyInfo's BIT STRING; a **private key** (PKCS#8) is the little-endian scalar in
  the privateKey OCTET STRING, as OpenSSL's engine writes it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import ClassVar

import gostcrypto
from asn1crypto import core, pem
from asn1crypto import x509 as asn1_x509
from gostcrypto.gostsignature import CURVES_R_1323565_1_024_2019 as _CURVES

__all__ = [
    "GostCertificate",
    "GostError",
    "GostPrivateKey",
    "GostPublicKey",
    "self_signed_gost_certificate",
    "streebog",
]

# GOST R 34.10-2012 public keys and signature algorithms (RFC 9215 §2, TC 26 registry).
PUBLIC_KEY_256 = "1.2.643.7.1.1.1.1"
PUBLIC_KEY_512 = "1.2.643.7.1.1.1.2"
SIGNATURE_256 = "1.2.643.7.1.1.3.2"
SIGNATURE_512 = "1.2.643.7.1.1.3.3"
DIGEST_256 = "1.2.643.7.1.1.2.2"
DIGEST_512 = "1.2.643.7.1.1.2.3"

# Parameter sets (R 1323565.1.024-2019) by OID, with gostcrypto's name for each curve. The
# CryptoPro sets of GOST R 34.10-2001 are the same curves as TC 26's 256-bit B, C and D, and
# keys made by OpenSSL's "paramset:A" name CryptoPro-A.
_PARAM_SETS = {
    "1.2.643.7.1.2.1.1.1": (32, "id-tc26-gost-3410-2012-256-paramSetA"),
    "1.2.643.7.1.2.1.1.2": (32, "id-tc26-gost-3410-2012-256-paramSetB"),
    "1.2.643.7.1.2.1.1.3": (32, "id-tc26-gost-3410-2012-256-paramSetC"),
    "1.2.643.7.1.2.1.1.4": (32, "id-tc26-gost-3410-2012-256-paramSetD"),
    "1.2.643.2.2.35.1": (32, "id-tc26-gost-3410-2012-256-paramSetB"),
    "1.2.643.2.2.35.2": (32, "id-tc26-gost-3410-2012-256-paramSetC"),
    "1.2.643.2.2.35.3": (32, "id-tc26-gost-3410-2012-256-paramSetD"),
    "1.2.643.2.2.36.0": (32, "id-tc26-gost-3410-2012-256-paramSetB"),
    "1.2.643.2.2.36.1": (32, "id-tc26-gost-3410-2012-256-paramSetD"),
    "1.2.643.7.1.2.1.2.1": (64, "id-tc26-gost-3410-12-512-paramSetA"),
    "1.2.643.7.1.2.1.2.2": (64, "id-tc26-gost-3410-12-512-paramSetB"),
    "1.2.643.7.1.2.1.2.3": (64, "id-tc26-gost-3410-2012-512-paramSetC"),
}
# What new development keys use: TC 26 paramSetA of each size.
DEFAULT_PARAM_SET = {32: "1.2.643.7.1.2.1.1.1", 64: "1.2.643.7.1.2.1.2.1"}
_KEY_OID = {32: PUBLIC_KEY_256, 64: PUBLIC_KEY_512}
_SIGNATURE_OID = {32: SIGNATURE_256, 64: SIGNATURE_512}
_DIGEST_OID = {32: DIGEST_256, 64: DIGEST_512}


class GostError(ValueError):
    """A GOST key, certificate or signature that cannot be used, and why."""


def streebog(data: bytes, size: int) -> bytes:
    """Streebog-256 (``size`` 32) or Streebog-512 (64) of ``data``, in OpenSSL's byte order."""
    return bytes(gostcrypto.gosthash.new("streebog256" if size == 32 else "streebog512", data=data).digest())


def _engine(size: int, param_set: str):
    mode = gostcrypto.gostsignature.MODE_256 if size == 32 else gostcrypto.gostsignature.MODE_512
    return gostcrypto.gostsignature.new(mode, _CURVES[_PARAM_SETS[param_set][1]])


@dataclass(frozen=True, slots=True)
class GostPublicKey:
    size: int
    """32 for a 256-bit key, 64 for a 512-bit one: the length of r, s and each coordinate."""
    param_set: str
    """The curve's OID."""
    point: bytes
    """x ‖ y, each big-endian (gostcrypto's form)."""

    @property
    def bits(self) -> int:
        return self.size * 8

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` (s ‖ r, RFC 4491) signs Streebog(``data``) with this key."""
        if len(signature) != 2 * self.size:
            return False
        r_s = signature[self.size:] + signature[: self.size]
        try:
            return bool(_engine(self.size, self.param_set).verify(
                bytearray(self.point), bytearray(streebog(data, self.size)[::-1]), bytearray(r_s)))
        except gostcrypto.gostsignature.GOSTSignatureError:
            return False

    def spki(self) -> GostSubjectPublicKeyInfo:
        x, y = self.point[: self.size], self.point[self.size:]
        return GostSubjectPublicKeyInfo({
            "algorithm": _algorithm(_KEY_OID[self.size], _key_parameters(self.size, self.param_set)),
            "public_key": core.OctetString(x[::-1] + y[::-1]).dump(),
        })

    def public_bytes_pem(self) -> bytes:
        """The SubjectPublicKeyInfo as PEM ("PUBLIC KEY"), which OpenSSL's engine reads."""
        return pem.armor("PUBLIC KEY", self.spki().dump())

    @classmethod
    def from_spki(cls, spki: GostSubjectPublicKeyInfo) -> GostPublicKey:
        algorithm = spki["algorithm"]["algorithm"].dotted
        size = {PUBLIC_KEY_256: 32, PUBLIC_KEY_512: 64}.get(algorithm)
        if size is None:
            raise GostError(f"the public key is of algorithm {algorithm}, not GOST R 34.10-2012")
        param_set = _param_set_of(spki["algorithm"]["parameters"], size)
        try:
            encoded = core.OctetString.load(spki["public_key"].native).native
        except (ValueError, TypeError):
            raise GostError("the GOST public key is not an OCTET STRING") from None
        if len(encoded) != 2 * size:
            raise GostError(f"the GOST public key is {len(encoded)} bytes, not {2 * size}")
        return cls(size, param_set, encoded[:size][::-1] + encoded[size:][::-1])


@dataclass(frozen=True, slots=True)
class GostPrivateKey:
    size: int
    param_set: str
    scalar: bytes = b""
    """The private key d, big-endian (gostcrypto's form)."""

    def __repr__(self) -> str:  # the scalar never reaches a log or a traceback
        return f"GostPrivateKey(bits={self.size * 8}, param_set={self.param_set})"

    @classmethod
    def generate(cls, bits: int = 256, param_set: str | None = None) -> GostPrivateKey:
        size = bits // 8
        if size not in (32, 64):
            raise GostError(f"GOST R 34.10-2012 keys are 256 or 512 bits, not {bits}")
        param_set = param_set or DEFAULT_PARAM_SET[size]
        order = _CURVES[_PARAM_SETS[param_set][1]]["q"]
        scalar = 1 + secrets.randbelow(order - 1)
        return cls(size, param_set, scalar.to_bytes(size, "big"))

    def public_key(self) -> GostPublicKey:
        point = _engine(self.size, self.param_set).public_key_generate(bytearray(self.scalar))
        return GostPublicKey(self.size, self.param_set, bytes(point))

    def sign(self, data: bytes) -> bytes:
        """The signature of Streebog(``data``): s ‖ r, each big-endian (RFC 4491 §2.2.2)."""
        r_s = _engine(self.size, self.param_set).sign(bytearray(self.scalar), bytearray(streebog(data, self.size)[::-1]))
        return bytes(r_s[self.size:] + r_s[: self.size])

    def private_bytes_pem(self) -> bytes:
        """PKCS#8, unencrypted, as OpenSSL's GOST engine writes it ("PRIVATE KEY")."""
        info = _PrivateKeyInfo({
            "version": 0,
            "private_key_algorithm": _algorithm(_KEY_OID[self.size], _key_parameters(self.size, self.param_set)),
            "private_key": self.scalar[::-1],
        })
        return pem.armor("PRIVATE KEY", info.dump())

    @classmethod
    def from_pkcs8(cls, der: bytes) -> GostPrivateKey:
        try:
            info = _PrivateKeyInfo.load(der)
            algorithm = info["private_key_algorithm"]["algorithm"].dotted
            raw = info["private_key"].native
        except (ValueError, TypeError):
            raise GostError("not a PKCS#8 private key") from None
        size = {PUBLIC_KEY_256: 32, PUBLIC_KEY_512: 64}.get(algorithm)
        if size is None:
            raise GostError(f"the private key is of algorithm {algorithm}, not GOST R 34.10-2012")
        param_set = _param_set_of(info["private_key_algorithm"]["parameters"], size)
        # Older engines wrap the scalar once more, as an OCTET STRING or an INTEGER.
        if len(raw) != size:
            try:
                inner = core.load(raw)
            except ValueError:
                raise GostError(f"the GOST private key is {len(raw)} bytes, not {size}") from None
            if isinstance(inner, core.OctetString):
                raw = inner.native
            elif isinstance(inner, core.Integer):
                raw = inner.native.to_bytes(size, "big")[::-1]
            if len(raw) != size:
                raise GostError(f"the GOST private key is {len(raw)} bytes, not {size}")
        return cls(size, param_set, raw[::-1])


def _param_set_of(parameters: core.Any, size: int) -> str:
    try:
        param_set = _KeyParameters.load(parameters.dump())["public_key_param_set"].dotted
    except (ValueError, TypeError, AttributeError):
        raise GostError("the GOST key names no parameter set") from None
    known = _PARAM_SETS.get(param_set)
    if known is None or known[0] != size:
        raise GostError(f"the GOST parameter set {param_set} is not a known {size * 8}-bit one")
    return param_set


def _key_parameters(size: int, param_set: str) -> _KeyParameters:
    # RFC 9215 §4: the digest parameter is present for 256-bit keys of sets other than TC 26's A,
    # and absent for 512-bit keys; OpenSSL reads it either way.
    parameters = {"public_key_param_set": param_set}
    if size == 32 and param_set != "1.2.643.7.1.2.1.1.1":
        parameters["digest_param_set"] = DIGEST_256
    return _KeyParameters(parameters)


def _algorithm(oid: str, parameters: core.Asn1Value | None = None) -> _AlgorithmIdentifier:
    value = {"algorithm": oid}
    if parameters is not None:
        value["parameters"] = core.Any.load(parameters.dump())
    return _AlgorithmIdentifier(value)


# ----------------------------------------------------------------------------- certificates


class _KeyParameters(core.Sequence):
    _fields: ClassVar = [
        ("public_key_param_set", core.ObjectIdentifier),
        ("digest_param_set", core.ObjectIdentifier, {"optional": True}),
    ]


class _AlgorithmIdentifier(core.Sequence):
    # asn1crypto's own AlgorithmIdentifier knows no GOST OIDs and refuses to parse them.
    _fields: ClassVar = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class GostSubjectPublicKeyInfo(core.Sequence):
    _fields: ClassVar = [("algorithm", _AlgorithmIdentifier), ("public_key", core.OctetBitString)]


class _PrivateKeyInfo(core.Sequence):
    _fields: ClassVar = [
        ("version", core.Integer),
        ("private_key_algorithm", _AlgorithmIdentifier),
        ("private_key", core.OctetString),
        ("attributes", core.Any, {"implicit": 0, "optional": True}),
    ]


class _TbsCertificate(core.Sequence):
    _fields: ClassVar = [
        ("version", asn1_x509.Version, {"explicit": 0, "default": "v1"}),
        ("serial_number", core.Integer),
        ("signature", _AlgorithmIdentifier),
        ("issuer", asn1_x509.Name),
        ("validity", asn1_x509.Validity),
        ("subject", asn1_x509.Name),
        ("subject_public_key_info", GostSubjectPublicKeyInfo),
        ("issuer_unique_id", core.OctetBitString, {"implicit": 1, "optional": True}),
        ("subject_unique_id", core.OctetBitString, {"implicit": 2, "optional": True}),
        ("extensions", asn1_x509.Extensions, {"explicit": 3, "optional": True}),
    ]


class _Certificate(core.Sequence):
    _fields: ClassVar = [
        ("tbs_certificate", _TbsCertificate),
        ("signature_algorithm", _AlgorithmIdentifier),
        ("signature_value", core.OctetBitString),
    ]


@dataclass(frozen=True, slots=True)
class GostCertificate:
    """What the gateway reads from an X.509 certificate for a GOST key."""

    public_key: GostPublicKey
    self_signature_valid: bool
    """Whether the certificate verifies with its own key (true of a self-signed one)."""

    @classmethod
    def from_der(cls, der: bytes) -> GostCertificate:
        try:
            certificate = _Certificate.load(der)
            tbs = certificate["tbs_certificate"]
            public_key = GostPublicKey.from_spki(tbs["subject_public_key_info"])
            signature = certificate["signature_value"].native
            tbs_bytes = tbs.dump()
        except (ValueError, TypeError, KeyError) as error:
            if isinstance(error, GostError):
                raise
            raise GostError(f"not a readable GOST certificate: {error}") from None
        return cls(public_key, public_key.verify(signature, tbs_bytes))


def self_signed_gost_certificate(
    key: GostPrivateKey, common_name: str, *, not_before: dt.datetime, days: int, organisation: str
) -> bytes:
    """A self-signed X.509 v3 certificate for ``key``, signed with it (DER).

    The extensions are those of ``keys.self_signed_certificate``: not a CA, for signing only.
    """
    name = asn1_x509.Name.build({"common_name": common_name, "organization_name": organisation}, use_printable=False)
    start = not_before.astimezone(dt.UTC).replace(microsecond=0)
    end = start + dt.timedelta(days=days)
    tbs = _TbsCertificate({
        "version": "v3",
        "serial_number": int.from_bytes(secrets.token_bytes(19), "big") | 1 << 150,
        "signature": _algorithm(_SIGNATURE_OID[key.size]),
        "issuer": name,
        "validity": {"not_before": asn1_x509.Time(name="utc_time", value=start),
                     "not_after": asn1_x509.Time(name="utc_time", value=end)},
        "subject": name,
        "subject_public_key_info": key.public_key().spki(),
        "extensions": [
            {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": False}},
            {"extn_id": "key_usage", "critical": True,
             "extn_value": asn1_x509.KeyUsage({"digital_signature", "non_repudiation"})},
        ],
    })
    signature = key.sign(tbs.dump())
    return _Certificate({
        "tbs_certificate": tbs,
        "signature_algorithm": _algorithm(_SIGNATURE_OID[key.size]),
        "signature_value": signature,
    }).dump()
