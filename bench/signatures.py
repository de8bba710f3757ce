"""Scenario 7 — signatures: XML signing and verifying per second, RSA-2048 beside GOST, and
the revocation check that follows every verification.

One court envelope (a pre-trial report request, unsigned, about 4 kB) is signed and verified
in this process with each algorithm in turn: the gateway's own ``WsSecuritySigner`` and
``Verifier``, exclusive C14N and all, the envelope parsed anew for every operation. Each
algorithm runs for the profile's ``raw_seconds`` (at least three operations), one after the
other on one core, so the figures compare on the same machine in the same minute.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree

from adapters.court.client import CourtCodec
from adapters.court.codec import decode_pretrial_report
from bench.harness import Bench, Section
from gateway.security.keys import new_private_key, self_signed_certificate
from gateway.security.revocation import RevocationChecker
from gateway.security.xmldsig import PinnedCertificate, Verifier, WsSecuritySigner
from gateway.soap.envelope import parse_envelope, read_request, serialise

ALGORITHMS = {"rsa-sha256": "RSA-2048 / SHA-256", "gost2015-256": "GOST 34.10-2015 256-bit / Streebog-256",
              "gost2015-512": "GOST 34.10-2015 512-bit / Streebog-512"}
_MINIMUM_OPERATIONS = 3


def court_envelope() -> bytes:
    """The court's pre-trial report request of the documentation's example, unsigned."""
    here = Path(__file__).resolve().parent
    # In a checkout, the documentation's file; in an installed package, its copy in bench/_data.
    example = next(path for path in (here.parent / "docs" / "examples" / "soap" / "pretrial-report-request.xml",
                                     here / "_data" / "pretrial-report-request.xml") if path.is_file())
    report = decode_pretrial_report(read_request(parse_envelope(example.read_bytes()).body).data)
    return CourtCodec().request(report, message_id="bench-1", message_date=dt.datetime.now(dt.UTC))


def _rate(operation: Callable[[], object], seconds: float) -> tuple[float, int]:
    count, started = 0, time.perf_counter()
    while count < _MINIMUM_OPERATIONS or time.perf_counter() - started < seconds:
        operation()
        count += 1
    return count / (time.perf_counter() - started), count


_REVOKED = 10_000


async def _revocation_rate(seconds: float) -> tuple[float, int]:
    """Checks per second of a certificate against a CA's CRL of ``_REVOKED`` entries, as each
    signed message is checked once its signature verified (``RevocationChecker.check``)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    member_key = ec.generate_private_key(ec.SECP256R1())
    member = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "court")]))
              .issuer_name(ca_name).public_key(member_key.public_key()).serial_number(_REVOKED + 1)
              .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
              .sign(ca_key, hashes.SHA256()))
    builder = x509.CertificateRevocationListBuilder().issuer_name(ca_name).last_update(now).next_update(
        now + dt.timedelta(days=7))
    for serial in range(1, _REVOKED + 1):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
    with tempfile.TemporaryDirectory() as directory:
        crl = Path(directory) / "crl.pem"
        crl.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        checker = RevocationChecker(issuers=[ca], crls=[crl])
        count, started = 0, time.perf_counter()
        while count < _MINIMUM_OPERATIONS or time.perf_counter() - started < seconds:
            await checker.check("court", member)
            count += 1
        return count / (time.perf_counter() - started), count


async def run(bench: Bench) -> Section:
    section = Section("signatures", "XML signatures: sign/s and verify/s, RSA-2048 beside GOST 34.10-2015")
    envelope = court_envelope()
    seconds = bench.profile.raw_seconds
    for name, label in ALGORITHMS.items():
        key = new_private_key(name)
        certificate = self_signed_certificate(key, f"bench-{name}")
        signer = WsSecuritySigner(key, certificate, algorithm=name)
        verifier = Verifier("court", [PinnedCertificate.of(certificate, "bench.pem")], required=True, algorithm=name)
        signed = serialise(signer.sign(etree.fromstring(envelope)))
        now = dt.datetime.now(dt.UTC)
        signing, signed_count = _rate(lambda: signer.sign(etree.fromstring(envelope)), seconds)
        verifying, verified_count = _rate(lambda: verifier.verified_body(etree.fromstring(signed), at=now), seconds)
        section.add(f"{label}: sign", signing, "op/s", note=f"{signed_count} signatures")
        section.add(f"{label}: verify", verifying, "op/s", note=f"{verified_count} verifications")
    checks, checked = await _revocation_rate(bench.profile.raw_seconds)
    section.add(f"revocation check of a pinned certificate, CRL of {_REVOKED:,} entries", checks, "op/s",
                note=f"{checked} checks; the CRL read once, then looked up by serial")
    section.notes.append(
        f"One {len(envelope):,}-byte court envelope, signed over its Body; one core, in the benchmark's own process. "
        "RSA is OpenSSL's (via cryptography); GOST is gostcrypto, pure Python, so its figures are those of the "
        "interpreter, not of a hardware token or a C implementation."
    )
    return section
