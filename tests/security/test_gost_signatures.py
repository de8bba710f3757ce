"""GOST 34.10-2015 / 34.11-2015 signatures (pki.gov.kz URIs): signed, verified, and refused.

The signer and verifier on their own, the configuration that names a member's algorithm, the
development keys, and the SOAP endpoint over HTTP with the real store.
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys

import pytest
from lxml import etree

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.security.keys import DevelopmentKeys, gateway_signer, member_verifier, provision_key_pair, read_private_key
from gateway.security.gost import GostPrivateKey
from gateway.security.xmldsig import PinnedCertificate, SignatureRefused, Verifier, WsSecuritySigner
from soap.messages import SOAP_HEADERS, relay_request
from soap.signing import NS, Credentials, credentials, penal, penal_gost, refused, serialise, signed
from support import write_config

NOW = dt.datetime.now(dt.UTC)
PKIGOVKZ = "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:"


def envelope(document: bytes) -> etree._Element:
    return etree.fromstring(document)


def verify(document: bytes, *pinned, algorithm: str | None = None):
    return Verifier("penal", [c.pinned() for c in pinned], required=True, algorithm=algorithm).verified_body(
        envelope(document), at=NOW
    )


def refusal(document: bytes, *pinned, algorithm: str | None = None) -> SignatureRefused:
    with pytest.raises(SignatureRefused) as caught:
        verify(document, *pinned, algorithm=algorithm)
    return caught.value


# ----------------------------------------------------------------- what is signed


@pytest.mark.parametrize("bits", [256, 512])
def test_a_gost_signature_names_the_pkigovkz_signature_and_digest_uris(bits):
    document = envelope(signed(relay_request(), penal_gost(bits)))
    algorithms = [element.get("Algorithm") for element in document.iterfind(".//ds:Signature//*[@Algorithm]", NS)]
    assert algorithms[1] == f"{PKIGOVKZ}gostr34102015-gostr34112015-{bits}"
    assert algorithms[3] == f"{PKIGOVKZ}gostr34112015-{bits}"
    value = base64.b64decode(document.findtext(".//ds:SignatureValue", namespaces=NS))
    assert len(value) == bits // 4


@pytest.mark.parametrize("bits", [256, 512])
def test_a_gost_signed_envelope_verifies_with_the_pinned_gost_certificate(bits):
    body = verify(signed(relay_request(text="GOST"), penal_gost(bits)), penal_gost(bits), algorithm=f"gost2015-{bits}")
    assert body.findtext(".//{urn:example:ping}raw") == "GOST"


def test_a_gost_signed_body_changed_after_signing_is_refused():
    changed = signed(relay_request(text="first"), penal_gost()).replace(b">first<", b">other<")
    found = refusal(changed, penal_gost())
    assert found.slug == "signature-invalid" and "changed after it was signed" in found.detail


def test_a_gost_signature_value_changed_by_one_byte_is_refused():
    document = envelope(signed(relay_request(), penal_gost()))
    value = document.find(".//ds:SignatureValue", NS)
    raw = bytearray(base64.b64decode(value.text))
    raw[5] ^= 0x01
    value.text = base64.b64encode(bytes(raw)).decode()
    assert refusal(serialise(document), penal_gost()).slug == "signature-invalid"


def test_a_signature_by_another_gost_key_is_refused_as_an_unknown_certificate():
    stranger = credentials("stranger-gost", algorithm="gost2015-256")
    assert refusal(signed(relay_request(), stranger), penal_gost()).slug == "certificate-unknown"


def test_a_512_bit_signature_value_under_the_256_bit_method_is_refused_for_its_length():
    document = envelope(signed(relay_request(), penal_gost(512)))
    document.find(".//ds:SignatureMethod", NS).set("Algorithm", f"{PKIGOVKZ}gostr34102015-gostr34112015-256")
    document.find(".//ds:DigestMethod", NS).set("Algorithm", f"{PKIGOVKZ}gostr34112015-256")
    found = refusal(serialise(document), penal_gost(256))
    assert found.slug == "signature-key-length" and "128 bytes" in found.detail and "64 bytes" in found.detail


def test_a_gost_signature_with_a_sha256_digest_is_refused():
    document = envelope(signed(relay_request(), penal_gost()))
    document.find(".//ds:DigestMethod", NS).set("Algorithm", "http://www.w3.org/2001/04/xmlenc#sha256")
    found = refusal(serialise(document), penal_gost())
    assert found.slug == "signature-algorithm" and "DigestMethod" in found.detail


@pytest.mark.parametrize(
    ("element", "uri"),
    [
        ("SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311"),
        ("DigestMethod", "http://www.w3.org/2001/04/xmldsig-more#gost34311"),
    ],
)
def test_gost_34_310_2004_is_recognised_and_refused_as_not_supported(element, uri):
    document = envelope(signed(relay_request(), penal_gost()))
    document.find(f".//ds:{element}", NS).set("Algorithm", uri)
    found = refusal(serialise(document), penal_gost())
    assert found.slug == "signature-algorithm-unsupported"
    assert "GOST 34.310-2004" in found.detail or "GOST 34.311-95" in found.detail
    assert "not supported" in found.detail


# ----------------------------------------------------------------- no downgrade


def test_an_rsa_signature_from_a_member_configured_for_gost_is_refused():
    found = refusal(signed(relay_request(), penal()), penal_gost(), algorithm="gost2015-256")
    assert found.slug == "signature-algorithm" and "gost2015-256" in found.detail


def test_a_256_bit_gost_signature_from_a_member_configured_for_512_is_refused():
    found = refusal(signed(relay_request(), penal_gost(256)), penal_gost(512), algorithm="gost2015-512")
    assert found.slug == "signature-algorithm"


def test_an_rsa_signature_against_pinned_gost_certificates_is_refused_even_unconfigured():
    found = refusal(signed(relay_request(), penal()), penal_gost())
    assert found.slug == "signature-algorithm" and "256-bit GOST" in found.detail


def test_a_verifier_refuses_a_configured_algorithm_its_certificates_cannot_verify():
    with pytest.raises(ValueError, match="holds an RSA key, which cannot verify gost2015-256"):
        Verifier("penal", [penal().pinned()], required=True, algorithm="gost2015-256")


# ----------------------------------------------------------------- signer, keys, configuration


def test_the_gost_signer_refuses_an_rsa_key():
    with pytest.raises(ValueError, match="gost2015-256 needs a 256-bit GOST R 34.10-2012 key"):
        WsSecuritySigner(penal().key, penal().certificate, algorithm="gost2015-256")


def test_the_gost_signer_refuses_a_certificate_of_another_gost_key():
    with pytest.raises(ValueError, match="certifies another public key"):
        WsSecuritySigner(GostPrivateKey.generate(256), penal_gost().certificate, algorithm="gost2015-256")


def test_a_gost_key_pair_is_provisioned_as_files_and_read_back(tmp_path):
    key, certificate = provision_key_pair(
        tmp_path / "keys" / "gw.pem", tmp_path / "keys" / "gw.cert.pem", common_name="gateway", algorithm="gost2015-256"
    )
    assert (tmp_path / "keys" / "gw.pem").stat().st_mode & 0o777 == 0o600
    assert read_private_key(tmp_path / "keys" / "gw.pem") == key
    document = signed(relay_request(), Credentials(key, certificate, "gost2015-256"))
    assert Verifier("gateway", [PinnedCertificate.of(certificate, "gw.cert.pem")], required=True).verified_body(
        envelope(document), at=NOW
    ) is not None


def test_the_gateway_signs_with_gost_when_its_signing_algorithm_says_so(tmp_path):
    directory = write_config(tmp_path / "gw", receiver_url="http://127.0.0.1:9")
    config = load_config(directory, environ={"GATEWAY__SIGNING__ALGORITHM": '"gost2015-256"'})
    keys = DevelopmentKeys.provision(config, [])
    signer = gateway_signer(config.signing, config.base_dir, member_id="gateway")
    document = serialise(signer.sign(envelope(relay_request())))
    assert f"{PKIGOVKZ}gostr34102015-gostr34112015-256".encode() in document
    assert keys.gateway.verified_body(envelope(document), at=NOW) is not None


def test_a_member_configured_for_gost_gets_a_gost_development_key(tmp_path):
    directory = write_config(tmp_path / "gw", receiver_url="http://127.0.0.1:9")
    environ = {
        "GATEWAY__MEMBERS__PENAL__CERTIFICATES": '["keys/penal-gost.pem"]',
        "GATEWAY__MEMBERS__PENAL__SIGNATURE_ALGORITHM": '"gost2015-256"',
    }
    config = load_config(directory, environ=environ)
    keys = DevelopmentKeys.provision(config, ["penal"])
    assert keys.signers["penal"].algorithm == "gost2015-256"
    verifier_ = member_verifier("penal", config.members["penal"], config.base_dir)
    assert verifier_.verified_body(envelope(serialise(keys.signers["penal"].sign(envelope(relay_request())))), at=NOW) is not None


def test_an_unknown_signature_algorithm_in_members_toml_is_refused_at_start_up(tmp_path):
    directory = write_config(tmp_path / "gw", receiver_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match=r"members\.penal\.signature_algorithm: .*gost2015-256"):
        load_config(directory, environ={"GATEWAY__MEMBERS__PENAL__SIGNATURE_ALGORITHM": '"gost34310"'})


def test_a_member_configured_for_gost_that_pins_an_rsa_certificate_is_refused_at_start_up(tmp_path):
    directory = write_config(tmp_path / "gw", receiver_url="http://127.0.0.1:9")
    (directory / "keys").mkdir(exist_ok=True)
    (directory / "keys" / "penal.pem").write_bytes(penal().pem())
    config = load_config(directory, environ={
        "GATEWAY__MEMBERS__PENAL__CERTIFICATES": '["keys/penal.pem"]',
        "GATEWAY__MEMBERS__PENAL__SIGNATURE_ALGORITHM": '"gost2015-256"',
    })
    with pytest.raises(ConfigError, match=r"members\.penal\.signature_algorithm: certificate penal\.pem holds an RSA key"):
        member_verifier("penal", config.members["penal"], config.base_dir)


# ----------------------------------------------------------------- over HTTP


async def test_the_endpoint_accepts_a_gost_signed_request_from_a_member_configured_for_gost(start_signed_gateway, http):
    gateway = await start_signed_gateway([penal_gost()], algorithm="gost2015-256")
    async with http.post(f"{gateway.url}/soap/relay", data=signed(relay_request(), penal_gost()), headers=SOAP_HEADERS) as response:
        assert response.status == 200, await response.read()
    assert len(await gateway.store.list_messages(limit=10)) == 1


async def test_the_endpoint_refuses_an_rsa_signed_request_from_a_member_configured_for_gost(start_signed_gateway, http):
    gateway = await start_signed_gateway([penal_gost()], algorithm="gost2015-256")
    fault = await refused(gateway, http, signed(relay_request(), penal()), SOAP_HEADERS, signer=penal_gost())
    assert fault.error_code == "signature-algorithm"


async def test_the_endpoint_refuses_gost_34_310_with_a_fault_naming_it(start_signed_gateway, http):
    gateway = await start_signed_gateway([penal_gost()], algorithm="gost2015-256")
    document = envelope(signed(relay_request(), penal_gost()))
    document.find(".//ds:SignatureMethod", NS).set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311")
    fault = await refused(gateway, http, serialise(document), SOAP_HEADERS, signer=penal_gost())
    assert fault.error_code == "signature-algorithm-unsupported" and "GOST 34.310-2004" in fault.message


def test_pki_init_with_signing_keys_makes_the_gateways_gost_key_and_certificate(tmp_path):
    directory = write_config(tmp_path / "gw", receiver_url="http://127.0.0.1:9")
    environ = {"GATEWAY__SIGNING__ALGORITHM": '"gost2015-256"', "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "pki", "init", "--dir", str(tmp_path / "pki"), "--config", str(directory),
         "--members", "gateway", "--signing-keys"],
        capture_output=True, text=True, timeout=120, env=environ,
    )
    assert result.returncode == 0, result.stderr
    assert "XML-signing key of the gateway (gost2015-256)" in result.stdout
    config = load_config(directory, environ=environ)
    key = read_private_key(config.base_dir / config.signing.key)
    assert isinstance(key, GostPrivateKey) and key.size == 32
    signer = gateway_signer(config.signing, config.base_dir, member_id="gateway")
    assert signer.algorithm == "gost2015-256"
