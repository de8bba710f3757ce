"""Replay protection: a message is fresh, counts once, and a forgery cannot use up its id.

- **Fresh.** A SOAP ``messageDate`` or a JSON signature's ``iat`` must be within
  ``[server] max_clock_skew_seconds`` of the gateway's clock. A message captured and sent again
  later, or dated ahead so that it stays usable, is refused with ``StaleMessage``.
- **Once.** Message ids are unique per sender for ``[delivery] dedup_days``: the store's accept
  already keys every relayed message by (sender, message id), atomically, so there is no second
  cache to fall out of step with it. The same id with the same content is a resend and gets the
  original answer (``record_replay`` puts the copy in the audit log); the same id with other
  content is refused (422).
- **Verify first, record after.** An id is recorded only by that accept, and every check —
  identity, grant, body, signature, freshness — runs before it. A tampered copy that arrives
  first is refused without recording anything, so it cannot block the genuine message.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import BadRequest
from gateway.security.audit import AuditEvent, AuditLog, EventKind, Outcome
from gateway.store import Message

__all__ = ["Freshness", "StaleMessage", "record_replay"]


class StaleMessage(BadRequest):
    slug, title = "stale-message", "The message is dated outside the accepted window"


@dataclass(frozen=True, slots=True)
class Freshness:
    """The window around the gateway's clock that message dates must fall in."""

    window_seconds: float
    clock: Callable[[], float] = time.time

    def check(self, moment: float | dt.datetime, *, what: str) -> None:
        """Raise ``StaleMessage`` unless ``moment`` (seconds since the epoch, or a date and time;
        one without an offset is read as UTC) is within the window.

        Any moment is compared, however far off: xs:dateTime runs from year 1 to 9999 in any offset
        and a JSON ``iat`` is any integer, so nothing is converted to a timestamp or a date the
        platform may not represent.
        """
        now = self.clock()
        if isinstance(moment, dt.datetime):
            aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
            # Subtracting aware datetimes gives a timedelta, which spans any two of them.
            delta = aware - dt.datetime.fromtimestamp(now, dt.UTC)
            offset = delta.total_seconds()
        else:
            try:
                offset = float(moment) - now
            except OverflowError:  # an integer past what a float holds
                offset = math.copysign(math.inf, moment)
        if abs(offset) <= self.window_seconds:
            return
        direction = "ahead of" if offset > 0 else "behind"
        # How far off, not the date itself: it is what the sender sent, and may be any size.
        distance = f"{abs(offset):.0f} s" if abs(offset) < 10**9 else "more than 30 years"
        raise StaleMessage(
            f"{what} is {distance} {direction} the gateway's clock; it must be within "
            f"{self.window_seconds:g} s. Check the sender's clock (NTP) and send the message with the current time"
        )


async def record_replay(audit: AuditLog, message: Message, *, member_role: str | None, counterpart: str) -> None:
    """Audit that ``message`` arrived again and was answered with its original acceptance."""
    await audit.record([AuditEvent(
        kind=EventKind.INBOUND,
        # The message is still the one accepted the first time; this entry records the copy.
        outcome=Outcome.ACCEPTED,
        member=message.sender,
        member_role=member_role,
        counterpart=counterpart,
        service=f"{message.recipient}/{message.service}",
        purpose=message.purpose,
        message_id=message.id,
        correlation_id=message.correlation_id,
        reason="replay: the message id was already accepted with this content; answered with the original, "
               "nothing stored",
    )])
