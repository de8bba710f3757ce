"""OpenSSL's GOST engine as the independent check of the gateway's GOST signatures, both ways.

The gateway's signature over the canonical SignedInfo verifies with ``openssl dgst -verify``,
its Reference digest is OpenSSL's Streebog of the canonical Body, and its certificate verifies
with ``openssl verify``; a signature that OpenSSL makes with a key it generated verifies in the
gateway. A one-byte change fails each. These tests never skip: CI installs the engine (Debian
``libengine-gost-openssl``), and a machine without it fails with the command that installs it.
"""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree

from gateway.security.keys import read_private_key
from gateway.security.xmldsig import PinnedCertificate, SignatureRefused, Verifier, WsSecuritySigner
from soap.messages import relay_request
from soap.signing import BODY, NS, penal_gost, serialise, signed

INSTALL = "apt-get install libengine-gost-openssl"


@pytest.fixture(scope="module")
def openssl() -> str:
    command = shutil.which("openssl")
    if command is None:
        pytest.fail(f"openssl is not installed: {INSTALL} (it brings openssl)")
    probe = subprocess.run([command, "engine", "gost"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.fail(f"OpenSSL's GOST engine is missing ({probe.stderr.strip()[:200]}): {INSTALL}")
    return command


def run(openssl: str, *arguments: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([openssl, *map(str, arguments)], capture_output=True, timeout=60)


def signed_parts(document: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """The canonical SignedInfo, the SignatureValue, the canonical Body and its DigestValue,
    read from the bytes as a receiver would."""
    tree = etree.fromstring(document)
    signed_info = tree.find(".//ds:SignedInfo", NS)
    canonical = etree.tostring(signed_info, method="c14n", exclusive=True)
    value = base64.b64decode(tree.findtext(".//ds:SignatureValue", namespaces=NS))
    body = etree.tostring(tree.find(BODY), method="c14n", exclusive=True)
    digest = base64.b64decode(tree.findtext(".//ds:DigestValue", namespaces=NS))
    return canonical, value, body, digest


def public_key_of(openssl: str, certificate: bytes, directory: Path) -> Path:
    """The certificate's public key as OpenSSL reads it (so OpenSSL parses the certificate)."""
    (directory / "certificate.pem").write_bytes(certificate)
    result = run(openssl, "x509", "-engine", "gost", "-in", directory / "certificate.pem", "-pubkey", "-noout")
    assert result.returncode == 0, result.stderr
    (directory / "public.pem").write_bytes(result.stdout)
    return directory / "public.pem"


def openssl_verifies(openssl: str, bits: int, public: Path, data: bytes, signature: bytes, directory: Path) -> bool:
    (directory / "signedinfo.xml").write_bytes(data)
    (directory / "signature.bin").write_bytes(signature)
    result = run(openssl, "dgst", "-engine", "gost", f"-md_gost12_{bits}", "-verify", public,
                 "-signature", directory / "signature.bin", directory / "signedinfo.xml")
    return result.returncode == 0 and b"Verified OK" in result.stdout


# ----------------------------------------------------------------- the gateway signs, OpenSSL verifies


@pytest.mark.parametrize("bits", [256, 512])
def test_openssl_verifies_the_gateways_gost_signature_over_the_canonical_signed_info(openssl, tmp_path, bits):
    credentials = penal_gost(bits)
    canonical, value, _, _ = signed_parts(signed(relay_request(), credentials))
    public = public_key_of(openssl, credentials.pem(), tmp_path)
    assert openssl_verifies(openssl, bits, public, canonical, value, tmp_path)


@pytest.mark.parametrize("bits", [256, 512])
def test_openssl_refuses_the_gateways_gost_signature_when_signed_info_changes_by_one_byte(openssl, tmp_path, bits):
    credentials = penal_gost(bits)
    canonical, value, _, _ = signed_parts(signed(relay_request(), credentials))
    changed = canonical.replace(b"URI=\"#id-", b"URI=\"#iD-")
    assert len(changed) == len(canonical) and changed != canonical
    public = public_key_of(openssl, credentials.pem(), tmp_path)
    assert not openssl_verifies(openssl, bits, public, changed, value, tmp_path)


def test_openssl_refuses_the_gateways_gost_signature_changed_by_one_byte(openssl, tmp_path):
    credentials = penal_gost(256)
    canonical, value, _, _ = signed_parts(signed(relay_request(), credentials))
    changed = bytes([value[0] ^ 0x01]) + value[1:]
    public = public_key_of(openssl, credentials.pem(), tmp_path)
    assert not openssl_verifies(openssl, 256, public, canonical, changed, tmp_path)


@pytest.mark.parametrize("bits", [256, 512])
def test_the_reference_digest_is_openssls_streebog_of_the_canonical_body(openssl, tmp_path, bits):
    _, _, body, digest = signed_parts(signed(relay_request(), penal_gost(bits)))
    (tmp_path / "body.xml").write_bytes(body)
    result = run(openssl, "dgst", "-engine", "gost", f"-md_gost12_{bits}", "-binary", tmp_path / "body.xml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == digest


@pytest.mark.parametrize("bits", [256, 512])
def test_openssl_verifies_the_gateways_self_signed_gost_certificate(openssl, tmp_path, bits):
    (tmp_path / "certificate.pem").write_bytes(penal_gost(bits).pem())
    result = run(openssl, "verify", "-engine", "gost", "-CAfile", tmp_path / "certificate.pem", tmp_path / "certificate.pem")
    assert result.returncode == 0 and b": OK" in result.stdout, result.stdout + result.stderr


# ----------------------------------------------------------------- OpenSSL signs, the gateway verifies


def openssl_credentials(openssl: str, bits: int, directory: Path) -> tuple[Path, x509.Certificate]:
    """A key OpenSSL generates (``paramset:A``) and a self-signed certificate OpenSSL makes for it."""
    key = directory / "openssl-key.pem"
    result = run(openssl, "genpkey", "-engine", "gost", "-algorithm", f"gost2012_{bits}", "-pkeyopt", "paramset:A",
                 "-out", key)
    assert result.returncode == 0, result.stderr
    key.chmod(0o600)
    certificate = directory / "openssl-certificate.pem"
    result = run(openssl, "req", "-engine", "gost", "-new", "-x509", "-key", key, f"-md_gost12_{bits}",
                 "-subj", "/CN=penal-openssl", "-days", "30", "-out", certificate)
    assert result.returncode == 0, result.stderr
    return key, x509.load_pem_x509_certificate(certificate.read_bytes())


def signed_by_openssl(openssl: str, bits: int, key: Path, certificate: x509.Certificate, directory: Path) -> bytes:
    """An envelope whose SignatureValue OpenSSL made over the canonical SignedInfo.

    The gateway's signer lays out SignedInfo (reading OpenSSL's key file); its own signature value
    is then replaced by OpenSSL's, so what the verifier checks is OpenSSL's signature alone.
    """
    signer = WsSecuritySigner(read_private_key(key), certificate, algorithm=f"gost2015-{bits}")
    document = signer.sign(etree.fromstring(relay_request(text="OpenSSL")))
    signed_info = document.find(".//ds:SignedInfo", NS)
    (directory / "signedinfo.xml").write_bytes(etree.tostring(signed_info, method="c14n", exclusive=True))
    result = run(openssl, "dgst", "-engine", "gost", f"-md_gost12_{bits}", "-sign", key,
                 "-out", directory / "signature.bin", directory / "signedinfo.xml")
    assert result.returncode == 0, result.stderr
    value = document.find(".//ds:SignatureValue", NS)
    assert base64.b64decode(value.text) != (directory / "signature.bin").read_bytes()
    value.text = base64.b64encode((directory / "signature.bin").read_bytes()).decode()
    return serialise(document)


def received(certificate: x509.Certificate) -> dt.datetime:
    """A moment inside the validity of a certificate OpenSSL made just now (from this second on)."""
    return certificate.not_valid_before_utc + dt.timedelta(minutes=1)


def gateway_verifier(certificate: x509.Certificate, bits: int) -> Verifier:
    return Verifier("penal", [PinnedCertificate.of(certificate, "penal-openssl.pem")], required=True,
                    algorithm=f"gost2015-{bits}")


@pytest.mark.parametrize("bits", [256, 512])
def test_the_gateway_verifies_a_gost_signature_made_by_openssl(openssl, tmp_path, bits):
    key, certificate = openssl_credentials(openssl, bits, tmp_path)
    document = signed_by_openssl(openssl, bits, key, certificate, tmp_path)
    body = gateway_verifier(certificate, bits).verified_body(etree.fromstring(document), at=received(certificate))
    assert body.findtext(".//{urn:example:ping}raw") == "OpenSSL"


def test_the_gateway_refuses_an_openssl_signature_changed_by_one_byte(openssl, tmp_path):
    key, certificate = openssl_credentials(openssl, 256, tmp_path)
    document = etree.fromstring(signed_by_openssl(openssl, 256, key, certificate, tmp_path))
    value = document.find(".//ds:SignatureValue", NS)
    raw = base64.b64decode(value.text)
    value.text = base64.b64encode(raw[:-1] + bytes([raw[-1] ^ 0x01])).decode()
    with pytest.raises(SignatureRefused) as refusal:
        gateway_verifier(certificate, 256).verified_body(document, at=received(certificate))
    assert refusal.value.slug == "signature-invalid"


def test_the_gateway_refuses_an_openssl_signed_body_changed_by_one_byte(openssl, tmp_path):
    key, certificate = openssl_credentials(openssl, 256, tmp_path)
    document = signed_by_openssl(openssl, 256, key, certificate, tmp_path).replace(b">OpenSSL<", b">OpenSSM<")
    with pytest.raises(SignatureRefused) as refusal:
        gateway_verifier(certificate, 256).verified_body(etree.fromstring(document), at=received(certificate))
    assert refusal.value.slug == "signature-invalid" and "changed after it was signed" in refusal.value.detail
