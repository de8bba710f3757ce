"""Scenario 2 — durable throughput: messages per second accepted with 202 and delivered, with
durability on (SQLite ``synchronous=FULL``; PostgreSQL ``synchronous_commit`` on), on SQLite
and on PostgreSQL with one and with three ``gateway serve`` instances.

The senders relay release notices to the health system's service; the health member's endpoint
is the sink (a receiver that records and answers 200), so what is measured is the gateway, not
a simulator's validation. The raw store limit is measured in the same run, just before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field

from gateway.config import load_config
from gateway.security.disclosure import DisclosurePolicy
from bench.broker import rabbitmq_confirmed_per_second
from bench.harness import POSTGRES_URL, Bench, Section, ratio, wait_for_arrivals
from bench.load import closed_loop, request
from bench.processes import GatewayProcess
from bench.stores import (
    LockWaits, drop_schema, postgres_rows_per_second, postgres_version, sample_lock_waits, sqlite_rows_per_second,
)

TARGET_PER_SECOND = 3_000
POSTGRES_TARGET_PER_SECOND = 2_000
SENDERS = 16
TUNED_CONCURRENCY = 32
TUNED = {"delivery.concurrency": TUNED_CONCURRENCY}
_SINK = "sink"


@dataclass
class RelayRun:
    """Relayed messages: when each was sent (by the gateway's message id), the acceptance
    rate, and — once waited for — how many arrived and at what rate."""

    sent: dict[str, float] = field(repr=False)
    errors: int
    accepted_per_second: float
    delivered: int = 0
    delivered_per_second: float | None = None

    @property
    def accepted(self) -> int:
        return len(self.sent)

    @property
    def ids(self) -> set[str]:
        return set(self.sent)


async def relay(bench: Bench, gateways: list[GatewayProcess], count: int, *, body: bytes,
                senders: int = SENDERS, wait: bool = True, receiver: str = _SINK) -> RelayRun:
    """Relay ``count`` messages through ``gateways`` (round robin); with ``wait``, wait (bounded)
    until ``receiver`` (the sink unless told) has them all."""
    requests = (
        request(gateways[n % len(gateways)].port, "/api/v1/relay/health/release-notices", body, {
            "Content-Type": "application/json", "X-Member-Id": "penal", "X-Purpose": "continuity_of_care",
            "X-Message-Id": f"bench-{uuid.uuid4().hex}"})
        for n in range(count)
    )
    first = time.time()
    result = await closed_loop(requests, concurrency=senders, max_count=count, max_seconds=max(60.0, count / 100))
    sent = {json.loads(e.body)["message_id"]: e.sent_at for e in result.ok}
    accepted_span = max((e.sent_at + e.seconds for e in result.ok), default=first) - first
    run = RelayRun(sent, result.errors + len(result.exchanges) - len(result.ok),
                   len(sent) / accepted_span if accepted_span > 0 else 0.0)
    if wait:
        arrived = await wait_for_arrivals(bench, receiver, run.ids, timeout=max(60.0, count / 200))
        run.delivered = len(arrived)
        span = max(arrived.values(), default=first) - first
        if arrived and len(arrived) == len(sent) and span > 0:
            run.delivered_per_second = len(arrived) / span
    return run


async def notice_body(bench: Bench) -> bytes:
    """A penal release notice as the shipped policy lets it be relayed to health (the relay refuses
    fields outside the rule): the simulator's notice through the gateway's own policy."""
    notice = (await bench.agencies.get("/release-notices", count=1))["notices"][0]["notice"]
    policy = DisclosurePolicy(load_config(bench.config_dir, environ={}).policy)
    admitted = policy.apply(document_type="ReleaseNotice", payload=notice, recipient_role="health",
                            purpose="continuity_of_care").payload
    return json.dumps(admitted, ensure_ascii=False).encode()


def sink_endpoint(bench: Bench) -> dict[str, str]:
    return {"health": bench.agencies.url(_SINK)}


async def run(bench: Bench) -> Section:
    section = Section("durable", "Durable throughput: accepted with 202 and delivered")
    count = bench.profile.durable_messages
    body = await notice_body(bench)

    seconds = bench.profile.raw_seconds
    single = sqlite_rows_per_second(bench.root / "raw" / "single.db", batch=1, seconds=seconds)
    batched = sqlite_rows_per_second(bench.root / "raw" / "batched.db", batch=100, seconds=seconds)
    section.add("SQLite raw: single-row transactions (WAL, synchronous=FULL)", single, "rows/s")
    section.add("SQLite raw: 100-row transactions (WAL, synchronous=FULL)", batched, "rows/s")
    shipped: RelayRun | None = None
    for label, settings in (("shipped configuration", {}), (f"delivery.concurrency = {TUNED_CONCURRENCY}", TUNED)):
        env = bench.environment(bench.sqlite_url(f"durable-{len(settings)}"), endpoints=sink_endpoint(bench),
                                settings=settings)
        async with bench.gateway(env) as gateway:
            await relay(bench, [gateway], min(500, count), body=body)  # warm up: connections, caches, pages
            measured = await relay(bench, [gateway], count, body=body)
        shipped = shipped or measured
        _figures(section, f"SQLite, {label}", measured, count, target=TARGET_PER_SECOND)
        section.add(f"SQLite, {label}: ratio to single-row transactions",
                    ratio(measured.delivered_per_second, single), "x")
        section.add(f"SQLite, {label}: ratio to 100-row transactions",
                    ratio(measured.delivered_per_second, batched), "x")
    await _broker(bench, section, shipped, body)

    version = await postgres_version(POSTGRES_URL)
    if version is None:
        section.notes.append(f"PostgreSQL figures skipped: no server answers at {POSTGRES_URL}.")
    else:
        await _postgres(bench, section, bench.profile.postgres_messages, body)
        section.notes.append(f"PostgreSQL {version} at 127.0.0.1:5432, each measurement in a schema of its own, "
                             f"dropped afterwards; {bench.profile.postgres_messages:,} messages a run, "
                             f"delivery.concurrency = {TUNED_CONCURRENCY}.")
    section.notes += [
        f"{SENDERS} senders, each sending its next message when the last is acknowledged, so acceptance runs at the "
        "pace the gateway also delivers at (more senders only grow the queue); the body is a "
        f"{len(body)}-byte release notice relayed to health/release-notices (unordered, no X-Ordering-Key), "
        "with a new X-Message-Id each. Delivered throughput: messages / (last arrival at the receiver - first send).",
        "Every message is audited on acceptance and on delivery, in the transaction that records it.",
        f"delivery.concurrency is the bound of each destination's adaptive in-flight limit (shipped 64, from "
        f"delivery.min_concurrency 1, gateway.delivery.limit); the tuned rows cap it at {TUNED_CONCURRENCY}.",
        "Three instances run as three `gateway serve` processes on one PostgreSQL schema, the senders spread "
        "round robin over them, as tests/test_crash_postgres.py does.",
    ]
    return section


async def _broker(bench: Bench, section: Section, shipped: RelayRun, body: bytes) -> None:
    """The anchor for durable acceptance: RabbitMQ confirming persistent messages, same senders, same body."""
    broker = await rabbitmq_confirmed_per_second(body, publishers=SENDERS, seconds=bench.profile.load_seconds)
    if broker is None:
        section.notes.append("RabbitMQ figures skipped: aio-pika is not installed or no broker answers at "
                             "127.0.0.1:5672.")
        return
    section.add(f"RabbitMQ {broker.version}: persistent messages confirmed, {SENDERS} publishers each waiting "
                "for its confirm", broker.per_second, "msg/s", note=f"{broker.confirmed:,} confirmed")
    share = ratio(shipped.accepted_per_second, broker.per_second)
    section.add("durable acceptance (202 after the commit), SQLite shipped configuration / RabbitMQ confirms",
                share, "x", target=">= 1.0x", met=None if share is None else share >= 1.0)
    section.notes.append(
        f"RabbitMQ on 127.0.0.1:5672, measured in the same run just after the SQLite rows: a durable queue, "
        f"delivery_mode 2 (persistent), publisher confirms on, {SENDERS} connections each publishing the same "
        f"{len(body)}-byte body and waiting for its confirm, for {bench.profile.load_seconds} s (aio-pika); "
        "nobody consumes, the queue is deleted afterwards.")


async def _postgres(bench: Bench, section: Section, count: int, body: bytes) -> None:
    url, schema = bench.postgres_url()
    try:
        seconds = bench.profile.raw_seconds
        one = await postgres_rows_per_second(POSTGRES_URL, schema, connections=1, seconds=seconds)
        many = await postgres_rows_per_second(POSTGRES_URL, schema, connections=16, seconds=seconds)
    finally:
        await drop_schema(POSTGRES_URL, schema)
    section.add("PostgreSQL raw: single-row transactions, 1 connection (synchronous_commit on)", one, "rows/s")
    section.add("PostgreSQL raw: single-row transactions, 16 connections", many, "rows/s")
    rates: dict[int, float | None] = {}
    for instances in (1, 3):
        url, schema = bench.postgres_url()
        # libpq names every connection of these gateways so, and the lock sampler counts only them.
        application_name = f"bench-{schema}"[:63]
        env = bench.environment(url, endpoints=sink_endpoint(bench), settings=TUNED,
                                extra={"PGAPPNAME": application_name})
        waits = LockWaits()
        try:
            async with contextlib.AsyncExitStack() as stack:
                # The first instance creates the schema and the keys the others share.
                gateways = [await stack.enter_async_context(bench.gateway(env))]
                for name in ("gateway-2", "gateway-3")[: instances - 1]:
                    gateways.append(await stack.enter_async_context(bench.gateway(env, port_name=name)))
                await relay(bench, gateways, min(300, count), body=body)
                sampler = asyncio.create_task(sample_lock_waits(POSTGRES_URL, application_name, waits))
                try:
                    measured = await relay(bench, gateways, count, body=body)
                finally:
                    sampler.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sampler
        finally:
            await drop_schema(POSTGRES_URL, schema)
        label = f"PostgreSQL, {instances} instance{'s' if instances > 1 else ''}"
        _figures(section, label, measured, count, target=POSTGRES_TARGET_PER_SECOND if instances == 1 else None)
        rates[instances] = measured.delivered_per_second
        section.add(f"{label}: lock waits, % of the gateways' backends in a transaction", waits.percent, "%",
                    target="<= 5 %", met=None if waits.percent is None else waits.percent <= 5,
                    note=f"{waits.samples} samples of pg_stat_activity, every 10 ms; waiting for: "
                         + (", ".join(f"{event} {count}" for event, count in
                                      sorted(waits.events.items(), key=lambda item: -item[1])) or "nothing"))
        section.add(f"{label}: ratio to single-row transactions, 1 connection",
                    ratio(measured.delivered_per_second, one), "x")
        section.add(f"{label}: ratio to single-row transactions, 16 connections",
                    ratio(measured.delivered_per_second, many), "x")
    section.add("PostgreSQL, 3 instances / 1 instance, accepted and delivered", ratio(rates[3], rates[1]), "x",
                target=">= 1.0x", met=None if ratio(rates[3], rates[1]) is None else ratio(rates[3], rates[1]) >= 1.0)


def _figures(section: Section, label: str, run: RelayRun, count: int, target: float | None = None) -> None:
    section.add(f"{label}: accepted (202) throughput", run.accepted_per_second, "msg/s",
                note=f"{run.accepted} of {count} accepted, {run.errors} refused or failed")
    rate = run.delivered_per_second
    section.add(f"{label}: accepted and delivered throughput", rate, "msg/s",
                target=f">= {target:,.0f} msg/s" if target else "",
                met=None if target is None or rate is None else rate >= target,
                note=f"{run.delivered} of {run.accepted} delivered")
