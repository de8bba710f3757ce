"""The embedded default store: SQLite through the standard library.

One thread owns the connection. Callers on the event loop hand it operations
through a queue; the thread drains whatever has queued up and runs it in one
transaction, each operation inside its own savepoint, then commits once and
answers every caller. That is group commit: under load one fsync serves
hundreds of accepted messages, and no caller hears "stored" before the commit
that stores it (``journal_mode=WAL``, ``synchronous=FULL``). A batch of nothing but claims
and signed tree heads commits without waiting for the disk: a power cut that loses one only
makes it happen again (see ``_REDOABLE``), and the next durable commit writes it out anyway.

A SQLite file serves one gateway process. Operators' commands (``gateway dlq``)
may open the same file alongside it; WAL lets them, and ``busy_timeout`` makes
them wait their turn for the write lock.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from gateway.store.base import (
    AcceptMessage,
    NewAuditEntry,
    RecordInbound,
    Acceptance,
    AppendAudit,
    Attempt,
    AuditRecord,
    CancelTimer,
    Case,
    Command,
    ConflictError,
    ConsoleAccount,
    ConsoleSession,
    Message,
    MessageQuery,
    MessageState,
    NewMessage,
    SaveCase,
    ScheduleTimer,
    StoreError,
    Timer,
    TreeHead,
)

# Each entry brings the schema from version i to i + 1. Never edit a released
# entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE messages (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,
        id                TEXT    NOT NULL UNIQUE,
        sender            TEXT    NOT NULL,
        client_message_id TEXT,
        recipient         TEXT    NOT NULL,
        service           TEXT    NOT NULL,
        correlation_id    TEXT    NOT NULL,
        purpose           TEXT,
        ordering_key      TEXT,
        content_type      TEXT    NOT NULL,
        body              BLOB    NOT NULL,
        state             TEXT    NOT NULL,
        attempts          INTEGER NOT NULL DEFAULT 0,
        max_attempts      INTEGER NOT NULL,
        accepted_at       REAL    NOT NULL,
        next_attempt_at   REAL    NOT NULL,
        deadline_at       REAL    NOT NULL,
        updated_at        REAL    NOT NULL,
        delivered_at      REAL,
        lease_owner       TEXT,
        lease_until       REAL,
        last_error        TEXT,
        last_status       INTEGER,
        replays           INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX messages_queue ON messages (recipient, state, seq);
    CREATE INDEX messages_due ON messages (recipient, state, next_attempt_at);
    CREATE INDEX messages_order ON messages (recipient, ordering_key, seq)
        WHERE ordering_key IS NOT NULL;
    CREATE INDEX messages_lease ON messages (state, lease_until);
    CREATE INDEX messages_sender ON messages (sender, seq);

    -- Inbound de-duplication outlives the message itself (see purge_delivered).
    CREATE TABLE inbound (
        sender            TEXT NOT NULL,
        client_message_id TEXT NOT NULL,
        message_id        TEXT NOT NULL,
        received_at       REAL NOT NULL,
        PRIMARY KEY (sender, client_message_id)
    );
    CREATE INDEX inbound_age ON inbound (received_at);

    CREATE TABLE attempts (
        message_id  TEXT    NOT NULL,
        number      INTEGER NOT NULL,
        started_at  REAL    NOT NULL,
        finished_at REAL    NOT NULL,
        outcome     TEXT    NOT NULL,
        status      INTEGER,
        error       TEXT,
        PRIMARY KEY (message_id, number)
    );

    CREATE TABLE cases (
        kind        TEXT    NOT NULL,
        id          TEXT    NOT NULL,
        state       TEXT    NOT NULL,
        data        TEXT    NOT NULL,
        version     INTEGER NOT NULL,
        subject_key TEXT,
        created_at  REAL    NOT NULL,
        updated_at  REAL    NOT NULL,
        PRIMARY KEY (kind, id)
    );
    CREATE INDEX cases_state ON cases (kind, state, id);
    CREATE INDEX cases_subject ON cases (kind, subject_key);

    CREATE TABLE timers (
        id          TEXT    PRIMARY KEY,
        case_kind   TEXT    NOT NULL,
        case_id     TEXT    NOT NULL,
        name        TEXT    NOT NULL,
        fire_at     REAL    NOT NULL,
        payload     TEXT    NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL
    );
    CREATE INDEX timers_due ON timers (fire_at);

    CREATE TABLE audit_log (
        seq         INTEGER PRIMARY KEY,
        entry       BLOB NOT NULL,
        subject_key TEXT,
        recorded_at REAL NOT NULL
    );
    CREATE INDEX audit_subject ON audit_log (subject_key, seq) WHERE subject_key IS NOT NULL;

    CREATE TABLE audit_tree_heads (
        size      INTEGER PRIMARY KEY,
        root      BLOB NOT NULL,
        signed_at REAL NOT NULL,
        signature BLOB NOT NULL
    );
    """,
    # 2: the recipient's answer (a court's receipt) is kept; replays restore the first budget.
    """
    ALTER TABLE messages ADD COLUMN answer BLOB;
    ALTER TABLE messages ADD COLUMN attempt_budget INTEGER;
    UPDATE messages SET attempt_budget = max_attempts;
    """,
    # 3: answers to inbound messages that are not relayed (RecordInbound).
    """
    ALTER TABLE inbound ADD COLUMN answer BLOB;
    """,
    # 4: the console's accounts (people, not members) and their server-side sessions.
    """
    CREATE TABLE console_accounts (
        username      TEXT PRIMARY KEY,
        role          TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        display_name  TEXT NOT NULL,
        office        TEXT,
        region        TEXT,
        disabled      INTEGER NOT NULL DEFAULT 0,
        created_at    REAL NOT NULL
    );
    CREATE TABLE console_sessions (
        id           TEXT PRIMARY KEY,
        username     TEXT NOT NULL REFERENCES console_accounts (username),
        csrf_token   TEXT NOT NULL,
        created_at   REAL NOT NULL,
        last_seen_at REAL NOT NULL
    );
    CREATE INDEX console_sessions_user ON console_sessions (username);
    CREATE INDEX messages_correlation ON messages (correlation_id);
    """,
)

_MESSAGE_COLUMNS = (
    "id, seq, sender, recipient, service, body, content_type, correlation_id, client_message_id, "
    "purpose, ordering_key, state, attempts, max_attempts, accepted_at, next_attempt_at, "
    "deadline_at, updated_at, delivered_at, last_error, last_status, replays, answer"
)
# A message of an ordering key waits while an earlier one of its (recipient, key)
# is pending, or while any one of them is in flight (a replayed head must not
# travel beside its successor).
_NOT_HELD_BACK = """
    (m.ordering_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM messages AS p
         WHERE p.recipient = m.recipient AND p.ordering_key = m.ordering_key AND p.seq <> m.seq
           AND (p.state = 'in_flight' OR (p.seq < m.seq AND p.state = 'accepted'))))
"""


def _message(row: sqlite3.Row | tuple) -> Message:
    values = list(row)
    values[5] = bytes(values[5])
    values[11] = MessageState(values[11])
    if values[22] is not None:
        values[22] = bytes(values[22])
    return Message(*values)


def _case(row: tuple) -> Case:
    kind, case_id, state, data, version, subject_key, created_at, updated_at = row
    return Case(kind, case_id, state, json.loads(data), version, created_at, updated_at, subject_key)


def _timer(row: tuple) -> Timer:
    timer_id, case_kind, case_id, name, fire_at, payload, attempts = row
    return Timer(timer_id, case_kind, case_id, name, fire_at, json.loads(payload), attempts)


_STOP = object()
# What an operation needs from a transaction: none (a read); a commit that need not reach the
# disk before it is answered, because what it records is redone if a power cut loses it (a
# claim: its message or timer falls due again, and at-least-once delivery allows the second
# attempt; a signed tree head: the signer signs that size again); or a commit on disk before
# anyone hears of it. A later durable commit puts every earlier one on disk too: the WAL is
# written in order.
_READ, _REDOABLE, _DURABLE = 0, 1, 2


class SQLiteStore:
    """``Store`` on one SQLite file, with group commit. See the module docstring."""

    def __init__(self, path: str | Path, *, max_batch: int = 1024) -> None:
        self._path = str(path)
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._opened: asyncio.Future | None = None
        self._work_listeners: list[Callable[[str], None]] = []
        self._synchronous_level = "FULL"

    @property
    def url(self) -> str:
        return f"sqlite:///{self._path}"

    # -- lifecycle

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

    async def ping(self) -> None:
        await self._read(lambda c: c.execute("SELECT 1").fetchone())

    def on_new_work(self, callback: Callable[[str], None]) -> None:
        self._work_listeners.append(callback)

    def _announce(self, recipients: Iterable[str]) -> None:
        for recipient in set(recipients):
            for callback in self._work_listeners:
                callback(recipient)

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
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"the database schema is version {version}, newer than this gateway "
                    f"knows ({len(MIGRATIONS)}): upgrade the gateway"
                )
            for script in MIGRATIONS[version:]:
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
            if row is None:
                conn.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS),))
            else:
                conn.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS),))
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

    async def _submit(self, operation: Callable, args: tuple, write: bool) -> Any:
        if self._thread is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((operation, args, write, future, loop))
        return await future

    async def _write(self, operation: Callable, *args: Any) -> Any:
        return await self._submit(operation, args, _DURABLE)

    async def _write_redoable(self, operation: Callable, *args: Any) -> Any:
        return await self._submit(operation, args, _REDOABLE)

    async def _read(self, operation: Callable, *args: Any) -> Any:
        return await self._submit(operation, args, _READ)

    def _synchronous(self, conn: sqlite3.Connection, level: str) -> None:
        if level != self._synchronous_level:
            conn.execute(f"PRAGMA synchronous = {level}")
            self._synchronous_level = level

    # -- commands

    async def apply(self, commands: Sequence[Command], now: float) -> list[Any]:
        results = await self._write(_apply_all, list(commands), now)
        self._announce_accepted(results)
        return results

    def _announce_accepted(self, results: Iterable[Any]) -> None:
        self._announce(
            result.message.recipient
            for result in results
            if isinstance(result, Acceptance) and not result.duplicate
        )

    async def accept(self, message: NewMessage, now: float) -> Acceptance:
        acceptance = await self._write(_accept, message, now)
        if not acceptance.duplicate:
            self._announce([message.recipient])
        return acceptance

    # -- outbox

    async def get_message(self, message_id: str) -> Message | None:
        return await self._read(_get_message, message_id)

    async def find_message(self, sender: str, client_message_id: str) -> Message | None:
        return await self._read(_find_message, sender, client_message_id)

    async def find_inbound(self, sender: str, key: str) -> bytes | None:
        return await self._read(_find_inbound, sender, key)

    async def claim(
        self, recipient: str, limit: int, now: float, lease_seconds: float, owner: str
    ) -> list[Message]:
        return await self._write_redoable(_claim, recipient, limit, now, lease_seconds, owner)

    async def record_delivered(
        self, message_id: str, attempt: int, started_at: float, now: float, status: int, answer: bytes = b"",
        audit: Sequence[NewAuditEntry] = (),
    ) -> bool:
        return await self._write(_record_delivered, message_id, attempt, started_at, now, status, answer, audit)

    async def record_failure(
        self,
        message_id: str,
        attempt: int,
        started_at: float,
        now: float,
        *,
        error: str,
        status: int | None,
        retry_at: float | None,
        audit: Sequence[NewAuditEntry] = (),
        counted: bool = True,
    ) -> bool:
        return await self._write(
            _record_failure, message_id, attempt, started_at, now, error, status, retry_at, audit, counted
        )

    async def next_due(self, recipient: str) -> float | None:
        return await self._read(_next_due, recipient)

    async def list_messages(
        self,
        *,
        state: MessageState | None = None,
        recipient: str | None = None,
        sender: str | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[Message]:
        return await self._read(_list_messages, state, recipient, sender, after_seq, limit)

    async def attempts(self, message_id: str) -> list[Attempt]:
        return await self._read(_attempts, message_id)

    async def replay(self, message_ids: Sequence[str], now: float, deadline_at: float) -> list[str]:
        replayed = await self._write(_replay, list(message_ids), now, deadline_at)
        self._announce(recipient for _, recipient in replayed)
        return [message_id for message_id, _ in replayed]

    async def counts(self) -> dict[tuple[str, MessageState], int]:
        return await self._read(_counts)

    async def purge_delivered(self, before: float, limit: int = 10_000) -> int:
        return await self._write(_purge_delivered, before, limit)

    async def purge_inbound(self, before: float, limit: int = 10_000) -> int:
        return await self._write(_purge_inbound, before, limit)

    # -- workflows

    async def get_case(self, kind: str, case_id: str) -> Case | None:
        return await self._read(_get_case, kind, case_id)

    async def list_cases(
        self,
        kind: str,
        *,
        state: str | None = None,
        subject_key: str | None = None,
        after_id: str = "",
        limit: int = 100,
    ) -> list[Case]:
        return await self._read(_list_cases, kind, state, subject_key, after_id, limit)

    async def claim_timers(self, now: float, limit: int, lease_seconds: float, owner: str) -> list[Timer]:
        return await self._write_redoable(_claim_timers, now, limit, lease_seconds, owner)

    async def complete_timer(
        self, timer_id: str, attempts: int, commands: Sequence[Command], now: float
    ) -> bool:
        results = await self._write(_complete_timer, timer_id, attempts, list(commands), now)
        if results is None:
            return False
        self._announce_accepted(results)
        return True

    # -- audit log

    async def audit_size(self) -> int:
        return await self._read(_audit_size)

    async def read_audit(self, start_seq: int = 1, limit: int = 1000) -> list[AuditRecord]:
        return await self._read(_read_audit, start_seq, limit)

    async def audit_by_subject(self, subject_key: str, limit: int = 1000) -> list[AuditRecord]:
        return await self._read(_audit_by_subject, subject_key, limit)

    async def save_tree_head(self, head: TreeHead) -> None:
        await self._write_redoable(_save_tree_head, head)

    async def tree_heads(self, after_size: int = 0, limit: int = 1000) -> list[TreeHead]:
        return await self._read(_tree_heads, after_size, limit)

    # -- console accounts and sessions (migration 4): one block, see the module functions below

    async def add_console_account(self, account: ConsoleAccount) -> None:
        await self._write(_add_console_account, account)

    async def console_account(self, username: str) -> ConsoleAccount | None:
        return await self._read(_console_account, username)

    async def console_accounts(self) -> list[ConsoleAccount]:
        return await self._read(_console_accounts)

    async def update_console_account(self, username: str, *, password_hash: str | None = None,
                                     disabled: bool | None = None) -> bool:
        return await self._write(_update_console_account, username, password_hash, disabled)

    async def add_console_session(self, session: ConsoleSession) -> None:
        await self._write_redoable(_add_console_session, session)

    async def console_session(self, session_id: str) -> ConsoleSession | None:
        return await self._read(_console_session, session_id)

    async def touch_console_session(self, session_id: str, now: float) -> None:
        await self._write_redoable(_touch_console_session, session_id, now)

    async def end_console_sessions(self, *, session_id: str | None = None, username: str | None = None,
                                   idle_before: float | None = None, created_before: float | None = None) -> int:
        return await self._write(_end_console_sessions, session_id, username, idle_before, created_before)

    async def search_messages(self, query: MessageQuery, *, before_seq: int | None = None,
                              limit: int = 50) -> list[Message]:
        return await self._read(_search_messages, query, before_seq, limit)

    async def delivered_since(self, since: float) -> dict[str, int]:
        return await self._read(_delivered_since, since)


def _operations(conn: sqlite3.Connection, batch: list, *, isolated: bool) -> list[tuple] | None:
    """Run a batch's operations inside its transaction: (future, loop, result, error) for each.

    Savepoints cost two statements per write, and every statement gives up the GIL and waits
    to get it back from the event loop; so they are used only when ``isolated``. Without them
    a failing write leaves the transaction in an unknown state: None says so, and the caller
    rolls back and runs the batch again isolated. A failing read harms nothing.
    """
    outcomes = []
    for operation, args, write, future, loop in batch:
        if write and isolated:
            conn.execute("SAVEPOINT operation")
        try:
            result = operation(conn, *args)
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


# ------------------------------------------------------------------ operations
# Plain functions of a connection, run on the store's thread.


def _apply_all(conn: sqlite3.Connection, commands: list[Command], now: float) -> list[Any]:
    return [_apply_one(conn, command, now) for command in commands]


def _apply_one(conn: sqlite3.Connection, command: Command, now: float) -> Any:
    match command:
        case AcceptMessage(message=message, audit=audit):
            acceptance = _accept(conn, message, now)
            if audit and not acceptance.duplicate:
                _append_audit(conn, audit, now)
            return acceptance
        case RecordInbound(sender=sender, key=key, answer=answer):
            # message_id '' names no message: the record is purged after the de-duplication period.
            return conn.execute(
                "INSERT INTO inbound (sender, client_message_id, message_id, received_at, answer) "
                "VALUES (?, ?, '', ?, ?) ON CONFLICT DO NOTHING",
                (sender, key, now, answer),
            ).rowcount > 0
        case SaveCase():
            return _save_case(conn, command, now)
        case ScheduleTimer(timer=timer):
            conn.execute(
                "INSERT INTO timers (id, case_kind, case_id, name, fire_at, payload) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "fire_at = excluded.fire_at, payload = excluded.payload, "
                "lease_owner = NULL, lease_until = NULL",
                (timer.id, timer.case_kind, timer.case_id, timer.name, timer.fire_at,
                 json.dumps(dict(timer.payload))),
            )
            return None
        case CancelTimer(timer_id=timer_id):
            return conn.execute("DELETE FROM timers WHERE id = ?", (timer_id,)).rowcount > 0
        case AppendAudit(entries=entries):
            return _append_audit(conn, entries, now)
    raise TypeError(f"not a store command: {command!r}")


def _accept(conn: sqlite3.Connection, message: NewMessage, now: float) -> Acceptance:
    if message.client_message_id is not None:
        known = conn.execute(
            "SELECT message_id FROM inbound WHERE sender = ? AND client_message_id = ?",
            (message.sender, message.client_message_id),
        ).fetchone()
        if known is not None:
            stored = _get_message(conn, known[0])
            if stored is not None:
                return Acceptance(stored, duplicate=True)
            raise ConflictError(
                f"message id {message.client_message_id!r} was used before and its message "
                "has passed its retention period: use a new X-Message-Id"
            )
    message_id = message.id or str(uuid.uuid4())
    row = conn.execute(
        f"INSERT INTO messages (id, sender, client_message_id, recipient, service, "
        f"correlation_id, purpose, ordering_key, content_type, body, state, attempts, "
        f"max_attempts, attempt_budget, accepted_at, next_attempt_at, deadline_at, updated_at) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'accepted', 0, ?, ?, ?, ?, ?, ?) "
        f"RETURNING {_MESSAGE_COLUMNS}",
        (message_id, message.sender, message.client_message_id, message.recipient,
         message.service, message.correlation_id, message.purpose, message.ordering_key,
         message.content_type, message.body, message.max_attempts, message.max_attempts, now, now,
         message.deadline_at, now),
    ).fetchone()
    if message.client_message_id is not None:
        conn.execute(
            "INSERT INTO inbound (sender, client_message_id, message_id, received_at) VALUES (?, ?, ?, ?)",
            (message.sender, message.client_message_id, message_id, now),
        )
    return Acceptance(_message(row), duplicate=False)


def _get_message(conn: sqlite3.Connection, message_id: str) -> Message | None:
    row = conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)).fetchone()
    return _message(row) if row else None


def _find_message(conn: sqlite3.Connection, sender: str, client_message_id: str) -> Message | None:
    known = conn.execute(
        "SELECT message_id FROM inbound WHERE sender = ? AND client_message_id = ?",
        (sender, client_message_id),
    ).fetchone()
    return _get_message(conn, known[0]) if known else None


def _find_inbound(conn: sqlite3.Connection, sender: str, key: str) -> bytes | None:
    row = conn.execute(
        "SELECT answer FROM inbound WHERE sender = ? AND client_message_id = ? AND answer IS NOT NULL", (sender, key)
    ).fetchone()
    return bytes(row[0]) if row else None


def _claim(
    conn: sqlite3.Connection, recipient: str, limit: int, now: float, lease_seconds: float, owner: str
) -> list[Message]:
    # A lease that ran out belongs to a worker that died mid-delivery: the
    # message is due again (the attempt it started still counts).
    conn.execute(
        "UPDATE messages SET state = 'accepted', lease_owner = NULL, lease_until = NULL, "
        "last_error = 'lease expired before the attempt finished', updated_at = ? "
        "WHERE state = 'in_flight' AND lease_until <= ? AND recipient = ?",
        (now, now, recipient),
    )
    # The unary + keeps the planner off messages_due: a range on next_attempt_at would make it
    # sort every due message of a backlog to take the first few; messages_queue walks them in
    # seq order already and stops at the limit.
    rows = conn.execute(
        f"""
        UPDATE messages
           SET state = 'in_flight', attempts = attempts + 1,
               lease_owner = ?, lease_until = ?, updated_at = ?
         WHERE seq IN (
            SELECT m.seq FROM messages AS m
             WHERE m.recipient = ? AND m.state = 'accepted' AND +m.next_attempt_at <= ?
               AND {_NOT_HELD_BACK}
             ORDER BY m.seq
             LIMIT ?)
        RETURNING {_MESSAGE_COLUMNS}
        """,
        (owner, now + lease_seconds, now, recipient, now, limit),
    ).fetchall()
    return sorted((_message(row) for row in rows), key=lambda m: m.seq)


def _log_attempt(
    conn: sqlite3.Connection, message_id: str, attempt: int, started_at: float, now: float,
    outcome: str, status: int | None, error: str | None,
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO attempts (message_id, number, started_at, finished_at, outcome, status, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (message_id, attempt, started_at, now, outcome, status, error),
    )


def _record_delivered(
    conn: sqlite3.Connection, message_id: str, attempt: int, started_at: float, now: float, status: int,
    answer: bytes, audit: Sequence[NewAuditEntry],
) -> bool:
    updated = conn.execute(
        "UPDATE messages SET state = 'delivered', delivered_at = ?, updated_at = ?, answer = ?, "
        "last_status = ?, last_error = NULL, lease_owner = NULL, lease_until = NULL "
        "WHERE id = ? AND attempts = ? AND state = 'in_flight'",
        (now, now, answer or None, status, message_id, attempt),
    ).rowcount
    if updated:
        _log_attempt(conn, message_id, attempt, started_at, now, "delivered", status, None)
        _append_audit(conn, audit, now)
    return bool(updated)


def _record_failure(
    conn: sqlite3.Connection, message_id: str, attempt: int, started_at: float, now: float,
    error: str, status: int | None, retry_at: float | None, audit: Sequence[NewAuditEntry], counted: bool,
) -> bool:
    state = MessageState.DEAD if retry_at is None else MessageState.ACCEPTED
    updated = conn.execute(
        "UPDATE messages SET state = ?, next_attempt_at = ?, updated_at = ?, last_error = ?, "
        "last_status = ?, lease_owner = NULL, lease_until = NULL, max_attempts = max_attempts + ? "
        "WHERE id = ? AND attempts = ? AND state = 'in_flight'",
        (state.value, retry_at if retry_at is not None else now, now, error, status, 0 if counted else 1,
         message_id, attempt),
    ).rowcount
    if updated:
        outcome = "dead" if retry_at is None else "retry"
        _log_attempt(conn, message_id, attempt, started_at, now, outcome, status, error)
        _append_audit(conn, audit, now)
    return bool(updated)


def _next_due(conn: sqlite3.Connection, recipient: str) -> float | None:
    # A message held back by an earlier one of its ordering key is not due at its
    # next_attempt_at: counting it would wake a worker that finds nothing to claim.
    row = conn.execute(
        "SELECT min(t) FROM ("
        " SELECT min(m.next_attempt_at) AS t FROM messages AS m"
        f" WHERE m.recipient = ? AND m.state = 'accepted' AND {_NOT_HELD_BACK}"
        " UNION ALL"
        " SELECT min(lease_until) FROM messages WHERE recipient = ? AND state = 'in_flight')",
        (recipient, recipient),
    ).fetchone()
    return row[0]


def _list_messages(
    conn: sqlite3.Connection, state: MessageState | None, recipient: str | None,
    sender: str | None, after_seq: int, limit: int,
) -> list[Message]:
    clauses, params = ["seq > ?"], [after_seq]
    for column, value in (("state", state.value if state else None), ("recipient", recipient), ("sender", sender)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [_message(row) for row in rows]


def _attempts(conn: sqlite3.Connection, message_id: str) -> list[Attempt]:
    rows = conn.execute(
        "SELECT message_id, number, started_at, finished_at, outcome, status, error "
        "FROM attempts WHERE message_id = ? ORDER BY number",
        (message_id,),
    ).fetchall()
    return [Attempt(*row) for row in rows]


def _replay(
    conn: sqlite3.Connection, message_ids: list[str], now: float, deadline_at: float
) -> list[tuple[str, str]]:
    replayed = []
    for message_id in message_ids:
        # attempts is kept: it numbers the attempt log and fences stale workers.
        row = conn.execute(
            "UPDATE messages SET state = 'accepted', next_attempt_at = ?, deadline_at = ?, "
            "max_attempts = attempts + attempt_budget, replays = replays + 1, updated_at = ? "
            "WHERE id = ? AND state = 'dead' RETURNING id, recipient",
            (now, deadline_at, now, message_id),
        ).fetchone()
        if row:
            replayed.append((row[0], row[1]))
    return replayed


def _counts(conn: sqlite3.Connection) -> dict[tuple[str, MessageState], int]:
    rows = conn.execute(
        "SELECT recipient, state, count(*) FROM messages "
        "WHERE state IN ('accepted', 'in_flight', 'dead') GROUP BY recipient, state"
    ).fetchall()
    return {(recipient, MessageState(state)): count for recipient, state, count in rows}


def _purge_delivered(conn: sqlite3.Connection, before: float, limit: int) -> int:
    doomed = "SELECT id FROM messages WHERE state = 'delivered' AND delivered_at < ? ORDER BY seq LIMIT ?"
    conn.execute(f"DELETE FROM attempts WHERE message_id IN ({doomed})", (before, limit))
    return conn.execute(f"DELETE FROM messages WHERE id IN ({doomed})", (before, limit)).rowcount


def _purge_inbound(conn: sqlite3.Connection, before: float, limit: int) -> int:
    return conn.execute(
        "DELETE FROM inbound WHERE rowid IN ("
        " SELECT i.rowid FROM inbound AS i WHERE i.received_at < ?"
        " AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.id = i.message_id) LIMIT ?)",
        (before, limit),
    ).rowcount


def _save_case(conn: sqlite3.Connection, command: SaveCase, now: float) -> int:
    data = json.dumps(dict(command.data), ensure_ascii=False, sort_keys=True)
    if command.expected_version == 0:
        try:
            conn.execute(
                "INSERT INTO cases (kind, id, state, data, version, subject_key, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                (command.kind, command.id, command.state, data, command.subject_key, now, now),
            )
        except sqlite3.IntegrityError:
            raise ConflictError(f"{command.kind} {command.id} already exists") from None
        return 1
    updated = conn.execute(
        "UPDATE cases SET state = ?, data = ?, version = version + 1, updated_at = ?, "
        "subject_key = coalesce(?, subject_key) WHERE kind = ? AND id = ? AND version = ?",
        (command.state, data, now, command.subject_key, command.kind, command.id, command.expected_version),
    ).rowcount
    if not updated:
        raise ConflictError(
            f"{command.kind} {command.id} is not at version {command.expected_version}"
        )
    return command.expected_version + 1


_CASE_COLUMNS = "kind, id, state, data, version, subject_key, created_at, updated_at"


def _get_case(conn: sqlite3.Connection, kind: str, case_id: str) -> Case | None:
    row = conn.execute(f"SELECT {_CASE_COLUMNS} FROM cases WHERE kind = ? AND id = ?", (kind, case_id)).fetchone()
    return _case(row) if row else None


def _list_cases(
    conn: sqlite3.Connection, kind: str, state: str | None, subject_key: str | None, after_id: str, limit: int
) -> list[Case]:
    # One person has a handful of cases: by subject, find them in cases_subject and sort those.
    # Left to itself the planner walks every case of the kind in id order (the primary key) to
    # filter them; the unary + keeps it off that, which a release notice's look-up of its case
    # otherwise pays for with every case the gateway holds.
    order = "+id" if subject_key is not None else "id"
    clauses, params = ["kind = ?", f"{order} > ?"], [kind, after_id]
    for column, value in (("state", state), ("subject_key", subject_key)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    rows = conn.execute(
        f"SELECT {_CASE_COLUMNS} FROM cases WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [_case(row) for row in rows]


_TIMER_COLUMNS = "id, case_kind, case_id, name, fire_at, payload, attempts"


def _claim_timers(conn: sqlite3.Connection, now: float, limit: int, lease_seconds: float, owner: str) -> list[Timer]:
    rows = conn.execute(
        f"""
        UPDATE timers SET attempts = attempts + 1, lease_owner = ?, lease_until = ?
         WHERE id IN (
            SELECT id FROM timers
             WHERE fire_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
             ORDER BY fire_at LIMIT ?)
        RETURNING {_TIMER_COLUMNS}
        """,
        (owner, now + lease_seconds, now, now, limit),
    ).fetchall()
    return sorted((_timer(row) for row in rows), key=lambda t: (t.fire_at, t.id))


def _complete_timer(
    conn: sqlite3.Connection, timer_id: str, attempts: int, commands: list[Command], now: float
) -> list[Any] | None:
    deleted = conn.execute(
        "DELETE FROM timers WHERE id = ? AND attempts = ? AND lease_until IS NOT NULL",
        (timer_id, attempts),
    ).rowcount
    if not deleted:
        return None
    return _apply_all(conn, commands, now)


def _append_audit(conn: sqlite3.Connection, entries: Sequence, now: float) -> list[int]:
    # One writer thread: max(seq) + 1 is gapless and never forks.
    (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()
    seqs = []
    for offset, entry in enumerate(entries, start=1):
        conn.execute(
            "INSERT INTO audit_log (seq, entry, subject_key, recorded_at) VALUES (?, ?, ?, ?)",
            (last + offset, entry.entry, entry.subject_key, now),
        )
        seqs.append(last + offset)
    return seqs


def _audit_size(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()[0]


def _audit_record(row: tuple) -> AuditRecord:
    seq, entry, recorded_at, subject_key = row
    return AuditRecord(seq, bytes(entry), recorded_at, subject_key)


def _read_audit(conn: sqlite3.Connection, start_seq: int, limit: int) -> list[AuditRecord]:
    rows = conn.execute(
        "SELECT seq, entry, recorded_at, subject_key FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?",
        (start_seq, limit),
    ).fetchall()
    return [_audit_record(row) for row in rows]


def _audit_by_subject(conn: sqlite3.Connection, subject_key: str, limit: int) -> list[AuditRecord]:
    rows = conn.execute(
        "SELECT seq, entry, recorded_at, subject_key FROM audit_log WHERE subject_key = ? ORDER BY seq LIMIT ?",
        (subject_key, limit),
    ).fetchall()
    return [_audit_record(row) for row in rows]


def _save_tree_head(conn: sqlite3.Connection, head: TreeHead) -> None:
    conn.execute(
        "INSERT INTO audit_tree_heads (size, root, signed_at, signature) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (size) DO NOTHING",
        (head.size, head.root, head.signed_at, head.signature),
    )


def _tree_heads(conn: sqlite3.Connection, after_size: int, limit: int) -> list[TreeHead]:
    rows = conn.execute(
        "SELECT size, root, signed_at, signature FROM audit_tree_heads WHERE size > ? ORDER BY size LIMIT ?",
        (after_size, limit),
    ).fetchall()
    return [TreeHead(size, bytes(root), signed_at, bytes(signature)) for size, root, signed_at, signature in rows]


# ---------------------------------------------------------------- console accounts and sessions (migration 4)

_ACCOUNT_COLUMNS = "username, role, password_hash, display_name, office, region, disabled, created_at"


def _account(row: tuple) -> ConsoleAccount:
    username, role, password_hash, display_name, office, region, disabled, created_at = row
    return ConsoleAccount(username, role, password_hash, display_name, office, region, bool(disabled), created_at)


def _add_console_account(conn: sqlite3.Connection, account: ConsoleAccount) -> None:
    try:
        conn.execute(
            f"INSERT INTO console_accounts ({_ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (account.username, account.role, account.password_hash, account.display_name, account.office,
             account.region, int(account.disabled), account.created_at),
        )
    except sqlite3.IntegrityError:
        raise ConflictError(f"an account named {account.username!r} already exists") from None


def _console_account(conn: sqlite3.Connection, username: str) -> ConsoleAccount | None:
    row = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM console_accounts WHERE username = ?", (username,)).fetchone()
    return _account(row) if row else None


def _console_accounts(conn: sqlite3.Connection) -> list[ConsoleAccount]:
    rows = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM console_accounts ORDER BY username").fetchall()
    return [_account(row) for row in rows]


def _update_console_account(conn: sqlite3.Connection, username: str, password_hash: str | None,
                            disabled: bool | None) -> bool:
    changed = conn.execute(
        "UPDATE console_accounts SET password_hash = coalesce(?, password_hash), "
        "disabled = coalesce(?, disabled) WHERE username = ?",
        (password_hash, None if disabled is None else int(disabled), username),
    ).rowcount
    return changed == 1


def _add_console_session(conn: sqlite3.Connection, session: ConsoleSession) -> None:
    conn.execute(
        "INSERT INTO console_sessions (id, username, csrf_token, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)",
        (session.id, session.username, session.csrf_token, session.created_at, session.last_seen_at),
    )


def _console_session(conn: sqlite3.Connection, session_id: str) -> ConsoleSession | None:
    row = conn.execute(
        "SELECT id, username, csrf_token, created_at, last_seen_at FROM console_sessions WHERE id = ?", (session_id,)
    ).fetchone()
    return ConsoleSession(*row) if row else None


def _touch_console_session(conn: sqlite3.Connection, session_id: str, now: float) -> None:
    conn.execute("UPDATE console_sessions SET last_seen_at = ? WHERE id = ?", (now, session_id))


def _end_console_sessions(conn: sqlite3.Connection, session_id: str | None, username: str | None,
                          idle_before: float | None, created_before: float | None) -> int:
    clauses, params = [], []
    for clause, value in (("id = ?", session_id), ("username = ?", username), ("last_seen_at < ?", idle_before),
                          ("created_at < ?", created_before)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if not clauses:
        return 0
    return conn.execute(f"DELETE FROM console_sessions WHERE {' OR '.join(clauses)}", params).rowcount


def _search_messages(conn: sqlite3.Connection, query: MessageQuery, before_seq: int | None,
                     limit: int) -> list[Message]:
    clauses, params = [], []
    for clause, value in (
        ("id = ?", query.message_id), ("correlation_id = ?", query.correlation_id), ("sender = ?", query.sender),
        ("recipient = ?", query.recipient), ("service = ?", query.service),
        ("state = ?", query.state.value if query.state else None), ("accepted_at >= ?", query.accepted_from),
        ("accepted_at < ?", query.accepted_until), ("seq < ?", before_seq),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages {where} ORDER BY seq DESC LIMIT ?", (*params, limit)
    ).fetchall()
    return [_message(row) for row in rows]


def _delivered_since(conn: sqlite3.Connection, since: float) -> dict[str, int]:
    rows = conn.execute(
        "SELECT recipient, count(*) FROM messages WHERE state = 'delivered' AND delivered_at >= ? GROUP BY recipient",
        (since,),
    ).fetchall()
    return dict(rows)
