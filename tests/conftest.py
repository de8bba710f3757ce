"""Fixtures shared by the whole suite."""

from __future__ import annotations

import io
import sys

import aiohttp
import pytest

from gateway.entrypoints.http.server import build
from gateway.logs import configure_logging
from support import RecordingReceiver, leaks, make_config

# Shared fixtures for every test folder: the store backends (SQLite, PostgreSQL), signed gateways.
pytest_plugins = ["backends", "soap.signing"]


@pytest.fixture(autouse=True)
def log_lines():
    """Every test runs with the real log pipeline writing to a buffer; afterwards no
    line may carry an IIN-shaped number or a known name (DESIGN.md: no personal data in logs)."""
    buffer = io.StringIO()
    configure_logging("debug", "json", stream=buffer)
    yield buffer
    leaked = leaks(buffer.getvalue().splitlines())
    assert not leaked, f"personal data reached the log: {leaked[:3]}"


@pytest.fixture(autouse=True)
def fresh_soap_message_dates():
    """Each test's SOAP messages are dated when it runs, however long the suite has run (the
    gateway refuses a messageDate outside its clock skew)."""
    messages = sys.modules.get("soap.messages")
    if messages is not None:
        messages._DATES.clear()


@pytest.fixture
async def receiver():
    recording = await RecordingReceiver().start()
    yield recording
    await recording.close()


@pytest.fixture
async def start_gateway(tmp_path, store_url):
    """Start a gateway on loopback with the test configuration, on each store backend
    (``store_url`` comes from the backends plugin); stopped after the test."""
    started = []

    async def start(receiver_url: str, **kwargs):
        kwargs.setdefault("store_url", store_url)
        config = make_config(tmp_path / f"gw{len(started)}", receiver_url=receiver_url, **kwargs)
        gateway = build(config)
        await gateway.start(port=0)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session
