"""A gateway with the console, run on its own event loop in a thread so that the browser tests
(Playwright's sync API, Debian's chromium) can drive it; accounts for every role and seeded cases.

Its clock stands still unless a test moves it, and its audit keys are fixed, so what a page
shows depends only on what the test did: the screenshots are the same from run to run.
``ConsoleSystem`` is the same with the shipped configuration, the workflows and every agency
simulator (``running_system``), for what needs them (a pre-trial report requested in the form).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import io
import itertools
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.entrypoints.http.console.accounts import hasher
from gateway.entrypoints.http.server import build
from gateway.entrypoints.tools.simulate import running_system
from gateway.store import ConsoleAccount, SaveCase
from gateway.workflows import pretrial, release
from gateway.config import load_config
from support import RecordingReceiver, write_config
from workflow_steps import FAST, POPULATION

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
# Where the gateway's clock stands at start: the screens show this time.
START = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC).timestamp()
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


class StillClock:
    """The gateway's injected clock: it stands at ``start`` and moves only when a test moves it."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@functools.cache
def _password_hash() -> str:
    return hasher.hash(PASSWORD)


def _fixed_keys(config_dir: Path) -> None:
    """The audit keys the gateway would generate, fixed: the same fingerprints and tree-head
    signatures (Ed25519 is deterministic) on every run."""
    keys = config_dir / "var" / "keys"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    signing = Ed25519PrivateKey.from_private_bytes(bytes(range(32))).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for name, content in (("audit-tree-head.pem", signing), ("audit-subject.key", (b"5a" * 32) + b"\n")):
        path = keys / name
        path.write_bytes(content)
        os.chmod(path, 0o600)


class _Threaded:
    """An event loop in a thread, and the gateway on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-gateway", daemon=True)
        self.thread.start()
        self.exits = contextlib.AsyncExitStack()
        self.audit_mark = 0
        self._message_numbers = itertools.count(1)

    def next_message_id(self) -> str:
        return f"msg-{next(self._message_numbers):04d}"

    def call(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _accounts(self) -> None:
        # One argon2id hash of the password for every account and gateway: hashing is slow by design.
        for username, role, name, office, region in ACCOUNTS:
            self.call(self.gateway.store.add_console_account(ConsoleAccount(
                username=username, role=role, password_hash=_password_hash(), display_name=name, office=office,
                region=region, created_at=self.clock())))

    def close(self) -> None:
        self.call(self.exits.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class ConsoleGateway(_Threaded):
    """The test configuration (receiver ``health``) on ``store_url``, with two offices' cases."""

    def __init__(self, tmp_path: Path, store_url: str | None = None) -> None:
        super().__init__()
        self.clock = StillClock()
        self.receiver = RecordingReceiver()
        self.call(self.receiver.start())
        self.exits.push_async_callback(self.receiver.close)
        config_dir = tmp_path / "gw"
        _fixed_keys(config_dir)
        # Tree heads are signed when a test asks: a background round would change the screens.
        write_config(config_dir, receiver_url=self.receiver.url,
                     store_url=store_url or f"sqlite:///{tmp_path / 'console.db'}")
        # Sign-in blocked after three failures of an account instead of five (console.throttle_per_account):
        # every attempt costs an argon2id verification.
        config = load_config(config_dir, environ={"GATEWAY__AUDIT__TREE_HEAD_INTERVAL_SECONDS": "86400",
                                                  "GATEWAY__CONSOLE__THROTTLE_PER_ACCOUNT": "3"})
        self.gateway = self.call(self._build(config))
        self.url = self.gateway.url
        self._accounts()
        self.call(self._seed())

    async def _build(self, config):
        gateway = build(config, clock=self.clock)
        await gateway.start(port=0)
        self.exits.push_async_callback(gateway.stop)
        return gateway

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


class ConsoleSystem(_Threaded):
    """The shipped configuration with the workflows and every agency simulator, on ``store_url``;
    the gateway's clock starts at the wall clock's time (the simulators sign with theirs) and stands."""

    def __init__(self, tmp_path: Path, store_url: str | None = None) -> None:
        super().__init__()
        self.clock = StillClock(float(int(dt.datetime.now(dt.UTC).timestamp())))
        self.system = self.call(self.exits.enter_async_context(running_system(
            tmp_path / "system", population=POPULATION, settings=FAST, clock=self.clock,
            store_url=store_url or "sqlite:///gateway.db")))
        self.gateway = self.system.gateway
        self.url = self.gateway.url
        self._accounts()


def tab_to(page: "Page", selector: str, *, backwards: bool = False, limit: int = 80) -> None:
    """Press Tab (or Shift+Tab) until ``selector`` has the focus, as a keyboard user would."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with {key}")


def save_screenshot(png: bytes, name: str) -> None:
    """Write ``docs/console/<name>.png`` only when the screen changed: the same pixels in a new
    encoding leave the file alone, so a test run does not dirty the checkout. A checkout that
    cannot be written (read-only CI) keeps its screenshots and gets a warning, not a failure."""
    from PIL import Image

    path = SCREENSHOTS / f"{name}.png"
    if path.is_file():
        with Image.open(path) as old, Image.open(io.BytesIO(png)) as new:
            if old.size == new.size and old.convert("RGBA").tobytes() == new.convert("RGBA").tobytes():
                return
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".png.tmp")
        temporary.write_bytes(png)
        temporary.replace(path)
    except OSError as exc:
        warnings.warn(f"screenshot {path} not updated: {exc}", stacklevel=2)


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
