"""Scenario 6 — the naive baseline: what a typical integrator writes, against what the gateway does.

The naive client is a synchronous zeep ``Client`` built from the interior simulator's published
WSDL, asking for one person after another. The gateway's way is its own interior client
(``adapters.interior.client.InteriorClient``: zeep builds each request from the local WSDL, lxml
reads the answer against the compiled XSD, into the canonical model) over aiohttp with
requests in flight concurrently, unsigned like the naive client, and signed both ways as the
gateway runs it. All three ask the same simulator for the same people, each for the same time.

Then the large answer: a custody history of thousands of episodes, read by zeep's message model
and by the lxml path the gateway's clients use, from the same bytes.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import statistics
import time
import uuid

import aiohttp
import zeep
from lxml import etree

from adapters.interior.client import InteriorClient
from adapters.penal import codec as penal_codec
from adapters.penal.client import CUSTODY_HISTORY
from bench.harness import Bench, Section, ratio
from gateway.config import load_config
from gateway.domain import CustodyBasis, CustodyEpisode, Organisation, ReleaseType
from gateway.security.keys import DevelopmentKeys, gateway_signer
from gateway.security.xmldsig import PinnedCertificate, Verifier
from gateway.entrypoints.tools.simulate import SIGNING_SYSTEMS
from gateway.soap.client import ServiceMessages, zeep_client
from gateway.soap.envelope import BusResponse, Channel, build_envelope, build_response, serialise

CONCURRENCY = 16
_REPEATS = 5


async def run(bench: Bench) -> Section:
    section = Section("naive", "Naive baseline: a synchronous zeep client, one call after another")
    profile = bench.profile
    iins = await bench.agencies.get("/people", count=200)
    url = bench.agencies.url("interior")
    seconds = max(1.0, profile.load_seconds)

    naive_calls, naive_seconds = await asyncio.to_thread(_naive, url, iins, profile.naive_calls, seconds)
    naive_rate = naive_calls / naive_seconds
    section.add("naive: zeep Client, sequential calls", naive_rate, "calls/s",
                note=f"{naive_calls} calls, {1000 * naive_seconds / naive_calls:.2f} ms each")
    config = load_config(bench.config_dir, environ={})
    keys = DevelopmentKeys.provision(config, SIGNING_SYSTEMS)
    interior_key = keys.signers["interior"]
    signed = {"signer": gateway_signer(config.signing, config.base_dir, member_id=config.server.member_id),
              "verifier": Verifier("interior", [PinnedCertificate.of(interior_key.certificate, "interior.pem")],
                                   required=True)}
    ours = await _ours(url, iins, seconds, {})
    ours_signed = await _ours(url, iins, seconds, signed)
    ours_one = await _ours(url, iins, seconds, {}, concurrency=1)
    section.add(f"gateway's interior client, {CONCURRENCY} in flight, unsigned", ours, "calls/s")
    section.add(f"gateway's interior client, {CONCURRENCY} in flight, signed and verified", ours_signed, "calls/s")
    section.add("gateway's interior client, one at a time, unsigned", ours_one, "calls/s")
    section.add("ratio ours / naive (unsigned, like for like)", ratio(ours, naive_rate), "x")
    section.add("ratio ours signed / naive unsigned", ratio(ours_signed, naive_rate), "x")
    section.add("ratio ours one at a time / naive", ratio(ours_one, naive_rate), "x",
                note="the same sequence of calls: what the lxml reading and aiohttp give without concurrency")

    zeep_ms, lxml_ms, size = _large_answer(profile.large_episodes)
    section.add(f"reading a {profile.large_episodes:,}-episode custody history ({size / 1024:,.0f} kB): zeep",
                zeep_ms, "ms", note="zeep's binding (process_reply); v10's data is xs:anyType, which zeep leaves as "
                "lxml elements, so the business document is not bound here")
    section.add("reading the same: lxml + compiled XSD + codec, to canonical records", lxml_ms, "ms",
                note="gateway.soap.client.ServiceMessages.answer, as the penal client reads it")
    section.add("zeep / lxml reading time", ratio(zeep_ms, lxml_ms), "x")
    build_ms = _request_build_ms()
    section.add("building one small request (gateway.soap.envelope.build_request)", build_ms, "ms",
                note="the gateway's request path builds with lxml, as its endpoint does; no zeep")
    section.notes += [
        "The naive client is what an integrator writes from the zeep documentation: Client(wsdl_url) and "
        "client.service.SendMessage(...) in a loop; it neither signs nor verifies, so the simulator lets it through "
        "unsigned in this harness (it verifies every signed request).",
        f"Ours: {CONCURRENCY} calls in flight on one event loop, in this process, against the same simulator. Each "
        f"measurement runs for {seconds:g} s or its call budget.",
        "The gateway's SOAP clients read every reply with lxml: gateway/soap/client.py ServiceMessages.answer "
        "(hardened parse, one compiled-XSD validation, read_response) and build requests with the endpoint's own "
        "builder; zeep is not on the gateway's path. Verified here by "
        f"timing both on the same bytes (median of {_REPEATS}).",
    ]
    return section


class _Payload(zeep.Plugin):
    """Puts the document element into the xs:anyType data, which zeep can only fill with a
    value of a named type (written with xsi:type), and the person query's type is shared by
    three documents."""

    element: etree._Element | None = None

    def egress(self, envelope, http_headers, operation, binding_options):
        data = envelope.find(".//requestData/data")
        data.text = None
        data.append(copy.deepcopy(self.element))
        return envelope, http_headers


def _naive(url: str, iins: list[str], budget: int, seconds: float) -> tuple[int, float]:
    """Sequential zeep calls, as from a script; (calls made, seconds)."""
    from adapters.interior import codec

    payload = _Payload()
    client = zeep.Client(f"{url}/soap/interior?wsdl", plugins=[payload])
    calls, started = 0, time.perf_counter()
    while calls < budget and time.perf_counter() - started < seconds:
        payload.element = codec.encode_person_query(codec.PERSON_REQUEST, iins[calls % len(iins)])
        client.service.SendMessage(request={
            "requestInfo": {"messageId": str(uuid.uuid4()), "serviceId": "person",
                            "messageDate": dt.datetime.now(dt.UTC), "sender": {"senderId": "gateway"}},
            "requestData": {"data": ""},
        })
        calls += 1
    return calls, time.perf_counter() - started


async def _ours(url: str, iins: list[str], seconds: float, keys: dict, concurrency: int = CONCURRENCY) -> float:
    """Calls per second through InteriorClient with ``concurrency`` in flight for ``seconds``."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        client = InteriorClient(url, session, timeout=10, sender_id="gateway", **keys)
        await client.person(iins[0])  # warm up
        calls, deadline = 0, time.monotonic() + seconds

        async def worker(offset: int) -> None:
            nonlocal calls
            n = offset
            while time.monotonic() < deadline:
                await client.person(iins[n % len(iins)])
                calls += 1
                n += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        return calls / (time.perf_counter() - started)


def _large_answer(episodes: int) -> tuple[float, float, int]:
    """Median milliseconds to read a custody history of ``episodes`` with zeep and with lxml."""
    facility = Organisation(code="UG-157/1", name="Учреждение УГ-157/1")
    start = dt.date(1990, 1, 1)
    history = [CustodyEpisode(facility=facility, basis=CustodyBasis.SENTENCE, release_type=ReleaseType.END_OF_TERM,
                              admission_date=start + dt.timedelta(days=5 * n),
                              release_date=start + dt.timedelta(days=5 * n + 3)) for n in range(episodes)]
    iin = "900215400281"  # a valid IIN of nobody
    request_id = str(uuid.uuid4())
    answer = BusResponse(message_id=str(uuid.uuid4()), correlation_id=request_id,
                         response_date=dt.datetime.now(dt.UTC), status_code="OK", status_message="",
                         data=penal_codec.encode_custody_history(iin, history))
    content = serialise(build_envelope(build_response(answer, channel=Channel.SYNC)))
    messages = ServiceMessages("penal", "penal.wsdl", sender_id="gateway")
    operation = next(iter(zeep_client("penal.wsdl").wsdl.bindings.values())).get("SendMessage")

    def with_lxml() -> None:
        data = messages.answer(CUSTODY_HISTORY, request_id, status=200, media_type="text/xml", content=content)
        messages.decoded(data, penal_codec.decode_custody_history)

    def with_zeep() -> None:
        operation.process_reply(etree.fromstring(content))

    return _median_ms(with_zeep), _median_ms(with_lxml), len(content)


def _request_build_ms() -> float:
    from adapters.interior import codec
    from adapters.interior.client import PERSON

    messages = ServiceMessages("interior", "interior.wsdl", sender_id="gateway")
    payload = codec.encode_person_query(codec.PERSON_REQUEST, "900215400281")
    now = dt.datetime.now(dt.UTC)
    timings = []
    for _ in range(200):
        started = time.perf_counter()
        messages.request(PERSON, payload, message_id=str(uuid.uuid4()), message_date=now)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def _median_ms(action) -> float:
    action()  # warm up
    timings = []
    for _ in range(_REPEATS):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000
