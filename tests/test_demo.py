"""``gateway demo`` runs end to end and reports honestly."""

from __future__ import annotations

import json
import subprocess
import sys

from gateway.demo import run_demo
from support import leaks


async def test_the_relay_demo_delivers_every_accepted_message():
    report = await run_demo(messages=600)
    assert report.ok, report.problems
    assert report.accepted == 600 and report.delivered == 600 and report.received_unique == 600
    assert report.dead_lettered > 0 and report.replayed == report.dead_lettered
    assert report.attempts["retry"] > 0  # the outages really happened


def test_demo_json_output_is_machine_readable_and_its_log_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--json", "--messages", "300"],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["delivered"] == 300
    assert not leaks(result.stderr.splitlines())
