"""The store's console block (its migration, the last in MIGRATIONS): accounts, sessions and the message search, on each backend."""

from __future__ import annotations

import pytest

from gateway.store import (
    AcceptMessage,
    ConflictError,
    ConsoleAccount,
    ConsoleSession,
    MessageQuery,
    MessageState,
    NewMessage,
)

T0 = 1_000.0


def _account(username: str = "aliya", **changes) -> ConsoleAccount:
    values = dict(username=username, role="operator", password_hash="$argon2id$x", display_name="Aliya",
                  created_at=T0)
    values.update(changes)
    return ConsoleAccount(**values)


async def test_an_account_is_stored_once_and_read_back(store):
    await store.add_console_account(_account(office="PO-1", region="Almaty"))
    with pytest.raises(ConflictError):
        await store.add_console_account(_account())
    assert await store.console_account("aliya") == _account(office="PO-1", region="Almaty")
    assert [a.username for a in await store.console_accounts()] == ["aliya"]


async def test_disabling_and_changing_a_password_update_only_that_account(store):
    await store.add_console_account(_account())
    await store.add_console_account(_account("bolat"))
    assert await store.update_console_account("aliya", disabled=True)
    assert await store.update_console_account("bolat", password_hash="$argon2id$new")
    assert not await store.update_console_account("nobody", disabled=True)
    aliya, bolat = await store.console_accounts()
    assert (aliya.disabled, aliya.password_hash) == (True, "$argon2id$x")
    assert (bolat.disabled, bolat.password_hash) == (False, "$argon2id$new")


async def test_sessions_end_by_id_by_account_and_by_age(store):
    await store.add_console_account(_account())
    for name, created, seen in (("a", T0, T0), ("b", T0, T0 + 100), ("c", T0 + 50, T0 + 200)):
        await store.add_console_session(ConsoleSession(name, "aliya", "csrf", created, seen))
    await store.touch_console_session("a", T0 + 300)
    assert (await store.console_session("a")).last_seen_at == T0 + 300
    assert await store.end_console_sessions(idle_before=T0 + 150) == 1  # b
    assert await store.end_console_sessions(created_before=T0 + 10) == 1  # a
    assert await store.console_session("c") is not None
    assert await store.end_console_sessions(username="aliya") == 1
    assert await store.console_session("c") is None


def _message(n: int, recipient: str) -> NewMessage:
    return NewMessage(sender="penal", recipient=recipient, service="notices", body=b"{}",
                      content_type="application/json", correlation_id=f"corr-{n % 2}", max_attempts=3,
                      deadline_at=T0 + 1000, client_message_id=f"m{n}")


async def test_message_search_filters_and_pages_newest_first(store):
    for n in range(6):
        await store.apply([AcceptMessage(_message(n, "health" if n < 4 else "clinic"))], now=T0 + n)
    found = await store.search_messages(MessageQuery(recipient="health"), limit=3)
    assert [m.client_message_id for m in found] == ["m3", "m2", "m1"]
    rest = await store.search_messages(MessageQuery(recipient="health"), before_seq=found[-1].seq, limit=3)
    assert [m.client_message_id for m in rest] == ["m0"]
    by_time = await store.search_messages(MessageQuery(correlation_id="corr-1", accepted_from=T0 + 2,
                                                       state=MessageState.ACCEPTED))
    assert [m.client_message_id for m in by_time] == ["m5", "m3"]
    assert await store.delivered_since(T0) == {}
