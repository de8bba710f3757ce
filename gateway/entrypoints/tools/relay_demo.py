"""``gateway demo``: the relay, end to end, on loopback with the embedded store.

Three agency systems send release notices through the gateway at once; some
resend (as real clients do after a timeout). The receiving system is down part
of the time — first answering 503, then not listening at all, each outage begun
and ended by the traffic itself, never by the clock — and at first rejects
notices that already carry an actual release date (its old version does not
know the field), which sends those messages to the dead-letter queue. After it
is upgraded, an operator replays them. The demo
checks that every accepted message reached the receiver and reports what the
gateway did on the way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.entrypoints.http.server import build
from gateway.config import load_config
from gateway.domain import Sex, make_iin
from gateway.services.dead_letters import replay_dead_letters
from gateway.store import MessageState

SENDERS = ("penal", "interior", "social")
RECIPIENT, SERVICE = "health", "release-notices"
_DEADLINE_SECONDS = 180.0


@dataclass
class DemoReport:
    ok: bool = False
    store: str = ""
    messages: int = 0
    resent_duplicates: int = 0
    accepted: int = 0
    duplicates_answered: int = 0
    refused: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    replayed: int = 0
    delivered: int = 0
    received_unique: int = 0
    received_duplicates: int = 0
    outage_503_answers: int = 0
    outage_refused_attempts: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        verdict = "ok" if self.ok else "FAILED: " + "; ".join(self.problems)
        return "\n".join(
            [
                f"reentry-gateway relay demo ({self.store} store, loopback)",
                f"  release notices sent by {len(SENDERS)} agency systems   {self.messages:>6}",
                f"  resent by the senders (same X-Message-Id)      {self.resent_duplicates:>6}",
                f"  accepted with 202 after a durable commit       {self.accepted:>6}",
                f"  resends answered from the store, not stored     {self.duplicates_answered:>6}",
                f"  receiver down: {self.outage_503_answers} answers 503, then not listening for "
                f"{self.outage_refused_attempts} attempts",
                f"  delivery attempts: delivered {self.attempts.get('delivered', 0)}, "
                f"retried {self.attempts.get('retry', 0)}, dead-lettered {self.attempts.get('dead', 0)}",
                f"  dead letters replayed after the receiver's upgrade {self.replayed:>3}",
                f"  delivered                                      {self.delivered:>6}",
                f"  received by the health system (unique ids)      {self.received_unique:>6}"
                f"  (+{self.received_duplicates} redeliveries dropped by X-Message-Id)",
                f"  time                                           {self.seconds:>6.1f} s",
                f"  {verdict}",
            ]
        )


class FlakyReceiver:
    """The receiving agency system: counts X-Message-Ids; answers 503 to its first
    ``unavailable_for`` requests, then stops listening once it holds ``close_after`` messages."""

    def __init__(self, *, unavailable_for: int = 0, close_after: int | None = None) -> None:
        self.received: Counter[str] = Counter()
        self.unavailable_for = unavailable_for
        self.answered_503 = 0
        self.close_after = close_after
        self.closed = asyncio.Event()
        self.rejects_v1 = True
        app = web.Application()
        app.router.add_post("/release-notices", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._site: web.TCPSite | None = None
        self.port = 0

    async def start(self) -> None:
        await self._runner.setup()
        await self.listen()

    async def listen(self) -> None:
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        self.port = self._runner.addresses[0][1]

    async def stop_listening(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def close(self) -> None:
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if self._site is None:
            # Not listening: new connections are refused, and kept-alive ones are cut.
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=503)
        if self.answered_503 < self.unavailable_for:
            self.answered_503 += 1
            return web.Response(status=503, headers={"Retry-After": "0"})
        notice = await request.json()
        if self.rejects_v1 and notice.get("actual_date") is not None:
            return web.json_response({"error": "actual_date is not a field of this version"}, status=422)
        self.received[request.headers["X-Message-Id"]] += 1
        if self.close_after is not None and len(self.received) >= self.close_after and not self.closed.is_set():
            self.closed.set()
            asyncio.get_running_loop().create_task(self.stop_listening())
        return web.json_response({"received": True})


def _config_dir(root: Path, receiver_port: int, store_url: str | None) -> Path:
    config = root / "config"
    config.mkdir()
    store = store_url or "sqlite:///gateway.db"
    (config / "gateway.toml").write_text(
        f"""
[server]
port = 0
[store]
url = "{store}"
[delivery]
concurrency = 16
claim_batch = 64
max_attempts = 50
backoff_base_seconds = 0.05
backoff_cap_seconds = 0.8
request_timeout_seconds = 2
lease_seconds = 10
breaker_failure_threshold = 5
breaker_reset_seconds = 0.5
poll_interval_seconds = 0.25
[logging]
level = "error"
""",
        encoding="utf-8",
    )
    grants = f'may_call = [{{ service = "{RECIPIENT}/{SERVICE}", purposes = ["continuity_of_care"] }}]'
    members = [
        f'[members.{RECIPIENT}]\nname = "Health"\nrole = "health"\nendpoint = "http://127.0.0.1:{receiver_port}"\n'
        f'services.{SERVICE} = {{ path = "/release-notices", ordered = true, document = "ReleaseNotice" }}\n',
        '[members.operations]\nname = "Operations"\nrole = "operations"\nroles = ["operator"]\n',
    ]
    members += [f'[members.{sender}]\nname = "{sender}"\nrole = "{sender}"\n{grants}\n' for sender in SENDERS]
    (config / "members.toml").write_text("\n".join(members), encoding="utf-8")
    (config / "policy.toml").write_text(
        "[policy.health.continuity_of_care.ReleaseNotice]\n"
        'allow = ["iin", "facility.**", "release_type", "planned_date", "actual_date", "destination.**", "housing.**"]\n',
        encoding="utf-8",
    )
    return config


def _notice(rng: random.Random, number: int) -> dict[str, Any]:
    """A synthetic canonical release notice, as the disclosure policy lets it reach health.
    Demo data only: no real person."""
    iin = None
    while iin is None:
        iin = make_iin(dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 15_000)), rng.choice(list(Sex)),
                       rng.randint(1, 9_999))
    day = f"2026-12-{rng.randint(1, 28):02d}"
    return {
        "iin": str(iin),
        "facility": {"code": f"UG-{rng.randint(1, 80):03d}", "name": "Учреждение"},
        "release_type": rng.choice(["END_OF_TERM", "PAROLE", "AMNESTY"]),
        "planned_date": day,
        "actual_date": day if number % 97 == 0 else None,
        "destination": {"raw": f"Шымкент, {number}"},
        "housing": {"available": True},
    }


async def _send_all(url: str, count: int, rng: random.Random, report: DemoReport) -> None:
    async with aiohttp.ClientSession() as session:
        semaphore = asyncio.Semaphore(48)

        async def send(number: int, sender: str) -> None:
            body = json.dumps(_notice(random.Random(number), number)).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Member-Id": sender,
                "X-Purpose": "continuity_of_care",
                "X-Message-Id": f"{sender}-{number}",
                # Pseudonymous case key: notices about one case stay in order.
                "X-Ordering-Key": f"case-{number % 400}",
            }
            resends = 2 if rng.random() < 0.05 else 1
            report.resent_duplicates += resends - 1
            for _ in range(resends):
                async with semaphore, session.post(
                    f"{url}/api/v1/relay/{RECIPIENT}/{SERVICE}", data=body, headers=headers
                ) as response:
                    answer = await response.json()
                    if response.status != 202:
                        report.refused += 1
                        report.problems.append(f"message {number} refused: {answer.get('detail')}")
                    elif answer["duplicate"]:
                        report.duplicates_answered += 1
                    else:
                        report.accepted += 1

        await asyncio.gather(*(send(n, SENDERS[n % len(SENDERS)]) for n in range(count)))


_REFUSED_ATTEMPTS = 20  # retries the gateway makes against the closed port before it reopens


async def _outages(gateway, receiver: FlakyReceiver, report: DemoReport) -> None:
    """Two outages while the senders push: 503s from the start (the receiver's first answers),
    then a closed port (once it holds a share of the messages) until the gateway has retried
    against it ``_REFUSED_ATTEMPTS`` times. Events, not seconds: a slow machine sees the same."""
    deadline = time.monotonic() + _DEADLINE_SECONDS
    await asyncio.wait_for(receiver.closed.wait(), timeout=_DEADLINE_SECONDS)
    report.outage_503_answers = receiver.answered_503
    retries_before = _attempt_counts(gateway).get("retry", 0)
    while _attempt_counts(gateway).get("retry", 0) - retries_before < _REFUSED_ATTEMPTS:
        if time.monotonic() > deadline:
            report.problems.append("the gateway never retried against the closed port")
            break
        await asyncio.sleep(0.05)
    report.outage_refused_attempts = _attempt_counts(gateway).get("retry", 0) - retries_before
    await receiver.listen()


async def _settled(gateway, expected: int) -> bool:
    """Wait until nothing is waiting or in flight (bounded)."""
    deadline = time.monotonic() + _DEADLINE_SECONDS
    while time.monotonic() < deadline:
        counts = await gateway.store.counts()
        pending = sum(n for (_, state), n in counts.items() if state is not MessageState.DEAD)
        if pending == 0:
            return True
        await asyncio.sleep(0.1)
    return False


async def run_demo(messages: int = 3000, store_url: str | None = None, seed: int = 20261126) -> DemoReport:
    report = DemoReport(messages=messages)
    rng = random.Random(seed)
    started = time.monotonic()
    receiver = FlakyReceiver(unavailable_for=max(10, messages // 20), close_after=max(10, messages // 4))
    await receiver.start()
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as root:
        config = load_config(_config_dir(Path(root), receiver.port, store_url), environ={})
        report.store = config.store.url.split(":", 1)[0]
        gateway = build(config)
        await gateway.start(port=0)
        try:
            await asyncio.gather(_send_all(gateway.url, messages, rng, report), _outages(gateway, receiver, report))
            if not await _settled(gateway, report.accepted):
                report.problems.append("messages still pending at the deadline")
            dead = await gateway.store.counts()
            report.dead_lettered = sum(n for (_, state), n in dead.items() if state is MessageState.DEAD)
            # The receiver is upgraded; the operator replays what it had rejected.
            receiver.rejects_v1 = False
            replayed, _ = await replay_dead_letters(
                gateway.store, now=time.time(), max_age_seconds=config.delivery.max_age_seconds, recipient=RECIPIENT
            )
            report.replayed = len(replayed)
            if not await _settled(gateway, report.accepted):
                report.problems.append("replayed messages still pending at the deadline")
            report.attempts = _attempt_counts(gateway)
            delivered = await _count_delivered(gateway)
            report.delivered = delivered
        finally:
            await gateway.stop()
            await receiver.close()
    report.received_unique = len(receiver.received)
    report.received_duplicates = sum(receiver.received.values()) - len(receiver.received)
    report.seconds = time.monotonic() - started
    if report.accepted != messages:
        report.problems.append(f"{messages - report.accepted} messages were not accepted")
    if report.delivered != report.accepted:
        report.problems.append(f"delivered {report.delivered} of {report.accepted} accepted")
    if report.received_unique != report.accepted:
        report.problems.append(f"the receiver got {report.received_unique} of {report.accepted} accepted messages")
    if report.dead_lettered == 0 or report.replayed != report.dead_lettered:
        report.problems.append("the dead-letter path was not exercised as planned")
    report.ok = not report.problems
    return report


def _attempt_counts(gateway) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for metric in gateway.metrics.attempts.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                totals[sample.labels["outcome"]] += int(sample.value)
    return dict(totals)


async def _count_delivered(gateway) -> int:
    delivered, after = 0, 0
    while page := await gateway.store.list_messages(state=MessageState.DELIVERED, after_seq=after, limit=5000):
        delivered += len(page)
        after = page[-1].seq
    return delivered


def main(as_json: bool, messages: int, store_url: str | None) -> int:
    report = asyncio.run(run_demo(messages=messages, store_url=store_url))
    print(json.dumps(asdict(report), indent=2) if as_json else report.text())
    return 0 if report.ok else 1
