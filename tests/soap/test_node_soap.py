"""The npm package ``soap`` (Node.js) as an independent client of the gateway's published WSDL."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from gateway.soap.envelope import parse_envelope, read_request
from support import wait_until

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "node" / "relay_client.js"
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed: the Node.js interoperability test needs it")
@pytest.mark.skipif(
    not (ROOT / "node_modules" / "soap").is_dir(),
    reason="node_modules/soap is missing: run `make node_modules` (npm ci) to install it",
)
async def test_node_soap_relays_through_the_wsdl_the_gateway_publishes(soap_gateway, agency):
    process = await asyncio.create_subprocess_exec(
        NODE, str(SCRIPT), f"{soap_gateway.url}/soap/relay?wsdl", "penal",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    except asyncio.TimeoutError:
        process.kill()
        raise
    assert process.returncode == 0, err.decode(errors="replace")
    info = json.loads(out)
    assert info["status"]["code"] == "ACCEPTED" and info["correlationId"] == "node-soap-1"
    await wait_until(lambda: agency.deliveries)
    forwarded = read_request(parse_envelope(agency.deliveries[0].body).body)
    assert forwarded.data.findtext("{urn:example:ping}destination/{urn:example:ping}raw") == "Сәлем, әғқңөұүһі"
