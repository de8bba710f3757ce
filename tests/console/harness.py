"""A gateway with the console, run on its own event loop in a thread so that the browser tests
(Playwright's sync API, Debian's chromium) can drive it; accounts for every role and seeded cases."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from gateway.entrypoints.http.console.accounts import add_account
from gateway.entrypoints.http.server import build
from gateway.store import SaveCase
from gateway.workflows import pretrial, release
from support import RecordingReceiver, make_config

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
# Synthetic people (valid IINs of nobody), one per probation office.
SUBJECT_OFFICE_1 = "900215400281"
SUBJECT_OFFICE_2 = "850101300015"

ACCOUNTS = (
    ("aliya", "operator", "Aliya Operator", None, None),
    ("olga", "probation_officer", "Olga Probation", "PO-ALM-1", "Almaty"),
    ("petr", "probation_officer", "Petr Probation", "PO-AST-2", "Astana"),
    ("oskar", "oversight", "Oskar Oversight", None, None),
    ("aida", "auditor", "Aida Auditor", None, None),
)


class MovableClock:
    """The gateway's injected clock: real time plus however far a test moved it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class ConsoleGateway:
    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-gateway", daemon=True)
        self.thread.start()
        self.clock = MovableClock()
        self.receiver = RecordingReceiver()
        self.call(self.receiver.start())
        config = make_config(tmp_path / "gw", receiver_url=self.receiver.url,
                             store_url=f"sqlite:///{tmp_path / 'console.db'}")
        self.gateway = self.call(self._build(config))
        self.url = self.gateway.url
        for username, role, name, office, region in ACCOUNTS:
            self.call(add_account(self.gateway.store, username=username, role=role, password=PASSWORD,
                                  display_name=name, office=office, region=region, now=self.clock()))
        self.call(self._seed())

    async def _build(self, config):
        gateway = build(config, clock=self.clock)
        await gateway.start(port=0)
        return gateway

    def call(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _seed(self) -> None:
        audit, store = self.gateway.audit, self.gateway.store
        commands = []
        for case_id, iin, office in (("ptr-office1", SUBJECT_OFFICE_1, "PO-ALM-1"),
                                     ("ptr-office2", SUBJECT_OFFICE_2, "PO-AST-2")):
            commands.append(SaveCase(kind=pretrial.KIND, id=case_id, state="gathering", expected_version=0,
                                     subject_key=audit.subject_key(iin), data=_pretrial_data(iin, office)))
        for case_id, iin, office, region in (("rc-office1", SUBJECT_OFFICE_1, "PO-ALM-1", "Almaty"),
                                             ("rc-office2", SUBJECT_OFFICE_2, "PO-AST-2", "Astana")):
            commands.append(SaveCase(kind=release.KIND, id=case_id, state="notified", expected_version=0,
                                     subject_key=audit.subject_key(iin), data=_release_data(iin, office, region)))
        await store.apply(commands, now=self.clock())

    def close(self) -> None:
        self.call(self.gateway.stop())
        self.call(self.receiver.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _pretrial_data(iin: str, office: str) -> dict:
    at = "2026-12-01T09:00:00+00:00"
    return {
        "request": {"subject_iin": iin, "erdr_number": "261750031000123", "court": {"code": "CRT-1", "name": "District court No. 2"},
                    "requesting_body": {"code": office, "name": office}, "due_date": "2026-12-20",
                    "risk_needs": None, "officer_conclusion": None, "legal_basis": None},
        "caller": "probation",
        "sections": {"identity": {"status": "OK", "source": "interior", "fetched_at": at, "reason": None},
                     "health_summary": {"status": "UNAVAILABLE", "source": "health", "fetched_at": at,
                                        "reason": "the register did not answer in time"}},
        "versions": [{"version": 1, "message_id": "m-1", "status": "delivered", "queued_at": at, "delivered_at": at,
                      "registration_number": "CRT-2026-0042", "registered_at": at, "sections_ok": ["identity"]}],
    }


def _release_data(iin: str, office: str, region: str) -> dict:
    return {
        "notice": {"iin": iin, "facility": {"code": "UIS-12", "name": "Facility 12"}, "release_type": "parole",
                   "planned_date": "2026-12-10", "actual_date": None, "destination": {"region": region},
                   "probation_office": {"code": office, "name": office}},
        "events": [{"event": "planned", "message_id": "n-1", "at": "2026-11-20T08:00:00+00:00"}],
        "escalations": [], "sent": {},
    }


