"""Transport identity: the certificates members prove who they are with, and the TLS contexts.

In ``identity = "mtls"`` mode every connection to the gateway is TLS 1.2 or newer and must
present a client certificate issued by the exchange's CA, not revoked by its CRL
(``VERIFY_CRL_CHECK_LEAF``) and valid today; anything else fails the handshake, before a single
byte of HTTP is read. The member is named in the certificate: the subject alternative name
``urn:reentry-gateway:member:<id>`` (preferred, because a URI cannot be confused with a host
name) or else the subject's common name.

``DevelopmentPki`` is a certificate authority kept in one folder, for loopback development, the
demo and the tests (``gateway pki init``). Production certificates come from the agencies'
own PKI; the gateway only needs the CA certificate, a CRL and its own key pair.

Layout of a development PKI folder::

    ca.pem  ca.key  crl.pem
    members/<id>.pem  members/<id>.key     one per member, the gateway included
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import ConfigError
from gateway.logs import get_logger

__all__ = [
    "MEMBER_URI_PREFIX",
    "DevelopmentPki",
    "PkiError",
    "ServerTls",
    "client_context",
    "member_of_certificate",
]

log = get_logger("gateway.tls")

MEMBER_URI_PREFIX = "urn:reentry-gateway:member:"
_MEMBER_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")  # as member ids in members.toml

_CA_DAYS = 5 * 365
_CERTIFICATE_DAYS = 365
# A CRL past its nextUpdate fails every handshake (OpenSSL treats it as unusable), so it is
# re-signed well before: by every revocation and by ``gateway pki crl``.
_CRL_DAYS = 30
# Tolerates clocks a little behind the one that issued the certificate.
_BACKDATE = dt.timedelta(minutes=5)


class PkiError(Exception):
    """A development PKI operation cannot be done; the message says why and what to do."""


def member_of_certificate(peer: dict[str, Any] | None) -> str | None:
    """The member id a verified peer certificate names (``ssl`` dict form), or None.

    The SAN URI wins over the common name; a certificate naming two members names none.
    """
    if not peer:
        return None
    uris = [value for kind, value in peer.get("subjectAltName", ()) if kind == "URI"]
    members = {uri[len(MEMBER_URI_PREFIX):] for uri in uris if uri.startswith(MEMBER_URI_PREFIX)}
    if members:
        return members.pop() if len(members) == 1 else None
    common_names = [value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"]
    return common_names[0] if len(common_names) == 1 else None


# ---------------------------------------------------------------- contexts


def _server_context(*, ca: Path, crl: Path, certificate: Path, private_key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    # A resumed session skips the certificate check, so a member revoked since could come
    # back on a session it had before: no session tickets, so TLS 1.3 never resumes (TLS 1.2
    # session ids still do, for OpenSSL's 300 s; docs/security.md).
    context.options |= ssl.OP_NO_TICKET
    context.num_tickets = 0
    _load(context, ca=ca, crl=crl, certificate=certificate, private_key=private_key)
    return context


def client_context(*, ca: Path, crl: Path | None = None, certificate: Path | None = None,
                   private_key: Path | None = None) -> ssl.SSLContext:
    """A client context trusting only ``ca`` (host names checked), presenting ``certificate``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(context, ca=ca, crl=crl, certificate=certificate, private_key=private_key)
    return context


def _load(context: ssl.SSLContext, *, ca: Path, crl: Path | None, certificate: Path | None,
          private_key: Path | None) -> None:
    """Load trust, revocation and the own key pair, naming the file at fault."""
    steps: list[tuple[Path, Callable[[], None]]] = [(ca, lambda: context.load_verify_locations(cafile=str(ca)))]
    if crl is not None:
        steps.append((crl, lambda: context.load_verify_locations(cafile=str(crl))))
    if certificate is not None and private_key is not None:
        steps.append((certificate, lambda: context.load_cert_chain(str(certificate), str(private_key))))
    for path, step in steps:
        if not path.exists():
            raise ConfigError(f"{path}: missing; create a development PKI with `gateway pki init` "
                              "or point [tls] at your CA's files")
        try:
            step()
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot be used for TLS: {exc}") from None
    if crl is not None:
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


class ServerTls:
    """The listener's TLS context, reloaded when its files change.

    A revocation must take effect without a restart, and Python cannot remove a CRL from a
    context. So the listener's context only hands each handshake over (``sni_callback``) to the
    current context, which is rebuilt when the CA, CRL, certificate or key file changes.
    """

    def __init__(self, *, ca: Path, crl: Path, certificate: Path, private_key: Path) -> None:
        self._files = {"ca": ca, "crl": crl, "certificate": certificate, "private_key": private_key}
        self._stamp = self._stamps()
        self._current = _server_context(**self._files)
        self.context = _server_context(**self._files)
        self.context.sni_callback = self._hand_over

    def _stamps(self) -> tuple[int, ...]:
        return tuple(_mtime(path) for path in self._files.values())

    def _hand_over(self, connection: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext) -> None:
        stamp = self._stamps()
        if stamp != self._stamp:
            try:
                self._current = _server_context(**self._files)
                log.info("TLS files changed: new handshakes use them")
            except ConfigError as exc:
                # Half-written files (a CRL being replaced): keep the last good context.
                log.error("TLS files changed but cannot be loaded; keeping the previous ones", error=str(exc))
            self._stamp = stamp
        connection.context = self._current


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


# ---------------------------------------------------------------- development PKI


@dataclass(frozen=True)
class DevelopmentPki:
    """A development certificate authority kept in ``directory`` (see the module docstring)."""

    directory: Path

    @property
    def ca_certificate(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def _ca_key(self) -> Path:
        return self.directory / "ca.key"

    def certificate(self, member: str) -> Path:
        return self.directory / "members" / f"{member}.pem"

    def private_key(self, member: str) -> Path:
        return self.directory / "members" / f"{member}.key"

    @classmethod
    def init(cls, directory: Path, members: Iterable[str]) -> DevelopmentPki:
        """A new CA, an empty CRL and a certificate for each of ``members``."""
        pki = cls(Path(directory))
        members = list(members)
        for member in members:
            _check_member_id(member)
        if pki.ca_certificate.exists():
            raise PkiError(f"{pki.ca_certificate}: a CA already exists here; issue more certificates "
                           "with `gateway pki issue`, or choose another --dir")
        pki.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reentry-gateway development CA")])
        now = _now()
        ca = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE).not_valid_after(now + dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(pki._ca_key, key)
        pki.ca_certificate.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        pki._sign_crl({})
        for member in members:
            pki.issue(member)
        return pki

    def issue(self, member: str, *, replace: bool = False, not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> Path:
        """A key pair and certificate for ``member``, usable to call and to serve on loopback.

        With ``replace`` (rotation) the current pair is kept as ``<id>.<serial>.pem/.key``,
        still valid until it is revoked, so the member can switch over without an outage.
        """
        _check_member_id(member)
        ca, ca_key = self._ca()
        target = self.certificate(member)
        if target.exists():
            if not replace:
                raise PkiError(f"{target}: {member!r} already has a certificate; rotate it with --replace")
            serial = f"{_read_certificate(target).serial_number:x}"
            target.rename(target.with_name(f"{member}.{serial}.pem"))
            self.private_key(member).rename(target.with_name(f"{member}.{serial}.key"))
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - _BACKDATE)
            .not_valid_after(not_after or now + dt.timedelta(days=_CERTIFICATE_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            # The member URI is the identity; localhost names let the same certificate serve
            # a simulator on loopback.
            .add_extension(x509.SubjectAlternativeName([
                x509.UniformResourceIdentifier(MEMBER_URI_PREFIX + member),
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(self.private_key(member), key)
        target.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return target

    def revoke(self, certificate: Path) -> int:
        """Add ``certificate`` to the CRL (and re-sign it); returns its serial number."""
        serial = _read_certificate(certificate).serial_number
        revoked = self._revoked()
        revoked.setdefault(serial, _now())
        self._sign_crl(revoked)
        return serial

    def refresh_crl(self) -> None:
        """Re-sign the CRL with the same entries and a new nextUpdate."""
        self._sign_crl(self._revoked())

    def server_context(self, member: str) -> ssl.SSLContext:
        """A listener serving as ``member`` and requiring client certificates from this CA."""
        return _server_context(ca=self.ca_certificate, crl=self.crl, certificate=self.certificate(member),
                               private_key=self.private_key(member))

    def client_context(self, member: str) -> ssl.SSLContext:
        """A client presenting ``member``'s certificate and trusting only this CA."""
        return client_context(ca=self.ca_certificate, crl=self.crl, certificate=self.certificate(member),
                              private_key=self.private_key(member))

    def _ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if not self.ca_certificate.exists():
            raise PkiError(f"{self.ca_certificate}: no CA here; create one with `gateway pki init`")
        key = serialization.load_pem_private_key(self._ca_key.read_bytes(), password=None)
        return _read_certificate(self.ca_certificate), key

    def _revoked(self) -> dict[int, dt.datetime]:
        crl = x509.load_pem_x509_crl(self.crl.read_bytes())
        return {entry.serial_number: entry.revocation_date_utc for entry in crl}

    def _sign_crl(self, revoked: Mapping[int, dt.datetime]) -> None:
        ca, ca_key = self._ca()
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.subject).last_update(now - _BACKDATE).next_update(now + dt.timedelta(days=_CRL_DAYS))
        )
        for serial, revoked_at in sorted(revoked.items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at).build())
        crl = builder.sign(ca_key, hashes.SHA256())
        # Replaced in one step: a listener reloading it mid-write would refuse everyone.
        partial = self.crl.with_suffix(".tmp")
        partial.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        partial.replace(self.crl)


def _check_member_id(member: str) -> None:
    if not _MEMBER_ID.match(member):
        raise PkiError(f"{member[:64]!r} is not a member id: lower-case letters, digits and _ . - only")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise PkiError(f"{path}: cannot be read: {exc.strerror}") from None
    except ValueError:
        raise PkiError(f"{path}: not a PEM certificate") from None


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable by its owner only (created 0600, never widened)."""
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.chmod(path, 0o600)
