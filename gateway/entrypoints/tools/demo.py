"""``gateway demo``: the whole exchange on loopback, with the embedded store and every simulator.

Probation officers ask for pre-trial reports on suspects while the social ministry
is down (their reports go out partial; the ministry comes back once every report
has gone out, and they are completed). The interior ministry refuses its first
requests. The penal system pushes release notices over SOAP — some later changed,
some cancelled, one sent twice. Agencies answer with latency; one clinic never
acknowledges anything, and once every other case has settled the gateway's clock
is moved past the acknowledgement deadline, so its patients are escalated. Every
outage and deadline follows an event, never the machine's speed: the counts are
the same on a fast machine and a slow one. The demo waits until every case has
reached the state its circumstances call for, checks the audit log, and reports
what happened. It exits non-zero if any case is elsewhere.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from adapters.penal.simulator import push_release_notices
from adapters.population import Population, SyntheticPerson
from gateway.domain import ReleaseEvent
from gateway.entrypoints.http.console import accounts as console_accounts
from gateway.entrypoints.tools.simulate import ClinicBehaviour, SimulatedClock, System, running_system
from gateway.store import MessageState
from gateway.workflows import pretrial, release

_DEADLINE_SECONDS = 150.0

# Days compressed to seconds, through the same keys an operator sets.
DEMO_SETTINGS: dict[str, Any] = {
    "delivery.backoff_base_seconds": 0.05,
    "delivery.backoff_cap_seconds": 0.5,
    "delivery.breaker_reset_seconds": 0.5,
    "delivery.poll_interval_seconds": 0.2,
    "delivery.request_timeout_seconds": 3,
    # Leases outlast the clock's one jump past the acknowledgement deadline: nothing crashes here.
    "delivery.lease_seconds": 900,
    "workflows.poll_interval_seconds": 0.1,
    # A slow answer on a busy machine must not count as an outage: outages here answer 503 at once.
    "workflows.pretrial.source_timeout_seconds": 30,
    "workflows.pretrial.regather_interval_seconds": 1.0,
    "workflows.timer_lease_seconds": 900,
    # Passed only when the demo moves the clock (``_let_deadlines_pass``), never by slowness.
    "workflows.release.acknowledge_within_seconds": 600,
    "workflows.release.attachment_check_seconds": 1,
    "workflows.release.retry_seconds": 0.5,
    "audit.tree_head_interval_seconds": 1,
}


@dataclass
class DemoReport:
    ok: bool = False
    store: str = ""
    transport: str = ""
    people: int = 0
    reports_requested: int = 0
    reports_delivered: int = 0
    reports_complete: int = 0
    reports_partial: int = 0
    report_versions: int = 0
    court_receipts: int = 0
    releases_notified: int = 0
    release_notices_sent: int = 0
    release_cases: dict[str, int] = field(default_factory=dict)
    clinic_notices_delivered: int = 0
    notices_acknowledged: int = 0
    holds_placed: int = 0
    holds_released: int = 0
    escalated: int = 0
    employment_notices: int = 0
    social_referrals: int = 0
    probation_notices: int = 0
    dead_letters: int = 0
    redeliveries_dropped_by_receivers: int = 0
    audit_entries: int = 0
    audit_intact: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        states = ", ".join(f"{state} {count}" for state, count in sorted(self.release_cases.items()))
        verdict = "ok: every case is where its circumstances put it" if self.ok else "FAILED: " + "; ".join(
            self.problems[:10])
        return "\n".join([
            f"reentry-gateway demo — the whole exchange on loopback ({self.store} store, {self.people} synthetic people)",
            f"  every hop: {self.transport}",
            "",
            "Pre-trial reports (Strategy §3.3)",
            f"  requested by probation officers                 {self.reports_requested:>5}",
            f"  delivered to the court, with a receipt          {self.reports_delivered:>5}",
            f"  complete                                        {self.reports_complete:>5}",
            f"  sent partial first (a source was down)          {self.reports_partial:>5}",
            f"  versions delivered / court receipts             {self.report_versions:>5} / {self.court_receipts}",
            "",
            "Release and continuity of care (Strategy §1.1, §1.2)",
            f"  people released (notices: {self.release_notices_sent} incl. changes, cancellations, a resend)"
            f" {self.releases_notified:>3}",
            f"  release cases: {states}",
            f"  continuity-of-care notices delivered to clinics {self.clinic_notices_delivered:>5}",
            f"  acknowledged by the clinic                      {self.notices_acknowledged:>5}",
            f"  attachment holds placed / lifted                {self.holds_placed:>5} / {self.holds_released}",
            f"  escalated to the health authority               {self.escalated:>5}",
            f"  employment-centre notices (five fields only)    {self.employment_notices:>5}",
            f"  social-services referrals                       {self.social_referrals:>5}",
            f"  probation notices                               {self.probation_notices:>5}",
            "",
            "Exchange",
            f"  dead letters                                    {self.dead_letters:>5}",
            f"  redeliveries dropped by receivers (X-Message-Id) {self.redeliveries_dropped_by_receivers:>4}",
            f"  audit-log entries, verified intact              {self.audit_entries:>5} "
            f"({'intact' if self.audit_intact else 'NOT INTACT'})",
            f"  time                                            {self.seconds:>5.1f} s",
            "",
            verdict,
        ])


def expected_release_state(person: SyntheticPerson, population: Population, silent: set[str],
                           cancelled: set[str]) -> str:
    """Where a release case must end up in the demo, from the person's circumstances."""
    if person.iin in cancelled:
        return release.ReleaseState.CANCELLED
    clinic = population.clinic_for(person.release.destination)
    if clinic is None:
        return release.ReleaseState.ESCALATED  # someone must find the person a clinic
    if not person.health.registrations:
        return release.ReleaseState.AWAITING_ATTACHMENT  # no notice; watched from the release date, weeks ahead
    if clinic.code in silent:
        return release.ReleaseState.ESCALATED
    return release.ReleaseState.CLOSED


async def run_demo(*, people: int = 700, reports: int = 60, releases: int = 200, store_url: str | None = None,
                   seed: int = 20261126, directory: Path | None = None,
                   keep: Callable[[System, DemoReport, str], Awaitable[None]] | None = None) -> DemoReport:
    """``keep``, when given, is awaited with the running system after the summary (``--keep``)."""
    started = time.monotonic()
    population = Population(seed=seed, size=people)
    released = population.in_custody()[:releases]
    suspects = population.suspects()[:reports]
    report = DemoReport(people=len(population))
    if len(released) < releases or len(suspects) < reports:
        report.problems.append(f"the population of {people} has too few people in custody or under investigation")
        return report
    # The clinic serving the most destinations never answers: its patients must be escalated.
    clinic_load = Counter(c.code for p in released if (c := population.clinic_for(p.release.destination)))
    silent = {clinic_load.most_common(1)[0][0]}
    store_url, drop_schema = _own_schema(store_url or "sqlite:///gateway.db")
    clock = SimulatedClock()
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as scratch:
        root = directory or Path(scratch)
        try:
            # Every hop on mutual TLS with development certificates; SOAP signed both ways.
            async with running_system(
                root / "system", population=population, settings=DEMO_SETTINGS, store_url=store_url,
                clinic=ClinicBehaviour(ack_delay=0.3, silent_clinics=silent), mtls=True, clock=clock,
            ) as system:
                report.store = system.config.store.url.split(":", 1)[0]
                report.transport = ("mutual TLS with member certificates" if system.pki else "plain HTTP") + (
                    "; SOAP signed (WS-Security)" if system.simulation.keys else "")
                _misbehave(system)
                async with _session_as(system, "probation") as probation, _session_as(system, "penal") as penal:
                    report_ids = await _request_reports(probation, system, suspects)
                    await _end_social_outage(system, report_ids)
                    cancelled = await _notify_releases(penal, system, released, report)
                    expected = {p.iin: expected_release_state(p, population, silent, cancelled) for p in released}
                waiting = {p.iin for p in released if p.health.registrations and p.iin not in cancelled
                           and (clinic := population.clinic_for(p.release.destination)) and clinic.code in silent}
                await _let_deadlines_pass(system, clock, expected, waiting)
                await _settle(system, report_ids, expected, report)
                await _summarise(system, report_ids, report)
                if keep is not None:
                    report.seconds = time.monotonic() - started
                    report.ok = not report.problems
                    await keep(system, report, suspects[0].district.probation_office.code)
        finally:
            await drop_schema()
    report.seconds = time.monotonic() - started
    report.ok = not report.problems
    return report


def _own_schema(store_url: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    """On PostgreSQL the demo works in a schema of its own, dropped afterwards, so it never
    meets an earlier run's cases or a production schema's rows."""

    async def nothing() -> None:
        return None

    if not store_url.startswith(("postgresql://", "postgres://")) or "schema=" in store_url:
        return store_url, nothing
    schema = f"gateway_demo_{uuid.uuid4().hex[:10]}"
    separator = "&" if "?" in store_url else "?"

    async def drop() -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(store_url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    return f"{store_url}{separator}schema={schema}", drop


def _session_as(system: System, member: str) -> aiohttp.ClientSession:
    """An HTTP client presenting ``member``'s certificate to the gateway."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=system.client_ssl(member)))


def _misbehave(system: System) -> None:
    sim = system.simulation
    # Outages switched by events, so every case's outcome is determined: social down from the
    # start until every report has gone out partial (``_end_social_outage``), interior refusing
    # its first requests (steps retry).
    sim.behaviour("social").down = True
    sim.behaviour("interior").refuse_next = 20
    for name, latency in {"interior": (0.02, 0.08), "penal": (0.01, 0.05), "health": (0.03, 0.12),
                          "social": (0.02, 0.06), "court": (0.01, 0.04)}.items():
        sim.behaviour(name).latency = latency


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait, bounded in time, for ``condition``; the bound only turns a stuck run into a failure."""
    deadline = time.monotonic() + _DEADLINE_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the demo never saw {what}")
        await asyncio.sleep(0.1)


async def _end_social_outage(system: System, report_ids: list[str]) -> None:
    """The social ministry comes back once every report has gone out partial without it."""
    store = system.gateway.store

    async def every_report_went_out() -> bool:
        for rid in report_ids:
            versions = pretrial.state_of(await store.get_case(pretrial.KIND, rid)).versions
            if not any(v.status == "delivered" for v in versions):
                return False
        return True

    await _until(every_report_went_out, "every report delivered while the social ministry was down")
    system.simulation.behaviour("social").down = False


async def _let_deadlines_pass(system: System, clock: SimulatedClock, expected: dict[str, str],
                              waiting: set[str]) -> None:
    """Once every case but the silent clinic's is where it belongs, move the clock past the
    acknowledgement deadline: the silent clinic's patients are then escalated, whatever the
    machine's speed (a slow clinic acknowledgement can never race the deadline)."""
    store, audit = system.gateway.store, system.gateway.audit
    settled_first = {audit.subject_key(iin): state for iin, state in expected.items() if iin not in waiting}

    async def the_others_settled() -> bool:
        states = {c.subject_key: c.state for c in await _all_cases(store)}
        return all(states.get(key) == state for key, state in settled_first.items())

    await _until(the_others_settled, "every case but the silent clinic's settle")
    clock.advance(DEMO_SETTINGS["workflows.release.acknowledge_within_seconds"] + 1)


async def _request_reports(http: aiohttp.ClientSession, system: System, suspects: list[SyntheticPerson]) -> list[str]:
    due = (dt.date.today() + dt.timedelta(days=21)).isoformat()

    async def ask(person: SyntheticPerson) -> str:
        body = {
            "subject_iin": person.iin,
            "erdr_number": person.pretrial_case.erdr_number,
            "court": {"code": f"COURT-{person.district.kato[:2]}", "name": f"{person.district.region}: аудандық сот"},
            "requesting_body": {"code": person.district.probation_office.code,
                                "name": person.district.probation_office.name},
            "due_date": due,
            "officer_conclusion": "Пробация қызметкерінің қорытындысы: ынтымақтасуға дайын.",
        }
        async with http.post(f"{system.gateway.url}/api/v1/pretrial-reports", json=body,
                             headers={"X-Member-Id": "probation", "X-Purpose": pretrial.PURPOSE,
                                      "X-Message-Id": f"demo-report-{person.iin[-6:]}-{uuid.uuid4().hex[:6]}"}) as r:
            answer = await r.json()
            if r.status != 202:
                raise RuntimeError(f"report request refused: {answer.get('detail')}")
            return answer["report_id"]

    return list(await asyncio.gather(*(ask(p) for p in suspects)))


async def _notify_releases(http: aiohttp.ClientSession, system: System, released: list[SyntheticPerson],
                           report: DemoReport) -> set[str]:
    """Push the planned releases over SOAP, then change some dates and cancel a few."""
    planned = [(ReleaseEvent.PLANNED, p.release) for p in released]
    ids = [f"demo-release-{n}" for n in range(len(planned))]
    keys = system.simulation.keys
    signed = {"signer": keys.signers.get("penal"), "verifier": keys.gateway} if keys else {}
    for start in range(0, len(planned), 50):
        await push_release_notices(system.gateway.url, planned[start:start + 50], http,
                                   message_ids=ids[start:start + 50], **signed)
    await push_release_notices(system.gateway.url, planned[:1], http, message_ids=ids[:1], **signed)  # a resend
    changed = [(ReleaseEvent.CHANGED, p.release.model_copy(update={
        "planned_date": p.release.planned_date + dt.timedelta(days=7)})) for p in released[10:20]]
    cancelled = released[20:25]
    await push_release_notices(system.gateway.url, changed, http, **signed)
    await push_release_notices(system.gateway.url, [(ReleaseEvent.CANCELLED, p.release) for p in cancelled], http,
                               **signed)
    report.releases_notified = len(released)
    report.release_notices_sent = len(planned) + 1 + len(changed) + len(cancelled)
    return {p.iin for p in cancelled}


async def _settle(system: System, report_ids: list[str], expected: dict[str, str], report: DemoReport) -> None:
    """Wait, bounded, until every report is complete, every release case is where expected and
    nothing waits in the outbox."""
    store, audit = system.gateway.store, system.gateway.audit
    wanted = Counter(expected.values())
    deadline = time.monotonic() + _DEADLINE_SECONDS
    while time.monotonic() < deadline:
        reports = [await store.get_case(pretrial.KIND, rid) for rid in report_ids]
        reports_done = all(c.state == pretrial.PretrialState.COMPLETE for c in reports)
        cases = await _all_cases(store)
        got = Counter(c.state for c in cases)
        counts = await store.counts()
        drained = not any(n for (_, state), n in counts.items()
                          if state in (MessageState.ACCEPTED, MessageState.IN_FLIGHT))
        if reports_done and got == wanted and drained:
            break
        await asyncio.sleep(0.25)
    reports = [await store.get_case(pretrial.KIND, rid) for rid in report_ids]
    for case in reports:
        if case.state != pretrial.PretrialState.COMPLETE:
            report.problems.append(f"report {case.id} is {case.state}, not complete")
    cases = await _all_cases(store)
    by_subject = {c.subject_key: c for c in cases}
    for iin, state in expected.items():
        case = by_subject.get(audit.subject_key(iin))
        if case is None or case.state != state:
            report.problems.append(f"release case {case.id if case else '(none)'} is "
                                   f"{case.state if case else 'missing'}, expected {state}")


async def _all_cases(store) -> list:
    cases, after = [], ""
    while page := await store.list_cases(release.KIND, after_id=after, limit=500):
        cases.extend(page)
        after = page[-1].id
    return cases


async def _summarise(system: System, report_ids: list[str], report: DemoReport) -> None:
    store, sim = system.gateway.store, system.simulation
    report.reports_requested = len(report_ids)
    for rid in report_ids:
        case = await store.get_case(pretrial.KIND, rid)
        versions = pretrial.state_of(case).versions
        report.reports_delivered += any(v.status == "delivered" for v in versions)
        report.reports_complete += case.state == pretrial.PretrialState.COMPLETE
        report.reports_partial += len(versions) > 1
        report.report_versions += len(versions)
        report.court_receipts += sum(1 for v in versions if v.registration_number)
    cases = await _all_cases(store)
    report.release_cases = dict(Counter(c.state for c in cases))
    states = [release.state_of(c) for c in cases]
    report.notices_acknowledged = sum(1 for s in states if s.acknowledgement)
    report.holds_placed = sum(1 for s in states if s.hold)
    report.holds_released = sum(1 for s in states if s.hold and s.hold.released)
    report.escalated = sum(1 for s in states if s.escalations)
    report.clinic_notices_delivered = len(sim.recorder("clinic").unique("clinic/continuity-of-care"))
    report.employment_notices = len(sim.recorder("social").unique("employment/release-notices"))
    report.social_referrals = len(sim.recorder("social").unique("social/referrals"))
    report.probation_notices = len(sim.recorder("probation").unique("probation/release-notices"))
    report.redeliveries_dropped_by_receivers = sum(r.duplicates for r in sim.recorders.values())
    counts = await store.counts()
    report.dead_letters = sum(n for (_, state), n in counts.items() if state is MessageState.DEAD)
    if report.dead_letters:
        report.problems.append(f"{report.dead_letters} dead letters")
    await system.gateway.audit.sign_tree_head()
    verification = await system.gateway.audit.verify()
    report.audit_entries = await store.audit_size()
    report.audit_intact = verification.intact
    if not verification.intact:
        report.problems.append(f"the audit log does not verify: {verification.problems[:3]}")
    employment = [json.loads(d.body) for d in sim.recorder("social").of("employment/release-notices")]
    if any(set(notice) != {"age", "release_date", "residence", "education", "specialty"} for notice in employment):
        report.problems.append("an employment notice carried more than its five fields")


def main(as_json: bool, store_url: str | None, keep: bool = False) -> int:
    report = asyncio.run(run_demo(store_url=store_url, keep=_keep_running if keep else None))
    if not keep:
        print(json.dumps(asdict(report), indent=2, ensure_ascii=False) if as_json else report.text())
    return 0 if report.ok else 1


# Development logins of ``gateway demo --keep``: printed, and gone with the demo's store.
_DEMO_PASSWORD = "demo-console-password"


async def _keep_running(system: System, report: DemoReport, office: str) -> None:
    """Print the summary, give each console role a development login, and serve until Ctrl-C."""
    print(report.text())
    store, now = system.gateway.store, system.gateway.clock()
    logins = (("operator", "operator", None, None), ("officer", "probation_officer", office, "demo"),
              ("oversight", "oversight", None, None), ("auditor", "auditor", None, None))
    for username, role, office_code, region in logins:
        await console_accounts.add_account(store, username=username, role=role, password=_DEMO_PASSWORD,
                                           display_name=f"Demo {role}", office=office_code, region=region, now=now)
    print(f"\nThe gateway keeps running. Console: {system.gateway.url}/console/")
    if system.pki is not None:
        print(f"  (mutual TLS: the browser must present a development member certificate and key "
              f"from {system.pki.certificate('probation').parent})")
    for username, role, office_code, _region in logins:
        suffix = f", office {office_code}" if office_code else ""
        print(f"  {role:<18} login {username:<10} password {_DEMO_PASSWORD}{suffix}")
    print("Press Ctrl-C to stop.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
