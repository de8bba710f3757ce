"""Shared steps of the end-to-end workflow tests: the population, fast timings, requests."""

from __future__ import annotations

import datetime as dt
import uuid

from adapters.population import Population

POPULATION = Population(seed=7, size=300)

# Timings compressed from days to seconds, through the same configuration keys operators set.
FAST = {
    "delivery.backoff_base_seconds": 0.02,
    "delivery.backoff_cap_seconds": 0.3,
    "delivery.breaker_reset_seconds": 0.3,
    "delivery.poll_interval_seconds": 0.1,
    "delivery.request_timeout_seconds": 2,
    "delivery.lease_seconds": 5,
    "workflows.poll_interval_seconds": 0.05,
    "workflows.timer_lease_seconds": 10,
    "workflows.pretrial.source_timeout_seconds": 1,
    "workflows.pretrial.regather_interval_seconds": 0.4,
    "workflows.release.acknowledge_within_seconds": 1.5,
    "workflows.release.attachment_check_seconds": 0.3,
    "workflows.release.retry_seconds": 0.3,
    "audit.tree_head_interval_seconds": 0.5,
}

# A suspect with at least one expunged and one live conviction, and a dispensary registration.
SUSPECT = next(
    p for p in POPULATION.suspects()
    if any(c.expunged for c in p.convictions) and any(not c.expunged for c in p.convictions)
    and p.health.registrations
)


def report_request(person) -> dict:
    return {
        "subject_iin": person.iin,
        "erdr_number": person.pretrial_case.erdr_number,
        "court": {"code": "COURT-ALM-2", "name": "Алматы қаласының №2 аудандық соты"},
        "requesting_body": {"code": "PROB-751", "name": "Пробация қызметі"},
        "due_date": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
        "officer_conclusion": "Сотталушы пробация қызметімен ынтымақтасуға дайын.",
    }


async def request_report(http, system, person, key: str | None = None) -> str:
    async with http.post(
        f"{system.gateway.url}/api/v1/pretrial-reports", json=report_request(person),
        headers={"X-Member-Id": "probation", "X-Purpose": "pretrial_report",
                 "X-Message-Id": key or str(uuid.uuid4())},
    ) as response:
        answer = await response.json()
        assert response.status == 202, answer
        return answer["report_id"]


async def report_status(http, system, report_id: str) -> dict:
    async with http.get(f"{system.gateway.url}/api/v1/pretrial-reports/{report_id}",
                        headers={"X-Member-Id": "probation"}) as response:
        assert response.status == 200
        return await response.json()
