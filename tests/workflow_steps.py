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
    # Never passed by slowness: a test that needs it passed moves an injected clock.
    "workflows.release.acknowledge_within_seconds": 600,
    "workflows.release.attachment_check_seconds": 0.3,
    "workflows.release.retry_seconds": 0.3,
    "audit.tree_head_interval_seconds": 0.5,
    # The workflow tests push some SOAP unsigned; signed exchanges are tested in tests/soap and the demo.
    "members.penal.require_signature": False,
    "members.interior.require_signature": False,
    "members.court.require_signature": False,
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


def _released(predicate):
    return next(p for p in POPULATION.in_custody() if predicate(p))


def _clinic_resolvable(p) -> bool:
    return POPULATION.clinic_for(p.release.destination) is not None


# People in custody, each chosen for one path through the release workflow.
TREATED = _released(lambda p: p.health.registrations and _clinic_resolvable(p) and p.release.housing.available
                    and p.release.identity_documents and p.release.probation_office is not None)
NO_CLINIC = _released(lambda p: p.health.registrations and not _clinic_resolvable(p))
UNTREATED = _released(lambda p: not p.health.registrations and _clinic_resolvable(p))
HOMELESS = _released(lambda p: p.health.registrations and _clinic_resolvable(p) and not p.release.housing.available)
SILENT = _released(lambda p: p.health.registrations and _clinic_resolvable(p) and p is not TREATED
                   and POPULATION.clinic_for(p.release.destination) != POPULATION.clinic_for(TREATED.release.destination))


async def notify_release(http, system, person, event: str = "PLANNED", notice=None, key: str | None = None) -> str:
    body = {"event": event, "notice": (notice or person.release).model_dump(mode="json")}
    async with http.post(
        f"{system.gateway.url}/api/v1/release-notices", json=body,
        headers={"X-Member-Id": "penal", "X-Purpose": "continuity_of_care", "X-Message-Id": key or str(uuid.uuid4())},
    ) as response:
        answer = await response.json()
        assert response.status == 202, answer
        return answer["case_id"]


async def release_case(http, system, case_id: str) -> dict:
    async with http.get(f"{system.gateway.url}/api/v1/release-cases/{case_id}",
                        headers={"X-Member-Id": "operations"}) as response:
        assert response.status == 200
        return await response.json()


async def case_reaches(http, system, case_id: str, state: str, timeout: float = 20) -> dict:
    from support import wait_until

    async def reached():
        return (await release_case(http, system, case_id))["state"] == state

    await wait_until(reached, timeout=timeout)
    return await release_case(http, system, case_id)
