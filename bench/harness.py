"""What every scenario shares: the sizes of a run, its figures, and a ``Bench`` that starts
the agency systems once and gateways on demand.

A gateway is always a ``gateway serve`` child process on the shipped configuration
(``gateway.entrypoints.tools.simulate.system_config``), pointed at the agency systems and the store through the
same ``GATEWAY__…`` variables an operator uses; a scenario adds only the overrides it states.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.processes import Agencies, Children, GatewayProcess
from gateway.config import load_config
from gateway.entrypoints.tools.simulate import SYSTEMS, free_ports, system_config, system_environment

__all__ = ["POSTGRES_URL", "PROFILES", "Bench", "Figure", "Profile", "Section", "ratio", "timed", "wait_for_arrivals"]

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SEED = 20261126
# People in custody are about 30 % of the synthetic population.
_PEOPLE_PER_RELEASE = 3.5


@dataclass(frozen=True)
class Profile:
    """How big a run is. ``full`` is what BENCHMARKS.md records."""

    name: str
    latency_requests: int  # per path, one at a time
    load_seconds: float  # per path, at fixed concurrency
    concurrency: int
    raw_seconds: float  # per raw store measurement
    durable_messages: int
    postgres_messages: int
    scatter_reports: int
    backlog_messages: int
    burst_notices: int
    naive_calls: int
    large_episodes: int
    cpu_messages: int
    console_messages: int = 2_000
    console_cases: int = 400
    console_audit: int = 2_000
    console_requests: int = 5  # per page, one at a time
    console_refreshes: int = 2
    console_refresh_seconds: int = 1
    indicator_releases: int = 50_000
    indicator_events: int = 500_000

    @property
    def people(self) -> int:
        return max(2_000, int(self.burst_notices * _PEOPLE_PER_RELEASE))


PROFILES = {
    "tiny": Profile("tiny", latency_requests=20, load_seconds=0.5, concurrency=4, raw_seconds=0.3,
                    durable_messages=200, postgres_messages=100, scatter_reports=2, backlog_messages=300,
                    burst_notices=30, naive_calls=20, large_episodes=200, cpu_messages=1_000, indicator_releases=300,
                    indicator_events=3_000),
    "quick": Profile("quick", latency_requests=300, load_seconds=4, concurrency=16, raw_seconds=2,
                     durable_messages=4_000, postgres_messages=1_500, scatter_reports=8, backlog_messages=15_000,
                     burst_notices=1_500, naive_calls=300, large_episodes=2_000,
                     cpu_messages=3_000, indicator_releases=10_000, indicator_events=100_000,
                     console_messages=20_000, console_cases=4_000, console_audit=20_000, console_requests=60,
                     console_refreshes=6, console_refresh_seconds=5),
    "full": Profile("full", latency_requests=1_500, load_seconds=12, concurrency=16, raw_seconds=3,
                    durable_messages=20_000, postgres_messages=6_000, scatter_reports=24, backlog_messages=100_000,
                    burst_notices=20_000, naive_calls=1_000, large_episodes=2_000, cpu_messages=6_000,
                    console_messages=100_000, console_cases=20_000, console_audit=100_000, console_requests=100,
                    console_refreshes=12, console_refresh_seconds=5),
}


@dataclass
class Figure:
    """One measured figure, with the target it is held to, if any."""

    name: str
    value: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "target": self.target or None,
                "met": self.met, "note": self.note or None}


@dataclass
class Section:
    """A scenario's figures and what a reader needs to read them."""

    key: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def add(self, name: str, value: float | None, unit: str, *, target: str = "", met: bool | None = None,
            note: str = "") -> Figure:
        figure = Figure(name, None if value is None else round(float(value), 3), unit, target, met, note)
        self.figures.append(figure)
        return figure

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "seconds": round(self.seconds, 1), "error": self.error,
                "figures": [f.as_dict() for f in self.figures], "notes": self.notes}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


class Bench:
    """One run: its folder, its ports, the agency systems, and the gateways it starts."""

    def __init__(self, profile: Profile, root: Path, children: Children) -> None:
        self.profile = profile
        self.root = root
        self.children = children
        self.ports = free_ports([*SYSTEMS, "sink", "control", "gateway", "gateway-2", "gateway-3",
                                 "nginx-health", "nginx-interior", "plain"])
        self.config_dir = root / "config"
        urls = self._simulator_urls()
        # Writes the shipped configuration and provisions the development keys the
        # simulators sign with; each gateway then gets its own overrides.
        system_config(self.config_dir, urls=urls, gateway_port=self.ports["gateway"],
                      store_url=self.sqlite_url("check"))
        self.agencies = Agencies(
            {"config_dir": str(self.config_dir), "seed": SEED, "people": profile.people,
             "gateway_url": f"http://127.0.0.1:{self.ports['gateway']}", "ack_delay": 0.0,
             "ports": {name: self.ports[name] for name in (*SYSTEMS, "sink", "control")}},
            root,
        )
        self._gateways = 0

    def _simulator_urls(self) -> dict[str, str]:
        return {system: f"http://127.0.0.1:{self.ports[system]}" for system in SYSTEMS}

    async def start(self) -> None:
        self.children.add(self.agencies).start()
        # Generating the population takes about 0.3 ms a person.
        await self.agencies.ready(timeout=60 + self.profile.people * 0.002)

    async def close(self) -> None:
        await self.agencies.close()

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{self.root / 'stores' / name / 'gateway.db'}"

    @staticmethod
    def postgres_url() -> tuple[str, str]:
        """A URL in a schema of this run's own, and the schema's name (to drop afterwards)."""
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        return f"{POSTGRES_URL}?schema={schema}", schema

    def environment(self, store_url: str, *, settings: Mapping[str, Any] | None = None,
                    endpoints: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
                    ) -> dict[str, str]:
        """The ``GATEWAY__…`` variables of one gateway: the shipped configuration pointed at the
        agency systems and ``store_url``, with ``settings`` (dotted keys), member ``endpoints``
        replaced, and ``extra`` variables as given."""
        env = system_environment(urls=self._simulator_urls(), gateway_port=self.ports["gateway"],
                                 store_url=store_url, settings=settings)
        for member, url in (endpoints or {}).items():
            env[f"GATEWAY__MEMBERS__{member.upper()}__ENDPOINT"] = json.dumps(url)
        env.update(extra or {})
        load_config(self.config_dir, environ=env)  # a mistake here is the harness's: say so now
        return env

    @contextlib.asynccontextmanager
    async def gateway(self, env: Mapping[str, str], *, port_name: str = "gateway") -> AsyncIterator[GatewayProcess]:
        """A ``gateway serve`` process with ``env`` on the port named ``port_name``, stopped
        (SIGTERM: it drains and signs its audit tree heads) on leaving."""
        self._gateways += 1
        process = GatewayProcess(f"gateway {self._gateways}", self.config_dir, self.ports[port_name],
                                 self.root / f"gateway-{self._gateways}.log", dict(env))
        self.children.add(process).start()
        try:
            await process.ready()
            yield process
        finally:
            await asyncio.to_thread(process.stop)


async def wait_for_arrivals(bench: Bench, system: str, wanted: set[str], timeout: float) -> dict[str, float]:
    """Arrival times of ``wanted`` at ``system``, once all are there or ``timeout`` has passed.

    Polls the cheap count first: fetching every arrival of a long run takes CPU the system
    under test is using."""
    deadline = time.monotonic() + timeout
    while True:
        late = time.monotonic() > deadline
        if late or await bench.agencies.count(system) >= len(wanted):
            arrived = await bench.agencies.arrivals(system)
            if late or wanted <= arrived.keys():
                return {i: arrived[i] for i in wanted if i in arrived}
        await asyncio.sleep(0.2)


@contextlib.contextmanager
def timed(section: Section):
    """Record in ``section`` how long the block took."""
    started = time.monotonic()
    try:
        yield
    finally:
        section.seconds = time.monotonic() - started
