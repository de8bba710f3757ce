"""Signed JSON between the gateway and members with ``sign_json``: detached compact JWS.

The signature travels in ``X-JWS-Signature`` as ``BASE64URL(header)..BASE64URL(signature)``
(RFC 7515 Appendix F, payload detached): the signing input is the header and the body bytes
exactly as sent. Detached, because the body stays the plain JSON every relay, log-free
debugging tool and JSON Schema check already understands, and the gateway relays those very
bytes; an ``application/jose`` envelope would have to be unwrapped and re-wrapped at every hop.

The protected header carries the claims that make a signature single-use:

====== ================================================================================
alg    ``ES256`` (EC P-256) or ``PS256`` (RSA ≥ 2048); nothing else — not ``none``, not an
       HMAC (a public key used as an HMAC secret is the classic HS/RS confusion)
kid    one of the keys configured for the sender (``jws_keys``)
iat    within ``[server] max_clock_skew_seconds`` of the receiver's clock
exp    in the future, at most ``[jws] max_lifetime_seconds`` after ``iat``
jti    the message id (``X-Message-Id``): the signature covers the idempotency key, so a
       captured body and signature cannot be sent again as a new message
aud    the receiving member (``gateway`` for what members send)
typ    optional, ``JOSE``
====== ================================================================================

Any other header parameter (``jwk``, ``jku``, ``x5u``, ``b64``, ``crit`` …) is refused: keys are
only ever the configured ones. A configured key may be a certificate (PEM): its revocation is
then checked like that of the certificates that verify XML signatures
(``gateway.security.revocation``), after the signature verifies and before anything is stored.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey
from joserfc.registry import HeaderParameter

from gateway.errors import ConfigError, GatewayError
from gateway.security.replay import Freshness
from gateway.store import Evidence, Message

if TYPE_CHECKING:  # settings are read, not depended on: gateway.config imports this package
    from gateway.config import GatewayConfig
    from gateway.security.revocation import RevocationChecker

__all__ = ["ALGORITHMS", "SIGNATURE_HEADER", "InvalidSignature", "JsonSignatures", "SigningKey", "sign", "verify"]

SIGNATURE_HEADER = "X-JWS-Signature"
ALGORITHMS = ("ES256", "PS256")

_HEADER = frozenset({"alg", "kid", "typ", "iat", "exp", "jti", "aud"})
_MAX_SIGNATURE_CHARS = 4096
_MIN_RSA_BITS = 2048
_REGISTRY = jws.JWSRegistry(
    header_registry={
        "iat": HeaderParameter("Issued at", "int", True),
        "exp": HeaderParameter("Expires at", "int", True),
        "jti": HeaderParameter("Message id", "str", True),
        "aud": HeaderParameter("Audience", "str", True),
    },
    algorithms=list(ALGORITHMS),
)


class InvalidSignature(GatewayError):
    status, slug, title = 401, "invalid-signature", "The message signature is not acceptable"


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    key: Key

    @property
    def algorithm(self) -> str:
        return "ES256" if isinstance(self.key, ECKey) else "PS256"


@dataclass(frozen=True, slots=True)
class SignedClaims:
    """What a verified signature says."""

    key_id: str
    algorithm: str
    issued_at: int
    expires_at: int
    message_id: str
    audience: str


def sign(body: bytes, key: SigningKey, *, audience: str, message_id: str, now: float, lifetime: float) -> str:
    """The detached compact JWS over ``body`` for ``audience``, bound to ``message_id``."""
    header = {
        "alg": key.algorithm, "kid": key.key_id, "typ": "JOSE",
        "iat": int(now), "exp": int(now + lifetime), "jti": message_id, "aud": audience,
    }
    token = jws.serialize_compact(header, body, key.key, registry=_REGISTRY)
    return jws.detach_content(token)


def verify(
    signature: str | None,
    body: bytes,
    *,
    keys: Mapping[str, Key],
    audience: str,
    message_id: str | None,
    freshness: Freshness,
    max_lifetime: float,
) -> SignedClaims:
    """Check a detached JWS over ``body``; raise ``InvalidSignature`` (or ``StaleMessage``) saying why."""
    if not signature:
        raise InvalidSignature(f"send {SIGNATURE_HEADER}: a detached JWS (header..signature) over the body, "
                               f"signed with {' or '.join(ALGORITHMS)}")
    if len(signature) > _MAX_SIGNATURE_CHARS or signature.count(".") != 2 or signature.split(".")[1]:
        raise InvalidSignature(f"{SIGNATURE_HEADER} must be a compact JWS with the payload detached "
                               "(header..signature): the body itself is the payload")
    try:
        token = jws.extract_compact(signature.encode("ascii"), body, _REGISTRY)
    except (JoseError, ValueError, UnicodeEncodeError):
        raise InvalidSignature(f"{SIGNATURE_HEADER} is not a readable JWS: its header is not base64url JSON") from None
    header = token.headers()
    unexpected = sorted(set(header) - _HEADER)
    if unexpected:
        raise InvalidSignature(f"header parameters {', '.join(unexpected)} are not accepted; "
                               f"the protected header holds {', '.join(sorted(_HEADER))} only")
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise InvalidSignature(f"alg {str(algorithm)[:20]!r} is not accepted; sign with {' or '.join(ALGORITHMS)}")
    key_id = header.get("kid")
    key = keys.get(key_id) if isinstance(key_id, str) else None
    if key is None:
        raise InvalidSignature(f"kid {str(key_id)[:64]!r} is not one of your configured keys "
                               f"({', '.join(sorted(keys))}); sign with one of them")
    try:
        genuine = jws.validate_compact(token, key, registry=_REGISTRY)
    except JoseError:
        # joserfc's description names its internals and may quote what was sent.
        raise InvalidSignature(f"the signature cannot be checked with key {key_id!r}: it is not a {algorithm} "
                               "signature of the body (a value of the wrong length or encoding)") from None
    if not genuine:
        raise InvalidSignature("the signature does not match the body: it was altered, or signed with another key")
    return _claims(header, audience=audience, message_id=message_id, freshness=freshness, max_lifetime=max_lifetime)


def _claims(header: Mapping[str, Any], *, audience: str, message_id: str | None, freshness: Freshness,
            max_lifetime: float) -> SignedClaims:
    issued_at, expires_at = header["iat"], header["exp"]
    freshness.check(issued_at, what="the signature's iat")
    if expires_at <= freshness.clock():
        raise InvalidSignature("the signature has expired (exp is past): sign the message again")
    if not 0 < expires_at - issued_at <= max_lifetime:
        raise InvalidSignature(f"exp must be later than iat and at most {max_lifetime:g} s after it")
    if header["aud"] != audience:
        raise InvalidSignature(f"the signature is for {header['aud'][:64]!r}, not {audience!r}: "
                               "it was made for another receiver")
    if message_id is None:
        raise InvalidSignature("send X-Message-Id: a signed message is bound to its id (jti)")
    if header["jti"] != message_id:
        raise InvalidSignature("the signature's jti is not this message's X-Message-Id: a signature is used "
                               "for one message only")
    return SignedClaims(header["kid"], header["alg"], issued_at, expires_at, message_id, audience)


class JsonSignatures:
    """The exchange's JSON signatures: each signing member's keys, and the gateway's own key."""

    def __init__(
        self,
        *,
        gateway_id: str,
        signing_key: SigningKey | None,
        member_keys: Mapping[str, Mapping[str, Key]],
        freshness: Freshness,
        max_lifetime: float,
        member_certificates: Mapping[str, Mapping[str, x509.Certificate]] | None = None,
        revocation: RevocationChecker | None = None,
    ) -> None:
        self._gateway_id = gateway_id
        self._signing_key = signing_key
        self._member_keys = member_keys
        self._member_certificates = member_certificates or {}
        self._revocation = revocation
        self._freshness = freshness
        self._max_lifetime = max_lifetime

    @classmethod
    def from_config(cls, config: GatewayConfig, clock: Callable[[], float] = time.time, *,
                    revocation: RevocationChecker | None = None) -> JsonSignatures:
        base = config.base_dir
        key = config.jws.signing_key
        signing = {member_id: {kid: _verification_key(base / path) for kid, path in member.jws_keys.items()}
                   for member_id, member in config.members.items() if member.sign_json}
        return cls(
            gateway_id=config.server.member_id,
            signing_key=SigningKey(config.jws.key_id, _private_key(base / key)) if key is not None else None,
            member_keys={member_id: {kid: key for kid, (key, _) in keys.items()} for member_id, keys in signing.items()},
            member_certificates={member_id: {kid: certificate for kid, (_, certificate) in keys.items()
                                             if certificate is not None} for member_id, keys in signing.items()},
            revocation=revocation,
            freshness=Freshness(config.server.max_clock_skew_seconds, clock),
            max_lifetime=config.jws.max_lifetime_seconds,
        )

    def certificates(self) -> list[tuple[str, str, x509.Certificate]]:
        """(member, key id, certificate) of every key configured as a certificate."""
        return [(member_id, kid, certificate) for member_id, keys in self._member_certificates.items()
                for kid, certificate in keys.items()]

    async def verify(self, sender: str, signature: str | None, body: bytes, *,
                     message_id: str | None) -> SignedClaims | None:
        """Verify what ``sender`` sends, if it signs JSON; None when it does not. A key configured
        as a certificate must not be revoked (``RevocationChecker.check`` raises)."""
        keys = self._member_keys.get(sender)
        if keys is None:
            return None
        claims = verify(signature, body, keys=keys, audience=self._gateway_id, message_id=message_id,
                        freshness=self._freshness, max_lifetime=self._max_lifetime)
        certificate = self._member_certificates.get(sender, {}).get(claims.key_id)
        if certificate is not None and self._revocation is not None:
            await self._revocation.check(sender, certificate)
        return claims

    def evidence(self, sender: str, claims: SignedClaims, signature: str, body: bytes) -> Evidence:
        """What ``sender`` signed, kept as evidence: the compact JWS with the body put back in
        (RFC 7515 §7.1), which any JOSE library verifies on its own, and the key's certificate
        if the key was configured as one."""
        header, _, value = signature.partition("..")
        payload = base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")
        certificate = self._member_certificates.get(sender, {}).get(claims.key_id)
        return Evidence(f"{header}.{payload}.{value}".encode("ascii"), "application/jose",
                        None if certificate is None else certificate.public_bytes(serialization.Encoding.DER))

    def headers_for(self, message: Message) -> dict[str, str]:
        """The signature header for a JSON delivery to a signing member; empty for anyone else."""
        if self._signing_key is None or message.recipient not in self._member_keys or not _is_json(message.content_type):
            return {}
        # Signed at each attempt: a retry hours later still carries a fresh iat.
        return {SIGNATURE_HEADER: sign(message.body, self._signing_key, audience=message.recipient,
                                       message_id=message.id, now=self._freshness.clock(), lifetime=self._max_lifetime)}


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _private_key(path: Path) -> Key:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"{path}: the JSON signing key cannot be read: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise ConfigError(f"{path}: not an unencrypted PEM private key") from None
    return _accepted(path, key)


def _verification_key(path: Path) -> tuple[Key, x509.Certificate | None]:
    """A member's key from a PEM public key, or from a PEM certificate (kept, to check its revocation)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: the member's JSON signature key cannot be read: {exc.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            certificate = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise ConfigError(f"{path}: not a PEM certificate") from None
        return _accepted(path, certificate.public_key()), certificate
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError(f"{path}: not a PEM public key or certificate") from None
    return _accepted(path, key), None


def _accepted(path: Path, key: Any) -> Key:
    """Only keys that fit an allowed algorithm: EC P-256 for ES256, RSA ≥ 2048 bits for PS256."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError(f"{path}: an EC key for ES256 must be on P-256, not {key.curve.name}")
        return ECKey.import_key(key)
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size < _MIN_RSA_BITS:
            raise ConfigError(f"{path}: an RSA key must have at least {_MIN_RSA_BITS} bits, not {key.key_size}")
        return RSAKey.import_key(key)
    raise ConfigError(f"{path}: JSON signatures use EC P-256 (ES256) or RSA (PS256) keys, not {type(key).__name__}")
