"""What every agency simulator shares: misbehaviour, a record of what it got, and the plumbing.

A simulator is an aiohttp application built by ``simulator_app`` (or ``soap_simulator``);
the adapter adds its routes. ``Behaviour`` makes it slow, flaky or down — on a schedule or
switched at run time by a test — and ``Recorder`` keeps every message delivered
to it (with a duplicate count by ``X-Message-Id``) so tests can assert on what
arrived. ``GET /_simulator/received`` reports the counts (not the payloads) to
a test in another process.

The rest is what the agencies' real systems do alike. A JSON service reads a body strictly
(``read_json``, with ``gateway.web.body``), refuses what breaks its contract with a 422
(``decoded``, ``Refused``; pydantic's messages without the values, which may be personal
data), and answers every ``GatewayError`` as an RFC 9457 problem. A SOAP service answers the
bus's ``SendMessage`` of one WSDL (``soap_simulator``), "not found" being a Client fault with
errorCode ``not-found`` (``not_found``), as the gateway's SOAP client expects.

Every simulator module offers ``create_simulator(population, behaviour=None, recorder=None, …)``,
the one interface ``gateway.entrypoints.tools.simulate`` and the tests start simulators by, and declares
its path and body limits above it. The duplicate finder sees these few declarations as the same
shape from one simulator to the next (employment and probation, health and social); they are
the interface, not logic, and are meant to stay alike.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from gateway.errors import BadRequest, GatewayError
from gateway.security.xmldsig import Signer, Verifier
from gateway.soap.client import NOT_FOUND
from gateway.soap.contracts import contract
from gateway.soap.envelope import BusResponse
from gateway.soap.faults import SoapFault
from gateway.soap.server import SoapCall, SoapEndpoint, SoapService
from gateway.web.body import parse_json, read_body, require_json_media_type
from gateway.web.problems import problem_response

__all__ = [
    "Behaviour",
    "Delivery",
    "Recorder",
    "NoticeRefused",
    "Refused",
    "Simulator",
    "decoded",
    "not_found",
    "read_json",
    "simulator_app",
    "simulator_of",
    "soap_simulator",
    "without_values",
]

T = TypeVar("T")
SIMULATOR = web.AppKey("simulator", object)


@dataclass
class Behaviour:
    """How a simulator misbehaves. Outages are switched by events, never by the clock: ``down``
    by whoever drives the simulation, ``refuse_next`` by the simulator's own traffic."""

    latency: tuple[float, float] = (0.0, 0.0)  # each answer waits uniform(low, high) seconds
    error_rate: float = 0.0  # share of requests answered 503 at random
    down: bool = False  # every request answered 503 until switched back
    refuse_next: int = 0  # the next N requests answered 503, then served again
    seed: int = 1
    refused: int = field(init=False, default=0)  # requests answered 503 by an outage, so far
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def in_outage(self) -> bool:
        if self.down:
            return True
        if self.refuse_next > 0:
            self.refuse_next -= 1
            return True
        return False

    def fails_now(self) -> bool:
        if self.in_outage():
            self.refused += 1
            return True
        return self.error_rate > 0 and self._rng.random() < self.error_rate

    def delay(self) -> float:
        low, high = self.latency
        return self._rng.uniform(low, high) if high > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Delivery:
    service: str
    message_id: str | None
    body: bytes
    headers: Any  # case-insensitive
    at: float


@dataclass
class Recorder:
    """Every message delivered to a simulator, in arrival order."""

    deliveries: list[Delivery] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)

    def record(self, service: str, request: web.Request, body: bytes) -> int:
        """Keep one delivery; returns how many times its message id has now been seen."""
        message_id = request.headers.get("X-Message-Id")
        self.deliveries.append(Delivery(service, message_id, body, request.headers.copy(), time.time()))
        if message_id is None:
            return 1
        self.seen[message_id] += 1
        return self.seen[message_id]

    def of(self, service: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.service == service]

    def unique(self, service: str | None = None) -> set[str]:
        return {d.message_id for d in self.deliveries if d.message_id and (service is None or d.service == service)}

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.seen.values())

    def summary(self) -> dict[str, Any]:
        services = Counter(d.service for d in self.deliveries)
        return {"deliveries": len(self.deliveries), "unique": len(self.seen), "duplicates": self.duplicates,
                "by_service": dict(services)}


@dataclass
class Simulator:
    name: str
    behaviour: Behaviour
    recorder: Recorder


def simulator_app(name: str, behaviour: Behaviour | None = None, recorder: Recorder | None = None) -> web.Application:
    """An empty simulator application with misbehaviour applied to every route but the report,
    and every ``GatewayError`` a route raises answered as an RFC 9457 problem."""
    app = web.Application(middlewares=[_misbehave, _problems])
    app[SIMULATOR] = Simulator(name, behaviour or Behaviour(), recorder or Recorder())
    app.router.add_get("/_simulator/received", _received)
    return app


def simulator_of(request_or_app: web.Request | web.Application) -> Simulator:
    app = request_or_app.app if isinstance(request_or_app, web.Request) else request_or_app
    return app[SIMULATOR]


@web.middleware
async def _misbehave(request: web.Request, handler):
    if request.path.startswith("/_simulator/"):
        return await handler(request)
    behaviour = simulator_of(request).behaviour
    delay = behaviour.delay()
    if delay:
        await asyncio.sleep(delay)
    if behaviour.fails_now():
        return web.json_response({"error": "simulated outage"}, status=503)
    return await handler(request)


@web.middleware
async def _problems(request: web.Request, handler):
    try:
        return await handler(request)
    except GatewayError as error:
        return problem_response(error, request)


async def _received(request: web.Request) -> web.Response:
    return web.json_response(simulator_of(request).recorder.summary())


# -- JSON services


class Refused(BadRequest):
    """422: the body is JSON, but not what the simulated service's contract accepts.

    A service with its own problem type subclasses it with another ``slug`` and ``title``.
    """

    status, slug, title = 422, "contract-violation", "The request does not follow the contract"


class NoticeRefused(Refused):
    """422 from a reception of notices (employment centres, probation offices)."""

    title = "The notice does not follow the contract"


async def read_json(request: web.Request, *, max_bytes: int, max_depth: int) -> tuple[Any, bytes]:
    """The parsed JSON body and its bytes: a body that is not JSON (or too large, too deep) is a 4xx."""
    require_json_media_type(request)
    body = await read_body(request, max_bytes)
    return parse_json(body, max_depth), body


def decoded(decode: Callable[[Any], T], payload: Any, refused: type[Refused] = Refused) -> T:
    """``decode(payload)``; a payload the codec or the model refuses is ``refused`` (a 422)."""
    try:
        return decode(payload)
    except ValidationError as error:
        raise refused(without_values(error)) from None
    except ValueError as error:
        raise refused(str(error)) from None


def without_values(error: ValidationError) -> str:
    """Where and what pydantic refused, without the input values (they may be personal data)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in detail['loc']) or 'body'}: {detail['msg']}"
        for detail in error.errors(include_input=False, include_url=False)
    )


# -- SOAP services


def soap_simulator(
    name: str,
    wsdl_name: str,
    send_message: Callable[[SoapCall], Awaitable[BusResponse]],
    behaviour: Behaviour | None = None,
    recorder: Recorder | None = None,
    *,
    max_bytes: int,
    signer: Signer | None = None,
    verifier: Verifier | None = None,
) -> web.Application:
    """A simulator answering the bus's ``SendMessage`` of ``schemas/soap/<wsdl_name>`` with
    ``send_message``, at ``/soap/<service>`` (the WSDL at ``/soap/<service>?wsdl``).

    ``signer`` (the member's key) signs every answer; ``verifier`` (pinned to the gateway's
    certificate) checks every request before it is read, and refuses unsigned ones.
    """
    app = simulator_app(name, behaviour, recorder)
    SoapEndpoint(
        [SoapService(contract(wsdl_name), {"SendMessage": send_message})],
        max_bytes=max_bytes,
        signer=signer,
        verifier_for=lambda _request: verifier,
    ).add_routes(app)
    return app


def not_found(message: str) -> SoapFault:
    """The Client fault a service answers when it has no such record (the client's ``NotFound``)."""
    return SoapFault.client(NOT_FOUND, message)
