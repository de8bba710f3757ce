"""Every agency system as a simulator on loopback, serving one synthetic population.

``Simulation`` starts them in one process (the demo and the end-to-end tests
use it); ``gateway simulate`` runs it on the ports the configuration's member
endpoints name, until stopped. The clinics acknowledge notices by calling the
gateway back, so they are told the gateway's URL.

With a development PKI (``running_system(..., mtls=True)``, or a configuration in
``identity = "mtls"`` mode) every simulator serves HTTPS with its member's certificate and
requires a client certificate from the same CA, as the gateway does; the clinics call back
with theirs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from adapters.clinic.simulator import create_simulator as clinic
from adapters.court.simulator import create_simulator as court
from adapters.health.simulator import create_simulator as health
from adapters.interior.simulator import create_simulator as interior
from adapters.penal.simulator import create_simulator as penal
from adapters.probation.simulator import create_simulator as probation
from adapters.social.simulator import create_simulator as social
from adapters.population import Population
from adapters.simulation import Behaviour, Recorder
from gateway.config import GatewayConfig, load_config
from gateway.logs import get_logger
from gateway.resources import resource_dir
from gateway.security.keys import DevelopmentKeys
from gateway.security.tls import DevelopmentPki

log = get_logger("gateway.entrypoints.tools.simulate")

# The member each simulator plays, in start order (the clinics need the health system's URL).
SYSTEMS = ("penal", "interior", "health", "social", "court", "probation", "clinic")
# The simulators that speak SOAP: they sign with their member's development key when the
# configuration pins its certificate.
SIGNING_SYSTEMS = ("penal", "interior", "court")


@dataclass
class ClinicBehaviour:
    ack_delay: float = 0.2
    silent_clinics: Iterable[str] = ()
    attach: bool | float = True


@dataclass
class Simulation:
    population: Population
    gateway_url: str
    clinic: ClinicBehaviour = field(default_factory=ClinicBehaviour)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    recorders: dict[str, Recorder] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    keys: DevelopmentKeys | None = None
    """The members' development keys: a SOAP simulator with one signs and verifies; without, neither."""
    pki: DevelopmentPki | None = None
    """With one, simulators serve HTTPS as their member and require client certificates."""
    _runners: list[web.AppRunner] = field(default_factory=list)

    def behaviour(self, system: str) -> Behaviour:
        return self.behaviours.setdefault(system, Behaviour())

    def recorder(self, system: str) -> Recorder:
        return self.recorders.setdefault(system, Recorder())

    async def start(self, ports: Mapping[str, int], host: str = "127.0.0.1") -> dict[str, str]:
        """Start every simulator on its port (``free_ports`` picks them); returns their base URLs."""
        for system in SYSTEMS:
            app = self._app(system)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            tls = self.pki.server_context(system) if self.pki is not None else None
            await web.TCPSite(runner, host, ports[system], ssl_context=tls, reuse_address=True).start()
            self._runners.append(runner)
            self.urls[system] = f"{'https' if tls else 'http'}://{host}:{runner.addresses[0][1]}"
        return dict(self.urls)

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    def _app(self, system: str) -> web.Application:
        factories = {"penal": penal, "interior": interior, "health": health, "social": social, "court": court,
                     "probation": probation}
        behaviour, recorder = self.behaviour(system), self.recorder(system)
        if system == "clinic":
            return clinic(
                self.population, behaviour, recorder, gateway_url=self.gateway_url, health_url=self.urls["health"],
                ack_delay=self.clinic.ack_delay, silent_clinics=self.clinic.silent_clinics, attach=self.clinic.attach,
                client_ssl=self.pki.client_context(system) if self.pki is not None else None,
            )
        signer = self.keys.signers.get(system) if self.keys else None
        if signer is not None:
            return factories[system](self.population, behaviour, recorder, signer=signer, verifier=self.keys.gateway)
        return factories[system](self.population, behaviour, recorder)


def free_ports(names: Iterable[str], host: str = "127.0.0.1") -> dict[str, int]:
    """A free loopback port for each name (bound and released: free a moment later too)."""
    ports, sockets = {}, []
    for name in names:
        sock = socket.socket()
        sock.bind((host, 0))
        sockets.append(sock)
        ports[name] = sock.getsockname()[1]
    for sock in sockets:
        sock.close()
    return ports


def configured_ports(config: GatewayConfig) -> dict[str, int]:
    """The ports the configuration's member endpoints name, for each simulated system."""
    ports = {}
    for system in SYSTEMS:
        member = config.members.get(system)
        if member is None or not member.endpoint:
            raise ValueError(f"members.{system} needs an endpoint on loopback for its simulator")
        port = urlsplit(member.endpoint).port
        if port is None:
            raise ValueError(f"members.{system}.endpoint names no port")
        ports[system] = port
    return ports


# Members played by a simulator of another system: employment centres and the adaptation
# partners by the social simulator, the regional health authority by the health simulator.
_PLAYED_BY = {"employment": "social", "health-authority": "health", "akimat-social": "social",
              "adaptation-centre": "social", "ngo-partner": "social"}


def system_config(
    directory: Path, *, urls: Mapping[str, str], gateway_port: int, store_url: str,
    settings: Mapping[str, Any] | None = None,
) -> GatewayConfig:
    """The shipped configuration, copied to ``directory``, pointed at the simulators.

    ``settings`` overrides keys by dotted name (``"delivery.max_attempts": 3``) the way an
    operator does from the environment, so the demo and tests run the real loader.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("gateway.toml", "members.toml", "policy.toml"):
        shutil.copyfile(resource_dir("config") / name, directory / name)
    config = load_config(directory, environ=system_environment(urls=urls, gateway_port=gateway_port,
                                                               store_url=store_url, settings=settings))
    # The files the configuration pins for the simulated members, before a gateway reads them.
    DevelopmentKeys.provision(config, SIGNING_SYSTEMS)
    return config


def system_environment(
    *, urls: Mapping[str, str], gateway_port: int, store_url: str, settings: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The ``GATEWAY__…`` variables that point a gateway at the simulators (for a
    ``gateway serve`` process, or for ``load_config`` in this one)."""
    environ = {"GATEWAY__SERVER__PORT": str(gateway_port), "GATEWAY__STORE__URL": _toml(store_url)}
    for member in (*SYSTEMS, *_PLAYED_BY):
        environ[f"GATEWAY__MEMBERS__{member.upper()}__ENDPOINT"] = _toml(urls[_PLAYED_BY.get(member, member)])
    for key, value in (settings or {}).items():
        environ["GATEWAY__" + key.replace(".", "__").upper()] = _toml(value)
    return environ


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


@dataclass
class System:
    """A gateway and every simulator, on loopback: the whole exchange in one process."""

    gateway: Any
    simulation: Simulation
    config: GatewayConfig
    pki: DevelopmentPki | None = None

    def client_ssl(self, member: str) -> ssl.SSLContext | None:
        """What a client acting as ``member`` calls the gateway with: its certificate in mTLS mode;
        None (plain HTTP, X-Member-Id) otherwise."""
        return self.pki.client_context(member) if self.pki is not None else None


class SimulatedClock:
    """The wall clock plus whatever a scenario has skipped: time runs as usual and jumps forward
    when the scenario lets a deadline pass, so no deadline ever races the machine's speed."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self.skipped = 0.0

    def __call__(self) -> float:
        return self._wall() + self.skipped

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock moves forward only")
        self.skipped += seconds


@asynccontextmanager
async def running_system(
    directory: Path, *, population: Population, store_url: str = "sqlite:///gateway.db",
    settings: Mapping[str, Any] | None = None, clinic: ClinicBehaviour | None = None, mtls: bool = False,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[System]:
    """The whole exchange on loopback. ``mtls``: the gateway in ``identity = "mtls"`` mode with a
    development PKI in ``directory/pki``, and every simulator on HTTPS with its member's certificate.
    ``clock``: the gateway's clock (the wall clock unless given)."""
    from gateway.entrypoints.http.server import build

    ports = free_ports([*SYSTEMS, "gateway"])
    scheme = "https" if mtls else "http"
    gateway_url = f"{scheme}://127.0.0.1:{ports['gateway']}"
    simulation = Simulation(population, gateway_url=gateway_url, clinic=clinic or ClinicBehaviour())
    urls = {system: f"{scheme}://127.0.0.1:{port}" for system, port in ports.items()}
    pki = DevelopmentPki(directory / "pki")
    if mtls:
        settings = {**(settings or {}), "server.identity": "mtls", "tls.ca_certificate": str(pki.ca_certificate),
                    "tls.crl": str(pki.crl), "tls.certificate": str(pki.certificate("gateway")),
                    "tls.private_key": str(pki.private_key("gateway"))}
    config = system_config(directory, urls=urls, gateway_port=ports["gateway"], store_url=store_url,
                           settings=settings)
    if mtls:
        # Kept across restarts in the same directory, like the store.
        if not pki.ca_certificate.exists():
            DevelopmentPki.init(pki.directory, ["gateway", *config.members])
        simulation.pki = pki
    simulation.keys = DevelopmentKeys.provision(config, SIGNING_SYSTEMS)
    await simulation.start(ports)
    gateway = build(config, **({"clock": clock} if clock is not None else {}))
    try:
        await gateway.start()
        yield System(gateway, simulation, config, pki=simulation.pki)
    finally:
        await gateway.stop()
        await simulation.stop()


async def run_until_stopped(config: GatewayConfig, *, gateway_url: str, seed: int, size: int) -> None:
    simulation = Simulation(Population(seed=seed, size=size), gateway_url=gateway_url,
                            keys=DevelopmentKeys.provision(config, SIGNING_SYSTEMS))
    if config.server.identity == "mtls":
        # The development PKI `gateway pki init` made where [tls] points.
        simulation.pki = DevelopmentPki((config.base_dir / config.tls.ca_certificate).parent)
    urls = await simulation.start(configured_ports(config))
    log.info("simulators running", systems=sorted(urls), people=size, seed=seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await simulation.stop()
