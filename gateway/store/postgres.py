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
- **Audit log**: an audited transaction takes no lock for its entries: it adds them,
  as one row, to ``audit_pending``, which commits or rolls back with the disclosure.
  A sequencing round moves every committed pending row into ``audit_log``, numbered
  from ``max(seq) + 1`` in pending order, as one batch whose last entry carries the
  size the log reaches (``tree_size``): no gaps and no forks, because a round runs only while it holds
  a transaction-scoped advisory lock of the schema's audit log (whichever instance gets
  it; an instance that finds it taken tries again a few milliseconds later instead of
  queueing behind it). A SEQUENCE would leave a gap at every rollback, and the
  Merkle leaf index is ``seq - 1``. Each instance runs a round shortly after its own
  audited commits, at once for a caller that needs the numbers (``AppendAudit``'s
  result), and every second in case an instance died with entries pending: a
  committed entry is never lost, only numbered by the next round of any instance.
- **Group commit**: writes that arrive together run in one transaction on one
  connection and commit once (one WAL flush), as SQLite's writer does; nobody hears
  "stored" before that COMMIT. If one of them fails, the transaction is rolled back
  and each write is run again on its own, so it fails alone. A COMMIT that fails
  leaves every write of the batch unknown, and each caller hears so (as for a
  single write whose COMMIT fails).
- **Timers** are claimed like messages and completed fenced by their attempt
  number, so each fires once across instances.
- **Wake-ups**: transactions that queue work NOTIFY the schema's channel (``_work_channel``)
  with the recipient; each instance LISTENs on a connection of its own. Locks and
  ``search_path`` are per schema, and so are wake-ups: stores in other schemas of the
  database do not hear them.

Locks are always taken in one order — ordering-key locks by lock id (for a whole
batch at once), then rows — so our own transactions never wait for each other in
a cycle on advisory locks; a deadlock on rows between two batches rolls one back, and its
writes are run again one by one. ``synchronous_commit`` is left on: a method returns after COMMIT, or
after the single statement it sent has committed.

The statements are ``gateway.store.sql``'s; this module holds the pool, the locks, the
wake-ups and the statements PostgreSQL writes its own way (claims with ``SKIP LOCKED``,
data-modifying CTEs that do in one round trip what SQLite does in several).
"""


from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import weakref
from dataclasses import dataclass
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import structlog
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from gateway.store.base import (
    Acceptance, AcceptMessage, AppendAudit, AuditRecord, Command, Message, NewAuditEntry, NewMessage, StoreError, Timer,
)
from gateway.store.sql import (
    FINISH_ATTEMPT, LOG_ATTEMPT, MESSAGE_COLUMNS, MIGRATIONS, NOT_HELD_BACK, TIMER_COLUMNS, Dialect, Fetch, Operation,
    SQLStore, Statement, message_of, new_message_params, qualified, resend, timer_of,
)

__all__ = ["MIGRATIONS", "PostgresStore"]

log = structlog.get_logger(__name__)

# Delivery workers of every instance on a schema wake on its channel; the payload is the recipient.
_WORK_CHANNEL_PREFIX = "gateway_work_"
# PostgreSQL cuts identifiers (schema and channel names) to NAMEDATALEN - 1 bytes; pg_notify()
# refuses a longer channel name.
_IDENTIFIER_BYTES = 63
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]+")
# The LISTEN connection, when lost, is retried after these many seconds, doubling up to the last.
_LISTEN_RETRY_FIRST, _LISTEN_RETRY_LAST = 0.1, 5.0
# libpq waits for ever on a host that drops packets; these bound open() and notice a dead LISTEN peer.
_ACQUIRE_TIMEOUT_SECONDS = 5.0
_CONNECT_DEFAULTS = {"connect_timeout": "10", "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3"}


def _work_channel(schema: str) -> str:
    """The NOTIFY channel of the stores on ``schema``: ``gateway_work_<schema>``.

    A schema name that would need quoting, or does not fit in an identifier beside the prefix,
    is replaced by a hash of the name as PostgreSQL keeps it (cut to 63 bytes, as schemas are):
    the channel is always a plain identifier of at most 63 bytes, the same for every instance.
    """
    name = schema.encode()[:_IDENTIFIER_BYTES].decode(errors="ignore")
    if _PLAIN_NAME.fullmatch(name) and len(_WORK_CHANNEL_PREFIX) + len(name) <= _IDENTIFIER_BYTES:
        return _WORK_CHANNEL_PREFIX + name
    return _WORK_CHANNEL_PREFIX + hashlib.blake2b(name.encode(), digest_size=16).hexdigest()


class PostgresDialect(Dialect):
    types = {
        "IDENTITY": "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "TEXT": "text", "BLOB": "bytea",
        "INTEGER": "integer", "BIGINT": "bigint", "REAL": "double precision",
        "BOOLEAN": "boolean", "FALSE": "false",
        "PENDING_ONLY": " AND state IN ('accepted', 'in_flight')",
        "DATE": "date", "WITHOUT_ROWID": "", "BLOB_ARRAY": "bytea[]", "TEXT_ARRAY": "text[]",
    }

    def __init__(self, channel: str, schema: str = "public") -> None:
        super().__init__()
        self.channel = channel
        self._sequencer_lock = f"audit-sequencer\x1f{schema}"
        # The NOTIFY is sent at COMMIT; the RETURNING clause is where it is sure to run once per row.
        self.notify = f", pg_notify('{channel}', recipient)"
        returning = f" RETURNING {MESSAGE_COLUMNS}{self.notify}"
        self._store_message = self.insert_message() + returning
        # Stored only if this (sender, client id) is new. One statement: the idempotency
        # record and the message commit together without a BEGIN ... COMMIT round trip.
        self._store_message_once = (
            "WITH first_use AS ("
            " INSERT INTO inbound (sender, client_message_id, message_id, received_at)"
            " VALUES (%(sender)s, %(client_message_id)s, %(id)s, %(now)s)"
            " ON CONFLICT DO NOTHING RETURNING message_id) "
            + self.insert_message() + " FROM first_use" + returning
        )
        # Both outcomes in one statement: the attempt is logged only if the fence let the update through.
        self._finish_attempt = self.render(
            f"WITH finished AS ({FINISH_ATTEMPT} RETURNING id) "
            + LOG_ATTEMPT.format(
                source="SELECT id, :attempt::integer, :started_at::float8, :now::float8, :outcome::text, "
                ":status::integer, :error::text FROM finished"
            )
        )

    def quarter_of(self, column: str) -> str:
        return f"to_char({column}, 'YYYY\"Q\"Q')"

    def render(self, text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: "%s" if m.group() == "?" else f"%({m.group(1)})s", text.replace("%", "%%"))

    def cast(self, type_name: str) -> str:
        # INSERT ... SELECT does not infer the parameters' types from the columns.
        return f"::{self.types[type_name]}"

    def members(self, column: str) -> str:
        return f"{column} = ANY(?)"

    def array(self, values: Sequence[Any]) -> Any:
        return list(values)

    def accept(self, message: NewMessage, now: float) -> Operation[Acceptance]:
        params = new_message_params(message, now)
        if message.client_message_id is None:
            return Acceptance(message_of((yield Statement(self._store_message, params, Fetch.ONE))), duplicate=False)
        row = yield Statement(self._store_message_once, params, Fetch.ONE)
        if row is not None:
            return Acceptance(message_of(row), duplicate=False)
        # The id was taken — by a committed accept, which ON CONFLICT waited for if it was in progress.
        return resend(message, (yield from self.find_message(message.sender, message.client_message_id)))

    def append_audit(self, entries: Sequence[NewAuditEntry], now: float) -> Operation[PendingAudit | list[int]]:
        # No lock and no number: one row that commits with the transaction; a sequencing round
        # numbers it (sequence_audit).
        if not entries:
            return []
        (pending_id,) = yield Statement(
            "INSERT INTO audit_pending (entries, subject_keys, recorded_at) VALUES (%s, %s, %s) RETURNING id",
            ([entry.entry for entry in entries], [entry.subject_key for entry in entries], now),
            Fetch.ONE,
        )
        return PendingAudit(pending_id)

    def sequence_audit(self, wanted: Sequence[int] = ()) -> Operation[dict[int, list[int]] | None]:
        """A sequencing round, in a transaction: number every committed pending row, in batches
        of at most ``_SEQUENCE_BATCH`` rows; the seqs of the ``wanted`` pending rows. None, and
        nothing done, while another round holds the log's lock: nobody queues behind it."""
        # The lock is granted before the next statement takes its snapshot: max(seq) is the
        # last entry any round numbered, and rows committed later wait for the next round.
        (locked,) = yield Statement(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", (self._sequencer_lock,), Fetch.ONE
        )
        if not locked:
            return None
        numbered: dict[int, list[int]] = {}
        while True:
            rows = yield Statement(_SEQUENCE, {"limit": _SEQUENCE_BATCH}, Fetch.ROWS)
            taken = {pending_id for pending_id, _ in rows}
            for pending_id, seq in rows:
                numbered.setdefault(pending_id, []).append(seq)
            if len(taken) < _SEQUENCE_BATCH:
                break
        # Numbered by another instance's round.
        elsewhere = [pending_id for pending_id in wanted if pending_id not in numbered]
        if elsewhere:
            rows = yield Statement(
                "SELECT pending_id, seq FROM audit_log WHERE pending_id = ANY(%s)", (elsewhere,), Fetch.ROWS
            )
            for pending_id, seq in rows:
                numbered.setdefault(pending_id, []).append(seq)
        return {pending_id: sorted(numbered[pending_id]) for pending_id in wanted if pending_id in numbered}

    def claim(
        self, recipient: str, limit: int, now: float, lease_seconds: float, owner: str
    ) -> Operation[list[Message]]:
        params = {"recipient": recipient, "now": now, "limit": limit, "owner": owner, "lease_until": now + lease_seconds}
        # A lease that ran out belongs to a worker that died mid-delivery: the
        # message is due again (the attempt it started still counts).
        yield Statement(_EXPIRE_LEASES, params)
        rows = yield Statement(_CLAIM, params, Fetch.ROWS)
        return sorted((message_of(row) for row in rows), key=lambda m: m.seq)

    def finish_attempt(self, params: Any) -> Operation[bool]:
        return (yield Statement(self._finish_attempt, params)) > 0

    def purge_delivered(self, before: float, limit: int) -> Operation[int]:
        return (yield Statement(
            """
            WITH doomed AS (
                SELECT id FROM messages WHERE state = 'delivered' AND delivered_at < %s
                 ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED),
            forgotten_attempts AS (
                DELETE FROM attempts WHERE message_id IN (SELECT id FROM doomed)),
            forgotten_evidence AS (
                DELETE FROM message_evidence WHERE message_id IN (SELECT id FROM doomed))
            DELETE FROM messages WHERE id IN (SELECT id FROM doomed)
            """,
            (before, limit),
        ))

    def purge_inbound(self, before: float, limit: int) -> Operation[int]:
        return (yield Statement(
            """
            DELETE FROM inbound AS i USING (
                SELECT sender, client_message_id FROM inbound AS o
                 WHERE o.received_at < %s
                   AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.id = o.message_id)
                 LIMIT %s FOR UPDATE SKIP LOCKED) AS doomed
             WHERE i.sender = doomed.sender AND i.client_message_id = doomed.client_message_id
            """,
            (before, limit),
        ))

    def claim_timers(self, now: float, limit: int, lease_seconds: float, owner: str) -> Operation[list[Timer]]:
        rows = yield Statement(
            f"""
            WITH due AS (
                SELECT id FROM timers
                 WHERE fire_at <= %(now)s AND (lease_until IS NULL OR lease_until <= %(now)s)
                 ORDER BY fire_at, id LIMIT %(limit)s
                   FOR UPDATE SKIP LOCKED)
            UPDATE timers AS t SET attempts = t.attempts + 1, lease_owner = %(owner)s, lease_until = %(lease_until)s
              FROM due WHERE t.id = due.id
            RETURNING {qualified(TIMER_COLUMNS, "t")}
            """,
            {"now": now, "limit": limit, "owner": owner, "lease_until": now + lease_seconds},
            Fetch.ROWS,
        )
        return sorted((timer_of(row) for row in rows), key=lambda t: (t.fire_at, t.id))


_PLACEHOLDER = re.compile(r"\?|(?<![:\w]):(\w+)")

# Pending rows a sequencing round numbers in one statement (one batch, one tree head).
_SEQUENCE_BATCH = 10_000
# One batch: the oldest pending rows, their entries in order, numbered after the last entry.
_SEQUENCE = """
    WITH taken AS (
        DELETE FROM audit_pending
         WHERE id IN (SELECT id FROM audit_pending ORDER BY id LIMIT %(limit)s)
        RETURNING id, entries, subject_keys, recorded_at),
    flat AS (
        SELECT t.id, e.entry, e.subject_key, t.recorded_at, row_number() OVER (ORDER BY t.id, e.n) AS r
          FROM taken AS t, unnest(t.entries, t.subject_keys) WITH ORDINALITY AS e (entry, subject_key, n)),
    last AS (SELECT coalesce(max(seq), 0) AS seq FROM audit_log),
    total AS (SELECT count(*) AS n FROM flat)
    INSERT INTO audit_log (seq, entry, subject_key, recorded_at, tree_size, pending_id)
    SELECT last.seq + flat.r, flat.entry, flat.subject_key, flat.recorded_at,
           CASE WHEN flat.r = total.n THEN last.seq + total.n END, flat.id
      FROM flat, last, total
    RETURNING pending_id, seq
"""
# How long a round waits for more audited commits when nobody waits for their numbers, and how
# often an idle instance looks for entries an instance that died left pending.
_SEQUENCE_PAUSE_SECONDS = 0.05
_SEQUENCE_SWEEP_SECONDS = 1.0
# How soon a round that found another one running tries again.
_SEQUENCE_RETRY_SECONDS = 0.005
# Writes of one batch (one transaction, one COMMIT), and batches in flight at once per instance.
_GROUP_COMMIT_MAX = 256
_COMMITTERS = 3


@dataclass(frozen=True, slots=True)
class PendingAudit:
    """What an append answers inside its transaction: the pending row to learn the seqs of."""

    pending_id: int

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

_CLAIM = f"""
    WITH due AS (
        SELECT m.seq FROM messages AS m
         WHERE m.recipient = %(recipient)s AND m.state = 'accepted' AND m.next_attempt_at <= %(now)s
           AND {NOT_HELD_BACK}
         ORDER BY m.seq
         LIMIT %(limit)s
           FOR UPDATE OF m SKIP LOCKED)
    UPDATE messages AS m
       SET state = 'in_flight', attempts = m.attempts + 1,
           lease_owner = %(owner)s, lease_until = %(lease_until)s, updated_at = %(now)s
      FROM due WHERE m.seq = due.seq
    RETURNING {qualified(MESSAGE_COLUMNS, "m")}
"""


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


class PostgresStore(SQLStore):
    """``Store`` on a PostgreSQL database shared by gateway instances. See the module docstring."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        super().__init__()
        self._conninfo, self._schema = _split_url(url)
        self._dialect = PostgresDialect(_work_channel(self._schema), self._schema)
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        self._listener: asyncio.Task | None = None
        # This instance's pooled connections by backend pid: their NOTIFYs come back
        # through LISTEN, and the local commit has already woken the workers.
        self._own_backends: weakref.WeakValueDictionary[int, psycopg.AsyncConnection] = weakref.WeakValueDictionary()
        # Group commit: writes waiting for a committer, and the committers at work.
        self._writes: list[tuple[Callable[..., Operation], tuple, Sequence[Command] | None, asyncio.Future]] = []
        self._committers = 0
        # Sequencing rounds: who waits for the next one (and for which pending rows), and the
        # task that runs them.
        self._rounds_wanted: list[tuple[Sequence[int], asyncio.Future]] = []
        self._round_due = asyncio.Event()
        self._sequencer: asyncio.Task | None = None
        # Audited commits of this instance, and how many of them the last round covered: a
        # read of the log waits for a round only when this instance wrote entries since.
        self._audited_commits = 0
        self._sequenced_commits = 0

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
            # While the server is down, a request waits this long for a connection and is then
            # refused with 503 (nothing stored): the caller retries, rather than hanging for 30 s.
            timeout=_ACQUIRE_TIMEOUT_SECONDS,
        )
        try:
            await pool.open(wait=True)
        except psycopg.Error as exc:
            await listening.close()
            await pool.close()
            raise StoreError(f"cannot open the PostgreSQL store's connection pool: {exc}") from exc
        self._pool = pool
        self._listener = asyncio.create_task(self._listen(listening), name="postgres-store-listen")
        # The first round numbers what an instance that died left pending.
        self._round_due.set()
        self._sequencer = asyncio.create_task(self._sequence_forever(), name="postgres-audit-sequencer")

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, listener, self._pool, self._listener = self._pool, self._listener, None, None
        sequencer, self._sequencer = self._sequencer, None
        for task in (listener, sequencer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Entries still pending are committed: the next round of any instance numbers them.
        for _, waiter in self._rounds_wanted:
            if not waiter.done():
                waiter.set_exception(StoreError("the store was closed before the audit entries were numbered"))
        self._rounds_wanted = []
        await pool.close()

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
            await _execute(conn, self._dialect.migrate())

    # -- wake-ups from other instances

    async def _listen_connection(self) -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, application_name=f"gateway-listen:{self._schema}"[:63]
        )
        try:
            await self._configure(conn)
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._dialect.channel)))
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

    async def _read(self, operation: Callable[..., Operation], *args: Any) -> Any:
        async with self._connection() as conn:
            return await _execute(conn, operation(*args))

    async def _read_snapshot(self, operation: Callable[..., Operation], *args: Any) -> Any:
        # In autocommit each statement has a snapshot of its own: one read-only transaction at
        # REPEATABLE READ gives every statement of the operation the first one's.
        async with self._transaction() as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return await _execute(conn, operation(*args))

    async def _write(self, operation: Callable[..., Operation], *args: Any, atomic: Sequence[Command] | None = None) -> Any:
        """A write in the next group commit."""
        if self._pool is None:
            raise StoreError("the store is not open")
        future = asyncio.get_running_loop().create_future()
        self._writes.append((operation, args, atomic, future))
        if self._committers < _COMMITTERS:
            self._committers += 1
            asyncio.create_task(self._commit_writes(), name="postgres-group-commit")
        return await future

    async def _write_redoable(
        self, operation: Callable[..., Operation], *args: Any, atomic: Sequence[Command] | None = None
    ) -> Any:
        # Claims and tree heads commit on their own: a claim's row locks must not wait for a batch.
        return await self._write_alone(operation, *args, atomic=atomic)

    async def _write_alone(
        self, operation: Callable[..., Operation], *args: Any, atomic: Sequence[Command] | None = None
    ) -> Any:
        if atomic is None:  # in autocommit: each statement commits on its own
            result = await self._read(operation, *args)
        else:
            async with self._transaction() as conn:
                await _lock_for(conn, self._schema, atomic)
                result = await _execute(conn, operation(*args))
        if _audited(atomic):
            self._audited_commits += 1
            self._round_due.set()
        return result

    async def _commit_writes(self) -> None:
        try:
            while self._writes:
                batch, self._writes = self._writes[:_GROUP_COMMIT_MAX], self._writes[_GROUP_COMMIT_MAX:]
                await self._commit_batch(batch)
        finally:
            self._committers -= 1

    async def _commit_batch(self, batch: list) -> None:
        if len(batch) == 1:
            await self._answer(batch[0], self._write_alone)
            return
        commands = [command for _, _, atomic, _ in batch if atomic for command in atomic]
        results: list[Any] = []
        committing = False
        try:
            async with self._connection() as conn:
                async with conn.transaction():
                    await _lock_for(conn, self._schema, commands)
                    for operation, args, _, _ in batch:
                        results.append(await _execute(conn, operation(*args)))
                    committing = True
        except Exception as exc:
            if committing:
                # The COMMIT failed: whether it took effect is unknown, for every write of the batch.
                error = exc if isinstance(exc, StoreError) else StoreError(f"commit failed: {exc}")
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error)
                return
            # One write failed and the transaction is gone: each again on its own, to fail alone.
            await asyncio.gather(*(self._answer(item, self._write_alone) for item in batch))
            return
        if any(_audited(atomic) for _, _, atomic, _ in batch):
            self._audited_commits += 1
            self._round_due.set()
        for (*_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    @staticmethod
    async def _answer(item: tuple, write: Callable[..., Any]) -> None:
        operation, args, atomic, future = item
        try:
            result = await write(operation, *args, atomic=atomic)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)

    # -- the audit log's sequencer

    async def apply(self, commands: Sequence[Command], now: float) -> list[Any]:
        results = await super().apply(commands, now)
        pending = [result.pending_id for result in results if isinstance(result, PendingAudit)]
        if not pending:
            return results
        numbered = await self._numbered(pending)
        return [numbered[result.pending_id] if isinstance(result, PendingAudit) else result for result in results]

    async def sequence_audit(self) -> None:
        await self._numbered([])

    # Reads of the log see every entry this instance committed before them (read your writes);
    # entries another instance committed are numbered by its own round a moment later.

    async def audit_size(self) -> int:
        await self._own_entries_numbered()
        return await super().audit_size()

    async def read_audit(self, start_seq: int = 1, limit: int = 1000) -> list[AuditRecord]:
        await self._own_entries_numbered()
        return await super().read_audit(start_seq, limit)

    async def audit_by_subject(self, subject_key: str, limit: int = 1000, after_seq: int = 0) -> list[AuditRecord]:
        await self._own_entries_numbered()
        return await super().audit_by_subject(subject_key, limit, after_seq)

    async def _own_entries_numbered(self) -> None:
        if self._audited_commits > self._sequenced_commits:
            await self._numbered([])

    async def _numbered(self, pending_ids: Sequence[int]) -> dict[int, list[int]]:
        """The seqs of committed pending rows, after the next sequencing round."""
        if self._sequencer is None:
            raise StoreError("the store is not open")
        waiter = asyncio.get_running_loop().create_future()
        self._rounds_wanted.append((pending_ids, waiter))
        self._round_due.set()
        numbered = await waiter
        missing = [pending_id for pending_id in pending_ids if pending_id not in numbered]
        if missing:
            raise StoreError(f"audit entries committed as pending rows {missing} were not numbered")
        return numbered

    async def _sequence_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_SEQUENCE_SWEEP_SECONDS):
                    await self._round_due.wait()
            if not self._rounds_wanted:
                # Nobody waits: let more commits join this batch (fewer batches, fewer tree heads).
                await asyncio.sleep(_SEQUENCE_PAUSE_SECONDS)
            self._round_due.clear()
            wanted, self._rounds_wanted = self._rounds_wanted, []
            covered = self._audited_commits
            try:
                numbered = await self._write_alone(
                    self._dialect.sequence_audit, [i for ids, _ in wanted for i in ids], atomic=()
                )
            except Exception as exc:
                if not wanted:
                    log.warning("audit sequencing round failed; the entries stay pending", error=str(exc))
                for _, waiter in wanted:
                    if not waiter.done():
                        waiter.set_exception(exc if isinstance(exc, StoreError) else StoreError(str(exc)))
                continue
            if numbered is None:
                # Another instance's round holds the lock: try again shortly (it may number these
                # entries itself, if it took its snapshot after their commit).
                self._rounds_wanted[:0] = wanted
                self._round_due.set()
                await asyncio.sleep(_SEQUENCE_RETRY_SECONDS)
                continue
            self._sequenced_commits = max(self._sequenced_commits, covered)
            for ids, waiter in wanted:
                if not waiter.done():
                    waiter.set_result({i: numbered[i] for i in ids if i in numbered})


def _audited(atomic: Sequence[Command] | None) -> bool:
    """Whether the write may append to the audit log. An empty ``AppendAudit`` says that its
    operation works out the entries itself (a hand-out audits what it hands out)."""
    return bool(atomic) and any(
        isinstance(command, AppendAudit) or (isinstance(command, AcceptMessage) and command.audit)
        for command in atomic
    )


async def _execute(conn: psycopg.AsyncConnection, steps: Operation) -> Any:
    """Run one ``gateway.store.sql`` operation: each statement it yields, answered as it asks."""
    answer = None
    while True:
        try:
            statement = steps.send(answer)
        except StopIteration as done:
            return done.value
        cursor = await conn.execute(statement.text, statement.params)
        answer = cursor.rowcount if statement.fetch is Fetch.COUNT else await _ANSWERS[statement.fetch](cursor)


_ANSWERS = {Fetch.ONE: psycopg.AsyncCursor.fetchone, Fetch.ROWS: psycopg.AsyncCursor.fetchall}


async def _lock_for(conn: psycopg.AsyncConnection, schema: str, commands: Sequence[Command]) -> None:
    """Take the locks ``commands`` need before touching any row, always in the
    same order: ordering keys by lock id. Audit entries need none (see the module docstring)."""
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

