"""The agency systems a benchmark talks to, in a process of their own: ``python -m bench.agencies SPEC``.

Every simulator the gateway's members point at (penal, interior, health, social with the
employment centres, court, probation, clinics), a sink (a receiver that only records and
answers 200, for the relay scenarios that measure the gateway rather than a simulator), and
a control server. Each server records when it finished handling each message id, the first
time it answered it with a 2xx: the arrival end of an end-to-end latency, on the wall clock
the load generator also reads.

Running them apart from the load generator and from the gateway keeps each on its own event
loop, as real agency systems are. The control server lets the harness slow a simulator down,
take the sink off the network and bring it back, read arrivals, and fetch request material
from the synthetic population (so it is generated once per run).

SPEC is a JSON file: ``config_dir``, ``seed``, ``people``, ``gateway_url``, ``ports``
(one per system, ``sink`` and ``control``), ``ack_delay``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.population import Population
from adapters.simulation import Behaviour, Recorder
from gateway.config import load_config
from gateway.domain import ReleaseEvent, ReleaseType
from gateway.logs import configure_logging
from gateway.security.keys import DevelopmentKeys, gateway_signer
from gateway.security.xmldsig import PinnedCertificate, Verifier
from gateway.entrypoints.tools.simulate import SIGNING_SYSTEMS, SYSTEMS

SINK = "sink"
_CONTROL = web.AppKey("control", object)


class Arrivals:
    """When each message id was first answered with a 2xx by one server."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.at: list[float] = []
        self._seen: set[str] = set()

    def middleware(self):
        @web.middleware
        async def record(request: web.Request, handler):
            response = await handler(request)
            message_id = request.headers.get("X-Message-Id")
            if message_id and response.status < 300 and message_id not in self._seen:
                self._seen.add(message_id)
                self.ids.append(message_id)
                self.at.append(time.time())
            return response

        return record

    def clear(self) -> None:
        self.ids.clear()
        self.at.clear()
        self._seen.clear()


class Agencies:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.population = Population(seed=spec["seed"], size=spec["people"])
        self.behaviours = {system: Behaviour() for system in SYSTEMS}
        self.arrivals = {system: Arrivals() for system in (*SYSTEMS, SINK)}
        self._runners: list[web.AppRunner] = []
        self._sink_runner: web.AppRunner | None = None
        self._sink_site: web.TCPSite | None = None

    # -- the servers

    def _simulators(self) -> dict[str, web.Application]:
        from adapters.clinic.simulator import create_simulator as clinic
        from adapters.court.simulator import create_simulator as court
        from adapters.health.simulator import create_simulator as health
        from adapters.interior.simulator import create_simulator as interior
        from adapters.penal.simulator import create_simulator as penal
        from adapters.probation.simulator import create_simulator as probation
        from adapters.social.simulator import create_simulator as social

        config = load_config(Path(self.spec["config_dir"]), environ={})
        keys = DevelopmentKeys.provision(config, SIGNING_SYSTEMS)
        gateway = gateway_signer(config.signing, config.base_dir, member_id=config.server.member_id)
        # Signed requests are verified — everything the gateway sends is signed — and unsigned
        # ones pass: the naive baseline's zeep client cannot sign.
        lenient = Verifier(config.server.member_id, [PinnedCertificate.of(gateway.certificate, "gateway.pem")],
                           required=False)
        pop, b = self.population, self.behaviours
        health_url = f"http://127.0.0.1:{self.spec['ports']['health']}"
        return {
            "penal": penal(pop, b["penal"], Recorder(), signer=keys.signers["penal"], verifier=keys.gateway),
            "interior": interior(pop, b["interior"], Recorder(), signer=keys.signers["interior"], verifier=lenient),
            "health": health(pop, b["health"], Recorder()),
            "social": social(pop, b["social"], Recorder()),
            "court": court(pop, b["court"], Recorder(), signer=keys.signers["court"], verifier=keys.gateway),
            "probation": probation(pop, b["probation"], Recorder()),
            "clinic": clinic(pop, b["clinic"], Recorder(), gateway_url=self.spec["gateway_url"],
                             health_url=health_url, ack_delay=self.spec["ack_delay"]),
        }

    async def start(self) -> None:
        ports = self.spec["ports"]
        for system, app in self._simulators().items():
            app.middlewares.insert(0, self.arrivals[system].middleware())
            await self._serve(app, ports[system])
        sink = web.Application(middlewares=[self.arrivals[SINK].middleware()])
        sink.router.add_post("/{path:.*}", _sink)
        self._sink_runner = web.AppRunner(sink, access_log=None)
        await self._sink_runner.setup()
        await self.sink_listening(True)
        control = web.Application()
        control[_CONTROL] = self
        control.router.add_routes(_CONTROL_ROUTES)
        await self._serve(control, ports["control"])

    async def _serve(self, app: web.Application, port: int) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True, backlog=1024).start()
        self._runners.append(runner)

    async def sink_listening(self, listening: bool) -> None:
        """Put the sink on the network, or take it off (connections are refused)."""
        if listening and self._sink_site is None:
            self._sink_site = web.TCPSite(self._sink_runner, "127.0.0.1", self.spec["ports"][SINK],
                                          reuse_address=True, backlog=1024)
            await self._sink_site.start()
        elif not listening and self._sink_site is not None:
            await self._sink_site.stop()
            self._sink_site = None

    async def stop(self) -> None:
        if self._sink_runner is not None:
            await self._sink_runner.cleanup()
        for runner in reversed(self._runners):
            await runner.cleanup()


async def _sink(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=b'{"received": true}', content_type="application/json")


# ---------------------------------------------------------------- control

_CONTROL_ROUTES = web.RouteTableDef()


def _agencies(request: web.Request) -> Agencies:
    return request.app[_CONTROL]


@_CONTROL_ROUTES.get("/ready")
async def _ready(request: web.Request) -> web.Response:
    return web.json_response({"people": len(_agencies(request).population)})


@_CONTROL_ROUTES.post("/behaviour")
async def _behaviour(request: web.Request) -> web.Response:
    wanted = await request.json()
    behaviour = _agencies(request).behaviours[wanted["system"]]
    if "latency" in wanted:
        behaviour.latency = tuple(wanted["latency"])
    if "down" in wanted:
        behaviour.down = bool(wanted["down"])
    return web.json_response({"ok": True})


@_CONTROL_ROUTES.post("/sink")
async def _sink_switch(request: web.Request) -> web.Response:
    await _agencies(request).sink_listening(bool((await request.json())["listening"]))
    return web.json_response({"ok": True})


@_CONTROL_ROUTES.get("/arrivals/{system}")
async def _arrivals(request: web.Request) -> web.Response:
    arrivals = _agencies(request).arrivals[request.match_info["system"]]
    after = int(request.query.get("after", "0"))
    return web.json_response({"ids": arrivals.ids[after:], "at": arrivals.at[after:], "total": len(arrivals.ids)})


@_CONTROL_ROUTES.get("/counts")
async def _counts(request: web.Request) -> web.Response:
    return web.json_response({system: len(a.ids) for system, a in _agencies(request).arrivals.items()})


@_CONTROL_ROUTES.post("/arrivals/clear")
async def _clear(request: web.Request) -> web.Response:
    for arrivals in _agencies(request).arrivals.values():
        arrivals.clear()
    return web.json_response({"ok": True})


@_CONTROL_ROUTES.get("/release-notices")
async def _release_notices(request: web.Request) -> web.Response:
    """``count`` people in custody released at once by an amnesty: the JSON bodies of
    ``POST /api/v1/release-notices``, and how many of them the clinics should hear about."""
    population = _agencies(request).population
    count = int(request.query["count"])
    released = population.in_custody()[:count]
    today = population.today
    bodies, clinic_notices = [], 0
    for person in released:
        notice = person.release.model_copy(update={"release_type": ReleaseType.AMNESTY, "planned_date": today,
                                                   "actual_date": today})
        bodies.append({"event": ReleaseEvent.ACTUAL.value, "notice": notice.model_dump(mode="json")})
        # The workflow sends a continuity-of-care notice when there is treatment to continue
        # and a clinic serves the destination (gateway.workflows.release).
        clinic_notices += bool(person.health.registrations) and population.clinic_for(notice.destination) is not None
    return web.json_response({"notices": bodies, "clinic_notices": clinic_notices, "available": len(released)})


@_CONTROL_ROUTES.get("/suspects")
async def _suspects(request: web.Request) -> web.Response:
    """Pre-trial report requests for ``count`` suspects, as a probation officer posts them."""
    population = _agencies(request).population
    due = (dt.date.today() + dt.timedelta(days=21)).isoformat()
    requests = []
    for person in population.suspects()[: int(request.query["count"])]:
        office = person.district.probation_office
        requests.append({
            "subject_iin": person.iin,
            "erdr_number": person.pretrial_case.erdr_number,
            "court": {"code": f"COURT-{person.district.kato[:2]}", "name": f"{person.district.region}: аудандық сот"},
            "requesting_body": {"code": office.code, "name": office.name},
            "due_date": due,
            "officer_conclusion": "Пробация қызметкерінің қорытындысы.",
        })
    return web.json_response(requests)


@_CONTROL_ROUTES.get("/people")
async def _people(request: web.Request) -> web.Response:
    """IINs of ``count`` people in the population register."""
    population = _agencies(request).population
    return web.json_response([p.iin for p in population.people[: int(request.query["count"])]])


async def _main(spec: dict[str, Any]) -> None:
    configure_logging("error", "json")
    agencies = Agencies(spec)
    await agencies.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await agencies.stop()


if __name__ == "__main__":
    asyncio.run(_main(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))
