"""Revocation of the certificates that verify members' signatures: CRLs and OCSP.

A pinned certificate proves who signed only while its CA stands by it. ``RevocationChecker``
asks the CA, for a certificate it issued (one of ``[revocation] issuers``):

- the configured CRLs (``[revocation] crls``), files re-read when they change and usable until
  their nextUpdate;
- the OCSP responder the certificate names in its Authority Information Access extension
  (RFC 6960), asked over HTTP with a nonce, its answer verified (signed by the CA or by a
  responder the CA certified for OCSP signing, for this very certificate, current, the nonce
  echoed if echoed at all) and kept until its nextUpdate.

A certificate revoked by either is refused (``CertificateRevoked``); one the responder does not
know, too. When neither gives a current answer — the responder cannot be reached, answers
``tryLater``, the CRL is past its nextUpdate — ``on_unreachable`` decides: ``hard-fail`` refuses
the message (``RevocationUnavailable``, 503: nothing wrong with the message, try again),
``soft-fail`` accepts it, logs a warning and counts it. An answer that arrives but does not
verify is refused in either mode: it means someone answers for the CA who is not it.

A certificate no configured CA issued (a self-signed one pinned as it is) has no one to ask:
pinning it is the whole of its trust, and it is accepted as before. docs/security.md
("Revocation") gives the reasons.

The check is asynchronous and runs after the (synchronous) signature check has named the
certificate: the fetch never blocks the event loop, is bounded in time and size, happens once
for concurrent messages signed with one certificate, and not at all while a cached answer is
current. The cache holds one entry per pinned certificate, so it cannot grow beyond the
configuration.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import aiohttp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from gateway.errors import ConfigError, GatewayError
from gateway.logs import get_logger

if TYPE_CHECKING:  # settings are read, not depended on: gateway.config imports this package
    from gateway.config import GatewayConfig

__all__ = [
    "CertificateRevoked",
    "CertificateStatusUnknown",
    "OnUnreachable",
    "RevocationChecker",
    "RevocationUnavailable",
    "ocsp_responders",
]

log = get_logger("gateway.revocation")

OnUnreachable = Literal["soft-fail", "hard-fail"]

_OCSP_REQUEST = "application/ocsp-request"
_OCSP_RESPONSE = "application/ocsp-response"
_NONCE_BYTES = 16
# More certificates than any exchange pins: a bound on what is remembered per certificate.
_MAX_PLANS = 4096
# The responder's own failures; any other unsuccessful status says the request or the
# responder's configuration is wrong, which waiting will not mend.
_TRANSIENT = {ocsp.OCSPResponseStatus.TRY_LATER, ocsp.OCSPResponseStatus.INTERNAL_ERROR}


class CertificateRevoked(GatewayError):
    status, slug, title = 401, "certificate-revoked", "The signing certificate is revoked"


class CertificateStatusUnknown(GatewayError):
    status, slug, title = 401, "certificate-status-unknown", "The signing certificate is unknown to its CA"


class RevocationUnavailable(GatewayError):
    """No current answer on the signing certificate, and the deployment refuses without one."""

    status, slug, title = 503, "revocation-unavailable", "The signing certificate's status cannot be established"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class _Status(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class _Answer:
    status: _Status
    until: float
    source: str
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    issuer: x509.Certificate
    cache_key: tuple[bytes, int]
    responders: tuple[str, ...]
    serial: str


class _NoAnswer(Exception):
    """The source gave no current answer (unreachable, stale, tryLater)."""


class _Forged(Exception):
    """An answer arrived but is not the CA's answer on this certificate."""


def ocsp_responders(certificate: x509.Certificate) -> list[str]:
    """The http(s) OCSP responder URLs the certificate's AIA extension names."""
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        description.access_location.value for description in access
        if description.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(description.access_location, x509.UniformResourceIdentifier)
        and description.access_location.value.lower().startswith(("http://", "https://"))
    ]


class _CrlFile:
    """One configured CRL, re-read when the file changes; the last good one kept otherwise."""

    def __init__(self, path: Path, issuers: Sequence[x509.Certificate]) -> None:
        self.path = path
        self._issuers = issuers
        self._stamp = _mtime(path)
        self.crl, self.issuer = self._read()
        self.revoked = _index(self.crl)

    def _read(self) -> tuple[x509.CertificateRevocationList, x509.Certificate]:
        try:
            data = self.path.read_bytes()
        except OSError as error:
            raise ConfigError(f"revocation.crls: {self.path}: cannot be read: {error.strerror}") from None
        try:
            crl = (x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data))
        except ValueError:
            raise ConfigError(f"revocation.crls: {self.path}: not a CRL (PEM or DER)") from None
        for issuer in self._issuers:
            if issuer.subject == crl.issuer and crl.is_signature_valid(issuer.public_key()):
                return crl, issuer
        raise ConfigError(f"revocation.crls: {self.path}: signed by {crl.issuer.rfc4514_string()}, which is not "
                          "one of revocation.issuers (or the signature does not verify with it)")

    def current(self) -> x509.CertificateRevocationList:
        stamp = _mtime(self.path)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.crl, self.issuer = self._read()
                self.revoked = _index(self.crl)
                log.info("CRL changed: later checks use it", crl=self.path.name)
            except ConfigError as error:
                # A CRL being replaced may be half written: keep the last good one.
                log.error("CRL changed but cannot be used; keeping the previous one", error=str(error))
        return self.crl


class RevocationChecker:
    """Checks signing certificates against the CAs' CRLs and OCSP responders (module docstring)."""

    def __init__(
        self,
        *,
        issuers: Sequence[x509.Certificate] = (),
        crls: Sequence[Path] = (),
        ocsp_enabled: bool = True,
        on_unreachable: OnUnreachable = "hard-fail",
        per_member: Mapping[str, OnUnreachable] | None = None,
        timeout_seconds: float = 3.0,
        max_response_bytes: int = 65_536,
        cache_seconds: float = 300.0,
        retry_seconds: float = 30.0,
        max_clock_skew_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
        record: Callable[[str, str], None] = lambda source, outcome: None,
    ) -> None:
        self._issuers = tuple(issuers)
        self._crls = [_CrlFile(path, self._issuers) for path in crls]
        self._ocsp = ocsp_enabled
        self._on_unreachable = on_unreachable
        self._per_member = dict(per_member or {})
        self._timeout = timeout_seconds
        self._max_bytes = max_response_bytes
        self._cache_seconds = cache_seconds
        self._retry_seconds = retry_seconds
        self._skew = dt.timedelta(seconds=max_clock_skew_seconds)
        self._clock = clock
        self._record = record
        self._plans: dict[int, tuple[x509.Certificate, _Plan | None]] = {}
        self._answers: dict[tuple[bytes, int], _Answer] = {}
        self._failed_until: dict[tuple[bytes, int], float] = {}
        self._pending: dict[tuple[bytes, int], asyncio.Future[_Answer]] = {}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, config: GatewayConfig, *, clock: Callable[[], float] = time.time,
                    record: Callable[[str, str], None] = lambda source, outcome: None) -> RevocationChecker:
        settings, base = config.revocation, config.base_dir
        issuers = [certificate for index, path in enumerate(settings.issuers)
                   for certificate in _read_issuers(base / path, f"revocation.issuers[{index}]")]
        return cls(
            issuers=issuers, crls=[base / path for path in settings.crls], ocsp_enabled=settings.ocsp,
            on_unreachable=settings.on_unreachable,
            per_member={member_id: member.revocation_unreachable for member_id, member in config.members.items()
                        if member.revocation_unreachable is not None},
            timeout_seconds=settings.timeout_seconds, max_response_bytes=settings.max_response_bytes,
            cache_seconds=settings.cache_seconds, retry_seconds=settings.retry_seconds,
            max_clock_skew_seconds=config.server.max_clock_skew_seconds, clock=clock, record=record,
        )

    def issuer_of(self, certificate: x509.Certificate) -> x509.Certificate | None:
        """The configured CA that issued ``certificate`` (its signature verified), or None."""
        plan = self._plan(certificate)
        return None if plan is None else plan.issuer

    def _plan(self, certificate: x509.Certificate) -> _Plan | None:
        """What to ask about ``certificate``, worked out once: the certificates checked are the
        pinned ones, the same objects at every message, so this is looked up by identity."""
        known = self._plans.get(id(certificate))
        if known is not None and known[0] is certificate:
            return known[1]
        issuer = self._find_issuer(certificate)
        plan = None if issuer is None else _Plan(
            issuer, (issuer.fingerprint(hashes.SHA256()), certificate.serial_number),
            tuple(ocsp_responders(certificate)) if self._ocsp else (), f"{certificate.serial_number:x}")
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()  # only a caller passing fresh copies of its certificates gets here
        self._plans[id(certificate)] = (certificate, plan)  # holds the certificate: its id stays its own
        return plan

    def _find_issuer(self, certificate: x509.Certificate) -> x509.Certificate | None:
        for issuer in self._issuers:
            if issuer.subject != certificate.issuer:
                continue
            try:
                certificate.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return issuer
        return None

    def problem_with(self, certificate: x509.Certificate) -> str | None:
        """Why ``certificate`` (pinned for a member) cannot be checked as configured, if it cannot.

        Checked at start-up: a certificate that names an OCSP responder but whose CA is not
        configured would be trusted without the check its CA asks for."""
        if self._ocsp and ocsp_responders(certificate) and self.issuer_of(certificate) is None:
            return (f"it names an OCSP responder ({ocsp_responders(certificate)[0]}), but its issuer "
                    f"{certificate.issuer.rfc4514_string()} is not one of revocation.issuers: add the CA's "
                    "certificate there so the responder's answers can be checked")
        return None

    async def check(self, member: str, certificate: x509.Certificate) -> None:
        """Return if ``certificate``, which verified ``member``'s signature, may be relied on.

        Raises ``CertificateRevoked``, ``CertificateStatusUnknown`` or, without a current answer
        under hard-fail, ``RevocationUnavailable``."""
        plan = self._plan(certificate)
        if plan is None:
            return
        now = self._clock()
        answers: list[_Answer] = []
        missing: list[str] = []
        crl_answer = self._crl_answer(certificate, plan.issuer, now)
        if isinstance(crl_answer, str):
            missing.append(crl_answer)
        elif crl_answer is not None:
            answers.append(crl_answer)
        if plan.responders and not any(answer.status is _Status.REVOKED for answer in answers):
            try:
                answers.append(await self._ocsp_answer(certificate, plan))
            except _NoAnswer as error:
                missing.append(str(error))
        serial = plan.serial
        for answer in answers:
            if answer.status is _Status.REVOKED:
                self._record(answer.source, "revoked")
                when = f" on {answer.revoked_at.isoformat()}" if answer.revoked_at else ""
                raise CertificateRevoked(
                    f"the certificate that signed this message (serial {serial}, issued by "
                    f"{certificate.issuer.rfc4514_string()}) was revoked by its CA{when} ({answer.source}): "
                    f"member {member} must sign with a current certificate and have it pinned")
        for answer in answers:
            if answer.status is _Status.UNKNOWN:
                self._record(answer.source, "unknown")
                raise CertificateStatusUnknown(
                    f"the OCSP responder of {certificate.issuer.rfc4514_string()} does not know the certificate "
                    f"that signed this message (serial {serial}): it is not one that CA issued")
        if answers:
            for answer in answers:
                self._record(answer.source, "good")
            return
        if not missing:
            return  # issued by a configured CA that publishes neither a CRL here nor a responder
        mode = self._per_member.get(member, self._on_unreachable)
        reason = "; ".join(missing)
        if mode == "soft-fail":
            self._record("none", "soft_fail")
            log.warning("signing certificate's revocation status unavailable; accepted (soft-fail)",
                        member=member, serial=serial, reason=reason)
            return
        self._record("none", "hard_fail")
        log.warning("signing certificate's revocation status unavailable; refused (hard-fail)",
                    member=member, serial=serial, reason=reason)
        raise RevocationUnavailable(
            f"the revocation status of the certificate that signed this message (serial {serial}) cannot be "
            f"established now ({reason}); nothing was accepted: send the message again later",
            retry_after=max(1, round(self._retry_seconds)))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---------------------------------------------------------------- CRLs

    def _crl_answer(self, certificate: x509.Certificate, issuer: x509.Certificate, now: float) -> _Answer | str | None:
        """The CRLs' answer; a reason string when the CA's CRL is past its nextUpdate; None without one."""
        stale = None
        for entry in self._crls:
            if entry.issuer.subject != issuer.subject:
                continue
            crl = entry.current()
            next_update = crl.next_update_utc
            if next_update is not None and next_update.timestamp() < now - self._skew.total_seconds():
                stale = f"the CRL {entry.path.name} is past its nextUpdate {next_update.isoformat()}"
                continue
            revoked_at = entry.revoked.get(certificate.serial_number)
            until = next_update.timestamp() if next_update is not None else now + self._cache_seconds
            if revoked_at is not None:
                return _Answer(_Status.REVOKED, until, "crl", revoked_at)
            return _Answer(_Status.GOOD, until, "crl")
        return stale

    # ---------------------------------------------------------------- OCSP

    async def _ocsp_answer(self, certificate: x509.Certificate, plan: _Plan) -> _Answer:
        key = plan.cache_key
        now = self._clock()
        cached = self._answers.get(key)
        if cached is not None and now < cached.until:
            return cached
        if now < self._failed_until.get(key, 0.0):
            raise _NoAnswer("the OCSP responder could not be reached a moment ago")
        pending = self._pending.get(key)
        if pending is None:
            # One request for every message signed with this certificate meanwhile.
            pending = asyncio.ensure_future(self._ask(certificate, plan.issuer, plan.responders))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        try:
            answer = await asyncio.shield(pending)
        except _NoAnswer:
            self._failed_until[key] = self._clock() + self._retry_seconds
            raise
        self._answers[key] = answer
        self._failed_until.pop(key, None)
        return answer

    async def _ask(self, certificate: x509.Certificate, issuer: x509.Certificate, responders: Sequence[str]) -> _Answer:
        nonce = os.urandom(_NONCE_BYTES)
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(certificate, issuer, hashes.SHA1())  # SHA-1 CertID: what every responder reads (RFC 5019)
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
        )
        failures = []
        for url in responders:
            try:
                der = await self._post(url, request.public_bytes(serialization.Encoding.DER))
                return self._read(der, request, nonce, certificate, issuer)
            except _NoAnswer as error:
                failures.append(f"{url}: {error}")
            except _Forged as error:
                self._record("ocsp", "invalid")
                log.error("OCSP answer refused", responder=url, serial=f"{certificate.serial_number:x}",
                          reason=str(error))
                raise RevocationUnavailable(
                    f"the OCSP answer on the certificate that signed this message is not acceptable ({error}); "
                    "nothing was accepted: the exchange operator has been alerted",
                    retry_after=max(1, round(self._retry_seconds))) from None
        self._record("ocsp", "unreachable")
        raise _NoAnswer("OCSP: " + "; ".join(failures))

    async def _post(self, url: str, body: bytes) -> bytes:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        try:
            async with self._session.post(url, data=body, allow_redirects=False,
                                          headers={"Content-Type": _OCSP_REQUEST, "Accept": _OCSP_RESPONSE}) as response:
                if response.status != 200:
                    raise _NoAnswer(f"HTTP {response.status}")
                if response.content_length is not None and response.content_length > self._max_bytes:
                    raise _NoAnswer(f"the answer is {response.content_length} bytes, over the limit of {self._max_bytes} bytes")
                data = bytearray()
                async for chunk in response.content.iter_any():  # chunked answers carry no length
                    data += chunk
                    if len(data) > self._max_bytes:
                        raise _NoAnswer(f"the answer is over the limit of {self._max_bytes} bytes")
                return bytes(data)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise _NoAnswer(f"cannot be reached ({type(error).__name__})") from None

    def _read(self, der: bytes, request: ocsp.OCSPRequest, nonce: bytes, certificate: x509.Certificate,
              issuer: x509.Certificate) -> _Answer:
        try:
            response = ocsp.load_der_ocsp_response(der)
        except ValueError:
            raise _Forged("not a DER OCSP response") from None
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            if response.response_status in _TRANSIENT:
                raise _NoAnswer(f"the responder answered {response.response_status.name}")
            raise _Forged(f"the responder answered {response.response_status.name}")
        signer = self._responder(response, issuer)
        try:
            _verify(signer.public_key(), response.signature, response.tbs_response_bytes,
                    response.signature_hash_algorithm)
        except (InvalidSignature, TypeError, ValueError):
            raise _Forged("its signature does not verify with the responder's key") from None
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None  # pre-produced answers carry none (RFC 5019); their dates bound them instead
        if echoed is not None and echoed != nonce:
            raise _Forged("it echoes another request's nonce")
        single = next((
            answer for answer in response.responses
            if answer.serial_number == request.serial_number
            and answer.issuer_key_hash == request.issuer_key_hash
            and answer.issuer_name_hash == request.issuer_name_hash
            and answer.hash_algorithm.name == request.hash_algorithm.name
        ), None)
        if single is None:
            raise _Forged("it answers for another certificate")
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        if single.this_update_utc > now + self._skew:
            raise _Forged(f"it is dated {single.this_update_utc.isoformat()}, in the future")
        next_update = single.next_update_utc
        if next_update is not None and next_update < now - self._skew:
            raise _NoAnswer(f"its answer expired at {next_update.isoformat()} (nextUpdate)")
        until = next_update.timestamp() if next_update is not None else now.timestamp() + self._cache_seconds
        if single.certificate_status is ocsp.OCSPCertStatus.REVOKED:
            return _Answer(_Status.REVOKED, until, "ocsp", single.revocation_time_utc)
        if single.certificate_status is ocsp.OCSPCertStatus.UNKNOWN:
            return _Answer(_Status.UNKNOWN, until, "ocsp")
        return _Answer(_Status.GOOD, until, "ocsp")

    def _responder(self, response: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate:
        """The certificate whose key signed ``response``: the CA's, or one the CA issued for OCSP
        signing (RFC 6960 §4.2.2.2) and sent along; anything else is not the CA's answer."""
        if _names(response, issuer):
            return issuer
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        for candidate in response.certificates:
            if not _names(response, candidate) or candidate.issuer != issuer.subject:
                continue
            try:
                candidate.verify_directly_issued_by(issuer)
                usage = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
                continue
            if ExtendedKeyUsageOID.OCSP_SIGNING in usage and \
                    candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
                return candidate
        raise _Forged("it is signed by neither the CA nor a responder the CA certified for OCSP signing")


def _index(crl: x509.CertificateRevocationList) -> dict[int, dt.datetime]:
    """The CRL's entries by serial number: a CRL of thousands is looked up at every message."""
    return {entry.serial_number: entry.revocation_date_utc for entry in crl}


def _names(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> bool:
    """Whether the response's ResponderID is ``certificate`` (by name or by key hash)."""
    if response.responder_name is not None:
        return response.responder_name == certificate.subject
    return response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def _verify(key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> None:
    if algorithm is None:
        raise TypeError("no hash algorithm")
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(algorithm))
    else:
        raise TypeError(f"responder keys are RSA or EC, not {type(key).__name__}")


def _read_issuers(path: Path, where: str) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{where}: {path}: cannot be read: {error.strerror}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"{where}: {path}: not PEM X.509 certificates") from None
    return certificates


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1
