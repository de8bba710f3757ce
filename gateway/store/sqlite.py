"""The embedded default store: SQLite through the standard library.

One thread owns the connection. Callers on the event loop hand it operations
through a queue; the thread drains whatever has queued up and runs it in one
transaction, then commits once and answers every caller. That is group commit:
under load one fsync serves hundreds of accepted messages, and no caller hears
"stored" before the commit that stores it (``journal_mode=WAL``, ``synchronous=FULL``).
A batch of nothing but claims and signed tree heads commits without waiting for the disk:
a power cut that loses one only makes it happen again (see ``_REDOABLE``), and the next
durable commit writes it out anyway.

A SQLite file serves one gateway process. Operators' commands (``gateway dlq``)
may open the same file alongside it; WAL lets them, and ``busy_timeout`` makes
them wait their turn for the write lock.

The statements are ``gateway.store.sql``'s; this module holds the writer thread and what
SQLite writes its own way: with one writer, an accept looks its client id up before it
inserts, and the audit log numbers from ``max(seq) + 1`` without a lock as it appends (the
writer is the audit log's sequencer: a sequencing round only closes the batch).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway.store.base import Acceptance, Command, Message, NewAuditEntry, NewMessage, StoreError, Timer
from gateway.store.sql import (
    FINISH_ATTEMPT, LOG_ATTEMPT, MESSAGE_COLUMNS, MIGRATIONS, NOT_HELD_BACK, TIMER_COLUMNS, Dialect, Fetch, Operation,
    SQLStore, message_of, new_message_params, resend, timer_of,
)

__all__ = ["MIGRATIONS", "SQLiteStore"]


class SQLiteDialect(Dialect):
    types = {
        "IDENTITY": "INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT": "TEXT", "BLOB": "BLOB", "INTEGER": "INTEGER",
        # INTEGER, not BIGINT: only an INTEGER PRIMARY KEY is the rowid (and SQLite's integers have 64 bits).
        "BIGINT": "INTEGER", "REAL": "REAL", "PENDING_ONLY": "",
        # A day as ISO 8601 text (``day``, ``sql.day_of``); indicator events are kept in key order.
        "DATE": "TEXT", "WITHOUT_ROWID": " WITHOUT ROWID",
        "BOOLEAN": "INTEGER", "FALSE": "0",
        # audit_pending is PostgreSQL's: here it stays empty (see migration 6).
        "BLOB_ARRAY": "BLOB", "TEXT_ARRAY": "TEXT",
    }

    def __init__(self) -> None:
        super().__init__()
        self._store_message = f"{self.insert_message()} RETURNING {MESSAGE_COLUMNS}"

    def members(self, column: str) -> str:
        return f"{column} IN (SELECT value FROM json_each(?))"

    def array(self, values: Sequence[Any]) -> Any:
        return json.dumps(list(values))

    def day(self, value: dt.date) -> Any:
        return value.isoformat()

    def quarter_of(self, column: str) -> str:
        return f"(substr({column}, 1, 4) || 'Q' || ((CAST(substr({column}, 6, 2) AS INTEGER) + 2) / 3))"

    def unindexed(self, column: str) -> str:
        # The unary + keeps SQLite's planner off any index on the column.
        return f"+{column}"

    def accept(self, message: NewMessage, now: float) -> Operation[Acceptance]:
        if message.client_message_id is not None:
            known = yield self.one(
                "SELECT message_id FROM inbound WHERE sender = ? AND client_message_id = ?",
                (message.sender, message.client_message_id),
            )
            if known is not None:
                return resend(message, (yield from self.get_message(known[0])))
        params = new_message_params(message, now)
        row = yield self.one(self._store_message, params)
        if message.client_message_id is not None:
            yield self.statement(
                "INSERT INTO inbound (sender, client_message_id, message_id, received_at) "
                "VALUES (:sender, :client_message_id, :id, :now)",
                params,
            )
        return Acceptance(message_of(row), duplicate=False)

    def append_audit(self, entries: Sequence[NewAuditEntry], now: float) -> Operation[list[int]]:
        # One writer thread: max(seq) + 1 is gapless and never forks.
        (last,) = yield self.one("SELECT coalesce(max(seq), 0) FROM audit_log")
        seqs = []
        for offset, entry in enumerate(entries, start=1):
            yield self.statement(
                "INSERT INTO audit_log (seq, entry, subject_key, recorded_at) VALUES (?, ?, ?, ?)",
                (last + offset, entry.entry, entry.subject_key, now),
            )
            seqs.append(last + offset)
        return seqs

    def sequence_audit(self) -> Operation[int]:
        # The entries are numbered already; the round closes their batch at the log's size.
        row = yield self.one("SELECT seq FROM audit_log WHERE tree_size IS NOT NULL ORDER BY seq DESC LIMIT 1")
        closed = row[0] if row else 0
        (size,) = yield self.one("SELECT coalesce(max(seq), 0) FROM audit_log")
        if size > closed:
            # Only the entry that ends the batch is marked: one row, however long the batch.
            yield self.statement("UPDATE audit_log SET tree_size = seq WHERE seq = ?", (size,))
        return size

    def claim(
        self, recipient: str, limit: int, now: float, lease_seconds: float, owner: str
    ) -> Operation[list[Message]]:
        # A lease that ran out belongs to a worker that died mid-delivery: the
        # message is due again (the attempt it started still counts).
        yield self.statement(
            "UPDATE messages SET state = 'accepted', lease_owner = NULL, lease_until = NULL, "
            "last_error = 'lease expired before the attempt finished', updated_at = ? "
            "WHERE state = 'in_flight' AND lease_until <= ? AND recipient = ?",
            (now, now, recipient),
        )
        # The unary + keeps the planner off messages_due: a range on next_attempt_at would make it
        # sort every due message of a backlog to take the first few; messages_queue walks them in
        # seq order already and stops at the limit.
        rows = yield self.rows(
            f"""
            UPDATE messages
               SET state = 'in_flight', attempts = attempts + 1,
                   lease_owner = ?, lease_until = ?, updated_at = ?
             WHERE seq IN (
                SELECT m.seq FROM messages AS m
                 WHERE m.recipient = ? AND m.state = 'accepted' AND +m.next_attempt_at <= ?
                   AND {NOT_HELD_BACK}
                 ORDER BY m.seq
                 LIMIT ?)
            RETURNING {MESSAGE_COLUMNS}
            """,
            (owner, now + lease_seconds, now, recipient, now, limit),
        )
        return sorted((message_of(row) for row in rows), key=lambda m: m.seq)

    def finish_attempt(self, params: Any) -> Operation[bool]:
        if not (yield self.statement(FINISH_ATTEMPT, params)):
            return False
        yield self.statement(
            LOG_ATTEMPT.format(source="VALUES (:id, :attempt, :started_at, :now, :outcome, :status, :error)"), params
        )
        return True

    def purge_delivered(self, before: float, limit: int) -> Operation[int]:
        doomed = "SELECT id FROM messages WHERE state = 'delivered' AND delivered_at < ? ORDER BY seq LIMIT ?"
        yield self.statement(f"DELETE FROM attempts WHERE message_id IN ({doomed})", (before, limit))
        yield self.statement(f"DELETE FROM message_evidence WHERE message_id IN ({doomed})", (before, limit))
        return (yield self.statement(f"DELETE FROM messages WHERE id IN ({doomed})", (before, limit)))

    def purge_inbound(self, before: float, limit: int) -> Operation[int]:
        return (yield self.statement(
            "DELETE FROM inbound WHERE rowid IN ("
            " SELECT i.rowid FROM inbound AS i WHERE i.received_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.id = i.message_id) LIMIT ?)",
            (before, limit),
        ))

    def claim_timers(self, now: float, limit: int, lease_seconds: float, owner: str) -> Operation[list[Timer]]:
        rows = yield self.rows(
            f"""
            UPDATE timers SET attempts = attempts + 1, lease_owner = ?, lease_until = ?
             WHERE id IN (
                SELECT id FROM timers
                 WHERE fire_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
                 ORDER BY fire_at LIMIT ?)
            RETURNING {TIMER_COLUMNS}
            """,
            (owner, now + lease_seconds, now, now, limit),
        )
        return sorted((timer_of(row) for row in rows), key=lambda t: (t.fire_at, t.id))


_DIALECT = SQLiteDialect()

_STOP = object()
# What an operation needs from a transaction: none (a read); a commit that need not reach the
# disk before it is answered, because what it records is redone if a power cut loses it (a
# claim: its message or timer falls due again, and at-least-once delivery allows the second
# attempt; a signed tree head: the signer signs that size again); or a commit on disk before
# anyone hears of it. A later durable commit puts every earlier one on disk too: the WAL is
# written in order.
_READ, _REDOABLE, _DURABLE = 0, 1, 2


# Readiness fails below this much free space beside the database: acceptances are about to fail.
MIN_FREE_BYTES = 1_048_576


class SQLiteStore(SQLStore):
    """``Store`` on one SQLite file, with group commit. See the module docstring."""

    _dialect = _DIALECT

    def __init__(self, path: str | Path, *, max_batch: int = 1024) -> None:
        super().__init__()
        self._path = str(path)
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._opened: asyncio.Future | None = None
        self._synchronous_level = "FULL"

    @property
    def url(self) -> str:
        return f"sqlite:///{self._path}"

    # -- lifecycle

    async def probe_write(self) -> None:
        """A commit, and room on the disk for the next ones: a commit that fits in the WAL's
        free pages succeeds on a full disk, while an acceptance would not."""
        await super().probe_write()
        if self._path == ":memory:":
            return
        disk = os.statvfs(Path(self._path).parent)
        free = disk.f_bavail * disk.f_frsize
        if free < MIN_FREE_BYTES:
            raise StoreError(f"the store's disk is nearly full: {free} bytes free, {MIN_FREE_BYTES} needed")

    async def open(self) -> None:
        if self._thread is not None:
            return
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self._opened = loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name="sqlite-store", daemon=True
        )
        self._thread.start()
        try:
            await self._opened
        except StoreError:
            self._thread = None  # it has ended: a later open() tries again instead of hanging
            raise

    async def close(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._thread = None

    # -- the writer thread

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before anyone hears "stored".
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA wal_autocheckpoint = 4000")
        self._migrate(conn)
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _execute(conn, _DIALECT.migrate, ())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            conn = self._connect()
        except Exception as exc:  # reported to open(); the thread ends
            loop.call_soon_threadsafe(_settle, self._opened, None, StoreError(f"cannot open {self._path}: {exc}"))
            return
        loop.call_soon_threadsafe(_settle, self._opened, None, None)
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(item is _STOP for item in batch)
                self._run_batch(conn, [item for item in batch if item is not _STOP])
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list) -> None:
        if not batch:
            return
        writes = max(write for _, _, write, _, _ in batch)
        try:
            if writes:
                self._synchronous(conn, "FULL" if writes == _DURABLE else "NORMAL")
                conn.execute("BEGIN IMMEDIATE")
            outcomes = _operations(conn, batch, isolated=False)
            if outcomes is None:
                # A write failed: start again with each write in a savepoint, so it fails alone.
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                outcomes = _operations(conn, batch, isolated=True)
            if writes:
                conn.execute("COMMIT")
        except Exception as exc:  # the commit itself failed: nothing in the batch is stored
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = StoreError(f"commit failed: {exc}")
            outcomes = [(future, loop, None, error) for _, _, _, future, loop in batch]
        # One wake-up per event loop for the whole batch, not one per operation.
        answers: dict[asyncio.AbstractEventLoop, list] = {}
        for future, loop, result, error in outcomes:
            answers.setdefault(loop, []).append((future, result, error))
        for loop, settled in answers.items():
            loop.call_soon_threadsafe(_settle_all, settled)

    async def _submit(self, operation: Callable[..., Operation], args: tuple, write: int) -> Any:
        if self._thread is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((operation, args, write, future, loop))
        return await future

    # Every write runs in the writer's transaction: ``atomic`` asks for nothing more here.

    async def _write(self, operation: Callable[..., Operation], *args: Any, atomic: Sequence[Command] | None = None) -> Any:
        return await self._submit(operation, args, _DURABLE)

    async def _write_redoable(
        self, operation: Callable[..., Operation], *args: Any, atomic: Sequence[Command] | None = None
    ) -> Any:
        return await self._submit(operation, args, _REDOABLE)

    async def _read(self, operation: Callable[..., Operation], *args: Any) -> Any:
        return await self._submit(operation, args, _READ)

    def _synchronous(self, conn: sqlite3.Connection, level: str) -> None:
        if level != self._synchronous_level:
            conn.execute(f"PRAGMA synchronous = {level}")
            self._synchronous_level = level


def _operations(conn: sqlite3.Connection, batch: list, *, isolated: bool) -> list[tuple] | None:
    """Run a batch's operations inside its transaction: (future, loop, result, error) for each.

    An operation is made afresh from its function and arguments at each run: a batch run
    again isolated runs it a second time. Savepoints cost two statements per write, and every statement gives up the GIL and waits
    to get it back from the event loop; so they are used only when ``isolated``. Without them
    a failing write leaves the transaction in an unknown state: None says so, and the caller
    rolls back and runs the batch again isolated. A failing read harms nothing.
    """
    outcomes = []
    for operation, args, write, future, loop in batch:
        if write and isolated:
            conn.execute("SAVEPOINT operation")
        try:
            result = _execute(conn, operation, args)
        except Exception as exc:
            if write and not isolated:
                return None
            if write:
                conn.execute("ROLLBACK TO operation")
                conn.execute("RELEASE operation")
            outcomes.append((future, loop, None, _as_store_error(exc)))
            continue
        if write and isolated:
            conn.execute("RELEASE operation")
        outcomes.append((future, loop, result, None))
    return outcomes


def _settle_all(settled: list[tuple[asyncio.Future, Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        _settle(future, result, error)


def _settle(future: asyncio.Future | None, result: Any, error: BaseException | None) -> None:
    if future is None or future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _as_store_error(exc: Exception) -> Exception:
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, sqlite3.Error):
        return StoreError(str(exc))
    return exc


def _execute(conn: sqlite3.Connection, operation: Callable[..., Operation], args: tuple) -> Any:
    """Run one ``gateway.store.sql`` operation: each statement it yields, answered as it asks."""
    steps, answer = operation(*args), None
    while True:
        try:
            statement = steps.send(answer)
        except StopIteration as done:
            return done.value
        answer = _ANSWERS[statement.fetch](conn.execute(statement.text, statement.params))


_ANSWERS: dict[Fetch, Callable[[sqlite3.Cursor], Any]] = {
    Fetch.COUNT: lambda cursor: cursor.rowcount, Fetch.ONE: sqlite3.Cursor.fetchone, Fetch.ROWS: sqlite3.Cursor.fetchall,
}
