"""Both workflows survive a gateway killed with SIGKILL in the middle of them.

A gateway process serves the whole exchange against the simulators (in this
process). While probation asks for reports and the penal system pushes
releases, the gateway is killed at random moments and restarted. Every case
must still reach the state its circumstances call for, and each receiver gets
each notice — redelivered copies carry the same X-Message-Id, so they are
counted and dropped, never new notices.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import aiohttp
import pytest

from adapters.penal.simulator import push_release_notices
from gateway.entrypoints.tools.demo import expected_release_state
from gateway.domain import ReleaseEvent
from gateway.entrypoints.tools.simulate import SYSTEMS, ClinicBehaviour, Simulation, free_ports, system_config, system_environment
from support import GatewayProcess, leaks
from workflow_steps import FAST, POPULATION, report_request

KILLS = 4
# Short leases: a step or delivery the killed process held is taken over quickly. No deadline
# may race the machine's speed here (the process runs on the wall clock): clinics acknowledge
# long before theirs, and a slow source answer is not an outage. Deadlines that pass are tested
# on an injected clock (test_release_end_to_end, test_simulated_years).
CRASH_SETTINGS = {**FAST, "workflows.timer_lease_seconds": 2, "delivery.lease_seconds": 2,
                  "delivery.request_timeout_seconds": 1,
                  "workflows.release.acknowledge_within_seconds": 900,
                  "workflows.pretrial.source_timeout_seconds": 30}


@pytest.mark.slow
async def test_both_workflows_finish_correctly_across_repeated_sigkills(tmp_path):
    released = POPULATION.in_custody()[:40]
    suspects = POPULATION.suspects()[:15]
    silent: set[str] = set()  # every clinic acknowledges: the outcome follows from the data alone
    ports = free_ports([*SYSTEMS, "gateway"])
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    simulation = Simulation(POPULATION, gateway_url=urls["gateway"], clinic=ClinicBehaviour())
    await simulation.start(ports)
    environment = system_environment(urls=urls, gateway_port=ports["gateway"], store_url="sqlite:///gateway.db",
                                     settings=CRASH_SETTINGS)
    # The configuration folder the process reads; the environment points it at the simulators.
    system_config(tmp_path / "config", urls=urls, gateway_port=ports["gateway"],
                           store_url="sqlite:///gateway.db", settings=CRASH_SETTINGS)
    gateway = GatewayProcess(tmp_path / "config", ports["gateway"], tmp_path / "gateway.log", env=environment)
    rng = random.Random(11)
    gateway.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            await gateway.ready(http)

            async def ask_reports() -> list[str]:
                ids = []
                for person in suspects:
                    ids.append(await _until_accepted(lambda: _request(http, gateway.url, person)))
                return ids

            async def push_releases() -> None:
                for person in released:
                    key = f"restart-{person.iin[-6:]}"
                    await _until_accepted(lambda: push_release_notices(
                        gateway.url, [(ReleaseEvent.PLANNED, person.release)], http, message_ids=[key]))

            async def kill_repeatedly() -> None:
                for _ in range(KILLS):
                    await asyncio.sleep(rng.uniform(0.4, 1.2))
                    gateway.kill()
                    await asyncio.sleep(rng.uniform(0.0, 0.3))
                    gateway.start()
                    await gateway.ready(http)

            report_ids, _, _ = await asyncio.gather(ask_reports(), push_releases(), kill_repeatedly())
            expected = Counter(expected_release_state(p, POPULATION, silent, set()) for p in released)
            await _settled(http, gateway.url, report_ids, expected)
    finally:
        gateway.stop()
        await simulation.stop()

    court = simulation.recorder("court")
    clinic = simulation.recorder("clinic")
    treated = sum(1 for p in released if p.health.registrations and POPULATION.clinic_for(p.release.destination))
    assert len(court.unique()) == len(report_ids)  # one version each: every source was up
    assert len(clinic.unique()) == treated
    assert len(simulation.recorder("social").unique("employment/release-notices")) == len(released)
    print(f"\nworkflow restart test: {KILLS} SIGKILLs; court got {len(court.deliveries)} deliveries of "
          f"{len(court.unique())} reports, clinics {len(clinic.deliveries)} of {len(clinic.unique())} notices")
    assert not leaks((tmp_path / "gateway.log").read_text().splitlines())


async def _request(http: aiohttp.ClientSession, url: str, person) -> str:
    key = f"restart-report-{person.iin[-6:]}"
    async with http.post(f"{url}/api/v1/pretrial-reports", json=report_request(person),
                         headers={"X-Member-Id": "probation", "X-Purpose": "pretrial_report",
                                  "X-Message-Id": key}) as response:
        if response.status != 202:
            raise ConnectionError(f"HTTP {response.status}")
        return (await response.json())["report_id"]


async def _until_accepted(call, attempts: int = 400):
    """Resend, with the same message id, until the gateway answers (bounded: ~40 s)."""
    for _ in range(attempts):
        try:
            return await call()
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway never accepted the request")


async def _settled(http: aiohttp.ClientSession, url: str, report_ids: list[str], expected: Counter) -> None:
    ops = {"X-Member-Id": "operations"}
    deadline = time.monotonic() + 60
    states: Counter = Counter()
    reports: list[str] = []
    while time.monotonic() < deadline:
        try:
            reports = []
            for report_id in report_ids:
                async with http.get(f"{url}/api/v1/pretrial-reports/{report_id}", headers=ops) as response:
                    reports.append((await response.json())["status"])
            async with http.get(f"{url}/api/v1/release-cases?limit=500", headers=ops) as response:
                states = Counter(item["state"] for item in (await response.json())["items"])
            if set(reports) == {"complete"} and states == expected:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.3)
    raise AssertionError(f"not settled: reports {Counter(reports)}, releases {states} (expected {expected})")


