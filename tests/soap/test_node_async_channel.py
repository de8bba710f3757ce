"""The npm package ``soap`` (Node.js) as an independent AsyncChannel client: send, pull, confirm, follow."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from soap.async_messages import PULL_CONFIG

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "node" / "async_channel_client.js"
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed: the Node.js interoperability test needs it")
@pytest.mark.skipif(
    not (ROOT / "node_modules" / "soap").is_dir(),
    reason="node_modules/soap is missing: run `make node_modules` (npm ci) to install it",
)
async def test_node_soap_sends_pulls_confirms_and_follows_over_async_channel(start_gateway, receiver):
    gateway = await start_gateway(receiver.url, **PULL_CONFIG)
    process = await asyncio.create_subprocess_exec(
        NODE, str(SCRIPT), f"{gateway.url}/soap/async-channel?wsdl", "court", "probation", "probation/inbox",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    except asyncio.TimeoutError:
        process.kill()
        raise
    assert process.returncode == 0, err.decode(errors="replace")
    learnt = json.loads(out)
    assert learnt["sent"]["status"]["code"] == "ACCEPTED" and learnt["sent"]["correlationId"] == "node-async-1"
    gateway_id = learnt["sent"]["messageId"]
    assert learnt["pulled"] == [gateway_id] and learnt["confirmed"] == [gateway_id]
    assert learnt["status"] == ["DELIVERED"]
