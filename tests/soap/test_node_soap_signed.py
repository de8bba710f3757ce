"""The npm package ``soap`` signing with its own WS-Security (WSSecurityCert, on xml-crypto): a
signature over the Body and the Timestamp that the gateway's verifier accepts, over HTTP."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from soap.signing import penal

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "node" / "signed_relay_client.js"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed: the Node.js interoperability test needs it"),
    pytest.mark.skipif(
        not (ROOT / "node_modules" / "soap").is_dir(),
        reason="node_modules/soap is missing: run `make node_modules` (npm ci) to install it",
    ),
]


async def node_signs(gateway, directory: Path, transforms: str) -> tuple[int, str, str]:
    key, certificate = directory / "penal.key.pem", directory / "penal.pem"
    key.write_bytes(penal().key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    certificate.write_bytes(penal().pem())
    process = await asyncio.create_subprocess_exec(
        NODE, str(SCRIPT), f"{gateway.url}/soap/relay?wsdl", "penal", str(key), str(certificate), transforms,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    except asyncio.TimeoutError:
        process.kill()
        raise
    return process.returncode, out.decode(), err.decode(errors="replace")


async def test_node_soap_signing_the_body_and_the_timestamp_is_accepted(start_signed_gateway, tmp_path):
    gateway = await start_signed_gateway([penal()])
    returncode, out, err = await node_signs(gateway, tmp_path, "exc-c14n")
    assert returncode == 0, err
    info = json.loads(out)
    assert info["status"]["code"] == "ACCEPTED" and info["correlationId"] == "node-soap-signed-1"
    (stored,) = await gateway.store.list_messages(limit=10)
    assert stored.client_message_id == "node-soap-signed-1"


async def test_node_soaps_default_ws_security_is_accepted(start_signed_gateway, tmp_path):
    # WSSecurityCert's defaults: enveloped-signature before exclusive C14N on every reference
    # (the Body and the Timestamp); the signature is in the Security header, so the first
    # removes nothing (tests/security/test_xmldsig_endpoint.py).
    gateway = await start_signed_gateway([penal()])
    returncode, out, err = await node_signs(gateway, tmp_path, "default")
    assert returncode == 0, err
    assert json.loads(out)["status"]["code"] == "ACCEPTED"
    (stored,) = await gateway.store.list_messages(limit=10)
    assert stored.client_message_id == "node-soap-signed-1"
