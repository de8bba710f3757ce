"""Signing keys and certificates as files: read with precise errors, made for development when missing.

The gateway's own key and certificate are named in ``[signing]`` of gateway.toml; each member's
certificates in ``members.<id>.certificates`` of members.toml. Relative paths are relative to
the configuration folder. A missing gateway key is generated when the gateway starts — a
private key readable by its owner only (mode 0600, in a folder of mode 0700) and a self-signed
certificate — which suits loopback; in production the members pin a certificate they trust.

The gateway never makes a member's key. ``DevelopmentKeys`` does, for the simulators that play
members on loopback: a key beside the certificate the configuration pins for the member.
``new_private_key`` and ``self_signed_certificate`` are the building blocks for other tools that
make development keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import datetime as dt
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import pem
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigError
from gateway.security.gost import GostError, GostPrivateKey, self_signed_gost_certificate
from gateway.security.xmldsig import PinnedCertificate, PrivateKey, Verifier, WsSecuritySigner

if TYPE_CHECKING:  # settings are read, not depended on: gateway.config imports this package
    from gateway.config import GatewayConfig, MemberConfig, SigningConfig

__all__ = [
    "DevelopmentKeys",
    "gateway_signer",
    "member_verifier",
    "new_private_key",
    "provision_key_pair",
    "read_certificate",
    "read_private_key",
    "self_signed_certificate",
]

# RSA 2048 is the floor of current guidance (NIST SP 800-57) and fast to generate.
_RSA_BITS = 2048
_CURVES = {"ecdsa-sha256": ec.SECP256R1, "ecdsa-sha384": ec.SECP384R1}
# GOST 34.10-2015 keys of each size, on TC 26's paramSetA (R 1323565.1.024-2019).
_GOST_BITS = {"gost2015-256": 256, "gost2015-512": 512}
_DEVELOPMENT_DAYS = 365
_ORGANISATION = "reentry-gateway development"


def new_private_key(algorithm: str = "rsa-sha256") -> PrivateKey:
    """A fresh key for ``algorithm`` (a name from ``xmldsig.ALGORITHMS``)."""
    if algorithm in _CURVES:
        return ec.generate_private_key(_CURVES[algorithm]())
    if algorithm in _GOST_BITS:
        return GostPrivateKey.generate(_GOST_BITS[algorithm])
    if algorithm.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    raise ValueError(f"no key type for signature algorithm {algorithm!r}")


def self_signed_certificate(
    key: PrivateKey,
    common_name: str,
    *,
    not_before: dt.datetime | None = None,
    days: int = _DEVELOPMENT_DAYS,
) -> x509.Certificate:
    """A self-signed certificate for ``key``, valid ``days`` from ``not_before``.

    By default it starts a day ago, so a peer whose clock runs behind accepts it at once.
    """
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    if isinstance(key, GostPrivateKey):
        # ``cryptography`` holds no GOST key: the certificate is built with asn1crypto, signed
        # with the key itself, and read back as a certificate like any other.
        return x509.load_der_x509_certificate(
            self_signed_gost_certificate(key, common_name, not_before=start, days=days, organisation=_ORGANISATION)
        )
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANISATION),
    ])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def provision_key_pair(
    key_path: Path, certificate_path: Path, *, common_name: str, algorithm: str = "rsa-sha256"
) -> tuple[PrivateKey, x509.Certificate]:
    """The key and certificate at these paths, generated first where missing.

    A missing key is generated (mode 0600); a missing certificate is self-signed for the key.
    A certificate without its key is an error: a new key would not match it.
    """
    if not key_path.exists():
        if certificate_path.exists():
            raise ConfigError(f"{key_path}: missing, but its certificate {certificate_path} exists; restore the key")
        _create(key_path, _pem_private_key(new_private_key(algorithm)), mode=0o600)
    key = read_private_key(key_path)
    if not certificate_path.exists():
        certificate = self_signed_certificate(key, common_name)
        _create(certificate_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return key, read_certificate(certificate_path)


def read_private_key(path: Path) -> PrivateKey:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: other users may read or change this key (mode {stat.S_IMODE(mode):04o}); "
            f"restrict it with: chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except UnsupportedAlgorithm:
        return _read_gost_private_key(path, data)
    except (ValueError, TypeError):
        # cryptography reports some unknown key algorithms as unreadable, not unsupported.
        if b"-----BEGIN PRIVATE KEY-----" in data:
            return _read_gost_private_key(path, data)
        raise ConfigError(f"{path}: not an unencrypted PEM private key (PKCS#8)") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigError(f"{path}: XML signatures need an RSA, EC or GOST key, not {type(key).__name__}")
    return key


def _read_gost_private_key(path: Path, data: bytes) -> GostPrivateKey:
    try:
        _, _, der = pem.unarmor(data)
        return GostPrivateKey.from_pkcs8(der)
    except (ValueError, GostError) as error:
        raise ConfigError(f"{path}: not an unencrypted PEM private key (PKCS#8) of RSA, EC or GOST: {error}") from None


def read_certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigError(f"{path}: not a PEM X.509 certificate") from None


def gateway_signer(config: SigningConfig, base_dir: Path, *, member_id: str) -> WsSecuritySigner:
    """The gateway's signer, its key and certificate generated for development where missing."""
    key, certificate = provision_key_pair(
        base_dir / config.key, base_dir / config.certificate, common_name=member_id, algorithm=config.algorithm
    )
    try:
        return WsSecuritySigner(key, certificate, algorithm=config.algorithm)
    except ValueError as error:
        raise ConfigError(f"signing: {base_dir / config.key}: {error}") from None


def member_verifier(
    member_id: str, member: MemberConfig, base_dir: Path, *, max_clock_skew_seconds: float = 300.0
) -> Verifier:
    """A verifier pinned to the certificates configured for ``member_id``, accepting its
    ``signature_algorithm`` only when one is configured (checked against the certificates)."""
    pinned = []
    for index, entry in enumerate(member.certificates):
        path = base_dir / entry.path
        where = f"members.{member_id}.certificates[{index}]"
        if not path.exists():
            raise ConfigError(
                f"{where}: {path}: no such file; install the member's certificate (PEM) there "
                "(for the simulated members, `gateway simulate` writes development ones)"
            )
        try:
            certificate = read_certificate(path)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        pinned.append(PinnedCertificate.of(certificate, path.name, not_before=entry.not_before, not_after=entry.not_after))
    try:
        return Verifier(
            member_id, pinned, required=member.signature_required, algorithm=member.signature_algorithm,
            max_clock_skew_seconds=max_clock_skew_seconds,
        )
    except ValueError as error:
        key = "signature_algorithm" if member.signature_algorithm else "certificates"
        raise ConfigError(f"members.{member_id}.{key}: {error}") from None


@dataclass(frozen=True)
class DevelopmentKeys:
    """Keys for the simulators that play members on loopback, and their trust in the gateway."""

    signers: Mapping[str, WsSecuritySigner]
    """Each simulated member's signer, for members whose configuration pins a certificate."""
    gateway: Verifier
    """Pinned to the gateway's certificate: what a simulator verifies the gateway's requests with."""

    @classmethod
    def provision(cls, config: GatewayConfig, members: Iterable[str]) -> DevelopmentKeys:
        """Read, or generate where missing, a key beside the first certificate each member pins
        (``penal.pem`` beside ``penal.key.pem``), and the gateway's own key and certificate."""
        signers = {}
        for member_id in members:
            member = config.members.get(member_id)
            if member is None or not member.certificates:
                continue
            certificate_path = config.base_dir / member.certificates[0].path
            key_path = certificate_path.with_name(certificate_path.name.removesuffix(".pem") + ".key.pem")
            algorithm = member.signature_algorithm or "rsa-sha256"
            key, certificate = provision_key_pair(key_path, certificate_path, common_name=member_id, algorithm=algorithm)
            signers[member_id] = WsSecuritySigner(key, certificate, algorithm=algorithm)
        gateway = gateway_signer(config.signing, config.base_dir, member_id=config.server.member_id)
        pinned = PinnedCertificate.of(gateway.certificate, (config.base_dir / config.signing.certificate).name)
        return cls(signers, Verifier(config.server.member_id, [pinned], required=True))


def _pem_private_key(key: PrivateKey) -> bytes:
    if isinstance(key, GostPrivateKey):
        return key.private_bytes_pem()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _create(path: Path, content: bytes, *, mode: int) -> None:
    """Write ``path`` unless it exists, all at once: a concurrent reader sees the whole file or none.

    The content goes to a temporary file in the same folder, which is then linked into place;
    the link fails if another process created the file first, and that file is kept.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        os.chmod(temporary, mode)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
