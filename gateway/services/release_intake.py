"""Release intake: the penal system's release notices handed to the release-case workflow once.

The entry point decodes the notice; this use case checks the sender may send release notices,
hands the notice to a ``ReleaseNoticeReceiver`` (the release-case workflow) and records the
answer under (sender, message id), so a resent notice gets the original answer and reaches the
receiver once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from gateway.domain import ReleaseEvent, ReleaseNotice
from gateway.errors import Forbidden, IdempotencyKeyReused
from gateway.store import Inbox, RecordInbound

__all__ = ["RELEASE_NOTICE_SENDERS", "ReleaseIntake", "ReleaseNoticeReceiver", "ReleaseReceipt"]

RELEASE_NOTICE_SENDERS = ("penal",)
"""Members that may push release notices: the penal system, by its member id in config/members.toml."""

# Answers are recorded under (sender, this prefix + messageId), apart from relay message ids,
# for notices over SOAP and JSON alike; with each, a digest of the notice it answered.
_ANSWER_KEY = "soap:release-notices:"


class ReleaseNoticeReceiver(Protocol):
    """What the gateway does with a release notice; the release-case workflow implements it."""

    async def receive_release_notice(
        self,
        event: ReleaseEvent,
        notice: ReleaseNotice,
        *,
        sender: str,
        message_id: str,
        correlation_id: str | None,
    ) -> str:
        """Open or update the release case and return its id, once that is durably stored.

        Must be idempotent by (sender, message_id): the intake answers a resent notice from
        its record, but a sender that resends before the first answer was recorded (two
        copies at once, or a crash between the two) reaches the receiver twice.
        """


@dataclass(frozen=True, slots=True)
class ReleaseReceipt:
    """The answer to a release notice: the same for every copy of it."""

    response_message_id: str
    response_date: dt.datetime
    case_id: str


class ReleaseIntake:
    """Takes release notices from the allowed senders, each once."""

    def __init__(
        self,
        receiver: ReleaseNoticeReceiver,
        inbox: Inbox,
        *,
        senders: Collection[str] = RELEASE_NOTICE_SENDERS,
        clock: Callable[[], float],
    ) -> None:
        self._receiver = receiver
        self._inbox = inbox
        self.senders = frozenset(senders)
        self._clock = clock
        # Per (sender, messageId): the lock and how many calls hold or await it.
        self._in_progress: dict[str, tuple[asyncio.Lock, int]] = {}

    def authorise(self, sender: str) -> None:
        if sender not in self.senders:
            raise Forbidden(f"member {sender!r} may not send release notices; only {', '.join(sorted(self.senders))} may")

    async def receive(
        self,
        event: ReleaseEvent,
        notice: ReleaseNotice,
        *,
        sender: str,
        message_id: str,
        correlation_id: str | None,
        received_at: dt.datetime,
    ) -> ReleaseReceipt:
        self.authorise(sender)
        key = f"{sender}:{message_id}"  # this process's lock, not a store key
        # Copies arriving together wait for the first, so this process hands a notice over once.
        lock, users = self._in_progress.get(key, (asyncio.Lock(), 0))
        self._in_progress[key] = (lock, users + 1)
        try:
            digest = _digest(event, notice)
            async with lock:
                answered = await self._answered(sender, message_id, digest)
                if answered is not None:
                    return answered
                case_id = await self._receiver.receive_release_notice(
                    event, notice, sender=sender, message_id=message_id, correlation_id=correlation_id
                )
                return await self._record(sender, message_id, case_id, received_at, digest)
        finally:
            lock, users = self._in_progress[key]
            if users == 1:
                del self._in_progress[key]
            else:
                self._in_progress[key] = (lock, users - 1)

    async def receipt(self, sender: str, message_id: str) -> ReleaseReceipt | None:
        """The answer given to ``sender``'s notice ``message_id``, for a sender that lost it."""
        answer = await self._inbox.find_inbound(sender, _ANSWER_KEY + message_id)
        return None if answer is None else _receipt(json.loads(answer))

    async def _answered(self, sender: str, message_id: str, digest: str) -> ReleaseReceipt | None:
        """The answer already given to this message id, if it was for this same notice."""
        answer = await self._inbox.find_inbound(sender, _ANSWER_KEY + message_id)
        if answer is None:
            return None
        data = json.loads(answer)
        # Answers recorded before digests were kept have none: they stand as they are.
        if data.get("digest", digest) != digest:
            # A PLANNED notice and then a CANCELLED one under one id: acknowledging the second with
            # the first's receipt would drop it silently (the relay refuses the same way).
            raise IdempotencyKeyReused(
                f"message id {message_id!r} was already used for a release notice with other content; "
                "send each notice (a cancellation, a changed date) with a message id of its own"
            )
        return _receipt(data)

    async def _record(self, sender: str, message_id: str, case_id: str, received_at: dt.datetime,
                      digest: str) -> ReleaseReceipt:
        data = {"response_message_id": str(uuid.uuid4()), "response_date": received_at.isoformat(), "case_id": case_id,
                "digest": digest}
        record = RecordInbound(sender, _ANSWER_KEY + message_id, json.dumps(data).encode())
        (recorded,) = await self._inbox.apply([record], self._clock())
        if not recorded:
            # Another instance recorded its answer first; that one is the original.
            answered = await self._answered(sender, message_id, digest)
            if answered is not None:
                return answered
        return _receipt(data)


def _digest(event: ReleaseEvent, notice: ReleaseNotice) -> str:
    """SHA-256 of the notice's canonical content (the model's JSON, keys sorted)."""
    canonical = json.dumps({"event": event.value, "notice": notice.model_dump(mode="json")}, sort_keys=True,
                           ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _receipt(data: dict) -> ReleaseReceipt:
    return ReleaseReceipt(data["response_message_id"], dt.datetime.fromisoformat(data["response_date"]), data["case_id"])
