"""Scenario 3 — scatter-gather: how long a pre-trial report takes to assemble from four sources
that answer with different latencies, against the slowest source's latency.

The simulators answer after fixed delays (``adapters.simulation.Behaviour.latency``): interior
200 ms (identity, criminal history and the case, three calls), penal 150 ms, social 100 ms,
health 50 ms (two calls). Gathered concurrently, a report cannot take less than 200 ms; the
ratio says what the gateway adds. A report is assembled when its first version is stored (the
probation officer's status view shows it); the time it reaches the court is given beside it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass

import aiohttp

from bench.harness import Bench, Section
from bench.load import Latencies

TARGET_RATIO = 1.15
LATENCIES = {"interior": 0.200, "penal": 0.150, "social": 0.100, "health": 0.050}
_POLL_SECONDS = 0.002
_REPORT_SECONDS = 30.0
_HEADERS = {"X-Member-Id": "probation", "X-Purpose": "pretrial_report"}


async def run(bench: Bench) -> Section:
    section = Section("scatter", "Scatter-gather: a pre-trial report from four sources")
    slowest = max(LATENCIES.values())
    count = bench.profile.scatter_reports
    requests = await bench.agencies.get("/suspects", count=count)
    for system, seconds in LATENCIES.items():
        await bench.agencies.behave(system, latency=[seconds, seconds])
    try:
        async with bench.gateway(bench.environment(bench.sqlite_url("scatter"))) as gateway, \
                aiohttp.ClientSession(base_url=gateway.url, timeout=aiohttp.ClientTimeout(total=30)) as http:
            # Warm up (connections, zeep and XSD caches, keys), and let the court have that report
            # before the first measured one, so each arrival is matched with its own report.
            known = set(await bench.agencies.arrivals("court"))
            await _report(http, requests[0])
            await _next_arrival(bench, known)
            one_by_one, at_court = [], []
            for body in requests[1:]:
                known = set(await bench.agencies.arrivals("court"))
                report = await _report(http, body)
                one_by_one.append(report)
                arrival = await _next_arrival(bench, known)
                if arrival is not None:
                    at_court.append(arrival - report.sent_at)
            together = await asyncio.gather(*(_report(http, body) for body in requests[1:]))
    finally:
        for system in LATENCIES:
            await bench.agencies.behave(system, latency=[0, 0])
    assembled = Latencies([r.assembled for r in one_by_one])
    ratio_p50 = (assembled.p50 or 0) / 1000 / slowest
    ratio_max = (assembled.percentile(100) or 0) / 1000 / slowest
    section.add("slowest source latency", slowest * 1000, "ms")
    section.add("assembly time p50, one report at a time", assembled.p50, "ms",
                note=f"max {assembled.percentile(100):.0f} ms over {len(assembled)} reports")
    section.add("ratio assembly / slowest source, p50", ratio_p50, "x", target=f"<= {TARGET_RATIO}",
                met=ratio_p50 <= TARGET_RATIO)
    section.add("ratio assembly / slowest source, worst report", ratio_max, "x")
    gathered = Latencies([r.gathered for r in one_by_one])
    section.add("sources answered (latest fetched_at), p50", gathered.p50, "ms",
                note="from the request to the last section fetched")
    at_court = Latencies(at_court)
    section.add("report handled by the court simulator, p50", at_court.p50, "ms",
                note="signed, delivered through the outbox, verified by the court")
    concurrent = Latencies([r.assembled for r in together])
    section.add(f"assembly time p50 with {len(together)} reports at once", concurrent.p50, "ms",
                note=f"ratio {(concurrent.p50 or 0) / 1000 / slowest:.2f}, worst "
                     f"{(concurrent.percentile(100) or 0) / 1000 / slowest:.2f}")
    section.notes += [
        "Source latencies: " + ", ".join(f"{s} {v * 1000:.0f} ms" for s, v in LATENCIES.items()) + " (fixed).",
        f"Assembled: the first poll of GET /api/v1/pretrial-reports/{{id}} (every {_POLL_SECONDS * 1000:.0f} ms) "
        "that shows a version; measured from the moment the request was sent.",
    ]
    return section


@dataclass(frozen=True)
class _Report:
    sent_at: float
    assembled: float
    """Seconds from the request to the first stored version."""
    gathered: float
    """Seconds from the request to the last section fetched."""


async def _next_arrival(bench: Bench, known: set[str], timeout: float = 10.0) -> float | None:
    """When the court simulator handled a report it had not handled before (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = {i: at for i, at in (await bench.agencies.arrivals("court")).items() if i not in known}
        if new:
            return min(new.values())
        await asyncio.sleep(0.01)
    return None


async def _report(http: aiohttp.ClientSession, body: dict) -> _Report:
    """Ask for one report and poll (bounded) until its first version is stored."""
    sent_at = time.time()
    async with http.post("/api/v1/pretrial-reports", json=body,
                         headers={**_HEADERS, "X-Message-Id": f"bench-{uuid.uuid4().hex}"}) as response:
        answer = await response.json()
        if response.status != 202:
            raise RuntimeError(f"report request refused ({response.status}): {answer.get('detail')}")
    deadline = time.monotonic() + _REPORT_SECONDS
    while time.monotonic() < deadline:
        async with http.get(f"/api/v1/pretrial-reports/{answer['report_id']}", headers=_HEADERS) as response:
            status = json.loads(await response.read())
        if status["versions"]:
            assembled = time.time()
            fetched = [dt.datetime.fromisoformat(s["fetched_at"]).timestamp()
                       for s in status["sections"].values() if s.get("fetched_at")]
            return _Report(sent_at, assembled - sent_at, max(fetched, default=assembled) - sent_at)
        await asyncio.sleep(_POLL_SECONDS)
    raise RuntimeError(f"report {answer['report_id']} was not assembled within {_REPORT_SECONDS:g} s")
