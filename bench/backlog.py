"""Scenario 4 — backlog: a destination is down while messages queue; the gateway's peak memory,
then how fast the queue drains once the destination is back.

The destination is the sink taken off the network (connections refused: the circuit breaker
opens and no attempt is spent). Peak memory is the ``gateway serve`` process's VmHWM from
/proc, over its whole life. The drain rate counts from the first delivery after the
destination returns to the last.
"""

from __future__ import annotations

import asyncio
import time

from bench.durable import TARGET_PER_SECOND, notice_body, relay, sink_endpoint
from bench.harness import Bench, Section, wait_for_arrivals

RSS_TARGET_MB = 300
# The breaker probes a destination that was down every breaker_reset_seconds (default 30 s);
# shorter here, so the drain starts soon after the destination returns.
_SETTINGS = {"delivery.breaker_reset_seconds": 2}


async def run(bench: Bench) -> Section:
    section = Section("backlog", "Backlog: a destination down while messages queue, then the drain")
    count = bench.profile.backlog_messages
    body = await notice_body(bench)
    env = bench.environment(bench.sqlite_url("backlog"), endpoints=sink_endpoint(bench), settings=_SETTINGS)
    async with bench.gateway(env) as gateway:
        idle_rss = gateway.peak_rss_mb()
        await bench.agencies.post("/sink", {"listening": False})
        try:
            queued = await relay(bench, [gateway], count, body=body, wait=False)
        finally:
            await bench.agencies.post("/sink", {"listening": True})
        queued_rss = gateway.peak_rss_mb()
        back = time.time()
        arrived = await wait_for_arrivals(bench, "sink", queued.ids, timeout=max(120.0, count / 100))
        peak_rss = gateway.peak_rss_mb()
        stop_seconds = await asyncio.to_thread(gateway.stop)
    section.add("queued while the destination was down (accepted with 202)", queued.accepted, "msg",
                note=f"{queued.accepted_per_second:,.0f} msg/s accepted, {queued.errors} refused or failed")
    section.add(f"gateway peak RSS with {queued.accepted:,} messages queued", queued_rss, "MB",
                target=f"<= {RSS_TARGET_MB} MB" if count >= 100_000 else "",
                met=(queued_rss <= RSS_TARGET_MB) if count >= 100_000 and queued_rss else None,
                note=f"idle after start {idle_rss or 0:.0f} MB")
    section.add("gateway peak RSS over the whole run, drain included", peak_rss, "MB")
    if arrived:
        first, last = min(arrived.values()), max(arrived.values())
        drain = len(arrived) / (last - first) if last > first else None
        section.add("first delivery after the destination returned", first - back, "s",
                    note=f"breaker_reset_seconds = {_SETTINGS['delivery.breaker_reset_seconds']}")
        section.add("drain rate", drain, "msg/s", target=f">= durable throughput ({TARGET_PER_SECOND:,} msg/s)",
                    met=None if drain is None else drain >= TARGET_PER_SECOND,
                    note=f"{len(arrived):,} of {queued.accepted:,} delivered in {last - first:.1f} s")
    else:
        section.add("drain rate", None, "msg/s", note="nothing arrived in time")
    section.add("gateway stop (SIGTERM) after the drain", stop_seconds, "s", target="<= 2 s",
                met=None if stop_seconds is None else stop_seconds <= 2,
                note="it signs an audit tree head for every batch the log was numbered in since the last "
                     "signing round (every 60 s)")
    if count < 100_000:
        section.notes.append(f"{count:,} messages in this profile; the RSS target is stated for 100,000 "
                             "(the full run).")
    section.notes.append("Shipped configuration but breaker_reset_seconds = 2 (shipped: 30), so the first probe "
                         "after the destination returns comes within two seconds.")
    return section
