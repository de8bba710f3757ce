"""A certificate authority the tests create, the CRL it signs, and an OCSP responder it runs.

The responder is a real aiohttp server on 127.0.0.1 answering RFC 6960 requests with responses
built and signed by ``cryptography``; ``mode`` makes it misbehave the ways a responder (or
someone answering in its place) can: a key that is not the CA's, another request's nonce,
an answer for another certificate, tryLater, an HTTP error, or no listener at all.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from gateway.security.keys import new_private_key
from soap.signing import Credentials

_DAY = dt.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class TestCa:
    """A CA: its certificate, the certificates it issued, and what it revoked."""

    __test__ = False

    def __init__(self, common_name: str = "Exchange test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY).not_valid_after(now + 365 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.issued: dict[int, x509.Certificate] = {}
        self.revoked: dict[int, dt.datetime] = {}

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, *, ocsp_url: str | None = None, algorithm: str = "rsa-sha256",
              ocsp_signing: bool = False, key=None) -> Credentials:
        """A signing certificate (or, with ``ocsp_signing``, a delegated responder's)."""
        key = key or new_private_key(algorithm)
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(self.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY).not_valid_after(now + 90 * _DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if ocsp_url is not None:
            builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
        if ocsp_signing:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())
        self.issued[certificate.serial_number] = certificate
        return Credentials(key, certificate, algorithm)

    def revoke(self, credentials: Credentials, at: dt.datetime | None = None) -> None:
        self.revoked[credentials.certificate.serial_number] = at or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)

    def crl(self, *, last_update: dt.datetime | None = None, next_update: dt.timedelta = 7 * _DAY) -> bytes:
        start = last_update or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.certificate.subject)
                   .last_update(start).next_update(start + next_update))
        for serial, at in self.revoked.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@dataclass
class Responder:
    """The CA's OCSP responder on loopback. ``hits`` counts the requests it was sent."""

    ca: TestCa
    clock: Callable[[], float] = time.time
    mode: str = "ok"  # ok, wrong-key, impostor, wrong-nonce, no-nonce, other-certificate, try-later, http-error, huge, delegated
    next_update: dt.timedelta | None = dt.timedelta(hours=1)
    unknown: set[int] = field(default_factory=set)
    hits: int = 0
    chunked: bool = False  # answers without Content-Length, in chunks
    url: str = ""
    _runner: web.AppRunner | None = None
    _stranger: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    _delegate: Credentials | None = None

    async def start(self) -> Responder:
        app = web.Application()
        app.router.add_post("/ocsp", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/ocsp"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _answer(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.mode == "http-error":
            return web.Response(status=503)
        if self.mode == "huge":
            return await self._stream(request, bytes(1_000_000))
        if self.mode == "try-later":
            return self._der(ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER))
        asked = ocsp.load_der_ocsp_request(await request.read())
        certificate = self.ca.issued[asked.serial_number]
        if self.mode == "other-certificate":
            certificate = next(c for serial, c in self.ca.issued.items() if serial != asked.serial_number)
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        serial = certificate.serial_number
        if serial in self.ca.revoked:
            status, revoked_at = ocsp.OCSPCertStatus.REVOKED, self.ca.revoked[serial]
        elif serial in self.unknown:
            status, revoked_at = ocsp.OCSPCertStatus.UNKNOWN, None
        else:
            status, revoked_at = ocsp.OCSPCertStatus.GOOD, None
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=certificate, issuer=self.ca.certificate, algorithm=hashes.SHA1(), cert_status=status,
            this_update=now - dt.timedelta(minutes=1),
            next_update=None if self.next_update is None else now + self.next_update,
            revocation_time=revoked_at, revocation_reason=x509.ReasonFlags.key_compromise if revoked_at else None,
        )
        nonce = asked.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        if self.mode == "wrong-nonce":
            nonce = bytes(len(nonce))
        if self.mode != "no-nonce":
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        signer_certificate, key, encoding = self.ca.certificate, self.ca.key, ocsp.OCSPResponderEncoding.HASH
        if self.mode == "wrong-key":
            # Names the CA (by name), signed by someone else's key.
            signer_certificate, key, encoding = self._impostor(self.ca.certificate.subject), self._stranger, \
                ocsp.OCSPResponderEncoding.NAME
        elif self.mode == "impostor":
            # Names a responder of its own, which the CA never certified.
            signer_certificate, key = self._impostor(_name("Exchange test CA OCSP")), self._stranger
            builder = builder.certificates([signer_certificate])
        elif self.mode == "delegated":
            if self._delegate is None:
                self._delegate = self.ca.issue("Exchange test CA OCSP responder", ocsp_signing=True,
                                               key=ec.generate_private_key(ec.SECP256R1()), algorithm="ecdsa-sha256")
            signer_certificate, key = self._delegate.certificate, self._delegate.key
            builder = builder.certificates([signer_certificate])
        builder = builder.responder_id(encoding, signer_certificate)
        return self._der(builder.sign(key, hashes.SHA256()))

    @staticmethod
    async def _stream(request: web.Request, body: bytes) -> web.StreamResponse:
        """``body`` in chunks, without a Content-Length: a size check must count what arrives."""
        answer = web.StreamResponse(headers={"Content-Type": "application/ocsp-response"})
        answer.enable_chunked_encoding()
        await answer.prepare(request)
        for start in range(0, len(body), 16_384):
            await answer.write(body[start:start + 16_384])
        await answer.write_eof()
        return answer

    def _impostor(self, subject: x509.Name) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self._stranger.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY).not_valid_after(now + _DAY)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
            .sign(self._stranger, hashes.SHA256())
        )

    def _der(self, response: ocsp.OCSPResponse) -> web.Response:
        answer = web.Response(body=response.public_bytes(serialization.Encoding.DER),
                              content_type="application/ocsp-response")
        if self.chunked:
            answer.enable_chunked_encoding()
        return answer
