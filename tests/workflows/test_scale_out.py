"""Both workflows on PostgreSQL with two gateway instances sharing the work.

Requests and notices arrive at either instance; timers, deliveries and
acknowledgements are picked up by whichever instance claims them. Every case
must end where its circumstances put it, and each receiver must get each
notice exactly once (no crash here, so not even a redelivery).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from gateway.entrypoints.http.server import build
from gateway.entrypoints.tools.demo import expected_release_state
from gateway.entrypoints.tools.simulate import SYSTEMS, ClinicBehaviour, Simulation, free_ports, system_config
from workflow_steps import FAST, POPULATION, notify_release, request_report


async def test_two_instances_on_postgresql_run_both_workflows_to_the_end(tmp_path, postgres_backend, http):
    released = POPULATION.in_custody()[:30]
    suspects = POPULATION.suspects()[:10]
    silent: set[str] = set()  # no deadline has to pass: each case's end follows from its data alone
    ports = free_ports([*SYSTEMS, "gateway", "second"])
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    simulation = Simulation(POPULATION, gateway_url=urls["gateway"], clinic=ClinicBehaviour())
    await simulation.start(ports)
    config = system_config(tmp_path / "config", urls=urls, gateway_port=ports["gateway"],
                           store_url=postgres_backend.fresh_url(),
                           settings=FAST)
    first, second = build(config), build(config)
    await first.start()
    await second.start(port=ports["second"])
    instances = [first, second]
    try:
        systems = [_At(gateway, simulation) for gateway in instances]
        report_ids = [await request_report(http, systems[n % 2], person) for n, person in enumerate(suspects)]
        for n, person in enumerate(released):
            await notify_release(http, systems[n % 2], person)
        expected = Counter(expected_release_state(p, POPULATION, silent, set()) for p in released)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            reports = [(await first.store.get_case("pretrial_report", rid)).state for rid in report_ids]
            cases = Counter(c.state for c in await first.store.list_cases("release_case", limit=500))
            if set(reports) == {"complete"} and cases == expected:
                break
            await asyncio.sleep(0.2)
        assert set(reports) == {"complete"}
        assert cases == expected
    finally:
        await second.stop()
        await first.stop()
        await simulation.stop()
    treated = sum(1 for p in released if p.health.registrations and POPULATION.clinic_for(p.release.destination))
    for system, service, count in (("court", None, len(suspects)), ("clinic", None, treated),
                                   ("social", "employment/release-notices", len(released))):
        recorder = simulation.recorder(system)
        assert len(recorder.unique(service)) == count
        assert recorder.duplicates == 0


class _At:
    """One instance as the shared test steps see a system: its URL and the simulators."""

    def __init__(self, gateway, simulation) -> None:
        self.gateway, self.simulation = gateway, simulation
