"""Databases made by released gateways keep opening: the migrations are written once in
``gateway/store/sql.py`` and rendered per backend, and must build what the scripts as released
built (kept verbatim in ``tests/store/legacy/<backend>/NNN.sql``).
"""

from __future__ import annotations

import re
from pathlib import Path

from gateway.store import ConsoleAccount, MessageState, NewMessage, RecordInbound, create_store
from gateway.store.sql import MIGRATIONS

LEGACY = Path(__file__).parent / "legacy"
T0 = 1_000.0


def released(backend_name: str) -> list[str]:
    return [path.read_text() for path in sorted((LEGACY / backend_name).glob("*.sql"))]


def stage_released_schema(backend, url: str, version: int) -> None:
    """Build the schema at ``url`` as a gateway of schema ``version`` did, behind the store's back."""
    if backend.name == "postgres":
        backend.execute(url, f"CREATE SCHEMA {_schema(url)}")
    for script in released(backend.name)[:version]:
        for statement in filter(str.strip, script.split(";")):
            backend.execute(url, statement)
    backend.execute(url, "CREATE TABLE schema_version (version INTEGER NOT NULL)")
    backend.execute(url, f"INSERT INTO schema_version VALUES ({version})")


def _schema(url: str) -> str:
    return re.search(r"schema=(\w+)", url).group(1)


def stage_message(backend, url: str, message_id: str, state: str, *, attempts: int = 0) -> None:
    """A message row as the version 1 schema stored it (its body is ``{}``)."""
    body = "X'7B7D'" if backend.name == "sqlite" else "'\\x7b7d'::bytea"
    backend.execute(
        url,
        "INSERT INTO messages (id, sender, client_message_id, recipient, service, correlation_id, content_type, "
        "body, state, attempts, max_attempts, accepted_at, next_attempt_at, deadline_at, updated_at) VALUES "
        f"('{message_id}', 'penal', 'client-{message_id}', 'health', 'notices', 'corr', 'application/json', "
        f"{body}, '{state}', {attempts}, 3, {T0}, {T0}, {T0 + 86_400}, {T0})",
    )
    backend.execute(
        url,
        "INSERT INTO inbound (sender, client_message_id, message_id, received_at) "
        f"VALUES ('penal', 'client-{message_id}', '{message_id}', {T0})",
    )


def describe(backend, url: str) -> dict[str, list[tuple]]:
    """Tables, columns and indexes as the database reports them: what a migration built."""
    if backend.name == "sqlite":
        columns = backend.execute(
            url,
            "SELECT m.name, p.cid, p.name, upper(p.type), p.\"notnull\", p.dflt_value, p.pk "
            "FROM sqlite_master AS m, pragma_table_info(m.name) AS p WHERE m.type = 'table' ORDER BY m.name, p.cid",
        )
        indexes = [
            (name, table, " ".join((sql or "").lower().replace("(", " ( ").replace(")", " ) ").split()))
            for name, table, sql in backend.execute(
                url, "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
            )
        ]
        return {"columns": columns, "indexes": indexes}
    columns = backend.execute(
        url,
        "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default, is_identity "
        "FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
    )
    indexes = backend.execute(
        url,
        "SELECT indexname, tablename, replace(indexdef, current_schema() || '.', '') FROM pg_indexes "
        "WHERE schemaname = current_schema() ORDER BY indexname",
    )
    return {"columns": columns, "indexes": indexes}


async def test_a_new_database_has_the_schema_the_released_migrations_built(backend):
    released_url, new_url = backend.fresh_url(), backend.fresh_url()
    stage_released_schema(backend, released_url, len(MIGRATIONS))
    store = create_store(new_url)
    await store.open()
    await store.close()
    assert describe(backend, new_url) == describe(backend, released_url)
    assert len(released(backend.name)) == len(MIGRATIONS)  # a new migration is added here too


async def test_a_database_at_schema_version_1_upgrades_and_keeps_its_messages(backend, open_store):
    url = backend.fresh_url()
    stage_released_schema(backend, url, 1)
    stage_message(backend, url, "kept", "accepted")
    stage_message(backend, url, "failed", "dead", attempts=3)

    store = await open_store(url)

    assert backend.execute(url, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]
    kept = await store.find_message("penal", "client-kept")
    assert (kept.id, kept.state, kept.body, kept.answer) == ("kept", MessageState.ACCEPTED, b"{}", None)
    # Version 2 gave every stored message its first attempt budget: a replay restores it.
    assert await store.replay(["failed"], T0, T0 + 86_400) == ["failed"]
    replayed = await store.get_message("failed")
    assert (replayed.state, replayed.attempts, replayed.max_attempts) == (MessageState.ACCEPTED, 3, 6)
    # Version 3 keeps answers to inbound messages that are not relayed.
    assert await store.apply([RecordInbound("penal", "notice-1", b"<ack/>")], T0) == [True]
    assert await store.find_inbound("penal", "notice-1") == b"<ack/>"


async def test_a_database_at_the_current_version_opens_without_migrating_again(backend, open_store):
    url = backend.fresh_url()
    stage_released_schema(backend, url, len(MIGRATIONS))
    stage_message(backend, url, "kept", "accepted")
    # A migration run again would fail here: ALTER TABLE ... ADD COLUMN of a column that exists.
    store = await open_store(url)
    assert (await store.get_message("kept")).state is MessageState.ACCEPTED
    acceptance = await store.accept(
        NewMessage("penal", "health", "notices", b"{}", "application/json", "corr", 3, T0 + 86_400), T0
    )
    assert not acceptance.duplicate
    assert backend.execute(url, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]


async def test_a_database_from_before_the_console_migration_upgrades_and_keeps_its_messages_and_takes_console_accounts(backend, open_store):
    # The console's migration is the fifth.
    url = backend.fresh_url()
    stage_released_schema(backend, url, 4)
    stage_message(backend, url, "kept", "accepted")
    assert "console_accounts" not in {row[0] for row in describe(backend, url)["columns"]}

    store = await open_store(url)

    assert backend.execute(url, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]
    assert (await store.get_message("kept")).state is MessageState.ACCEPTED
    await store.add_console_account(ConsoleAccount("operator", "operator", "$argon2id$x", "Operator", created_at=T0))
    assert (await store.console_account("operator")).disabled is False
