"""Scenario 8 — console: the console's pages over a large store, on SQLite and PostgreSQL, and
what an open dashboard costs the gateway.

The store is seeded before the gateway starts, through the store's own bulk path
(``store.apply`` in batches: messages, release cases, audit entries made by the gateway's
``AuditLog`` with the keys the gateway then uses), and one SQL statement per state turns a
share of the messages into dead letters and deliveries. Then an operator, a probation officer
and an oversight officer sign in through the login form, and each page is asked for
``console_requests`` times, one at a time; the figure is the answer time on loopback (the
server's time plus one local round trip, so an upper bound of it).

The dashboard's live refresh: the gateway's CPU time (utime + stime of the ``gateway serve``
process, /proc) while it answers each of ``console_refreshes`` refreshes at the page's own
interval (``console.dashboard_refresh_seconds``), less the gateway's background rate measured
in the gaps between them, divided by the interval: the share of one core one open console costs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import statistics
import time
from dataclasses import dataclass

import aiohttp
import psycopg
from psycopg import sql

from bench.harness import POSTGRES_URL, Bench, Section
from gateway.config import load_config
from gateway.entrypoints.http.console.accounts import add_account
from gateway.security.audit import AuditEvent, AuditLog, EventKind, Outcome
from gateway.security.audit_keys import AuditKeys
from gateway.store import AcceptMessage, NewMessage, SaveCase, create_store

LIST_TARGET_MS = 150.0
DETAIL_TARGET_MS = 50.0
CPU_TARGET = 0.02
PASSWORD = "bench console password"
_BATCH = 1000
_RECIPIENTS = ("health", "social", "employment", "clinic", "court", "probation")
_REGIONS = ("Almaty", "Astana", "Shymkent", "Karaganda", "Aktobe")
_OFFICES = tuple(f"PO-{n:03d}" for n in range(20))
# Synthetic, valid IINs of nobody: the subjects of the seeded cases and audit entries.
_SUBJECTS = ("900215400281", "850101300015")


@dataclass(frozen=True)
class Seeded:
    message_ids: list[str]
    case_id: str
    office: str
    subject: str


def _iin_of(n: int) -> str:
    return _SUBJECTS[n % len(_SUBJECTS)]


async def seed(bench: Bench, env: dict[str, str]) -> Seeded:
    profile = bench.profile
    config = load_config(bench.config_dir, environ=env)
    store = create_store(config.store.url, base_dir=config.base_dir)
    await store.open()
    try:
        audit = AuditLog(store, AuditKeys.provision(config.audit, config.base_dir),
                         gateway_member=config.server.member_id)
        now = time.time() - 3600
        ids = []
        for start in range(0, profile.console_messages, _BATCH):
            batch = []
            for n in range(start, min(start + _BATCH, profile.console_messages)):
                message_id = f"bench-{n:07d}"
                ids.append(message_id)
                batch.append(AcceptMessage(NewMessage(
                    sender="penal", recipient=_RECIPIENTS[n % len(_RECIPIENTS)], service="release-notices",
                    body=b'{"notice": 1}', content_type="application/json", correlation_id=f"corr-{n // 3}",
                    max_attempts=8, deadline_at=now + 86_400, client_message_id=message_id, id=message_id,
                    purpose="continuity_of_care")))
            await store.apply(batch, now=now + start / 1000)
        subject_keys = [audit.subject_key(iin) for iin in _SUBJECTS]
        for start in range(0, profile.console_cases, _BATCH):
            await store.apply([SaveCase(
                kind="release_case", id=f"rc-{n:06d}", state=("notified", "acknowledged", "escalated")[n % 3],
                expected_version=0, subject_key=subject_keys[n % 2], data=_release_data(n),
            ) for n in range(start, min(start + _BATCH, profile.console_cases))], now=now)
        for start in range(0, profile.console_audit, _BATCH):
            events = [AuditEvent(
                kind=EventKind.DISCLOSURE, outcome=Outcome.DISCLOSED, member=_RECIPIENTS[n % len(_RECIPIENTS)],
                member_role="health", counterpart="gateway", subject=_iin_of(n), purpose="continuity_of_care",
                document_type="ReleaseNotice", service="health/release-notices", fields=("iin", "release_date"),
                message_id=f"bench-{n:07d}", at=now + n / 100,
            ) for n in range(start, min(start + _BATCH, profile.console_audit))]
            await store.apply([audit.command(events)], now=now)
        await add_account(store, username="operator", role="operator", password=PASSWORD, display_name="Operator",
                          office=None, region=None, now=time.time())
        await add_account(store, username="officer", role="probation_officer", password=PASSWORD,
                          display_name="Officer", office=_OFFICES[0], region=_REGIONS[0], now=time.time())
        await add_account(store, username="oversight", role="oversight", password=PASSWORD,
                          display_name="Oversight", office=None, region=None, now=time.time())
    finally:
        await store.close()
    # A tenth dead after their attempts, seven tenths delivered: one statement each.
    _sql(config.store.url, bench, [
        "UPDATE messages SET state = 'dead', attempts = 8, last_error = 'HTTP 503 from the receiver', "
        "last_status = 503 WHERE seq % 10 = 0",
        f"UPDATE messages SET state = 'delivered', attempts = 1, delivered_at = {now + 60} WHERE seq % 10 BETWEEN 1 AND 7",
        # The rest stay queued, due in a day: a backlog the dashboard shows, not work the gateway does now.
        f"UPDATE messages SET next_attempt_at = {now + 86_400} WHERE state = 'accepted'",
    ])
    return Seeded(ids, case_id=f"rc-{profile.console_cases // 2:06d}", office=_OFFICES[0], subject=_SUBJECTS[0])


def _sql(url: str, bench: Bench, statements: list[str]) -> None:
    if url.startswith("sqlite:///"):
        import sqlite3

        path = url.removeprefix("sqlite:///")
        if not os.path.isabs(path):
            path = str(bench.config_dir / path)
        conn = sqlite3.connect(path)
        try:
            with conn:
                for statement in statements:
                    conn.execute(statement)
        finally:
            conn.close()
        return
    schema = re.search(r"schema=([a-z0-9_]+)", url).group(1)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        for statement in statements:
            conn.execute(statement)
        conn.execute("ANALYZE")


def _release_data(n: int) -> dict:
    planned = (dt.date(2026, 1, 1) + dt.timedelta(days=n % 365)).isoformat()
    office = _OFFICES[n % len(_OFFICES)]
    return {
        "notice": {"iin": _iin_of(n), "facility": {"code": f"UIS-{n % 40:02d}", "name": "Facility"},
                   "release_type": "parole", "planned_date": planned, "actual_date": None,
                   "destination": {"region": _REGIONS[n % len(_REGIONS)]},
                   "probation_office": {"code": office, "name": office}},
        "events": [{"event": "planned", "message_id": f"n-{n}", "at": "2026-01-01T08:00:00+00:00"}],
        "escalations": [], "sent": {},
    }


async def sign_in(http: aiohttp.ClientSession, url: str, username: str) -> None:
    async with http.get(url + "/console/login") as page:
        text = await page.text()
    token = re.search(r'name="csrf" value="([^"]+)"', text).group(1)
    async with http.post(url + "/console/login", data={"csrf": token, "username": username, "password": PASSWORD},
                         headers={"Origin": url}, allow_redirects=False) as answer:
        if answer.status != 303:
            raise RuntimeError(f"sign-in as {username} answered {answer.status}")


async def timings(http: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    """Milliseconds per answer, one request at a time (each must be a 200)."""
    measured = []
    for _ in range(count):
        started = time.perf_counter()
        async with http.get(url, allow_redirects=False) as answer:
            await answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{url} answered {answer.status}")
        measured.append((time.perf_counter() - started) * 1000)
    return measured


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


async def _settle(pid: int, limit: float = 120.0) -> None:
    """Wait (bounded) until the gateway's background work is down to a tenth of a core: its
    first signing round after a large seed hashes every entry."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(2.0)
        if cpu_seconds(pid) - before < 0.2:
            return


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _pages(bench: Bench, section: Section, store_name: str, store_url: str) -> None:
    profile = bench.profile
    interval = profile.console_refresh_seconds
    env = bench.environment(store_url, settings={"console.dashboard_refresh_seconds": interval})
    started = time.monotonic()
    seeded = await seed(bench, env)
    section.notes.append(f"{store_name}: seeded {profile.console_messages:,} messages, {profile.console_cases:,} "
                         f"release cases and {profile.console_audit:,} audit entries in "
                         f"{time.monotonic() - started:.0f} s")
    async with bench.gateway(env) as gateway:
        base = gateway.url
        last = seeded.message_ids[-1]
        pages = {
            "operator": [
                ("list", "dashboard", "/console/dashboard"),
                ("list", "messages, newest", "/console/messages"),
                ("list", "messages, older page", f"/console/messages?before={profile.console_messages // 2}"),
                ("list", "messages by recipient and status", "/console/messages?recipient=court&status=delivered"),
                ("list", "messages by service", "/console/messages?service=release-notices"),
                ("list", "messages by correlation id", f"/console/messages?correlation_id=corr-{len(seeded.message_ids) // 6}"),
                ("list", "messages in a time range",
                 "/console/messages?from=" + dt.datetime.fromtimestamp(time.time() - 3590, dt.UTC).strftime("%Y-%m-%dT%H:%M")),
                ("list", "dead letters", "/console/dead-letters"),
                ("list", "dead letters of one recipient", "/console/dead-letters?recipient=clinic"),
                ("list", "release cases", "/console/release-cases"),
                ("list", "release cases by region and date",
                 "/console/release-cases?region=Shymkent&from=2026-06-01&until=2026-06-30"),
                ("detail", "a message", f"/console/messages/{last}"),
                ("detail", "a release case", f"/console/release-cases/{seeded.case_id}"),
            ],
            "officer": [
                ("list", "release cases of the office", "/console/release-cases"),
                ("list", "pre-trial reports of the office", "/console/pretrial"),
            ],
            "oversight": [
                ("list", "subject report", f"/console/oversight?iin={seeded.subject}"),
                ("list", "audit log", "/console/audit"),
            ],
        }
        jar_sessions = {}
        for role, items in pages.items():
            http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            jar_sessions[role] = http
            await sign_in(http, base, role)
            for kind, name, path in items:
                measured = await timings(http, base + path, profile.console_requests)
                target = LIST_TARGET_MS if kind == "list" else DETAIL_TARGET_MS
                value = p95(measured)
                section.add(f"{store_name}: {name} (p95)", value, "ms", target=f"<= {target:g} ms", met=value <= target,
                            note=f"median {statistics.median(measured):.1f} ms over {len(measured)}")
        # The live refresh. The gateway's own background work (its first audit signing round
        # after a large seed, delivery and timer polls) is measured in the gaps between refreshes
        # and subtracted from the CPU time each refresh took.
        http = jar_sessions["operator"]
        await _settle(gateway.pid)
        spent, background, gaps = [], 0.0, 0.0
        for _ in range(profile.console_refreshes):
            tick, cpu = time.monotonic(), cpu_seconds(gateway.pid)
            await timings(http, base + "/console/dashboard/queues", 1)
            done, cpu_done = time.monotonic(), cpu_seconds(gateway.pid)
            await asyncio.sleep(max(0.0, interval - (done - tick)))
            background += cpu_seconds(gateway.pid) - cpu_done
            gaps += time.monotonic() - done
            spent.append((cpu_done - cpu, done - tick))
        rate = background / gaps if gaps else 0.0
        per_refresh = sum(max(0.0, cpu - rate * wall) for cpu, wall in spent) / len(spent)
        share = per_refresh / interval
        section.add(f"{store_name}: dashboard refresh, gateway CPU per open console", share * 100, "% of a core",
                    target=f"< {CPU_TARGET * 100:g} %", met=share < CPU_TARGET,
                    note=f"{per_refresh * 1000:.0f} ms CPU per refresh, every {interval} s, over "
                         f"{profile.console_refreshes} refreshes; background {rate * 100:.1f} % of a core subtracted")
        for http in jar_sessions.values():
            await http.close()


async def run(bench: Bench) -> Section:
    section = Section("console", "Console: list and detail pages over a large store, and the dashboard's refresh")
    await _pages(bench, section, "SQLite", bench.sqlite_url("console"))
    url, schema = bench.postgres_url()
    try:
        await _pages(bench, section, "PostgreSQL", url)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    section.notes.append("Answer times are measured by the client on loopback, one request at a time: the "
                         "server's time plus a local round trip.")
    return section
