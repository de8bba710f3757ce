"""Scenario 1 — overhead: the same request sent directly to a simulator, through nginx as a
plain reverse proxy, and through the gateway.

Two requests. JSON: a release notice posted to the health system's ``/release-notices``
(through the gateway: the JSON relay, ``POST /api/v1/relay/health/release-notices``). SOAP: a
signed bus ``SendMessage`` carrying the same release notice as a canonical ``ReleaseNotice`` in
XML to the interior ministry's SOAP service (serviceId ``release-notices``; through the gateway:
the SOAP relay at ``/soap/relay``, serviceId ``interior/release-notices``, a service this
benchmark declares with ``document = "ReleaseNotice"`` and a policy rule letting the notice
reach the interior ministry for ``relay_test``). Either way the receiver verifies a signature
and signs its answer; through the gateway the penal system's signature is verified, the notice
checked whole against the disclosure policy, stored, the acceptance signed, and the message
delivered signed anew. The SOAP figure is the latency signed SOAP adds, as before: what is
relayed is a canonical document because the relay now takes nothing else (a PersonRequest, a
query with no canonical document, could not be checked against the policy and is refused).

The relay answers 202 once the message is stored and delivers it afterwards, so two figures
describe it: acceptance (request -> 202) and end-to-end (request -> the simulator has handled
the delivered message). End-to-end is what compares with a direct call (request -> answer).
Latency is measured one request at a time (nothing queues: the cost of the hop itself);
throughput and latency under load at a fixed number of concurrent connections.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lxml import etree

from adapters.interior.simulator import RELEASE_NOTICE, RELEASE_NOTICES
from bench.durable import notice_body
from bench.harness import Bench, Section, ratio, wait_for_arrivals
from bench.load import Latencies, LoadResult, Request, closed_loop, request
from bench.processes import Nginx
from gateway.config import GatewayConfig, load_config
from gateway.security.keys import DevelopmentKeys, gateway_signer
from gateway.entrypoints.tools.simulate import SIGNING_SYSTEMS
from gateway.soap.client import ServiceMessages
from gateway.soap.envelope import BusRequest, build_envelope, build_request, parse_envelope, read_response, serialise

JSON_TARGET_MS = 1.2
SOAP_TARGET_MS = 4.0
THROUGHPUT_SHARE = 0.5
_WARM_UP = 30
_ARRIVAL_SECONDS = 120.0
_SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}


@dataclass(frozen=True)
class Route:
    """One way to the simulator: how to make a request, and for the relay, how to read the
    gateway's message id from its acceptance. Requests that are costly to make (each signed
    anew) are made before the clock starts, so the load generator's work stays its own."""

    label: str
    make: Callable[[], Request]
    accepted_id: Callable[[bytes], str] | None = None
    costly: bool = False


async def run(bench: Bench) -> Section:
    section = Section("overhead", "Overhead: direct, through nginx, through the gateway")
    nginx = await _start_nginx(bench, section)
    config = load_config(bench.config_dir, environ={})
    keys = DevelopmentKeys.provision(config, SIGNING_SYSTEMS)
    # The SOAP request goes through the relay to the interior ministry's release-notices: the
    # service, a grant for it and the rule that lets the notice go there.
    env = bench.environment(bench.sqlite_url("overhead"), extra=_relay_to_interior(config))
    async with bench.gateway(env) as gateway:
        body = await notice_body(bench)
        health, interior = bench.ports["health"], bench.ports["interior"]

        def json_direct(port: int) -> Callable[[], Request]:
            return lambda: request(port, "/release-notices", body, {
                "Content-Type": "application/json", "X-Message-Id": f"direct-{uuid.uuid4().hex}",
                "X-Sender": "penal", "X-Purpose": "continuity_of_care"})

        routes = [Route("direct", json_direct(health))]
        if nginx is not None:
            routes.append(Route("nginx", json_direct(bench.ports["nginx-health"])))
        routes.append(Route("gateway", lambda: request(gateway.port, "/api/v1/relay/health/release-notices", body, {
            "Content-Type": "application/json", "X-Member-Id": "penal", "X-Purpose": "continuity_of_care",
            "X-Message-Id": f"bench-{uuid.uuid4().hex}"}), accepted_id=lambda answer: json.loads(answer)["message_id"]))
        await _compare(bench, section, "JSON", "health", routes, JSON_TARGET_MS)

        notice = notice_element(json.loads(body))
        signer = gateway_signer(config.signing, config.base_dir, member_id=config.server.member_id)
        direct_soap = _SignedRequests(ServiceMessages("interior", "interior.wsdl", sender_id="gateway",
                                                      signer=signer), notice)
        relay_soap = _RelayRequests(keys.signers["penal"], notice)
        routes = [Route("direct", lambda: request(interior, "/soap/interior", direct_soap.next(), _SOAP_HEADERS))]
        if nginx is not None:
            routes.append(Route("nginx", lambda: request(bench.ports["nginx-interior"], "/soap/interior",
                                                         direct_soap.next(), _SOAP_HEADERS)))
        routes.append(Route("gateway", lambda: request(gateway.port, "/soap/relay", relay_soap.make(),
                                                       {**_SOAP_HEADERS, "X-Member-Id": "penal"}),
                            accepted_id=_soap_accepted_id, costly=True))
        await _compare(bench, section, "signed SOAP", "interior", routes, SOAP_TARGET_MS)
    section.notes += [
        "Direct and nginx latency: request -> answer. Gateway acceptance: request -> 202 (the message "
        "is committed, synchronous=FULL). Gateway end-to-end: request -> the simulator has handled the "
        "delivered message (its clock and the load generator's are the same wall clock).",
        "One request at a time for latency (nothing queues); throughput and the latency under load with "
        f"{bench.profile.concurrency} connections, each sending its next request when the last is answered.",
        "JSON: a release notice to the health system's /release-notices (the simulator validates it against the "
        "canonical model). SOAP: bus SendMessage for serviceId release-notices carrying the same notice as a "
        "canonical ReleaseNotice in XML. Directly it is signed with the gateway's key; the interior simulator "
        "verifies it and signs its answer. Through the gateway (serviceId interior/release-notices, declared "
        "document = \"ReleaseNotice\" with a relay_test rule for this run) the penal system signs it; the gateway "
        "verifies the signature, validates the XSD, checks the notice whole against the disclosure policy, stores "
        "it with its audit entries and signs its ACCEPTED answer, then delivers the envelope signed anew with its "
        "own key (gateway.delivery.seal), which the simulator verifies before answering, signed.",
        "Requests are signed before the clock starts; the load generator verifies nothing.",
    ]
    return section


def _relay_to_interior(config: GatewayConfig) -> dict[str, str]:
    """The overrides that let the penal system relay a release notice to the interior ministry:
    the service (``document = "ReleaseNotice"``, at the simulator's SOAP endpoint), the penal
    system's shipped grants plus one for it, and a rule letting the interior ministry receive
    what the health rule lets health receive (the notice relayed is that one)."""
    interior = config.members["interior"]
    services = [f"{name} = {_inline(service.model_dump(exclude_defaults=True))}" for name, service in
                interior.services.items()]
    services.append(f'{RELEASE_NOTICES} = {_inline({"path": "/soap/interior", "document": "ReleaseNotice"})}')
    grants = [f'{{ service = "{g.service}", purposes = {json.dumps(list(g.purposes))} }}'
              for g in config.members["penal"].may_call]
    grants.append(f'{{ service = "interior/{RELEASE_NOTICES}", purposes = ["relay_test"] }}')
    allow = config.policy["health"]["continuity_of_care"]["ReleaseNotice"].allow
    return {
        "GATEWAY__MEMBERS__INTERIOR__SERVICES": "{ " + ", ".join(services) + " }",
        "GATEWAY__MEMBERS__PENAL__MAY_CALL": "[" + ", ".join(grants) + "]",
        "GATEWAY__POLICY__INTERIOR": f"{{ relay_test = {{ ReleaseNotice = {{ allow = {json.dumps(list(allow))} }} }} }}",
    }


def _inline(table: dict) -> str:
    """A flat table as a TOML inline table (its values strings, numbers and booleans)."""
    return "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in table.items()) + " }"


def notice_element(notice: dict) -> etree._Element:
    """A canonical ReleaseNotice (its JSON form) in the XML the relay reads: an element per field
    in the canonical namespace, a list's items repeated, null an empty element."""
    namespace = etree.QName(RELEASE_NOTICE).namespace
    root = etree.Element(RELEASE_NOTICE, nsmap={"rn": namespace})

    def fill(parent: etree._Element, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                for one in item if isinstance(item, list) else [item]:
                    fill(etree.SubElement(parent, f"{{{namespace}}}{key}"), one)
        elif isinstance(value, bool):
            parent.text = "true" if value else "false"
        elif value is not None:
            parent.text = str(value)

    fill(root, notice)
    return root


class _SignedRequests:
    """Signed release notices to the interior ministry, as the gateway sends them. A few hundred
    are signed in advance and reused: the simulator keeps no state per message id."""

    def __init__(self, messages: ServiceMessages, notice: etree._Element, count: int = 200) -> None:
        now = dt.datetime.now(dt.UTC)
        self._bodies = [messages.request(RELEASE_NOTICES, notice, message_id=str(uuid.uuid4()), message_date=now)
                        for _ in range(count)]
        self._cycle: Iterator[bytes] = itertools.cycle(self._bodies)

    def next(self) -> bytes:
        return next(self._cycle)


class _RelayRequests:
    """Signed SOAP relay requests from the penal system; each has a new messageId (the relay
    de-duplicates by it), so each is signed when it is made."""

    def __init__(self, signer, notice: etree._Element) -> None:
        self._signer = signer
        self._payload = notice

    def make(self) -> bytes:
        message = BusRequest(message_id=f"bench-{uuid.uuid4().hex}", service_id=f"interior/{RELEASE_NOTICES}",
                             message_date=dt.datetime.now(dt.UTC), sender_id="penal", data=self._payload,
                             properties=(("purpose", "relay_test"),))
        return serialise(self._signer.sign(build_envelope(build_request(message))))


def _soap_accepted_id(answer: bytes) -> str:
    return read_response(parse_envelope(answer).body).message_id


async def _start_nginx(bench: Bench, section: Section) -> Nginx | None:
    binary = Nginx.binary()
    if binary is None:
        section.notes.append("nginx column skipped: no nginx binary on PATH or in /usr/sbin "
                             "(apt-get install -y nginx).")
        return None
    nginx = Nginx(binary, bench.root, {bench.ports["nginx-health"]: bench.ports["health"],
                                       bench.ports["nginx-interior"]: bench.ports["interior"]})
    bench.children.add(nginx).start()
    await nginx.ready()
    section.notes.append(f"nginx {Nginx.version(binary)}: one worker, upstream keepalive, proxy_buffering off, "
                         "access log off; configuration generated in the run's folder.")
    return nginx


def _requests(route: Route, count: int) -> Iterator[Request]:
    if route.costly:
        return iter([route.make() for _ in range(count)])
    return (route.make() for _ in range(count))


async def _measure(route: Route, *, concurrency: int, count: int, seconds: float) -> LoadResult:
    await closed_loop(_requests(route, _WARM_UP), concurrency=min(concurrency, 4), max_count=_WARM_UP, max_seconds=10)
    return await closed_loop(_requests(route, count), concurrency=concurrency, max_count=count, max_seconds=seconds)


async def _end_to_end(bench: Bench, system: str, route: Route, result: LoadResult) -> tuple[list[float], float | None]:
    """Latencies request -> handled by the simulator (seconds), and delivered messages per second."""
    sent = {route.accepted_id(e.body): e.sent_at for e in result.ok}
    arrived = await wait_for_arrivals(bench, system, set(sent), _ARRIVAL_SECONDS)
    latencies = [arrived[i] - sent[i] for i in sent if i in arrived]
    if not arrived:
        return latencies, None
    span = max(arrived[i] for i in sent if i in arrived) - min(sent.values())
    return latencies, len(latencies) / span if span > 0 else None


def _ms(values: list[float], p: float) -> float | None:
    return Latencies(values).percentile(p)


async def _compare(bench: Bench, section: Section, kind: str, system: str, routes: list[Route],
                   target_ms: float) -> None:
    profile = bench.profile
    single, loaded = {}, {}
    for route in routes:
        single[route.label] = await _measure(route, concurrency=1, count=profile.latency_requests, seconds=120)
    for route in routes:
        # Enough requests for the window at up to four times the one-at-a-time rate (two cores).
        rate = 1000 / max(single[route.label].latencies().p50 or 1.0, 0.05)
        count = int(min(200_000, 4 * rate * profile.load_seconds) + 100)
        loaded[route.label] = await _measure(route, concurrency=profile.concurrency, count=count,
                                             seconds=profile.load_seconds)
    gateway = next(r for r in routes if r.accepted_id is not None)
    e2e_single, _ = await _end_to_end(bench, system, gateway, single["gateway"])
    e2e_loaded, e2e_rate = await _end_to_end(bench, system, gateway, loaded["gateway"])

    p50 = {label: result.latencies().p50 for label, result in single.items()}
    e2e_p50 = _ms(e2e_single, 50)
    for label, result in single.items():
        if label == "gateway":
            section.add(f"{kind}: gateway acceptance p50 / p99 (one at a time)", p50[label], "ms",
                        note=f"p99 {result.latencies().p99:.2f} ms")
            section.add(f"{kind}: gateway end-to-end p50 / p99 (one at a time)", e2e_p50, "ms",
                        note=f"p99 {_ms(e2e_single, 99) or float('nan'):.2f} ms; {len(e2e_single)} delivered")
        else:
            section.add(f"{kind}: {label} p50 / p99 (one at a time)", p50[label], "ms",
                        note=f"p99 {result.latencies().p99:.2f} ms")
    added = None if e2e_p50 is None else e2e_p50 - p50["direct"]
    section.add(f"{kind}: gateway added latency, end-to-end p50 - direct p50", added, "ms",
                target=f"<= {target_ms:g} ms", met=None if added is None else added <= target_ms)
    if "nginx" in p50:
        section.add(f"{kind}: nginx added latency, p50 - direct p50", p50["nginx"] - p50["direct"], "ms")
        section.add(f"{kind}: latency ratio gateway end-to-end / nginx (p50)", ratio(e2e_p50, p50["nginx"]), "x")
    section.add(f"{kind}: latency ratio gateway end-to-end / direct (p50)", ratio(e2e_p50, p50["direct"]), "x")

    c = profile.concurrency
    for label, result in loaded.items():
        lat = result.latencies()
        name = "gateway acceptance" if label == "gateway" else label
        section.add(f"{kind}: {name} throughput at {c} connections", result.throughput, "req/s",
                    note=f"p50 {lat.p50 or float('nan'):.2f} ms, p99 {lat.p99 or float('nan'):.2f} ms, "
                         f"{result.errors} errors")
    section.add(f"{kind}: gateway end-to-end throughput at {c} connections", e2e_rate, "msg/s",
                note=f"end-to-end p50 {_ms(e2e_loaded, 50) or float('nan'):.1f} ms, "
                     f"p99 {_ms(e2e_loaded, 99) or float('nan'):.1f} ms, {len(e2e_loaded)} delivered")
    direct_rate = loaded["direct"].throughput
    share = ratio(e2e_rate, direct_rate)
    section.add(f"{kind}: throughput ratio gateway end-to-end / direct", share, "x",
                target=f">= {THROUGHPUT_SHARE:g}", met=None if share is None else share >= THROUGHPUT_SHARE)
    if "nginx" in loaded:
        section.add(f"{kind}: throughput ratio gateway end-to-end / nginx", ratio(e2e_rate, loaded["nginx"].throughput),
                    "x")
