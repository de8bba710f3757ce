"""PostgreSQL only: stores in different schemas of one database are separate gateways.

Locks and ``search_path`` are per schema, and so are wake-ups: work accepted in one schema
wakes the other instances on that schema and no store elsewhere.
"""

from __future__ import annotations

import asyncio

from gateway.store import NewMessage
from gateway.store.postgres import _work_channel

T0 = 1_000.0


def message(recipient: str) -> NewMessage:
    return NewMessage(
        sender="penal", recipient=recipient, service="notices", body=b"{}", content_type="application/json",
        correlation_id="corr", max_attempts=3, deadline_at=T0 + 86_400,
    )


async def test_work_wakes_instances_on_its_own_schema_and_not_on_another(postgres_backend, open_store):
    here, elsewhere = postgres_backend.fresh_url(), postgres_backend.fresh_url()
    accepting, same_schema = await open_store(here), await open_store(here)
    other_schema, other_accepting = await open_store(elsewhere), await open_store(elsewhere)
    woken_here, woken_elsewhere = asyncio.Queue(), asyncio.Queue()
    same_schema.on_new_work(woken_here.put_nowait)
    other_schema.on_new_work(woken_elsewhere.put_nowait)

    # Notifications reach a listener in commit order: had an accept been heard in the other
    # schema, its wake-up would arrive there before the one that follows it.
    await accepting.accept(message("health"), T0)
    assert await asyncio.wait_for(woken_here.get(), 5) == "health"
    await other_accepting.accept(message("courts"), T0)
    assert await asyncio.wait_for(woken_elsewhere.get(), 5) == "courts"
    await accepting.accept(message("clinic"), T0)
    assert await asyncio.wait_for(woken_here.get(), 5) == "clinic"


def test_a_schema_channel_is_one_plain_identifier_of_at_most_63_bytes():
    assert _work_channel("public") == "gateway_work_public"
    for schema in ("gw_" + "x" * 60, 'odd "name"; drop', "схема_приёма", "x" * 100):
        channel = _work_channel(schema)
        assert len(channel.encode()) <= 63 and channel.replace("_", "").isalnum() and channel.isascii()
    # PostgreSQL keeps the first 63 bytes of a schema name: names alike in those are one schema.
    assert _work_channel("s" * 63 + "a") == _work_channel("s" * 63 + "b")
    assert _work_channel("Gateway") != _work_channel("gateway")  # quoted names keep their case
