"""What members learn of and fetch from the outbox: a message's status, pulling, confirming.

Shared by every entry point (today the SOAP AsyncChannel, ``gateway.entrypoints.soap.async_channel``):

- ``status``: what became of messages, asked by the sender's own message id or the gateway's
  id, for the member that sent or receives each. Any other id, another member's included, is
  refused as unknown, the same way: nobody learns that a message exists that is not theirs.
  This is how a sender that lost its answer (past the freshness window, so it cannot resend)
  learns the outcome.
- ``pull``: a member with ``delivery = "pull"`` (no endpoint of its own) takes a page of what
  waits for it, in acceptance order. Every unconfirmed message is handed out again at each pull
  until the member confirms it: at least once, never lost, never to another member. Each
  hand-out is audited (outbound, ``disclosed``) in the transaction that hands it out: the
  content has left the gateway, whether or not the member ever confirms it.
- ``confirm``: the recipient says it has messages: each is delivered, its confirmation kept,
  audited as a delivery is (``delivery_event``, the entry the delivery engine writes for a
  push), once however often it is confirmed.

The payloads pulled are the stored messages, which passed the grants (relayed) or the
disclosure policy (workflow egress) when they were accepted, exactly as pushed ones.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.metrics import Metrics
from gateway.security.audit import AuditLog, Outcome, delivery_event
from gateway.store import Message, MessageState, Outbox

__all__ = ["Mailbox", "Page", "Received", "Tracked", "UnknownCursor", "UnknownMessages"]

MAX_IDS = 100
"""Message ids in one status question or confirmation (the contract's bound too)."""
MAX_PAGE = 100
_OWNER = "pull"
_HANDED_OUT = "handed out by getMessages, not yet confirmed"


class UnknownMessages(NotFound):
    slug, title = "unknown-message", "No such message of yours"

    def __init__(self, detail: str, *, positions: Sequence[int]) -> None:
        super().__init__(detail)
        self.positions = tuple(positions)
        """1-based positions of the unknown ids in the request."""


class UnknownCursor(BadRequest):
    slug, title = "unknown-cursor", "The cursor names no page of yours"


class NotPulling(Forbidden):
    slug, title = "not-a-pull-member", "Messages for this member are delivered to it"


@dataclass(frozen=True, slots=True)
class Received:
    """A message the gateway answered itself (a release notice): when, and with which id."""

    answered_at: dt.datetime
    response_message_id: str


@dataclass(frozen=True, slots=True)
class Tracked:
    """One id asked about, and what it names: a stored message, or one the gateway answered."""

    asked: str
    message: Message | None = None
    received: Received | None = None


@dataclass(frozen=True, slots=True)
class Page:
    messages: tuple[Message, ...]
    next_cursor: str | None
    """The id to ask for the next page with; None when this page was not full."""


ReceivedLookup = Callable[[str, str], Awaitable[Received | None]]
"""(sender, its message id) -> the answer the gateway gave it itself, if any."""


class Mailbox:
    def __init__(
        self,
        config: GatewayConfig,
        store: Outbox,
        audit: AuditLog,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        received: ReceivedLookup | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._audit = audit
        self._metrics = metrics
        self._clock = clock
        self._received = received

    # -- status

    async def status(self, caller: str, message_ids: Sequence[str]) -> list[Tracked]:
        """What became of each message; ``UnknownMessages`` unless every id is the caller's."""
        self._bounded(message_ids)
        found, unknown = [], []
        for position, asked in enumerate(message_ids, start=1):
            tracked = await self._track(caller, asked)
            if tracked is None:
                unknown.append(position)
            else:
                found.append(tracked)
        if unknown:
            raise self._unknown(message_ids, unknown, "sent or receive")
        return found

    async def _track(self, caller: str, asked: str) -> Tracked | None:
        # The sender's own id first: it is what a sender that lost its answer knows.
        message = await self._store.find_message(caller, asked)
        if message is None:
            message = await self._store.get_message(asked)
            if message is not None and caller not in (message.sender, message.recipient):
                message = None
        if message is not None:
            return Tracked(asked, message=message)
        if self._received is not None:
            received = await self._received(caller, asked)
            if received is not None:
                return Tracked(asked, received=received)
        return None

    # -- pulling

    def pulls(self, member: str) -> bool:
        config = self._config.members.get(member)
        return config is not None and config.delivery == "pull"

    async def pull(self, caller: str, page_size: int, cursor: str | None) -> Page:
        """The next ``page_size`` unconfirmed messages for ``caller``, after ``cursor`` (a
        ``next_cursor`` given before) or from the oldest."""
        if not self.pulls(caller):
            raise NotPulling(
                f"messages for member {caller!r} are delivered to its endpoint; getMessages is for members "
                'configured with delivery = "pull"'
            )
        if not 1 <= page_size <= MAX_PAGE:
            raise BadRequest(f"pageSize must be 1 to {MAX_PAGE}")
        after = 0
        if cursor is not None:
            # The cursor is the id of the last message of a page handed out to the caller.
            marker = await self._store.get_message(cursor)
            if marker is None or marker.recipient != caller:
                raise UnknownCursor(
                    "the cursor is not one given to you, or its page is past its retention period: "
                    "ask again without a cursor, from the oldest message not yet confirmed"
                )
            after = marker.seq
        now = self._clock()
        role = self._config.members[caller].role

        def handed_out(message: Message):
            # Each hand-out is a disclosure: audited before the page leaves, with the same entry
            # as a delivery but for its outcome, until the member confirms (``confirm``).
            return self._audit.command([delivery_event(message, Outcome.DISCLOSED, member_role=role, at=now,
                                                       reason=_HANDED_OUT)]).entries

        messages = await self._store.hand_out(
            caller, after_seq=after, limit=page_size, now=now, lease_seconds=self._config.delivery.lease_seconds,
            owner=_OWNER, audit=handed_out,
        )
        full = len(messages) == page_size
        return Page(tuple(messages), messages[-1].id if full else None)

    # -- confirming

    async def confirm(self, caller: str, message_ids: Sequence[str]) -> list[str]:
        """``caller`` has these messages it receives (by the gateway's ids): the ids confirmed now.
        Nothing is recorded unless every id is the caller's."""
        self._bounded(message_ids)
        messages, unknown = [], []
        for position, message_id in enumerate(message_ids, start=1):
            message = await self._store.get_message(message_id)
            if message is None or message.recipient != caller:
                unknown.append(position)
            else:
                messages.append(message)
        if unknown:
            raise self._unknown(message_ids, unknown, "receive")
        now = self._clock()
        role = self._config.members[caller].role
        audit = {
            message.id: self._audit.command([delivery_event(message, Outcome.DELIVERED, member_role=role, at=now,
                                                            reason=None if message.state is not MessageState.DELIVERED
                                                            else "confirmed after delivery")]).entries
            for message in messages
            if message.acknowledged_at is None
        }
        if not audit:
            return []
        confirmed = await self._store.acknowledge(caller, audit, now)
        newly = len({message.id for message in messages
                     if message.id in confirmed and message.state is not MessageState.DELIVERED})
        if newly:
            self._metrics.attempts.labels(caller, "delivered").inc(newly)
        return confirmed

    # --

    @staticmethod
    def _bounded(message_ids: Sequence[str]) -> None:
        if not 1 <= len(message_ids) <= MAX_IDS:
            raise BadRequest(f"name 1 to {MAX_IDS} message ids")

    @staticmethod
    def _unknown(message_ids: Sequence[str], positions: list[int], verb: str) -> UnknownMessages:
        named = ", ".join(repr(message_ids[p - 1][:128]) for p in positions[:10])
        more = f" and {len(positions) - 10} more" if len(positions) > 10 else ""
        return UnknownMessages(
            f"no message you {verb} has the id {named}{more}: nothing was recorded. Ask by your own messageId "
            "or the gateway's id of a message you sent, or by the gateway's id of one you receive",
            positions=positions,
        )
