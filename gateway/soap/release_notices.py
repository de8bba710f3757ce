"""The ``release-notices`` channel: the penal system pushes release notices to the gateway.

The notice is decoded with the penal codec and handed to a ``ReleaseNoticeReceiver`` — the
release-case workflow, wired at start-up — which answers with the id of the release case. The
answer is recorded under (sender, messageId), so a resent notice gets the original answer and
reaches the receiver once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable, Collection
from typing import Protocol

from adapters.penal import codec
from gateway.domain import ReleaseEvent, ReleaseNotice
from gateway.errors import Forbidden
from gateway.soap.contracts import contract
from gateway.soap.envelope import BusResponse, MessageType
from gateway.soap.faults import SoapFault
from gateway.soap.server import SoapCall, SoapService
from gateway.store import RecordInbound, Store

__all__ = ["RELEASE_NOTICE_SENDERS", "ReleaseNoticeReceiver", "release_notice_service"]

SERVICE_ID = "release-notices"
RELEASE_NOTICE_SENDERS = ("penal",)
"""Members that may push release notices: the penal system, by its member id in config/members.toml."""

# Answers are recorded under (sender, this prefix + messageId), apart from relay message ids.
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

        Must be idempotent by (sender, message_id): the channel answers a resent notice from
        its record, but a sender that resends before the first answer was recorded (two
        copies at once, or a crash between the two) reaches the receiver twice.
        """


def release_notice_service(
    receiver: ReleaseNoticeReceiver,
    store: Store,
    *,
    caller: Callable[[SoapCall], str],
    senders: Collection[str] = RELEASE_NOTICE_SENDERS,
    clock: Callable[[], float],
) -> SoapService:
    """The service; ``caller`` names the authenticated member of a call."""
    return SoapService(
        contract("release-notices.wsdl"), {"SendMessage": _Channel(receiver, store, caller, frozenset(senders), clock)}
    )


class _Channel:
    def __init__(
        self,
        receiver: ReleaseNoticeReceiver,
        store: Store,
        caller: Callable[[SoapCall], str],
        senders: frozenset[str],
        clock: Callable[[], float],
    ) -> None:
        self._receiver = receiver
        self._store = store
        self._caller = caller
        self._senders = senders
        self._clock = clock
        # Per (sender, messageId): the lock and how many calls hold or await it.
        self._in_progress: dict[str, tuple[asyncio.Lock, int]] = {}

    async def __call__(self, call: SoapCall) -> BusResponse:
        sender = self._caller(call)
        if sender not in self._senders:
            raise Forbidden(f"member {sender!r} may not send release notices; only {', '.join(sorted(self._senders))} may")
        call.expect_service(SERVICE_ID)
        message = call.message
        if message.message_type not in (MessageType.NOTIFICATION, MessageType.UPDATE):
            raise SoapFault.client(
                "unexpected-message-type",
                f"a release notice is sent as NOTIFICATION (planned or actual) or UPDATE (changed or cancelled), "
                f"not {message.message_type}",
            )
        event, notice = call.decode(codec.decode_release_notice, codec.RELEASE_NOTICE)
        key = f"{sender}:{message.message_id}"  # this process's lock, not a store key
        # Copies arriving together wait for the first, so this process hands a notice over once.
        lock, users = self._in_progress.get(key, (asyncio.Lock(), 0))
        self._in_progress[key] = (lock, users + 1)
        try:
            async with lock:
                answered = await self._answered(sender, message.message_id)
                if answered is not None:
                    return answered
                case_id = await self._receiver.receive_release_notice(
                    event, notice, sender=sender, message_id=message.message_id, correlation_id=message.correlation_id
                )
                return await self._record(sender, call, case_id)
        finally:
            lock, users = self._in_progress[key]
            if users == 1:
                del self._in_progress[key]
            else:
                self._in_progress[key] = (lock, users - 1)

    async def _answered(self, sender: str, message_id: str) -> BusResponse | None:
        answer = await self._store.find_inbound(sender, _ANSWER_KEY + message_id)
        return None if answer is None else _response(message_id, json.loads(answer))

    async def _record(self, sender: str, call: SoapCall, case_id: str) -> BusResponse:
        data = {
            "response_message_id": str(uuid.uuid4()),
            "response_date": call.received_at.isoformat(),
            "case_id": case_id,
        }
        message_id = call.message.message_id
        record = RecordInbound(sender, _ANSWER_KEY + message_id, json.dumps(data).encode())
        (recorded,) = await self._store.apply([record], self._clock())
        if not recorded:
            # Another instance recorded its answer first; that one is the original.
            answered = await self._answered(sender, message_id)
            if answered is not None:
                return answered
        return _response(message_id, data)


def _response(message_id: str, data) -> BusResponse:
    return BusResponse(
        message_id=data["response_message_id"],
        correlation_id=message_id,
        response_date=dt.datetime.fromisoformat(data["response_date"]),
        status_code="ACCEPTED",
        status_message="the release notice is received",
        data=codec.encode_release_notice_receipt(data["case_id"]),
    )
