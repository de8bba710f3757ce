"""``gateway demo`` runs the whole exchange end to end and reports honestly."""

from __future__ import annotations

import json
import subprocess
import sys

from gateway.entrypoints.tools.demo import run_demo
from gateway.entrypoints.tools.relay_demo import run_demo as run_relay_demo
from support import leaks


def test_the_demo_brings_every_case_to_its_expected_state_and_says_so_in_json():
    result = subprocess.run([sys.executable, "-m", "gateway", "demo", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["problems"] == []
    assert summary["reports_requested"] == summary["reports_complete"] == 60
    assert summary["reports_partial"] > 0  # the social ministry's outage really happened
    assert summary["releases_notified"] == 200 and summary["escalated"] > 0
    assert summary["notices_acknowledged"] > 0 and summary["holds_released"] > 0
    assert summary["dead_letters"] == 0 and summary["audit_intact"] is True
    assert summary["transport"].startswith("mutual TLS")
    assert not leaks(result.stderr.splitlines())


async def test_the_demo_fails_loudly_when_a_case_ends_elsewhere():
    # A population too small for the scenario is refused, not reported as a success.
    report = await run_demo(people=50)
    assert report.ok is False and report.problems


async def test_the_relay_demo_delivers_every_accepted_message():
    report = await run_relay_demo(messages=600)
    assert report.ok, report.problems
    assert report.accepted == 600 and report.delivered == 600 and report.received_unique == 600
    assert report.dead_lettered > 0 and report.replayed == report.dead_lettered
    assert report.attempts.get("retry", 0) > 0  # the outages really happened


async def test_the_demo_runs_on_postgresql_in_a_schema_of_its_own(postgres_reachable):
    import psycopg

    from backends import POSTGRES_URL

    def demo_schemas() -> set[str]:
        with psycopg.connect(POSTGRES_URL) as conn:
            return {row[0] for row in conn.execute("SELECT schema_name FROM information_schema.schemata "
                                                   "WHERE schema_name LIKE 'gateway_demo_%'")}

    before = demo_schemas()  # another run's, killed before it could drop its own, are not this one's
    report = await run_demo(store_url=POSTGRES_URL)
    assert report.ok, report.problems[:5]
    assert report.store == "postgresql"
    assert demo_schemas() <= before, "the demo left its schema behind"
