"""Scenario — CPU per message: the gateway's own work, against a plain aiohttp JSON handler.

A rate depends on the machine; the CPU a message costs the gateway, divided by what a plain
aiohttp JSON handler spends on a request in the same run, does much less. Both are measured
from the kernel's account of each process (user + system time of all its threads, from
``/proc/PID/stat``) over the same client load: ``cpu_messages`` JSON release notices sent by
16 senders, each sending its next when the last is answered.

- The baseline: ``bench.plain``, one process, decodes each body as JSON and answers JSON, on
  the event loop ``gateway serve`` runs on (``gateway.eventloop``).
- The gateway: ``gateway serve`` on the shipped configuration (SQLite, synchronous=FULL, the
  shipped delivery settings), relaying each notice to health/release-notices, whose endpoint is
  the health system's simulator; its CPU is counted from before the first request until every
  message has been delivered (the simulator has answered it), so it covers acceptance, the
  audit entries, the commit, the delivery and its outcome.
"""

from __future__ import annotations

import uuid

import aiohttp

from bench.durable import SENDERS, notice_body, relay
from bench.harness import Bench, Section, ratio
from bench.load import closed_loop, request
from bench.processes import PlainJson
from gateway.eventloop import loop_name

TARGET_RATIO = 3.0
_WARM_UP = 300
_RECEIVER = "health"


async def run(bench: Bench) -> Section:
    section = Section("cpu", "CPU per message: the gateway against a plain aiohttp JSON handler")
    count = bench.profile.cpu_messages
    body = await notice_body(bench)
    loop = loop_name()

    plain = bench.children.add(PlainJson(bench.ports["plain"], bench.root / "plain.log", loop))
    plain.start()
    try:
        await plain.ready()

        def requests(n: int):
            return (request(plain.port, "/release-notices", body, {
                "Content-Type": "application/json", "X-Message-Id": f"plain-{uuid.uuid4().hex}",
                "X-Sender": "penal", "X-Purpose": "continuity_of_care"}) for _ in range(n))

        await closed_loop(requests(_WARM_UP), concurrency=SENDERS, max_count=_WARM_UP, max_seconds=30)
        before = plain.cpu_seconds()
        answered = await closed_loop(requests(count), concurrency=SENDERS, max_count=count,
                                     max_seconds=max(60.0, count / 100))
        plain_cpu = plain.cpu_seconds() - before
    finally:
        plain.stop()
    plain_per_request = plain_cpu / len(answered.ok) if answered.ok else None

    env = bench.environment(bench.sqlite_url("cpu"))
    async with bench.gateway(env) as gateway:
        await relay(bench, [gateway], min(_WARM_UP, count), body=body, receiver=_RECEIVER)
        before, loop_before = gateway.cpu_seconds(), gateway.cpu_seconds(main_thread=True)
        relayed = await relay(bench, [gateway], count, body=body, receiver=_RECEIVER)
        gateway_cpu = gateway.cpu_seconds() - before
        loop_cpu = gateway.cpu_seconds(main_thread=True) - loop_before
        async with aiohttp.ClientSession() as session:
            limit = await gateway.gauge(session, "gateway_delivery_concurrency_limit", destination=_RECEIVER)
    gateway_per_message = gateway_cpu / relayed.delivered if relayed.delivered else None

    section.add("plain aiohttp JSON handler: CPU per request", _us(plain_per_request), "µs",
                note=f"{len(answered.ok)} requests at {answered.throughput:,.0f} req/s, {answered.errors} errors; "
                     f"{loop} loop")
    section.add("gateway: CPU per relayed JSON message (accepted and delivered)", _us(gateway_per_message), "µs",
                note=f"{relayed.delivered} of {count} delivered at "
                     f"{relayed.delivered_per_second or float('nan'):,.0f} msg/s; {loop} loop; "
                     f"{100 * loop_cpu / gateway_cpu if gateway_cpu else float('nan'):.0f} % of it on the "
                     f"event loop's thread, the rest on the store's; delivery limit at the end {limit}")
    share = ratio(gateway_per_message, plain_per_request)
    section.add("gateway CPU per relayed JSON message / plain aiohttp JSON handler CPU per request", share, "x",
                target=f"<= {TARGET_RATIO:g}", met=None if share is None else share <= TARGET_RATIO)
    section.notes += [
        f"CPU time (user + system, all threads) of each process from /proc/PID/stat, over {count:,} requests from "
        f"{SENDERS} senders after {_WARM_UP} to warm up; the body is the same {len(body)}-byte release notice.",
        "The gateway runs the shipped configuration (SQLite, synchronous=FULL) and relays each notice to "
        "health/release-notices at the health system's simulator; its CPU is counted until the simulator has "
        "answered every message, so it covers acceptance, audit, commit, delivery and its outcome.",
        "The baseline decodes each body as JSON and answers JSON, on the same event loop as `gateway serve`.",
    ]
    return section


def _us(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e6
