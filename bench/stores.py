"""The raw store limits the durable figures are held against: how many inserts and commits
per second the database itself does with the durability settings the gateway uses, with
nothing of the gateway around it.

SQLite: WAL, ``synchronous=FULL``, as ``gateway.store.sqlite`` opens it; one row per
transaction, and rows in batches (what group commit can reach). PostgreSQL: one row per
transaction with ``synchronous_commit`` on, from one connection and from several at once
(concurrent commits share WAL flushes, as the gateway's pooled connections do).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = [
    "LockWaits", "drop_schema", "postgres_rows_per_second", "postgres_version", "sample_lock_waits",
    "sqlite_rows_per_second",
]

# About the size of a relayed release notice.
_BODY = os.urandom(600)
_TABLE = "CREATE TABLE rows (id TEXT PRIMARY KEY, recipient TEXT NOT NULL, body BLOB NOT NULL, at REAL NOT NULL)"


def sqlite_rows_per_second(path: Path, *, batch: int, seconds: float) -> float:
    """Rows inserted and committed per second, ``batch`` rows per transaction."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(_TABLE)
        rows, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            conn.execute("BEGIN IMMEDIATE")
            for _ in range(batch):
                conn.execute("INSERT INTO rows VALUES (?, 'health', ?, ?)", (uuid.uuid4().hex, _BODY, time.time()))
            conn.execute("COMMIT")
            rows += batch
        return rows / (time.perf_counter() - started)
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


async def postgres_rows_per_second(url: str, schema: str, *, connections: int, seconds: float) -> float:
    """Single-row transactions per second (``synchronous_commit`` on) over ``connections``."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        await admin.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.rows (id text PRIMARY KEY, recipient text NOT NULL, "
                                    "body bytea NOT NULL, at double precision NOT NULL)").format(sql.Identifier(schema)))
    insert = sql.SQL("INSERT INTO {}.rows VALUES (%s, 'health', %s, %s)").format(sql.Identifier(schema))
    deadline = time.perf_counter() + seconds
    counts = [0] * connections

    async def writer(number: int) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("SET synchronous_commit = on")
            while time.perf_counter() < deadline:
                await conn.execute(insert, (uuid.uuid4().hex, _BODY, time.time()))
                counts[number] += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(connections)))
    return sum(counts) / (time.perf_counter() - started)


@dataclass
class LockWaits:
    """Samples of the gateway's PostgreSQL backends: how many were in a transaction, and how
    many of those were waiting for a lock (``wait_event_type = 'Lock'``: a table, row or advisory
    lock, not I/O or the client)."""

    in_transaction: int = 0
    waiting: int = 0
    samples: int = 0
    events: dict[str, int] = field(default_factory=dict)
    """Waiting backends by ``wait_event`` (relation, transactionid, advisory, object…)."""

    @property
    def percent(self) -> float | None:
        return 100 * self.waiting / self.in_transaction if self.in_transaction else None


async def sample_lock_waits(url: str, application_name: str, waits: LockWaits, *, interval: float = 0.01) -> None:
    """Sample ``pg_stat_activity`` every ``interval`` seconds into ``waits`` until cancelled,
    counting only the backends of ``application_name`` (the gateways' ``PGAPPNAME``)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            cursor = await conn.execute(
                "SELECT coalesce(wait_event, ''), count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting, "
                "count(*) FROM pg_stat_activity WHERE application_name = %s AND xact_start IS NOT NULL "
                "GROUP BY 1",
                (application_name,),
            )
            for event, waiting, in_transaction in await cursor.fetchall():
                waits.in_transaction += in_transaction
                waits.waiting += waiting
                if waiting:
                    waits.events[event] = waits.events.get(event, 0) + waiting
            waits.samples += 1
            await asyncio.sleep(interval)


async def postgres_version(url: str) -> str | None:
    try:
        async with await psycopg.AsyncConnection.connect(url, connect_timeout=3) as conn:
            return (await (await conn.execute("SHOW server_version")).fetchone())[0].split()[0]
    except psycopg.Error:
        return None


async def drop_schema(url: str, schema: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
