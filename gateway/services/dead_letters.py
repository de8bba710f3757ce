"""Operating the dead-letter queue: shared by the JSON API and ``gateway dlq``."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.store import MessageState, Outbox

_PAGE = 1000


async def replay_dead_letters(
    store: Outbox, *, now: float, max_age_seconds: float, message_ids: Sequence[str] = (), recipient: str | None = None
) -> tuple[list[str], list[str]]:
    """Queue the named dead letters (and, with ``recipient``, all of that recipient's) again.

    Returns (replayed ids, ids that were not dead). A replayed message gets a fresh
    attempt budget and age limit; its attempt history is kept.
    """
    ids = list(message_ids)
    if recipient:
        after = 0
        while page := await store.list_messages(state=MessageState.DEAD, recipient=recipient, after_seq=after, limit=_PAGE):
            ids.extend(m.id for m in page)
            after = page[-1].seq
    replayed = await store.replay(ids, now, now + max_age_seconds)
    done = set(replayed)
    return replayed, [i for i in ids if i not in done]
