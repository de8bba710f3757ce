"""Scenario 5 — release-day burst: an amnesty releases thousands at once; how long until every
continuity-of-care notice is delivered to its clinic and acknowledged.

The penal system posts the release notices as JSON to ``POST /api/v1/release-notices`` (event
ACTUAL, release type AMNESTY, released today), as fast as 64 connections take them. Each one
opens a release case that asks interior (signed SOAP) and health for the person, holds the
attachment, finds the clinic, and sends the continuity-of-care notice (FHIR) to the clinic,
besides the employment, social and probation notices. The clinic simulator acknowledges each
notice at once by calling the gateway back. The gateway records when it took each
acknowledgement; the clinic simulator records when it handled each notice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
import uuid
from collections import Counter

import aiohttp

from bench.harness import Bench, Section
from bench.load import closed_loop, request
from gateway.workflows.release import ReleaseState

TARGET_SECONDS = 60.0
TARGET_NOTICES = 20_000
SENDERS = 64
_OPERATOR = {"X-Member-Id": "operations"}
_WAITING = (ReleaseState.NOTIFIED, ReleaseState.AWAITING_ACKNOWLEDGEMENT)


async def run(bench: Bench) -> Section:
    section = Section("burst", "Release-day burst: an amnesty, every continuity-of-care notice acknowledged")
    count = bench.profile.burst_notices
    material = await bench.agencies.get("/release-notices", count=count)
    bodies = [json.dumps(n, ensure_ascii=False).encode() for n in material["notices"]]
    expected = material["clinic_notices"]
    deadline_seconds = max(180.0, len(bodies) / 40)
    async with bench.gateway(bench.environment(bench.sqlite_url("burst"))) as gateway, \
            aiohttp.ClientSession(base_url=gateway.url, timeout=aiohttp.ClientTimeout(total=60)) as http:
        before = await bench.agencies.get("/counts")
        cpu_before = (gateway.cpu_seconds(), bench.agencies.cpu_seconds())
        requests = (request(gateway.port, "/api/v1/release-notices", body, {
            "Content-Type": "application/json", "X-Member-Id": "penal", "X-Purpose": "continuity_of_care",
            "X-Message-Id": f"amnesty-{uuid.uuid4().hex}"}) for body in bodies)
        first = time.time()
        sent = await closed_loop(requests, concurrency=SENDERS, max_count=len(bodies), max_seconds=deadline_seconds)
        accepted = len(sent.ok)
        accepted_at = max((e.sent_at + e.seconds for e in sent.ok), default=first)
        settled = await _settle(http, first + deadline_seconds)
        cpu_after = (gateway.cpu_seconds(), bench.agencies.cpu_seconds())
        cases = await _cases(http)
        clinic = await bench.agencies.arrivals("clinic")
        after = await bench.agencies.get("/counts")
        rss = gateway.peak_rss_mb()
    acknowledged = [c["acknowledgement"]["at"] for c in cases if c.get("acknowledgement")]
    last_ack = max((dt.datetime.fromisoformat(at).timestamp() for at in acknowledged), default=None)
    delivered = [at for at in clinic.values() if at >= first]
    states = Counter(c["state"] for c in cases)

    section.add("release notices posted in the burst", len(bodies), "notices",
                note=f"{accepted:,} accepted (202) at {accepted / max(accepted_at - first, 1e-9):,.0f}/s, "
                     f"{sent.errors + len(sent.exchanges) - accepted} refused or failed")
    section.add("continuity-of-care notices expected (treatment to continue and a clinic for the address)",
                expected, "notices")
    section.add("continuity-of-care notices delivered to clinics", len(delivered), "notices",
                note=f"the last {max(delivered, default=first) - first:.1f} s after the first release notice")
    complete = settled and len(acknowledged) >= expected and last_ack is not None
    seconds = (last_ack - first) if complete else None
    target = len(bodies) >= TARGET_NOTICES
    section.add("time until every continuity-of-care notice is acknowledged", seconds, "s",
                target=f"<= {TARGET_SECONDS:g} s for {TARGET_NOTICES:,}" if target else "",
                met=(seconds is not None and seconds <= TARGET_SECONDS) if target else None,
                note=f"{len(acknowledged):,} acknowledged" + ("" if complete else ", not all within the bound"))
    if seconds:
        section.add("release cases through to acknowledgement per second", len(bodies) / seconds, "cases/s")
    section.add("gateway peak RSS", rss, "MB")
    gateway_cpu, agencies_cpu = (_spent(b, a) for b, a in zip(cpu_before, cpu_after, strict=True))
    if gateway_cpu is not None and agencies_cpu is not None and bodies:
        per_case = [cpu * 1000 / len(bodies) for cpu in (gateway_cpu, agencies_cpu)]
        section.add("gateway CPU per release case (intake to acknowledgement)", per_case[0], "ms",
                    note=f"{gateway_cpu:,.1f} s of CPU in all")
        section.add("agency simulators' CPU per release case (interior, health, clinics, the others)", per_case[1],
                    "ms", note=f"{agencies_cpu:,.1f} s of CPU in all")
        cores = os.cpu_count() or 1
        floor = sum(per_case) / 1000 * TARGET_NOTICES / cores
        section.add(f"least time for {TARGET_NOTICES:,} cases on this machine's {cores} cores at these CPU costs",
                    floor, "s", note="(gateway + simulators CPU per case) x cases / cores: no schedule beats it")
    section.notes += [
        "Case states at the end: " + ", ".join(f"{state} {n:,}" for state, n in sorted(states.items())) + ".",
        "Other notices delivered: " + ", ".join(
            f"{system} {after[system] - before[system]:,}" for system in ("social", "probation", "health")) +
        " (social includes the employment centres; health the escalations to the health authority).",
        f"The population has {bench.profile.people:,} people; the first {len(bodies):,} in custody are released.",
        "Shipped configuration: workflows.concurrency 32, delivery.concurrency 8 per destination.",
    ]
    if len(bodies) < TARGET_NOTICES:
        section.notes.append(f"{len(bodies):,} notices in this profile; the target is stated for {TARGET_NOTICES:,} "
                             "(the full run).")
    return section


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


async def _settle(http: aiohttp.ClientSession, deadline: float) -> bool:
    """Wait (bounded) until no release case is waiting to be prepared or acknowledged."""
    while time.time() < deadline:
        waiting = 0
        for state in _WAITING:
            async with http.get("/api/v1/release-cases", params={"state": state.value, "limit": "1"},
                                headers=_OPERATOR) as response:
                waiting += len((await response.json())["items"])
        if not waiting:
            return True
        await asyncio.sleep(0.5)
    return False


async def _cases(http: aiohttp.ClientSession) -> list[dict]:
    cases, after = [], ""
    while True:
        async with http.get("/api/v1/release-cases", params={"limit": "500", "after": after},
                            headers=_OPERATOR) as response:
            page = await response.json()
        cases += page["items"]
        if not page["next_after"]:
            return cases
        after = page["next_after"]
