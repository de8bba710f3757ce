"""Fixtures for the SOAP tests: a gateway with a recording release-notice receiver, an agency
that records what the relay delivers, and valid requests to break in the bad-input tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from aiohttp import web

from adapters.simulation import Recorder, simulator_app
from gateway.entrypoints.http.server import build
from support import make_config


@dataclass
class RecordingReceiver:
    """A ``ReleaseNoticeReceiver`` that records each notice and opens a case per notice."""

    received: list[dict] = field(default_factory=list)
    fail: bool = False

    async def receive_release_notice(self, event, notice, *, sender, message_id, correlation_id) -> str:
        if self.fail:
            raise RuntimeError("the release-case workflow is broken")
        self.received.append(
            {"event": event, "notice": notice, "sender": sender, "message_id": message_id, "correlation_id": correlation_id}
        )
        return f"release-case-{len(self.received)}"


@pytest.fixture
def release_receiver() -> RecordingReceiver:
    return RecordingReceiver()


@pytest.fixture
async def agency():
    """An agency system on loopback that records every POST and answers 200 (the relay's recipient)."""
    recorder = Recorder()

    async def record(request: web.Request) -> web.Response:
        recorder.record(request.match_info["path"], request, await request.read())
        return web.Response(status=200)

    app = simulator_app("health", recorder=recorder)
    app.router.add_post("/{path:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield recorder
    await runner.cleanup()


@pytest.fixture
async def soap_gateway(tmp_path, agency, release_receiver):
    """A gateway whose relay recipient ``health`` is ``agency`` and whose release notices go to
    ``release_receiver``; the smallest body limit the configuration allows, to test it."""
    config = make_config(tmp_path / "gateway", receiver_url=agency.url)
    config = config.model_copy(update={"server": config.server.model_copy(update={"max_body_bytes": 64 * 1024})})
    gateway = build(config, release_notice_receiver=release_receiver)
    await gateway.start(port=0)
    yield gateway
    await gateway.stop()
