"""Test support: configuration folders, a recording receiver, log capture.

Everything here is real: configuration goes through the real loader, the
receiver is an aiohttp server on loopback, logs come from the real pipeline.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.config import GatewayConfig, load_config

IIN_SHAPED = re.compile(r"(?<!\d)\d{12}(?!\d)")

# Synthetic people used in payloads: their IINs and names must never reach a log line.
PERSON_IIN = "900215400281"  # a valid IIN of nobody: 1990-02-15, female
PERSON_NAMES = ("Жұмабекова", "Әлия", "Серікқызы")


def person_payload(number: int = 0, text: str = "Шымкент") -> dict[str, Any]:
    """A canonical ProbationNotice, the document the test services take (``number`` tells them
    apart): what the disclosure policy lets the relay pass on."""
    return {
        "event": "PLANNED",
        "person": {
            "iin": PERSON_IIN,
            "surname": PERSON_NAMES[0],
            "given_name": PERSON_NAMES[1],
            "patronymic": PERSON_NAMES[2],
            "birth_date": "1990-02-15",
            "sex": "FEMALE",
            "citizenship": "KAZ",
        },
        "release_type": "PAROLE",
        "release_date": "2027-01-15",
        "facility": {"code": "UG-165/9", "name": "Учреждение УГ-165/9"},
        "destination": {"raw": text},
        "probation_office": {"code": f"PROB-{number}", "name": "Пробация қызметі"},
    }


def payload_number(payload: dict[str, Any]) -> int:
    """The ``number`` a ``person_payload`` was made with."""
    return int(payload["probation_office"]["code"].removeprefix("PROB-"))


def release_payload(text: str = "Шымкент") -> dict[str, Any]:
    """A canonical ReleaseNotice as the shipped policy lets it reach health/release-notices
    (config/policy.toml: no documents, education, specialty or probation office)."""
    return {
        "iin": PERSON_IIN,
        "facility": {"code": "UG-165/9", "name": "Учреждение УГ-165/9"},
        "release_type": "PAROLE",
        "planned_date": "2027-01-15",
        "actual_date": None,
        "destination": {"raw": text},
        "housing": {"available": True, "kind": "RENTED"},
    }


# The rule that lets the test services receive it: all of a ProbationNotice, for both purposes.
TEST_POLICY = """
[policy.health.continuity_of_care.ProbationNotice]
allow = ["event", "person.**", "release_type", "release_date", "facility.**", "destination.**", "probation_office.**"]

[policy.health.relay_test.ProbationNotice]
allow = ["event", "person.**", "release_type", "release_date", "facility.**", "destination.**", "probation_office.**"]
"""


DELIVERY_FAST = {
    "concurrency": 8,
    "max_attempts": 8,
    "backoff_base_seconds": 0.02,
    "backoff_cap_seconds": 0.2,
    "request_timeout_seconds": 2,
    "lease_seconds": 5,
    "breaker_failure_threshold": 3,
    "breaker_reset_seconds": 0.3,
    "poll_interval_seconds": 0.2,
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def write_config(
    directory: Path,
    *,
    receiver_url: str,
    store_url: str = "sqlite:///gateway.db",
    delivery: dict[str, Any] | None = None,
    extra_members: str = "",
    extra_policy: str = "",
) -> Path:
    """A configuration folder: senders ``penal`` and ``interior``, receiver ``health``
    (services ``notices``, ordered, and ``bulk``, unordered), operator ``ops``."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = {**DELIVERY_FAST, **(delivery or {})}
    lines = ["[server]", "port = 0", "[store]", f"url = {_toml_value(store_url)}", "[delivery]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    lines += ["[logging]", 'level = "info"']
    (directory / "gateway.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    grants = [
        {"service": "health/notices", "purposes": ["continuity_of_care"]},
        {"service": "health/bulk", "purposes": ["continuity_of_care", "relay_test"]},
    ]
    (directory / "members.toml").write_text(
        f"""
[members.health]
name = "Health"
role = "health"
endpoint = {_toml_value(receiver_url)}
services.notices = {{ path = "/notices", ordered = true, document = "ProbationNotice" }}
services.bulk = {{ path = "/bulk", document = "ProbationNotice" }}

[members.penal]
name = "Penal system"
role = "penal"
may_call = {_toml_value(grants)}

[members.interior]
name = "Interior"
role = "interior"
may_call = {_toml_value(grants[:1])}

[members.social]
name = "Social (no grants)"
role = "social"

[members.ops]
name = "Operations"
role = "operations"
roles = ["operator"]
{extra_members}
""",
        encoding="utf-8",
    )
    (directory / "policy.toml").write_text(TEST_POLICY + extra_policy, encoding="utf-8")
    return directory


def make_config(directory: Path, **kwargs: Any) -> GatewayConfig:
    return load_config(write_config(directory, **kwargs), environ={})


@dataclass
class Received:
    message_id: str
    path: str
    headers: Any  # case-insensitive, as HTTP headers are
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RecordingReceiver:
    """An agency system on loopback that records what it gets and answers as told.

    ``respond`` decides each answer: a function of the request's JSON body and
    the number of times this message id was seen, returning (status, headers).
    """

    respond: Callable[[Any, int], tuple[int, dict[str, str]]] = lambda body, seen: (200, {})
    delay: float = 0.0  # seconds before answering
    received: list[Received] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    attempts_at: list[float] = field(default_factory=list)
    concurrent: int = 0
    max_concurrent: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> RecordingReceiver:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self.listen()
        return self

    async def listen(self) -> None:
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        self.port = self._runner.addresses[0][1]

    async def stop_listening(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        message_id = request.headers.get("X-Message-Id", "")
        self.seen[message_id] = self.seen.get(message_id, 0) + 1
        self.attempts_at.append(time.time())
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.concurrent -= 1
        status, headers = self.respond(json.loads(body), self.seen[message_id])
        if 200 <= status < 300:
            self.received.append(Received(message_id, request.path, request.headers.copy(), body, time.time()))
        return web.json_response({"status": status}, status=status, headers=headers)

    def unique_ids(self) -> set[str]:
        return {r.message_id for r in self.received}


async def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> None:
    """Poll ``predicate`` (sync or async) until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GatewayProcess:
    """``gateway serve`` as a child process that a test can kill with SIGKILL and restart."""

    def __init__(self, config_dir: Path, port: int, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.config_dir, self.port, self.log_path = config_dir, port, log_path
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(self.config_dir), "--port", str(self.port)],
            stdout=log, stderr=log, env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
        )
        self.starts += 1

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gateway exited: see {self.log_path}"
            try:
                async with session.get(self.url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("gateway did not become ready")


def leaks(lines: list[str]) -> list[str]:
    """Log lines carrying an IIN-shaped number or a known synthetic name."""
    return [line for line in lines if IIN_SHAPED.search(line) or any(name in line for name in PERSON_NAMES)]


async def assert_first_receipts_follow_acceptance_order(store_url: str, receiver: RecordingReceiver, keys: int,
                                                        base_dir: Path | None = None) -> None:
    """An ordered service got each key's messages in the order the gateway accepted them
    (first receipt of each message: redelivered copies may come later)."""
    from gateway.store import create_store

    store = create_store(store_url, base_dir=base_dir)
    await store.open()
    try:
        stored, after = [], 0
        while page := await store.list_messages(after_seq=after, limit=5000):
            stored += page
            after = page[-1].seq
    finally:
        await store.close()
    key_and_seq = {m.id: (m.ordering_key, m.seq) for m in stored}
    first: dict[str, list[int]] = {}
    seen: set[str] = set()
    for delivery in receiver.received:
        if delivery.message_id not in seen:
            seen.add(delivery.message_id)
            key, seq = key_and_seq[delivery.message_id]
            first.setdefault(key, []).append(seq)
    assert len(first) == keys
    for key, seqs in first.items():
        assert seqs == sorted(seqs), f"{key} was delivered out of order"


@dataclass
class Senders:
    """Clients that relay ``count`` messages through one or more gateway URLs and, like real
    clients, resend the same X-Message-Id (to the next URL) until they get a 202."""

    urls: list[str]
    count: int
    keys: int
    prefix: str = "msg"
    accepted: dict[str, str] = field(default_factory=dict)  # client id -> gateway message id
    resends: int = 0

    async def run(self, session: aiohttp.ClientSession, concurrency: int) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for number in range(self.count):
            queue.put_nowait(number)
        await asyncio.gather(*(self._sender(session, queue) for _ in range(concurrency)))

    async def _sender(self, session: aiohttp.ClientSession, queue: asyncio.Queue[int]) -> None:
        while not queue.empty():
            number = queue.get_nowait()
            client_id = f"{self.prefix}-{number}"
            body = json.dumps(person_payload(number))
            headers = {"Content-Type": "application/json", "X-Member-Id": "penal", "X-Purpose": "continuity_of_care",
                       "X-Message-Id": client_id, "X-Ordering-Key": f"case-{number % self.keys}"}
            for attempt in range(2000):  # bounded: ~100 s of resends at most
                url = self.urls[(number + attempt) % len(self.urls)]
                try:
                    async with session.post(url + "/api/v1/relay/health/notices", data=body,
                                            headers=headers) as response:
                        if response.status == 202:
                            self.accepted[client_id] = (await response.json())["message_id"]
                            break
                        assert response.status >= 500, await response.text()
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                self.resends += 1
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"{client_id} was never accepted")
