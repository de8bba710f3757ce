"""The shared store: PostgreSQL through psycopg 3, for several gateway instances.

Observable behaviour is the SQLite store's (the contract tests in
``tests/store`` run against both). What differs is that several processes
write at once, so each rule that a single writer thread made trivial is made
safe here explicitly:

- **Claims** lock due rows with ``FOR UPDATE SKIP LOCKED``: instances claiming
  for the same recipient take different messages and never wait for each other.
- **Per-key order.** A claim sees a message as due only if no earlier message of
  its (recipient, ordering key) is accepted or in flight *in the claim's
  snapshot*. A second instance cannot take the second message of a key while
  the first is being claimed: it skips the locked head, but in its snapshot the
  head is still accepted and so still holds back its successors. That argument
  needs one more thing, which a SEQUENCE alone does not give: per key, sequence
  numbers must become visible in order. Accept T1 draws seq 10, accept T2 draws
  11 and commits first; a claim takes 11; then 10 commits and is claimable while
  11 is in flight. So accepting a message with an ordering key first takes a
  transaction-scoped advisory lock on (schema, recipient, key), and per key each
  seq is drawn and committed before the next one is drawn. Accepts wait for
  each other only within one key, which carries one person's messages.
  Claims take no lock. Serialising them with an advisory lock per recipient was
  measured as the alternative: it does not close the race above by itself (no
  lock makes an uncommitted seq visible), and on top of the key locks it was
  10-30 % slower with many keys or none, faster only when many workers compete
  for the heads of a handful of keys — not this gateway's traffic, where keys
  are people and each instance has one claiming worker per recipient.
- **Idempotency**: ``INSERT ... ON CONFLICT DO NOTHING`` on ``inbound`` waits for
  a concurrent accept of the same (sender, client id), then yields to it.
- **Audit log**: appends lock ``audit_log`` in EXCLUSIVE mode (readers go on) and
  number from ``max(seq) + 1``: no gaps and no forks. A SEQUENCE would leave a
  gap at every rollback, and the Merkle leaf index is ``seq - 1``.
- **Timers** are claimed like messages and completed fenced by their attempt
  number, so each fires once across instances.
- **Wake-ups**: transactions that queue work ``NOTIFY gateway_work`` with the
  recipient; each instance LISTENs on a connection of its own.

Locks are always taken in one order — ordering-key locks by lock id, then the
audit log, then rows — so our own transactions never wait for each other in a
cycle. ``synchronous_commit`` is left on: a method returns after COMMIT, or
after the single statement it sent has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import structlog
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from gateway.store.base import (
    AcceptMessage,
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
    NewAuditEntry,
    NewMessage,
    SaveCase,
    ScheduleTimer,
    StoreError,
    Timer,
    TreeHead,
)

log = structlog.get_logger(__name__)

# Each entry brings the schema from version i to i + 1. Never edit a released
# entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE messages (
        seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id                text             NOT NULL UNIQUE,
        sender            text             NOT NULL,
        client_message_id text,
        recipient         text             NOT NULL,
        service           text             NOT NULL,
        correlation_id    text             NOT NULL,
        purpose           text,
        ordering_key      text,
        content_type      text             NOT NULL,
        body              bytea            NOT NULL,
        state             text             NOT NULL,
        attempts          integer          NOT NULL DEFAULT 0,
        max_attempts      integer          NOT NULL,
        accepted_at       double precision NOT NULL,
        next_attempt_at   double precision NOT NULL,
        deadline_at       double precision NOT NULL,
        updated_at        double precision NOT NULL,
        delivered_at      double precision,
        lease_owner       text,
        lease_until       double precision,
        last_error        text,
        last_status       integer,
        replays           integer          NOT NULL DEFAULT 0
    );
    CREATE INDEX messages_queue ON messages (recipient, state, seq);
    CREATE INDEX messages_due ON messages (recipient, state, next_attempt_at);
    -- Only pending messages hold back their successors: indexing just those keeps
    -- the ordering check cheap however many delivered messages a key has.
    CREATE INDEX messages_order ON messages (recipient, ordering_key, seq)
        WHERE ordering_key IS NOT NULL AND state IN ('accepted', 'in_flight');
    CREATE INDEX messages_lease ON messages (state, lease_until);
    CREATE INDEX messages_sender ON messages (sender, seq);

    -- Inbound de-duplication outlives the message itself (see purge_delivered).
    CREATE TABLE inbound (
        sender            text             NOT NULL,
        client_message_id text             NOT NULL,
        message_id        text             NOT NULL,
        received_at       double precision NOT NULL,
        PRIMARY KEY (sender, client_message_id)
    );
    CREATE INDEX inbound_age ON inbound (received_at);

    CREATE TABLE attempts (
        message_id  text             NOT NULL,
        number      integer          NOT NULL,
        started_at  double precision NOT NULL,
        finished_at double precision NOT NULL,
        outcome     text             NOT NULL,
        status      integer,
        error       text,
        PRIMARY KEY (message_id, number)
    );

    -- data is the JSON text as written, like SQLite's: jsonb would re-serialise it.
    CREATE TABLE cases (
        kind        text             NOT NULL,
        id          text             NOT NULL,
        state       text             NOT NULL,
        data        text             NOT NULL,
        version     integer          NOT NULL,
        subject_key text,
        created_at  double precision NOT NULL,
        updated_at  double precision NOT NULL,
        PRIMARY KEY (kind, id)
    );
    CREATE INDEX cases_state ON cases (kind, state, id);
    CREATE INDEX cases_subject ON cases (kind, subject_key);

    CREATE TABLE timers (
        id          text             PRIMARY KEY,
        case_kind   text             NOT NULL,
        case_id     text             NOT NULL,
        name        text             NOT NULL,
        fire_at     double precision NOT NULL,
        payload     text             NOT NULL,
        attempts    integer          NOT NULL DEFAULT 0,
        lease_owner text,
        lease_until double precision
    );
    CREATE INDEX timers_due ON timers (fire_at);

    CREATE TABLE audit_log (
        seq         bigint           PRIMARY KEY,
        entry       bytea            NOT NULL,
        subject_key text,
        recorded_at double precision NOT NULL
    );
    CREATE INDEX audit_subject ON audit_log (subject_key, seq) WHERE subject_key IS NOT NULL;

    CREATE TABLE audit_tree_heads (
        size      bigint           PRIMARY KEY,
        root      bytea            NOT NULL,
        signed_at double precision NOT NULL,
        signature bytea            NOT NULL
    );
    """,
    # 2: the recipient's answer (a court's receipt) is kept; replays restore the first budget.
    """
    ALTER TABLE messages ADD COLUMN answer BYTEA;
    ALTER TABLE messages ADD COLUMN attempt_budget INTEGER;
    UPDATE messages SET attempt_budget = max_attempts;
    """,
    # 3: answers to inbound messages that are not relayed (RecordInbound).
    """
    ALTER TABLE inbound ADD COLUMN answer BYTEA;
    """,
    # 4: the console's accounts (people, not members) and their server-side sessions.
    """
    CREATE TABLE console_accounts (
        username      text PRIMARY KEY,
        role          text NOT NULL,
        password_hash text NOT NULL,
        display_name  text NOT NULL,
        office        text,
        region        text,
        disabled      boolean NOT NULL DEFAULT false,
        created_at    double precision NOT NULL
    );
    CREATE TABLE console_sessions (
        id           text PRIMARY KEY,
        username     text NOT NULL REFERENCES console_accounts (username),
        csrf_token   text NOT NULL,
        created_at   double precision NOT NULL,
        last_seen_at double precision NOT NULL
    );
    CREATE INDEX console_sessions_user ON console_sessions (username);
    CREATE INDEX messages_correlation ON messages (correlation_id);
    """,
)

# Delivery workers of every instance wake on this channel; the payload is the recipient.
_WORK_CHANNEL = "gateway_work"
# The LISTEN connection, when lost, is retried after these many seconds, doubling up to the last.
_LISTEN_RETRY_FIRST, _LISTEN_RETRY_LAST = 0.1, 5.0
# libpq waits for ever on a host that drops packets; these bound open() and notice a dead LISTEN peer.
_CONNECT_DEFAULTS = {"connect_timeout": "10", "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3"}

_MESSAGE_COLUMNS = (
    "id, seq, sender, recipient, service, body, content_type, correlation_id, client_message_id, "
    "purpose, ordering_key, state, attempts, max_attempts, accepted_at, next_attempt_at, "
    "deadline_at, updated_at, delivered_at, last_error, last_status, replays, answer"
)
_MESSAGE_WIDTH = len(_MESSAGE_COLUMNS.split(","))
_CASE_COLUMNS = "kind, id, state, data, version, subject_key, created_at, updated_at"
_TIMER_COLUMNS = "id, case_kind, case_id, name, fire_at, payload, attempts"
# The console's accounts (migration 4).
_ACCOUNT_COLUMNS = "username, role, password_hash, display_name, office, region, disabled, created_at"



def _qualified(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


# The casts type the parameters, which INSERT ... SELECT does not infer from the columns.
_NEW_MESSAGE = """
    INSERT INTO messages (id, sender, client_message_id, recipient, service, correlation_id,
        purpose, ordering_key, content_type, body, state, max_attempts, attempt_budget, accepted_at,
        next_attempt_at, deadline_at, updated_at)
    SELECT %(id)s::text, %(sender)s::text, %(client_message_id)s::text, %(recipient)s::text,
        %(service)s::text, %(correlation_id)s::text, %(purpose)s::text, %(ordering_key)s::text,
        %(content_type)s::text, %(body)s::bytea, 'accepted', %(max_attempts)s::integer,
        %(max_attempts)s::integer, %(now)s::float8, %(now)s::float8, %(deadline_at)s::float8, %(now)s::float8
"""
# The NOTIFY is sent at COMMIT; the RETURNING clause is where it is sure to run once per row.
_RETURNING_NOTIFIED = f"RETURNING {_MESSAGE_COLUMNS}, pg_notify('{_WORK_CHANNEL}', recipient)"
_STORE_MESSAGE = _NEW_MESSAGE + _RETURNING_NOTIFIED
# Stored only if this (sender, client id) is new. One statement: the idempotency
# record and the message commit together without a BEGIN ... COMMIT round trip.
_STORE_MESSAGE_ONCE = (
    "WITH first_use AS ("
    " INSERT INTO inbound (sender, client_message_id, message_id, received_at)"
    " VALUES (%(sender)s, %(client_message_id)s, %(id)s, %(now)s)"
    " ON CONFLICT DO NOTHING RETURNING message_id)"
    + _NEW_MESSAGE + " FROM first_use " + _RETURNING_NOTIFIED
)

_EXPIRE_LEASES = """
    WITH expired AS (
        SELECT seq FROM messages
         WHERE recipient = %(recipient)s AND state = 'in_flight' AND lease_until <= %(now)s
           FOR UPDATE SKIP LOCKED)
    UPDATE messages AS m
       SET state = 'accepted', lease_owner = NULL, lease_until = NULL,
           last_error = 'lease expired before the attempt finished', updated_at = %(now)s
      FROM expired WHERE m.seq = expired.seq
"""

# A message is held back while an earlier one of its (recipient, key) is pending,
# or while any one of them is in flight (a replayed head must not travel beside
# its successor).
_NOT_HELD_BACK = """
    (m.ordering_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM messages AS p
         WHERE p.recipient = m.recipient AND p.ordering_key = m.ordering_key AND p.seq <> m.seq
           AND (p.state = 'in_flight' OR (p.seq < m.seq AND p.state = 'accepted'))))
"""

_CLAIM = f"""
    WITH due AS (
        SELECT m.seq FROM messages AS m
         WHERE m.recipient = %(recipient)s AND m.state = 'accepted' AND m.next_attempt_at <= %(now)s
           AND {_NOT_HELD_BACK}
         ORDER BY m.seq
         LIMIT %(limit)s
           FOR UPDATE OF m SKIP LOCKED)
    UPDATE messages AS m
       SET state = 'in_flight', attempts = m.attempts + 1,
           lease_owner = %(owner)s, lease_until = %(lease_until)s, updated_at = %(now)s
      FROM due WHERE m.seq = due.seq
    RETURNING {_qualified(_MESSAGE_COLUMNS, "m")}
"""

# Both outcomes in one statement: the attempt is logged only if the fence let the update through.
_RECORD_OUTCOME = """
    WITH finished AS (
        UPDATE messages
           SET state = %(state)s, delivered_at = %(delivered_at)s, answer = %(answer)s,
               next_attempt_at = coalesce(%(next_attempt_at)s, next_attempt_at),
               updated_at = %(now)s, last_error = %(error)s, last_status = %(status)s,
               lease_owner = NULL, lease_until = NULL, max_attempts = max_attempts + %(extra_attempts)s
         WHERE id = %(id)s AND attempts = %(attempt)s AND state = 'in_flight'
        RETURNING id)
    INSERT INTO attempts (message_id, number, started_at, finished_at, outcome, status, error)
    SELECT id, %(attempt)s::integer, %(started_at)s::float8, %(now)s::float8, %(outcome)s::text,
           %(status)s::integer, %(error)s::text
      FROM finished
    ON CONFLICT (message_id, number) DO UPDATE
       SET started_at = excluded.started_at, finished_at = excluded.finished_at,
           outcome = excluded.outcome, status = excluded.status, error = excluded.error
"""

# A message held back by an earlier one of its key is not due at its next_attempt_at:
# counting it would wake a worker that finds nothing to claim, again and again.
_NEXT_DUE = f"""
    SELECT min(t) FROM (
        SELECT min(m.next_attempt_at) AS t FROM messages AS m
         WHERE m.recipient = %(recipient)s AND m.state = 'accepted' AND {_NOT_HELD_BACK}
        UNION ALL
        SELECT min(lease_until) FROM messages WHERE recipient = %(recipient)s AND state = 'in_flight'
    ) AS due
"""


def _message(row: Sequence[Any]) -> Message:
    values = list(row[:_MESSAGE_WIDTH])  # a trailing pg_notify() column is dropped
    values[11] = MessageState(values[11])
    return Message(*values)


def _case(row: Sequence[Any]) -> Case:
    kind, case_id, state, data, version, subject_key, created_at, updated_at = row
    return Case(kind, case_id, state, json.loads(data), version, created_at, updated_at, subject_key)


def _timer(row: Sequence[Any]) -> Timer:
    timer_id, case_kind, case_id, name, fire_at, payload, attempts = row
    return Timer(timer_id, case_kind, case_id, name, fire_at, json.loads(payload), attempts)


def _split_url(url: str) -> tuple[str, str]:
    """The libpq connection string and the schema named by ``?schema=`` (default public)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in reversed(query) if key == "schema"), "public")
    if not schema:
        raise StoreError(f"the store URL names an empty schema: {parts._replace(query='').geturl()}?schema=")
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    conninfo = urlunsplit(parts._replace(query=rest))
    options = conninfo_to_dict(conninfo)
    return make_conninfo(conninfo, **{k: v for k, v in _CONNECT_DEFAULTS.items() if k not in options}), schema


class PostgresStore:
    """``Store`` on a PostgreSQL database shared by gateway instances. See the module docstring."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self._conninfo, self._schema = _split_url(url)
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        self._listener: asyncio.Task | None = None
        self._work_listeners: list[Callable[[str], None]] = []
        # This instance's pooled connections by backend pid: their NOTIFYs come back
        # through LISTEN, and the local commit has already woken the workers.
        self._own_backends: weakref.WeakValueDictionary[int, psycopg.AsyncConnection] = weakref.WeakValueDictionary()

    # -- lifecycle

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                await self._migrate(conn)
            # LISTEN before open() returns: work committed by another instance from
            # now on wakes this one.
            listening = await self._listen_connection()
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL store: {exc}") from exc
        pool = AsyncConnectionPool(
            self._conninfo, min_size=2, max_size=self._pool_size, open=False,
            configure=self._configure_pooled, kwargs={"autocommit": True}, name="gateway-store",
        )
        try:
            await pool.open(wait=True)
        except psycopg.Error as exc:
            await listening.close()
            await pool.close()
            raise StoreError(f"cannot open the PostgreSQL store's connection pool: {exc}") from exc
        self._pool = pool
        self._listener = asyncio.create_task(self._listen(listening), name="postgres-store-listen")

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, listener, self._pool, self._listener = self._pool, self._listener, None, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        await pool.close()

    async def ping(self) -> None:
        await self._rows("SELECT 1")

    def on_new_work(self, callback: Callable[[str], None]) -> None:
        self._work_listeners.append(callback)

    def _announce(self, recipients: Iterable[str]) -> None:
        for recipient in set(recipients):
            for callback in self._work_listeners:
                callback(recipient)

    def _announce_accepted(self, results: Iterable[Any]) -> None:
        self._announce(
            result.message.recipient
            for result in results
            if isinstance(result, Acceptance) and not result.duplicate
        )

    async def _configure(self, conn: psycopg.AsyncConnection) -> None:
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))

    async def _configure_pooled(self, conn: psycopg.AsyncConnection) -> None:
        await self._configure(conn)
        self._own_backends[conn.info.backend_pid] = conn

    def _sent_here(self, notification: psycopg.Notify) -> bool:
        # A closed connection's pid may be reused by another instance's backend.
        own = self._own_backends.get(notification.pid)
        return own is not None and not own.closed

    async def _migrate(self, conn: psycopg.AsyncConnection) -> None:
        async with conn.transaction():
            # Instances starting together take turns; the lock goes with the COMMIT.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"migrate\x1f{self._schema}",)
            )
            # CREATE SCHEMA IF NOT EXISTS checks the CREATE privilege even when the
            # schema exists: look first, so a role without it can use a prepared schema.
            cur = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self._schema,))
            if await cur.fetchone() is None:
                await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self._schema)))
            await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(self._schema)))
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
            version = row[0] if row else 0
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"the database schema is version {version}, newer than this gateway "
                    f"knows ({len(MIGRATIONS)}): upgrade the gateway"
                )
            for script in MIGRATIONS[version:]:
                await conn.execute(script)
            if row is None:
                await conn.execute("INSERT INTO schema_version VALUES (%s)", (len(MIGRATIONS),))
            else:
                await conn.execute("UPDATE schema_version SET version = %s", (len(MIGRATIONS),))

    # -- wake-ups from other instances

    async def _listen_connection(self) -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, application_name=f"gateway-listen:{self._schema}"[:63]
        )
        try:
            await self._configure(conn)
            await conn.execute(f"LISTEN {_WORK_CHANNEL}")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _listen(self, conn: psycopg.AsyncConnection | None) -> None:
        """Call the work callbacks for every NOTIFY, reconnecting while the store is open."""
        delay = _LISTEN_RETRY_FIRST
        while True:
            if conn is None:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _LISTEN_RETRY_LAST)
                try:
                    conn = await self._listen_connection()
                    # Notifications sent while the connection was down are lost: wake every
                    # recipient with queued work instead (after LISTEN, so nothing slips between).
                    cur = await conn.execute("SELECT DISTINCT recipient FROM messages WHERE state = 'accepted'")
                    backlog = [recipient for (recipient,) in await cur.fetchall()]
                except psycopg.Error as exc:
                    log.warning("store wake-up channel still down", error=str(exc), retry_in=delay)
                    if conn is not None:
                        await conn.close()
                        conn = None
                    continue
                delay = _LISTEN_RETRY_FIRST
                self._wake(backlog)
            try:
                async with conn:
                    async for notification in conn.notifies():
                        if not self._sent_here(notification):
                            self._wake([notification.payload])
            except psycopg.Error as exc:
                log.warning("store wake-up channel lost, reconnecting", error=str(exc))
            conn = None

    def _wake(self, recipients: Iterable[str]) -> None:
        try:
            self._announce(recipients)
        except Exception as exc:  # a callback's bug must not stop the wake-ups
            log.error("work callback failed", error=str(exc))

    # -- connections

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection in autocommit mode: each statement commits on its own."""
        if self._pool is None:
            raise StoreError("the store is not open")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            state = f" [{exc.sqlstate}]" if exc.sqlstate else ""
            raise StoreError(f"PostgreSQL store{state}: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        async with self._connection() as conn, conn.transaction():
            yield conn

    async def _rows(self, query: str, params: Any = None) -> list[tuple]:
        async with self._connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def _rowcount(self, query: str, params: Any = None) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(query, params)
            return cur.rowcount

    # -- commands

    async def apply(self, commands: Sequence[Command], now: float) -> list[Any]:
        commands = list(commands)
        async with self._transaction() as conn:
            await _lock_for(conn, self._schema, commands)
            results = [await _apply_one(conn, command, now) for command in commands]
        self._announce_accepted(results)
        return results

    async def accept(self, message: NewMessage, now: float) -> Acceptance:
        if message.ordering_key is None:
            # The hot path: one statement, committed when it returns, one round trip.
            async with self._connection() as conn:
                acceptance = await _accept(conn, message, now)
        else:
            async with self._transaction() as conn:
                await _lock_for(conn, self._schema, [AcceptMessage(message)])
                acceptance = await _accept(conn, message, now)
        if not acceptance.duplicate:
            self._announce([message.recipient])
        return acceptance

    # -- outbox

    async def get_message(self, message_id: str) -> Message | None:
        async with self._connection() as conn:
            return await _get_message(conn, message_id)

    async def find_message(self, sender: str, client_message_id: str) -> Message | None:
        async with self._connection() as conn:
            return await _find_message(conn, sender, client_message_id)

    async def find_inbound(self, sender: str, key: str) -> bytes | None:
        rows = await self._rows(
            "SELECT answer FROM inbound WHERE sender = %s AND client_message_id = %s AND answer IS NOT NULL",
            (sender, key),
        )
        return bytes(rows[0][0]) if rows else None

    async def claim(
        self, recipient: str, limit: int, now: float, lease_seconds: float, owner: str
    ) -> list[Message]:
        params = {"recipient": recipient, "now": now, "limit": limit, "owner": owner, "lease_until": now + lease_seconds}
        async with self._transaction() as conn:
            # A lease that ran out belongs to a worker that died mid-delivery: the
            # message is due again (the attempt it started still counts).
            await conn.execute(_EXPIRE_LEASES, params)
            rows = await (await conn.execute(_CLAIM, params)).fetchall()
        return sorted((_message(row) for row in rows), key=lambda m: m.seq)

    async def record_delivered(
        self, message_id: str, attempt: int, started_at: float, now: float, status: int, answer: bytes = b"",
        audit: Sequence[NewAuditEntry] = (),
    ) -> bool:
        return await self._record_outcome(
            message_id, attempt, started_at, now, state=MessageState.DELIVERED, outcome="delivered",
            delivered_at=now, next_attempt_at=None, error=None, status=status, answer=answer or None, audit=audit,
            extra_attempts=0,
        )

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
        dead = retry_at is None
        return await self._record_outcome(
            message_id, attempt, started_at, now,
            state=MessageState.DEAD if dead else MessageState.ACCEPTED, outcome="dead" if dead else "retry",
            delivered_at=None, next_attempt_at=now if dead else retry_at, error=error, status=status, answer=None,
            audit=audit, extra_attempts=0 if counted else 1,
        )

    async def _record_outcome(
        self, message_id: str, attempt: int, started_at: float, now: float, *, state: MessageState,
        outcome: str, delivered_at: float | None, next_attempt_at: float | None, error: str | None,
        status: int | None, answer: bytes | None, audit: Sequence[NewAuditEntry], extra_attempts: int,
    ) -> bool:
        params = {
            "extra_attempts": extra_attempts,
            "id": message_id, "attempt": attempt, "started_at": started_at, "now": now,
            "state": state.value, "outcome": outcome, "delivered_at": delivered_at,
            "next_attempt_at": next_attempt_at, "error": error, "status": status, "answer": answer,
        }
        if not audit:
            return await self._rowcount(_RECORD_OUTCOME, params) > 0
        async with self._transaction() as conn:
            await _lock_for(conn, self._schema, [AppendAudit(audit)])
            recorded = (await conn.execute(_RECORD_OUTCOME, params)).rowcount > 0
            if recorded:
                await _append_audit(conn, audit, now)
        return recorded

    async def next_due(self, recipient: str) -> float | None:
        (row,) = await self._rows(_NEXT_DUE, {"recipient": recipient})
        return row[0]

    async def list_messages(
        self,
        *,
        state: MessageState | None = None,
        recipient: str | None = None,
        sender: str | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[Message]:
        clauses, params = ["seq > %s"], [after_seq]
        for column, value in (("state", state.value if state else None), ("recipient", recipient), ("sender", sender)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        rows = await self._rows(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT %s",
            (*params, limit),
        )
        return [_message(row) for row in rows]

    async def attempts(self, message_id: str) -> list[Attempt]:
        rows = await self._rows(
            "SELECT message_id, number, started_at, finished_at, outcome, status, error "
            "FROM attempts WHERE message_id = %s ORDER BY number",
            (message_id,),
        )
        return [Attempt(*row) for row in rows]

    async def replay(self, message_ids: Sequence[str], now: float, deadline_at: float) -> list[str]:
        # attempts is kept: it numbers the attempt log and fences stale workers.
        rows = await self._rows(
            "UPDATE messages SET state = 'accepted', next_attempt_at = %s, deadline_at = %s, "
            "max_attempts = attempts + attempt_budget, replays = replays + 1, updated_at = %s "
            f"WHERE id = ANY(%s) AND state = 'dead' RETURNING id, recipient, pg_notify('{_WORK_CHANNEL}', recipient)",
            (now, deadline_at, now, list(message_ids)),
        )
        self._announce(recipient for _, recipient, _ in rows)
        replayed = {message_id for message_id, _, _ in rows}
        return list(dict.fromkeys(message_id for message_id in message_ids if message_id in replayed))

    async def counts(self) -> dict[tuple[str, MessageState], int]:
        rows = await self._rows(
            "SELECT recipient, state, count(*) FROM messages "
            "WHERE state IN ('accepted', 'in_flight', 'dead') GROUP BY recipient, state"
        )
        return {(recipient, MessageState(state)): count for recipient, state, count in rows}

    async def purge_delivered(self, before: float, limit: int = 10_000) -> int:
        return await self._rowcount(
            """
            WITH doomed AS (
                SELECT id FROM messages WHERE state = 'delivered' AND delivered_at < %s
                 ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED),
            forgotten_attempts AS (
                DELETE FROM attempts WHERE message_id IN (SELECT id FROM doomed))
            DELETE FROM messages WHERE id IN (SELECT id FROM doomed)
            """,
            (before, limit),
        )

    async def purge_inbound(self, before: float, limit: int = 10_000) -> int:
        return await self._rowcount(
            """
            DELETE FROM inbound AS i USING (
                SELECT sender, client_message_id FROM inbound AS o
                 WHERE o.received_at < %s
                   AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.id = o.message_id)
                 LIMIT %s FOR UPDATE SKIP LOCKED) AS doomed
             WHERE i.sender = doomed.sender AND i.client_message_id = doomed.client_message_id
            """,
            (before, limit),
        )

    # -- workflows

    async def get_case(self, kind: str, case_id: str) -> Case | None:
        rows = await self._rows(f"SELECT {_CASE_COLUMNS} FROM cases WHERE kind = %s AND id = %s", (kind, case_id))
        return _case(rows[0]) if rows else None

    async def list_cases(
        self,
        kind: str,
        *,
        state: str | None = None,
        subject_key: str | None = None,
        after_id: str = "",
        limit: int = 100,
    ) -> list[Case]:
        clauses, params = ["kind = %s", "id > %s"], [kind, after_id]
        for column, value in (("state", state), ("subject_key", subject_key)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        rows = await self._rows(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE {' AND '.join(clauses)} ORDER BY id LIMIT %s",
            (*params, limit),
        )
        return [_case(row) for row in rows]

    async def claim_timers(self, now: float, limit: int, lease_seconds: float, owner: str) -> list[Timer]:
        rows = await self._rows(
            f"""
            WITH due AS (
                SELECT id FROM timers
                 WHERE fire_at <= %(now)s AND (lease_until IS NULL OR lease_until <= %(now)s)
                 ORDER BY fire_at, id LIMIT %(limit)s
                   FOR UPDATE SKIP LOCKED)
            UPDATE timers AS t SET attempts = t.attempts + 1, lease_owner = %(owner)s, lease_until = %(lease_until)s
              FROM due WHERE t.id = due.id
            RETURNING {_qualified(_TIMER_COLUMNS, "t")}
            """,
            {"now": now, "limit": limit, "owner": owner, "lease_until": now + lease_seconds},
        )
        return sorted((_timer(row) for row in rows), key=lambda t: (t.fire_at, t.id))

    async def complete_timer(
        self, timer_id: str, attempts: int, commands: Sequence[Command], now: float
    ) -> bool:
        commands = list(commands)
        async with self._transaction() as conn:
            await _lock_for(conn, self._schema, commands)
            cur = await conn.execute(
                "DELETE FROM timers WHERE id = %s AND attempts = %s AND lease_until IS NOT NULL",
                (timer_id, attempts),
            )
            if not cur.rowcount:
                return False
            results = [await _apply_one(conn, command, now) for command in commands]
        self._announce_accepted(results)
        return True

    # -- audit log

    async def audit_size(self) -> int:
        (row,) = await self._rows("SELECT coalesce(max(seq), 0) FROM audit_log")
        return row[0]

    async def read_audit(self, start_seq: int = 1, limit: int = 1000) -> list[AuditRecord]:
        rows = await self._rows(
            "SELECT seq, entry, recorded_at, subject_key FROM audit_log WHERE seq >= %s ORDER BY seq LIMIT %s",
            (start_seq, limit),
        )
        return [AuditRecord(*row) for row in rows]

    async def audit_by_subject(self, subject_key: str, limit: int = 1000) -> list[AuditRecord]:
        rows = await self._rows(
            "SELECT seq, entry, recorded_at, subject_key FROM audit_log WHERE subject_key = %s ORDER BY seq LIMIT %s",
            (subject_key, limit),
        )
        return [AuditRecord(*row) for row in rows]

    async def save_tree_head(self, head: TreeHead) -> None:
        await self._rowcount(
            "INSERT INTO audit_tree_heads (size, root, signed_at, signature) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (size) DO NOTHING",
            (head.size, head.root, head.signed_at, head.signature),
        )

    # -- console accounts and sessions (migration 4): one block

    async def add_console_account(self, account: ConsoleAccount) -> None:
        added = await self._rowcount(
            f"INSERT INTO console_accounts ({_ACCOUNT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (username) DO NOTHING",
            (account.username, account.role, account.password_hash, account.display_name, account.office,
             account.region, account.disabled, account.created_at),
        )
        if added != 1:
            raise ConflictError(f"an account named {account.username!r} already exists")

    async def console_account(self, username: str) -> ConsoleAccount | None:
        rows = await self._rows(f"SELECT {_ACCOUNT_COLUMNS} FROM console_accounts WHERE username = %s", (username,))
        return ConsoleAccount(*rows[0]) if rows else None

    async def console_accounts(self) -> list[ConsoleAccount]:
        rows = await self._rows(f"SELECT {_ACCOUNT_COLUMNS} FROM console_accounts ORDER BY username")
        return [ConsoleAccount(*row) for row in rows]

    async def update_console_account(self, username: str, *, password_hash: str | None = None,
                                     disabled: bool | None = None) -> bool:
        changed = await self._rowcount(
            "UPDATE console_accounts SET password_hash = coalesce(%s, password_hash), "
            "disabled = coalesce(%s, disabled) WHERE username = %s",
            (password_hash, disabled, username),
        )
        return changed == 1

    async def add_console_session(self, session: ConsoleSession) -> None:
        await self._rowcount(
            "INSERT INTO console_sessions (id, username, csrf_token, created_at, last_seen_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (session.id, session.username, session.csrf_token, session.created_at, session.last_seen_at),
        )

    async def console_session(self, session_id: str) -> ConsoleSession | None:
        rows = await self._rows(
            "SELECT id, username, csrf_token, created_at, last_seen_at FROM console_sessions WHERE id = %s",
            (session_id,),
        )
        return ConsoleSession(*rows[0]) if rows else None

    async def touch_console_session(self, session_id: str, now: float) -> None:
        await self._rowcount("UPDATE console_sessions SET last_seen_at = %s WHERE id = %s", (now, session_id))

    async def end_console_sessions(self, *, session_id: str | None = None, username: str | None = None,
                                   idle_before: float | None = None, created_before: float | None = None) -> int:
        clauses, params = [], []
        for clause, value in (("id = %s", session_id), ("username = %s", username),
                              ("last_seen_at < %s", idle_before), ("created_at < %s", created_before)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if not clauses:
            return 0
        return await self._rowcount(f"DELETE FROM console_sessions WHERE {' OR '.join(clauses)}", params)

    async def search_messages(self, query: MessageQuery, *, before_seq: int | None = None,
                              limit: int = 50) -> list[Message]:
        clauses, params = [], []
        for clause, value in (
            ("id = %s", query.message_id), ("correlation_id = %s", query.correlation_id),
            ("sender = %s", query.sender), ("recipient = %s", query.recipient), ("service = %s", query.service),
            ("state = %s", query.state.value if query.state else None), ("accepted_at >= %s", query.accepted_from),
            ("accepted_at < %s", query.accepted_until), ("seq < %s", before_seq),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._rows(f"SELECT {_MESSAGE_COLUMNS} FROM messages {where} ORDER BY seq DESC LIMIT %s",
                                (*params, limit))
        return [_message(row) for row in rows]

    async def delivered_since(self, since: float) -> dict[str, int]:
        rows = await self._rows(
            "SELECT recipient, count(*) FROM messages WHERE state = 'delivered' AND delivered_at >= %s "
            "GROUP BY recipient",
            (since,),
        )
        return {recipient: count for recipient, count in rows}

    # -- end of the console block

    async def tree_heads(self, after_size: int = 0, limit: int = 1000) -> list[TreeHead]:
        rows = await self._rows(
            "SELECT size, root, signed_at, signature FROM audit_tree_heads WHERE size > %s ORDER BY size LIMIT %s",
            (after_size, limit),
        )
        return [TreeHead(*row) for row in rows]


# ------------------------------------------------------------------ operations
# Functions of a connection, run inside the caller's transaction (or, for a
# single statement, in autocommit).


async def _lock_for(conn: psycopg.AsyncConnection, schema: str, commands: Sequence[Command]) -> None:
    """Take the locks ``commands`` need before touching any row, always in the
    same order: ordering keys by lock id, then the audit log."""
    keys = [
        f"order\x1f{schema}\x1f{command.message.recipient}\x1f{command.message.ordering_key}"
        for command in commands
        if isinstance(command, AcceptMessage) and command.message.ordering_key is not None
    ]
    if keys:
        # Volatile functions in the select list run after ORDER BY: locks go in id order.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(lock_id) FROM ("
            " SELECT DISTINCT hashtextextended(key, 0) AS lock_id FROM unnest(%s::text[]) AS key"
            ") AS wanted ORDER BY lock_id",
            (keys,),
        )
    if any(isinstance(command, AppendAudit) or (isinstance(command, AcceptMessage) and command.audit)
           for command in commands):
        await conn.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")


async def _apply_one(conn: psycopg.AsyncConnection, command: Command, now: float) -> Any:
    match command:
        case AcceptMessage(message=message, audit=audit):
            acceptance = await _accept(conn, message, now)
            if audit and not acceptance.duplicate:
                await _append_audit(conn, audit, now)
            return acceptance
        case RecordInbound(sender=sender, key=key, answer=answer):
            # message_id '' names no message: the record is purged after the de-duplication period.
            cur = await conn.execute(
                "INSERT INTO inbound (sender, client_message_id, message_id, received_at, answer) "
                "VALUES (%s, %s, '', %s, %s) ON CONFLICT DO NOTHING",
                (sender, key, now, answer),
            )
            return cur.rowcount > 0
        case SaveCase():
            return await _save_case(conn, command, now)
        case ScheduleTimer(timer=timer):
            await conn.execute(
                "INSERT INTO timers (id, case_kind, case_id, name, fire_at, payload) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                "fire_at = excluded.fire_at, payload = excluded.payload, "
                "lease_owner = NULL, lease_until = NULL",
                (timer.id, timer.case_kind, timer.case_id, timer.name, timer.fire_at,
                 json.dumps(dict(timer.payload))),
            )
            return None
        case CancelTimer(timer_id=timer_id):
            cur = await conn.execute("DELETE FROM timers WHERE id = %s", (timer_id,))
            return cur.rowcount > 0
        case AppendAudit(entries=entries):
            return await _append_audit(conn, entries, now)
    raise TypeError(f"not a store command: {command!r}")


async def _accept(conn: psycopg.AsyncConnection, message: NewMessage, now: float) -> Acceptance:
    params = {
        "id": message.id or str(uuid.uuid4()), "sender": message.sender, "client_message_id": message.client_message_id,
        "recipient": message.recipient, "service": message.service, "correlation_id": message.correlation_id,
        "purpose": message.purpose, "ordering_key": message.ordering_key, "content_type": message.content_type,
        "body": message.body, "max_attempts": message.max_attempts, "deadline_at": message.deadline_at, "now": now,
    }
    if message.client_message_id is None:
        row = await (await conn.execute(_STORE_MESSAGE, params)).fetchone()
        return Acceptance(_message(row), duplicate=False)
    row = await (await conn.execute(_STORE_MESSAGE_ONCE, params)).fetchone()
    if row is not None:
        return Acceptance(_message(row), duplicate=False)
    # The id was taken — by a committed accept, which ON CONFLICT waited for if it was in progress.
    stored = await _find_message(conn, message.sender, message.client_message_id)
    if stored is not None:
        return Acceptance(stored, duplicate=True)
    raise ConflictError(
        f"message id {message.client_message_id!r} was used before and its message "
        "has passed its retention period: use a new X-Message-Id"
    )


async def _get_message(conn: psycopg.AsyncConnection, message_id: str) -> Message | None:
    cur = await conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = %s", (message_id,))
    row = await cur.fetchone()
    return _message(row) if row else None


async def _find_message(conn: psycopg.AsyncConnection, sender: str, client_message_id: str) -> Message | None:
    cur = await conn.execute(
        f"SELECT {_qualified(_MESSAGE_COLUMNS, 'm')} "
        "FROM inbound AS i JOIN messages AS m ON m.id = i.message_id "
        "WHERE i.sender = %s AND i.client_message_id = %s",
        (sender, client_message_id),
    )
    row = await cur.fetchone()
    return _message(row) if row else None


async def _save_case(conn: psycopg.AsyncConnection, command: SaveCase, now: float) -> int:
    data = json.dumps(dict(command.data), ensure_ascii=False, sort_keys=True)
    if command.expected_version == 0:
        cur = await conn.execute(
            "INSERT INTO cases (kind, id, state, data, version, subject_key, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, 1, %s, %s, %s) ON CONFLICT (kind, id) DO NOTHING",
            (command.kind, command.id, command.state, data, command.subject_key, now, now),
        )
        if not cur.rowcount:
            raise ConflictError(f"{command.kind} {command.id} already exists")
        return 1
    cur = await conn.execute(
        "UPDATE cases SET state = %s, data = %s, version = version + 1, updated_at = %s, "
        "subject_key = coalesce(%s, subject_key) WHERE kind = %s AND id = %s AND version = %s",
        (command.state, data, now, command.subject_key, command.kind, command.id, command.expected_version),
    )
    if not cur.rowcount:
        raise ConflictError(f"{command.kind} {command.id} is not at version {command.expected_version}")
    return command.expected_version + 1


async def _append_audit(conn: psycopg.AsyncConnection, entries: Sequence[NewAuditEntry], now: float) -> list[int]:
    # _lock_for holds the table lock until COMMIT, and this statement's snapshot is
    # taken after it was granted: max(seq) is the last committed entry. One statement, not a
    # SELECT and an INSERT: every round trip here is spent holding the lock every audited
    # transaction of every instance waits for.
    if not entries:
        return []
    cur = await conn.execute(
        "INSERT INTO audit_log (seq, entry, subject_key, recorded_at) "
        "SELECT last.seq + n, entry, subject_key, %s "
        "FROM (SELECT coalesce(max(seq), 0) AS seq FROM audit_log) AS last, "
        "unnest(%s::bytea[], %s::text[]) WITH ORDINALITY AS new(entry, subject_key, n) "
        "RETURNING seq",
        (now, [entry.entry for entry in entries], [entry.subject_key for entry in entries]),
    )
    return sorted(seq for (seq,) in await cur.fetchall())
