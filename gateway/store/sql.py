"""The SQL both stores share, written once: the schema's migrations, the statements, the
row mappers and every operation whose SQL is the same on SQLite and PostgreSQL.

What differs between the two is a ``Dialect``: how a parameter is written (``?`` or
``%s``), the names of types, and the few operations each backend writes its own way
(accepting a message, claims, appending to the audit log, purges). SQLAlchemy Core's
dialects are the model — one statement, rendered per backend — at the size this store needs.

An operation is a generator that knows nothing of connections, threads or pools (sans-I/O):
it yields a ``Statement``, is sent back the database's answer (all rows, one row or None,
or the number of rows changed, as the statement asks) and returns its result. The SQLite
store runs operations on its writer thread, the PostgreSQL store awaits each statement on a
pooled connection. Which operations share a transaction, and the locks taken before it
starts, stay with the backend: ``SQLStore`` says which writes must be atomic, and why.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.store.base import (
    Acceptance,
    AcceptMessage,
    AppendAudit,
    Attempt,
    AuditRecord,
    CancelTimer,
    Case,
    Command,
    ConflictError,
    Evidence,
    IndicatorCounts,
    IndicatorEvents,
    IndicatorReferral,
    IndicatorRelease,
    IndicatorReoffence,
    ConsoleAccount,
    ConsoleSession,
    Message,
    MessageQuery,
    MessageState,
    NewAuditEntry,
    NewMessage,
    RecordInbound,
    RecordReferral,
    RecordReferralOutcome,
    DecideReferralOutcome,
    RecordRelease,
    RecordReoffence,
    SaveCase,
    ScheduleTimer,
    StoreError,
    StoredEvidence,
    Timer,
    TreeHead,
)

T = TypeVar("T")


class Fetch(enum.Enum):
    """What a statement's caller wants back."""

    COUNT = "count"  # the number of rows it changed
    ONE = "one"  # its first row, or None
    ROWS = "rows"  # all its rows


@dataclass(frozen=True, slots=True)
class Statement:
    text: str
    params: Sequence[Any] | Mapping[str, Any] = ()
    fetch: Fetch = Fetch.COUNT


Operation = Generator[Statement, Any, T]


# ---------------------------------------------------------------- schema

# Each entry brings the schema from version i to i + 1. Never edit a released entry: append a
# new one. Types are written as {TEXT}, {BLOB}, {INTEGER}, {BIGINT}, {REAL}, {DATE} (a calendar
# day), {BOOLEAN} (with {FALSE} for its default), and {IDENTITY} for a primary key numbered by the
# database; ``Dialect.types`` names each for its backend, and the table options {WITHOUT_ROWID} too. The
# scripts as released before this file existed are kept in tests/store/legacy: the rendered
# scripts must build exactly the schema those did (tests/store/test_store_migrations.py).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE messages (
        seq               {IDENTITY},
        id                {TEXT}    NOT NULL UNIQUE,
        sender            {TEXT}    NOT NULL,
        client_message_id {TEXT},
        recipient         {TEXT}    NOT NULL,
        service           {TEXT}    NOT NULL,
        correlation_id    {TEXT}    NOT NULL,
        purpose           {TEXT},
        ordering_key      {TEXT},
        content_type      {TEXT}    NOT NULL,
        body              {BLOB}    NOT NULL,
        state             {TEXT}    NOT NULL,
        attempts          {INTEGER} NOT NULL DEFAULT 0,
        max_attempts      {INTEGER} NOT NULL,
        accepted_at       {REAL}    NOT NULL,
        next_attempt_at   {REAL}    NOT NULL,
        deadline_at       {REAL}    NOT NULL,
        updated_at        {REAL}    NOT NULL,
        delivered_at      {REAL},
        lease_owner       {TEXT},
        lease_until       {REAL},
        last_error        {TEXT},
        last_status       {INTEGER},
        replays           {INTEGER} NOT NULL DEFAULT 0
    );
    CREATE INDEX messages_queue ON messages (recipient, state, seq);
    CREATE INDEX messages_due ON messages (recipient, state, next_attempt_at);
    CREATE INDEX messages_order ON messages (recipient, ordering_key, seq)
        WHERE ordering_key IS NOT NULL{PENDING_ONLY};
    CREATE INDEX messages_lease ON messages (state, lease_until);
    CREATE INDEX messages_sender ON messages (sender, seq);

    -- Inbound de-duplication outlives the message itself (see purge_delivered).
    CREATE TABLE inbound (
        sender            {TEXT} NOT NULL,
        client_message_id {TEXT} NOT NULL,
        message_id        {TEXT} NOT NULL,
        received_at       {REAL} NOT NULL,
        PRIMARY KEY (sender, client_message_id)
    );
    CREATE INDEX inbound_age ON inbound (received_at);

    CREATE TABLE attempts (
        message_id  {TEXT}    NOT NULL,
        number      {INTEGER} NOT NULL,
        started_at  {REAL}    NOT NULL,
        finished_at {REAL}    NOT NULL,
        outcome     {TEXT}    NOT NULL,
        status      {INTEGER},
        error       {TEXT},
        PRIMARY KEY (message_id, number)
    );

    -- data is the JSON text as written: PostgreSQL's jsonb would re-serialise it.
    CREATE TABLE cases (
        kind        {TEXT}    NOT NULL,
        id          {TEXT}    NOT NULL,
        state       {TEXT}    NOT NULL,
        data        {TEXT}    NOT NULL,
        version     {INTEGER} NOT NULL,
        subject_key {TEXT},
        created_at  {REAL}    NOT NULL,
        updated_at  {REAL}    NOT NULL,
        PRIMARY KEY (kind, id)
    );
    CREATE INDEX cases_state ON cases (kind, state, id);
    CREATE INDEX cases_subject ON cases (kind, subject_key);

    CREATE TABLE timers (
        id          {TEXT}    PRIMARY KEY,
        case_kind   {TEXT}    NOT NULL,
        case_id     {TEXT}    NOT NULL,
        name        {TEXT}    NOT NULL,
        fire_at     {REAL}    NOT NULL,
        payload     {TEXT}    NOT NULL,
        attempts    {INTEGER} NOT NULL DEFAULT 0,
        lease_owner {TEXT},
        lease_until {REAL}
    );
    CREATE INDEX timers_due ON timers (fire_at);

    CREATE TABLE audit_log (
        seq         {BIGINT} PRIMARY KEY,
        entry       {BLOB}   NOT NULL,
        subject_key {TEXT},
        recorded_at {REAL}   NOT NULL
    );
    CREATE INDEX audit_subject ON audit_log (subject_key, seq) WHERE subject_key IS NOT NULL;

    CREATE TABLE audit_tree_heads (
        size      {BIGINT} PRIMARY KEY,
        root      {BLOB}   NOT NULL,
        signed_at {REAL}   NOT NULL,
        signature {BLOB}   NOT NULL
    );
    """,
    # 2: the recipient's answer (a court's receipt) is kept; replays restore the first budget.
    """
    ALTER TABLE messages ADD COLUMN answer {BLOB};
    ALTER TABLE messages ADD COLUMN attempt_budget {INTEGER};
    UPDATE messages SET attempt_budget = max_attempts;
    """,
    # 3: answers to inbound messages that are not relayed (RecordInbound).
    """
    ALTER TABLE inbound ADD COLUMN answer {BLOB};
    """,
    # 4: indicator events, pseudonymous, apart from identifiable data (see "indicator events" below).
    # SQLite's tables are WITHOUT ROWID: rows are kept in key order, not in the order they were
    # recorded, so their order says nothing about when a case step wrote them.
    """
    CREATE TABLE indicator_releases (
        pseudonym    {TEXT} NOT NULL,
        release_date {DATE} NOT NULL,
        region       {TEXT} NOT NULL,
        cohort       {TEXT} NOT NULL,
        watch_until  {DATE} NOT NULL,
        PRIMARY KEY (pseudonym, release_date)
    ){WITHOUT_ROWID};
    CREATE TABLE indicator_referrals (
        referral_key {TEXT} PRIMARY KEY,
        pseudonym    {TEXT} NOT NULL,
        recipient    {TEXT} NOT NULL,
        category     {TEXT} NOT NULL,
        region       {TEXT} NOT NULL,
        release_date {DATE} NOT NULL,
        state        {TEXT} NOT NULL
    ){WITHOUT_ROWID};
    CREATE TABLE indicator_referral_events (
        referral_key {TEXT} NOT NULL,
        state        {TEXT} NOT NULL,
        on_date      {DATE} NOT NULL,
        PRIMARY KEY (referral_key, state)
    ){WITHOUT_ROWID};
    CREATE TABLE indicator_reoffences (
        pseudonym {TEXT} NOT NULL,
        kind      {TEXT} NOT NULL,
        on_date   {DATE} NOT NULL,
        region    {TEXT} NOT NULL,
        PRIMARY KEY (pseudonym, kind, on_date)
    ){WITHOUT_ROWID};
    """,
    # 5: the console's accounts (people, not members), their server-side sessions, and the
    # index its search by correlation id reads.
    """
    CREATE TABLE console_accounts (
        username      {TEXT}    PRIMARY KEY,
        role          {TEXT}    NOT NULL,
        password_hash {TEXT}    NOT NULL,
        display_name  {TEXT}    NOT NULL,
        office        {TEXT},
        region        {TEXT},
        disabled      {BOOLEAN} NOT NULL DEFAULT {FALSE},
        created_at    {REAL}    NOT NULL
    );
    CREATE TABLE console_sessions (
        id           {TEXT} PRIMARY KEY,
        username     {TEXT} NOT NULL REFERENCES console_accounts (username),
        csrf_token   {TEXT} NOT NULL,
        created_at   {REAL} NOT NULL,
        last_seen_at {REAL} NOT NULL
    );
    CREATE INDEX console_sessions_user ON console_sessions (username);
    CREATE INDEX messages_correlation ON messages (correlation_id);
    """,
    # 6: the sender's signed document as it arrived (a relayed signed SOAP envelope), kept
    # verbatim beside its message as evidence, with the certificate that verified it.
    """
    CREATE TABLE message_evidence (
        message_id  {TEXT} PRIMARY KEY,
        media_type  {TEXT} NOT NULL,
        document    {BLOB} NOT NULL,
        certificate {BLOB},
        received_at {REAL} NOT NULL
    );
    """,
    # 7: when the recipient confirmed a message (AsyncChannel sendDeliveryNotification).
    """
    ALTER TABLE messages ADD COLUMN acknowledged_at {REAL};
    """,
    # 8: what the console reads often, without walking the whole table: the dashboard's counts
    # (every few seconds for each open console) of the messages in a state by recipient and of
    # the deliveries since a moment (state, delivered_at), and a status's messages newest first
    # (state, seq), as the dead letters page lists them. Whole indexes, not partial ones: the
    # search binds the state as a parameter, which a partial index's condition cannot match.
    """
    CREATE INDEX messages_state ON messages (state, delivered_at, recipient);
    CREATE INDEX messages_state_seq ON messages (state, seq);
    """,
    # 9: the indicators counted by the database (indicator_counts): referral events by state
    # (the provided and the sent are joined to their referrals), place-to-stay referrals by category.
    """
    CREATE INDEX indicator_referral_events_state ON indicator_referral_events (state, referral_key, on_date);
    CREATE INDEX indicator_referrals_category ON indicator_referrals (category, referral_key);
    """,
    # 10: the audit log is numbered in batches, without a lock (gateway.security.audit). The entry
    # that ends a batch has tree_size = seq, the size the log reached with it: a tree head is
    # signed at every such size (every entry before this migration ended one). On PostgreSQL an audited transaction only adds its entries to audit_pending; the
    # sequencer moves them into audit_log, numbered, and pending_id says from which row. SQLite's
    # one writer numbers entries as it appends them, and its audit_pending stays empty.
    """
    ALTER TABLE audit_log ADD COLUMN tree_size {BIGINT};
    ALTER TABLE audit_log ADD COLUMN pending_id {BIGINT};
    UPDATE audit_log SET tree_size = seq;
    CREATE INDEX audit_log_pending ON audit_log (pending_id) WHERE pending_id IS NOT NULL;
    CREATE TABLE audit_pending (
        id           {IDENTITY},
        entries      {BLOB_ARRAY} NOT NULL,
        subject_keys {TEXT_ARRAY} NOT NULL,
        recorded_at  {REAL}       NOT NULL
    );
    """,
)


# ---------------------------------------------------------------- rows

MESSAGE_COLUMNS = (
    "id, seq, sender, recipient, service, body, content_type, correlation_id, client_message_id, "
    "purpose, ordering_key, state, attempts, max_attempts, accepted_at, next_attempt_at, "
    "deadline_at, updated_at, delivered_at, last_error, last_status, replays, answer, acknowledged_at"
)
_MESSAGE_WIDTH = len(MESSAGE_COLUMNS.split(","))
CASE_COLUMNS = "kind, id, state, data, version, subject_key, created_at, updated_at"
TIMER_COLUMNS = "id, case_kind, case_id, name, fire_at, payload, attempts"
_AUDIT_COLUMNS = "seq, entry, recorded_at, subject_key, tree_size"
_RELEASE_COLUMNS = "pseudonym, release_date, region, cohort, watch_until"
_REFERRAL_COLUMNS = "referral_key, pseudonym, recipient, category, region, release_date, state"
_REOFFENCE_COLUMNS = "pseudonym, kind, on_date, region"
ACCOUNT_COLUMNS = "username, role, password_hash, display_name, office, region, disabled, created_at"
SESSION_COLUMNS = "id, username, csrf_token, created_at, last_seen_at"

# A new message: each column, the named parameter (or constant) that fills it, and its type.
_NEW_MESSAGE = (
    ("id", "id", "TEXT"), ("sender", "sender", "TEXT"), ("client_message_id", "client_message_id", "TEXT"),
    ("recipient", "recipient", "TEXT"), ("service", "service", "TEXT"),
    ("correlation_id", "correlation_id", "TEXT"), ("purpose", "purpose", "TEXT"),
    ("ordering_key", "ordering_key", "TEXT"), ("content_type", "content_type", "TEXT"), ("body", "body", "BLOB"),
    ("state", "'accepted'", None), ("max_attempts", "max_attempts", "INTEGER"),
    ("attempt_budget", "max_attempts", "INTEGER"), ("accepted_at", "now", "REAL"),
    ("next_attempt_at", "now", "REAL"), ("deadline_at", "deadline_at", "REAL"), ("updated_at", "now", "REAL"),
)

# A message of an ordering key waits while an earlier one of its (recipient, key) is pending,
# or while any one of them is in flight (a replayed head must not travel beside its successor).
NOT_HELD_BACK = """
    (m.ordering_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM messages AS p
         WHERE p.recipient = m.recipient AND p.ordering_key = m.ordering_key AND p.seq <> m.seq
           AND (p.state = 'in_flight' OR (p.seq < m.seq AND p.state = 'accepted'))))
"""

# A finished attempt, fenced by its number: nothing changes unless the caller still holds the lease.
FINISH_ATTEMPT = """
    UPDATE messages
       SET state = :state, delivered_at = :delivered_at, answer = :answer,
           next_attempt_at = coalesce(:next_attempt_at, next_attempt_at),
           updated_at = :now, last_error = :error, last_status = :status,
           lease_owner = NULL, lease_until = NULL, max_attempts = max_attempts + :extra_attempts
     WHERE id = :id AND attempts = :attempt AND state = 'in_flight'
"""
# The attempt's entry in the log; a number logged before (by a worker whose lease ran out) is overwritten.
LOG_ATTEMPT = """
    INSERT INTO attempts (message_id, number, started_at, finished_at, outcome, status, error)
    {source}
    ON CONFLICT (message_id, number) DO UPDATE
       SET started_at = excluded.started_at, finished_at = excluded.finished_at,
           outcome = excluded.outcome, status = excluded.status, error = excluded.error
"""


def qualified(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


def message_of(row: Sequence[Any]) -> Message:
    values = list(row[:_MESSAGE_WIDTH])  # a trailing pg_notify() column is dropped
    values[11] = MessageState(values[11])
    return Message(*values)


def audit_record_of(row: Sequence[Any]) -> AuditRecord:
    seq, entry, recorded_at, subject_key, tree_size = row
    return AuditRecord(seq, bytes(entry), recorded_at, subject_key, tree_size)


def account_of(row: Sequence[Any]) -> ConsoleAccount:
    username, role, password_hash, display_name, office, region, disabled, created_at = row
    return ConsoleAccount(username, role, password_hash, display_name, office, region, bool(disabled), created_at)


def case_of(row: Sequence[Any]) -> Case:
    kind, case_id, state, data, version, subject_key, created_at, updated_at = row
    return Case(kind, case_id, state, json.loads(data), version, created_at, updated_at, subject_key)


def timer_of(row: Sequence[Any]) -> Timer:
    timer_id, case_kind, case_id, name, fire_at, payload, attempts = row
    return Timer(timer_id, case_kind, case_id, name, fire_at, json.loads(payload), attempts)


def day_of(value: dt.date | str) -> dt.date:
    """A {DATE} column's value: PostgreSQL's driver gives a date, SQLite the ISO text it stored."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def release_of(row: Sequence[Any]) -> IndicatorRelease:
    pseudonym, release_date, region, cohort, watch_until = row
    return IndicatorRelease(pseudonym, day_of(release_date), region, cohort, day_of(watch_until))


def reoffence_of(row: Sequence[Any]) -> IndicatorReoffence:
    pseudonym, kind, on, region = row
    return IndicatorReoffence(pseudonym, kind, day_of(on), region)


def _in_order(transitions: list[tuple[str, dt.date]]) -> tuple[tuple[str, dt.date], ...]:
    # By date; on one day, in lifecycle order: sent, accepted, then the outcome.
    rank = {"sent": 0, "accepted": 1}
    return tuple(sorted(transitions, key=lambda t: (t[1], rank.get(t[0], 2))))


def new_message_params(message: NewMessage, now: float) -> dict[str, Any]:
    return {
        "id": message.id or str(uuid.uuid4()), "sender": message.sender, "client_message_id": message.client_message_id,
        "recipient": message.recipient, "service": message.service, "correlation_id": message.correlation_id,
        "purpose": message.purpose, "ordering_key": message.ordering_key, "content_type": message.content_type,
        "body": message.body, "max_attempts": message.max_attempts, "deadline_at": message.deadline_at, "now": now,
    }


def resend(message: NewMessage, stored: Message | None) -> Acceptance:
    """The answer to an accept whose (sender, client id) is taken: the stored message, if it is still kept."""
    if stored is not None:
        return Acceptance(stored, duplicate=True)
    raise ConflictError(
        f"message id {message.client_message_id!r} was used before and its message "
        "has passed its retention period: use a new X-Message-Id"
    )


# ---------------------------------------------------------------- dialects

_POSITIONAL_OR_NAMED = re.compile(r"\?|(?<![:\w]):(\w+)")


class Dialect:
    """SQLite's and PostgreSQL's SQL, and the operations of the store on either.

    Shared statements are written in SQLite's style (``?`` and ``:name``), which a dialect
    renders for its driver. A backend subclasses this for the operations it writes its own way.
    """

    # Type names for MIGRATIONS. PENDING_ONLY narrows the ordering-key index to the messages
    # that can hold back their successors, which keeps PostgreSQL's ordering check cheap however
    # many delivered messages a key has (SQLite's index, as released, covers every message of a key).
    types: Mapping[str, str]
    # Added to RETURNING where a statement queues work, to announce it to other instances.
    notify = ""

    def __init__(self) -> None:
        self._rendered: dict[str, str] = {}

    # -- rendering

    def render(self, text: str) -> str:
        return text

    def cast(self, type_name: str) -> str:
        """What types a parameter as ``type_name`` where the statement does not (INSERT ... SELECT)."""
        return ""

    def members(self, column: str) -> str:
        """A condition: ``column`` is one of the values of one parameter, given as ``self.array(values)``."""
        raise NotImplementedError

    def array(self, values: Sequence[Any]) -> Any:
        raise NotImplementedError

    def day(self, value: dt.date) -> Any:
        """A parameter for a {DATE} column: SQLite stores the ISO text, PostgreSQL takes the date."""
        return value

    def quarter_of(self, column: str) -> str:
        """An expression: the calendar quarter of the {DATE} ``column``, as ``2026Q4``."""
        raise NotImplementedError

    def unindexed(self, column: str) -> str:
        """``column`` in a condition or an order that the planner should not choose an index for."""
        return column

    def statement(self, text: str, params: Sequence[Any] | Mapping[str, Any] = (), fetch: Fetch = Fetch.COUNT) -> Statement:
        rendered = self._rendered.get(text)
        if rendered is None:
            rendered = self._rendered[text] = self.render(text)
        return Statement(rendered, params, fetch)

    def one(self, text: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Statement:
        return self.statement(text, params, Fetch.ONE)

    def rows(self, text: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Statement:
        return self.statement(text, params, Fetch.ROWS)

    @property
    def migrations(self) -> tuple[str, ...]:
        return tuple(script.format_map(self.types) for script in MIGRATIONS)

    def insert_message(self) -> str:
        """INSERT ... SELECT of a new message from ``new_message_params``; FROM, RETURNING to add."""
        columns = ", ".join(column for column, _, _ in _NEW_MESSAGE)
        values = ", ".join(
            param if type_name is None else f":{param}{self.cast(type_name)}" for _, param, type_name in _NEW_MESSAGE
        )
        return self.render(f"INSERT INTO messages ({columns}) SELECT {values}")

    # -- schema

    def migrate(self) -> Operation[None]:
        """Bring the schema up to date: a database at version N runs only the migrations after N."""
        yield self.statement(f"CREATE TABLE IF NOT EXISTS schema_version (version {self.types['INTEGER']} NOT NULL)")
        row = yield self.one("SELECT version FROM schema_version")
        version = row[0] if row else 0
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the database schema is version {version}, newer than this gateway "
                f"knows ({len(MIGRATIONS)}): upgrade the gateway"
            )
        for script in self.migrations[version:]:
            for text in filter(str.strip, script.split(";")):
                yield Statement(text)
        if row is None:
            yield self.statement("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS),))
        else:
            yield self.statement("UPDATE schema_version SET version = ?", (len(MIGRATIONS),))

    def ping(self) -> Operation[None]:
        yield self.one("SELECT 1")

    def probe_write(self) -> Operation[None]:
        # Rewrites a row with its own value: it takes the disk (WAL, fsync) and the connection
        # like any commit, and changes nothing.
        yield self.statement("UPDATE schema_version SET version = version")

    # -- commands

    def apply_all(self, commands: Sequence[Command], now: float) -> Operation[list[Any]]:
        results = []
        for command in commands:
            results.append((yield from self.apply_one(command, now)))
        return results

    def apply_one(self, command: Command, now: float) -> Operation[Any]:
        match command:
            case AcceptMessage(message=message, audit=audit, evidence=evidence):
                acceptance = yield from self.accept(message, now)
                if audit and not acceptance.duplicate:
                    yield from self.append_audit(audit, now)
                if evidence is not None and not acceptance.duplicate:
                    yield self.statement(
                        "INSERT INTO message_evidence (message_id, media_type, document, certificate, received_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (acceptance.message.id, evidence.media_type, evidence.document, evidence.certificate, now),
                    )
                return acceptance
            case RecordInbound(sender=sender, key=key, answer=answer):
                # message_id '' names no message: the record is purged after the de-duplication period.
                recorded = yield self.statement(
                    "INSERT INTO inbound (sender, client_message_id, message_id, received_at, answer) "
                    "VALUES (?, ?, '', ?, ?) ON CONFLICT DO NOTHING",
                    (sender, key, now, answer),
                )
                return recorded > 0
            case SaveCase():
                return (yield from self.save_case(command, now))
            case ScheduleTimer(timer=timer):
                yield self.statement(
                    "INSERT INTO timers (id, case_kind, case_id, name, fire_at, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "fire_at = excluded.fire_at, payload = excluded.payload, "
                    "lease_owner = NULL, lease_until = NULL",
                    (timer.id, timer.case_kind, timer.case_id, timer.name, timer.fire_at,
                     json.dumps(dict(timer.payload))),
                )
                return None
            case CancelTimer(timer_id=timer_id):
                return (yield self.statement("DELETE FROM timers WHERE id = ?", (timer_id,))) > 0
            case AppendAudit(entries=entries):
                return (yield from self.append_audit(entries, now))
            case RecordRelease() | RecordReferral() | RecordReferralOutcome() | RecordReoffence():
                return (yield from self.record_indicator_event(command))
            case DecideReferralOutcome(referral_key=key, decide=decide):
                outcome = decide((yield from self.indicator_referral(key)))
                if outcome is not None:
                    yield from self.record_indicator_event(outcome)
                return outcome
        raise TypeError(f"not a store command: {command!r}")

    def accept(self, message: NewMessage, now: float) -> Operation[Acceptance]:
        """Store ``message``, or answer with the one stored under its (sender, client id)."""
        raise NotImplementedError

    def append_audit(self, entries: Sequence[NewAuditEntry], now: float) -> Operation[list[int]]:
        """Append ``entries`` numbered from the last seq + 1, gapless; their seqs."""
        raise NotImplementedError

    def save_case(self, command: SaveCase, now: float) -> Operation[int]:
        data = json.dumps(dict(command.data), ensure_ascii=False, sort_keys=True)
        if command.expected_version == 0:
            created = yield self.statement(
                "INSERT INTO cases (kind, id, state, data, version, subject_key, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (kind, id) DO NOTHING",
                (command.kind, command.id, command.state, data, command.subject_key, now, now),
            )
            if not created:
                raise ConflictError(f"{command.kind} {command.id} already exists")
            return 1
        updated = yield self.statement(
            "UPDATE cases SET state = ?, data = ?, version = version + 1, updated_at = ?, "
            "subject_key = coalesce(?, subject_key) WHERE kind = ? AND id = ? AND version = ?",
            (command.state, data, now, command.subject_key, command.kind, command.id, command.expected_version),
        )
        if not updated:
            raise ConflictError(f"{command.kind} {command.id} is not at version {command.expected_version}")
        return command.expected_version + 1

    # -- outbox

    def get_message(self, message_id: str) -> Operation[Message | None]:
        row = yield self.one(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        return message_of(row) if row else None

    def get_evidence(self, message_id: str) -> Operation[StoredEvidence | None]:
        row = yield self.one(
            "SELECT m.id, m.sender, m.recipient, e.received_at, e.document, e.media_type, e.certificate "
            "FROM message_evidence AS e JOIN messages AS m ON m.id = e.message_id WHERE e.message_id = ?",
            (message_id,),
        )
        if row is None:
            return None
        message, sender, recipient, received_at, document, media_type, certificate = row
        return StoredEvidence(message, sender, recipient, received_at,
                              Evidence(bytes(document), media_type, None if certificate is None else bytes(certificate)))

    def find_message(self, sender: str, client_message_id: str) -> Operation[Message | None]:
        row = yield self.one(
            f"SELECT {qualified(MESSAGE_COLUMNS, 'm')} "
            "FROM inbound AS i JOIN messages AS m ON m.id = i.message_id "
            "WHERE i.sender = ? AND i.client_message_id = ?",
            (sender, client_message_id),
        )
        return message_of(row) if row else None

    def find_inbound(self, sender: str, key: str) -> Operation[bytes | None]:
        row = yield self.one(
            "SELECT answer FROM inbound WHERE sender = ? AND client_message_id = ? AND answer IS NOT NULL",
            (sender, key),
        )
        return bytes(row[0]) if row else None

    def claim(
        self, recipient: str, limit: int, now: float, lease_seconds: float, owner: str
    ) -> Operation[list[Message]]:
        """Expire the recipient's lapsed leases, then lease up to ``limit`` due messages."""
        raise NotImplementedError

    def record_outcome(self, params: Mapping[str, Any], audit: Sequence[NewAuditEntry]) -> Operation[bool]:
        recorded = yield from self.finish_attempt(params)
        if recorded and audit:
            yield from self.append_audit(audit, params["now"])
        return recorded

    def finish_attempt(self, params: Mapping[str, Any]) -> Operation[bool]:
        """FINISH_ATTEMPT and, if it let the outcome through, LOG_ATTEMPT."""
        raise NotImplementedError

    def next_due(self, recipient: str) -> Operation[float | None]:
        # A message held back by an earlier one of its key is not due at its next_attempt_at:
        # counting it would wake a worker that finds nothing to claim, again and again.
        row = yield self.one(
            "SELECT min(t) FROM ("
            " SELECT min(m.next_attempt_at) AS t FROM messages AS m"
            f" WHERE m.recipient = ? AND m.state = 'accepted' AND {NOT_HELD_BACK}"
            " UNION ALL"
            " SELECT min(lease_until) FROM messages WHERE recipient = ? AND state = 'in_flight') AS due",
            (recipient, recipient),
        )
        return row[0]

    def list_messages(
        self, state: MessageState | None, recipient: str | None, sender: str | None, after_seq: int, limit: int
    ) -> Operation[list[Message]]:
        where, params = _conditions(
            ["seq > ?"], [after_seq], state=state.value if state else None, recipient=recipient, sender=sender
        )
        rows = yield self.rows(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY seq LIMIT ?", (*params, limit))
        return [message_of(row) for row in rows]

    def hand_out(
        self, recipient: str, after_seq: int, limit: int, now: float, lease_seconds: float, owner: str,
        audit: Callable[[Message], Sequence[NewAuditEntry]],
    ) -> Operation[list[Message]]:
        # Every unconfirmed message is handed out again (in flight or not): a member that lost a
        # page asks again from the start. The lease only tells a push dispatcher, should the member
        # get an endpoint, when it may take the message over.
        rows = yield self.rows(
            f"""
            UPDATE messages
               SET state = 'in_flight', attempts = attempts + 1, lease_owner = ?, lease_until = ?, updated_at = ?
             WHERE seq IN (
                SELECT seq FROM messages
                 WHERE recipient = ? AND state IN ('accepted', 'in_flight') AND seq > ?
                 ORDER BY seq
                 LIMIT ?)
            RETURNING {MESSAGE_COLUMNS}
            """,
            (owner, now + lease_seconds, now, recipient, after_seq, limit),
        )
        messages = sorted((message_of(row) for row in rows), key=lambda m: m.seq)
        entries = [entry for message in messages for entry in audit(message)]
        if entries:
            yield from self.append_audit(entries, now)
        return messages

    def acknowledge(
        self, recipient: str, audit: Mapping[str, Sequence[NewAuditEntry]], now: float
    ) -> Operation[list[str]]:
        """Mark each message of ``audit`` (id -> its entries) confirmed by ``recipient``, and
        delivered if it was not; the ids confirmed now, whose entries are appended."""
        confirmed, entries = [], []
        for message_id, audited in audit.items():
            changed = yield self.statement(
                "UPDATE messages SET acknowledged_at = ?, updated_at = ?, "
                "state = 'delivered', delivered_at = coalesce(delivered_at, ?), lease_owner = NULL, lease_until = NULL "
                "WHERE id = ? AND recipient = ? AND acknowledged_at IS NULL",
                (now, now, now, message_id, recipient),
            )
            if not changed:
                continue
            confirmed.append(message_id)
            entries.extend(audited)
            # The attempt the recipient confirms, unless its outcome is logged already (a pushed
            # message delivered before it was confirmed keeps its attempt as it was).
            yield self.statement(
                "INSERT INTO attempts (message_id, number, started_at, finished_at, outcome, status, error) "
                "SELECT id, attempts, ?, ?, 'delivered', NULL, 'confirmed by the recipient' "
                "FROM messages WHERE id = ? AND attempts > 0 ON CONFLICT (message_id, number) DO NOTHING",
                (now, now, message_id),
            )
        if entries:
            yield from self.append_audit(entries, now)
        return confirmed

    def attempts(self, message_id: str) -> Operation[list[Attempt]]:
        rows = yield self.rows(
            "SELECT message_id, number, started_at, finished_at, outcome, status, error "
            "FROM attempts WHERE message_id = ? ORDER BY number",
            (message_id,),
        )
        return [Attempt(*row) for row in rows]

    def replay(self, message_ids: Sequence[str], now: float, deadline_at: float) -> Operation[list[tuple[str, str]]]:
        """(id, recipient) of each message that was dead and is queued again, in the order asked."""
        # attempts is kept: it numbers the attempt log and fences stale workers.
        rows = yield self.rows(
            "UPDATE messages SET state = 'accepted', next_attempt_at = ?, deadline_at = ?, "
            "max_attempts = attempts + attempt_budget, replays = replays + 1, updated_at = ? "
            f"WHERE {self.members('id')} AND state = 'dead' RETURNING id, recipient{self.notify}",
            (now, deadline_at, now, self.array(list(message_ids))),
        )
        recipients = {row[0]: row[1] for row in rows}
        return [(message_id, recipients[message_id]) for message_id in dict.fromkeys(message_ids)
                if message_id in recipients]

    def counts(self) -> Operation[dict[tuple[str, MessageState], int]]:
        rows = yield self.rows(
            "SELECT recipient, state, count(*) FROM messages "
            "WHERE state IN ('accepted', 'in_flight', 'dead') GROUP BY recipient, state"
        )
        return {(recipient, MessageState(state)): count for recipient, state, count in rows}

    def purge_delivered(self, before: float, limit: int) -> Operation[int]:
        raise NotImplementedError

    def purge_inbound(self, before: float, limit: int) -> Operation[int]:
        raise NotImplementedError

    # -- cases and timers

    def get_case(self, kind: str, case_id: str) -> Operation[Case | None]:
        row = yield self.one(f"SELECT {CASE_COLUMNS} FROM cases WHERE kind = ? AND id = ?", (kind, case_id))
        return case_of(row) if row else None

    def list_cases(
        self, kind: str, state: str | None, subject_key: str | None, after_id: str, limit: int
    ) -> Operation[list[Case]]:
        # One person has a handful of cases: by subject, find them in cases_subject and sort those,
        # rather than walk every case of the kind in id order (the primary key) to filter them.
        order = self.unindexed("id") if subject_key is not None else "id"
        where, params = _conditions(["kind = ?", f"{order} > ?"], [kind, after_id], state=state, subject_key=subject_key)
        rows = yield self.rows(f"SELECT {CASE_COLUMNS} FROM cases WHERE {where} ORDER BY {order} LIMIT ?", (*params, limit))
        return [case_of(row) for row in rows]

    def claim_timers(self, now: float, limit: int, lease_seconds: float, owner: str) -> Operation[list[Timer]]:
        raise NotImplementedError

    def complete_timer(
        self, timer_id: str, attempts: int, commands: Sequence[Command], now: float
    ) -> Operation[list[Any] | None]:
        """The results of ``commands``, or None (and nothing applied) if the lease was lost."""
        deleted = yield self.statement(
            "DELETE FROM timers WHERE id = ? AND attempts = ? AND lease_until IS NOT NULL", (timer_id, attempts)
        )
        if not deleted:
            return None
        return (yield from self.apply_all(commands, now))

    # -- audit log

    def audit_size(self) -> Operation[int]:
        row = yield self.one("SELECT coalesce(max(seq), 0) FROM audit_log")
        return row[0]

    def read_audit(self, start_seq: int, limit: int) -> Operation[list[AuditRecord]]:
        rows = yield self.rows(
            f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?", (start_seq, limit)
        )
        return [audit_record_of(row) for row in rows]

    def audit_by_subject(self, subject_key: str, limit: int, after_seq: int) -> Operation[list[AuditRecord]]:
        rows = yield self.rows(
            f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE subject_key = ? AND seq > ? ORDER BY seq LIMIT ?",
            (subject_key, after_seq, limit),
        )
        return [audit_record_of(row) for row in rows]

    def sequence_audit(self) -> Operation[int]:
        """Number what was appended since the last round as one batch; the log's size."""
        raise NotImplementedError

    def save_tree_heads(self, heads: Sequence[TreeHead]) -> Operation[None]:
        for head in heads:
            yield self.statement(
                "INSERT INTO audit_tree_heads (size, root, signed_at, signature) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (size) DO NOTHING",
                (head.size, head.root, head.signed_at, head.signature),
            )

    def tree_heads(self, after_size: int, limit: int) -> Operation[list[TreeHead]]:
        rows = yield self.rows(
            "SELECT size, root, signed_at, signature FROM audit_tree_heads WHERE size > ? ORDER BY size LIMIT ?",
            (after_size, limit),
        )
        return [TreeHead(size, bytes(root), signed_at, bytes(signature)) for size, root, signed_at, signature in rows]

    # -- indicator events (migration 4): pseudonymous events, written by the Record* commands,
    # read whole to compute the indicators (gateway.services.indicators).

    def record_indicator_event(
        self, command: RecordRelease | RecordReferral | RecordReferralOutcome | RecordReoffence
    ) -> Operation[bool | None]:
        day = self.day
        match command:
            case RecordRelease():
                created = yield self.statement(
                    f"INSERT INTO indicator_releases ({_RELEASE_COLUMNS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (command.pseudonym, day(command.release_date), command.region, command.cohort,
                     day(command.watch_until)),
                )
                if created:
                    # Referrals sent while preparing the release knew only its planned date.
                    yield self.statement(
                        "UPDATE indicator_referrals SET release_date = ? WHERE pseudonym = ? AND state = 'sent'",
                        (day(command.release_date), command.pseudonym),
                    )
                return created > 0
            case RecordReferral():
                created = yield self.statement(
                    f"INSERT INTO indicator_referrals ({_REFERRAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'sent') "
                    "ON CONFLICT DO NOTHING",
                    (command.referral_key, command.pseudonym, command.recipient, command.category, command.region,
                     day(command.release_date)),
                )
                if created:
                    yield self.statement(
                        "INSERT INTO indicator_referral_events (referral_key, state, on_date) VALUES (?, 'sent', ?)",
                        (command.referral_key, day(command.sent_on)),
                    )
                return created > 0
            case RecordReferralOutcome():
                # On PostgreSQL the row lock of this UPDATE makes a concurrent outcome wait, then
                # find the state moved.
                moved = yield self.statement(
                    "UPDATE indicator_referrals SET state = ? WHERE referral_key = ? AND state = ?",
                    (command.state, command.referral_key, command.expected_state),
                )
                if not moved:
                    raise ConflictError("the referral changed while its outcome was being recorded")
                yield self.statement(
                    "INSERT INTO indicator_referral_events (referral_key, state, on_date) VALUES (?, ?, ?)",
                    (command.referral_key, command.state, day(command.on)),
                )
                return None
            case RecordReoffence():
                return (yield self.statement(
                    f"INSERT INTO indicator_reoffences ({_REOFFENCE_COLUMNS}) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (command.pseudonym, command.kind, day(command.on), command.region),
                )) > 0
        raise TypeError(f"not an indicator command: {command!r}")

    def indicator_referrals(self, referral_key: str | None = None) -> Operation[list[IndicatorReferral]]:
        """The referral ``referral_key`` (a list of it or of nothing), or every referral."""
        where, params = ("WHERE referral_key = ?", (referral_key,)) if referral_key is not None else ("", ())
        rows = yield self.rows(f"SELECT {_REFERRAL_COLUMNS} FROM indicator_referrals {where}", params)
        events = yield self.rows(f"SELECT referral_key, state, on_date FROM indicator_referral_events {where}", params)
        transitions: dict[str, list[tuple[str, dt.date]]] = {row[0]: [] for row in rows}
        for key, state, on in events:
            if key in transitions:
                transitions[key].append((state, day_of(on)))
        return [
            IndicatorReferral(key, pseudonym, recipient, category, region, day_of(release_date), state,
                              _in_order(transitions[key]))
            for key, pseudonym, recipient, category, region, release_date, state in rows
        ]

    def indicator_referral(self, referral_key: str) -> Operation[IndicatorReferral | None]:
        found = yield from self.indicator_referrals(referral_key)
        return found[0] if found else None

    def indicator_releases_of(self, pseudonym: str) -> Operation[list[IndicatorRelease]]:
        rows = yield self.rows(
            f"SELECT {_RELEASE_COLUMNS} FROM indicator_releases WHERE pseudonym = ? ORDER BY release_date",
            (pseudonym,),
        )
        return [release_of(row) for row in rows]

    def indicator_counts(self) -> Operation[IndicatorCounts]:
        """The counts of ``IndicatorCounts``, each one statement the database answers set-based."""
        released = yield self.rows(
            "SELECT region, cohort, count(*), min(release_date) FROM indicator_releases GROUP BY region, cohort")
        # A signal belongs to the release it follows: after it, and before the person's next one.
        signalled = yield self.rows(
            "SELECT r.region, r.cohort, r.release_date, min(s.on_date) FROM indicator_releases AS r "
            "JOIN indicator_reoffences AS s ON s.pseudonym = r.pseudonym AND s.on_date > r.release_date "
            "WHERE NOT EXISTS (SELECT 1 FROM indicator_releases AS n WHERE n.pseudonym = r.pseudonym "
            "AND n.release_date > r.release_date AND n.release_date <= s.on_date) "
            "GROUP BY r.pseudonym, r.release_date, r.region, r.cohort")
        first = yield self.one("SELECT min(on_date) FROM indicator_referral_events")
        quarter = self.quarter_of("e.on_date")
        events = ("FROM indicator_referral_events AS e JOIN indicator_referrals AS r "
                  "ON r.referral_key = e.referral_key WHERE e.state = 'provided'")
        assisted = yield self.rows(
            f"SELECT r.region, {quarter}, count(DISTINCT r.pseudonym) {events} GROUP BY r.region, {quarter}")
        by_category = yield self.rows(
            f"SELECT r.category, {quarter}, count(DISTINCT r.pseudonym) {events} GROUP BY r.category, {quarter}")
        # From the place-to-stay referrals (by category) to their sent event, not from every sent event.
        placement = yield self.rows(
            f"SELECT r.region, {quarter}, count(DISTINCT r.pseudonym), "
            "count(DISTINCT CASE WHEN r.state = 'provided' THEN r.pseudonym END), "
            "max(CASE WHEN r.state IN ('sent', 'accepted') THEN 1 ELSE 0 END) "
            "FROM indicator_referrals AS r JOIN indicator_referral_events AS e "
            f"ON e.referral_key = r.referral_key AND {self.unindexed('e.state')} = 'sent' "
            f"WHERE r.category = 'PLACE_TO_STAY' GROUP BY r.region, {quarter}")
        days = [day_of(row[3]) for row in released]
        if first and first[0] is not None:
            days.append(day_of(first[0]))
        return IndicatorCounts(
            first_day=min(days, default=None),
            released=tuple((region, cohort, int(n)) for region, cohort, n, _ in released),
            signalled=tuple((region, cohort, day_of(day), day_of(signal)) for region, cohort, day, signal in signalled),
            assisted=tuple((region, q, int(n)) for region, q, n in assisted),
            assisted_by_category=tuple((category, q, int(n)) for category, q, n in by_category),
            placement=tuple((region, q, int(needed), int(placed), bool(open_))
                            for region, q, needed, placed, open_ in placement),
        )

    def indicator_events(self) -> Operation[IndicatorEvents]:
        releases = yield self.rows(f"SELECT {_RELEASE_COLUMNS} FROM indicator_releases")
        referrals = yield from self.indicator_referrals()
        reoffences = yield self.rows(f"SELECT {_REOFFENCE_COLUMNS} FROM indicator_reoffences")
        return IndicatorEvents(
            releases=tuple(release_of(row) for row in releases),
            referrals=tuple(referrals),
            reoffences=tuple(reoffence_of(row) for row in reoffences),
        )

    # -- console accounts and sessions

    def add_console_account(self, account: ConsoleAccount) -> Operation[None]:
        added = yield self.statement(
            f"INSERT INTO console_accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (username) DO NOTHING",
            (account.username, account.role, account.password_hash, account.display_name, account.office,
             account.region, account.disabled, account.created_at),
        )
        if not added:
            raise ConflictError(f"an account named {account.username!r} already exists")

    def console_account(self, username: str) -> Operation[ConsoleAccount | None]:
        row = yield self.one(f"SELECT {ACCOUNT_COLUMNS} FROM console_accounts WHERE username = ?", (username,))
        return account_of(row) if row else None

    def console_accounts(self) -> Operation[list[ConsoleAccount]]:
        rows = yield self.rows(f"SELECT {ACCOUNT_COLUMNS} FROM console_accounts ORDER BY username")
        return [account_of(row) for row in rows]

    def update_console_account(
        self, username: str, password_hash: str | None, disabled: bool | None
    ) -> Operation[bool]:
        changed = yield self.statement(
            "UPDATE console_accounts SET password_hash = coalesce(?, password_hash), "
            "disabled = coalesce(?, disabled) WHERE username = ?",
            (password_hash, disabled, username),
        )
        return changed == 1

    def add_console_session(self, session: ConsoleSession) -> Operation[None]:
        yield self.statement(
            f"INSERT INTO console_sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (session.id, session.username, session.csrf_token, session.created_at, session.last_seen_at),
        )

    def console_session(self, session_id: str) -> Operation[ConsoleSession | None]:
        row = yield self.one(f"SELECT {SESSION_COLUMNS} FROM console_sessions WHERE id = ?", (session_id,))
        return ConsoleSession(*row) if row else None

    def touch_console_session(self, session_id: str, now: float) -> Operation[None]:
        yield self.statement("UPDATE console_sessions SET last_seen_at = ? WHERE id = ?", (now, session_id))

    def end_console_sessions(
        self, session_id: str | None, username: str | None, idle_before: float | None, created_before: float | None
    ) -> Operation[int]:
        clauses, params = [], []
        for clause, value in (("id = ?", session_id), ("username = ?", username),
                              ("last_seen_at < ?", idle_before), ("created_at < ?", created_before)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if not clauses:
            return 0
        return (yield self.statement(f"DELETE FROM console_sessions WHERE {' OR '.join(clauses)}", params))

    def search_messages(self, query: MessageQuery, before_seq: int | None, limit: int) -> Operation[list[Message]]:
        clauses, params = [], []
        for clause, value in (
            ("accepted_at >= ?", query.accepted_from), ("accepted_at < ?", query.accepted_until),
            ("seq < ?", before_seq),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where, params = _conditions(
            clauses, params, id=query.message_id, correlation_id=query.correlation_id, sender=query.sender,
            recipient=query.recipient, service=query.service, state=query.state.value if query.state else None,
        )
        rows = yield self.rows(
            f"SELECT {MESSAGE_COLUMNS} FROM messages {'WHERE ' + where if where else ''} ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        )
        return [message_of(row) for row in rows]

    def delivered_since(self, since: float) -> Operation[dict[str, int]]:
        rows = yield self.rows(
            "SELECT recipient, count(*) FROM messages WHERE state = 'delivered' AND delivered_at >= ? "
            "GROUP BY recipient",
            (since,),
        )
        return {recipient: count for recipient, count in rows}


def _conditions(clauses: list[str], params: list[Any], **equal: Any) -> tuple[str, list[Any]]:
    """A WHERE clause of ``clauses`` and ``column = value`` for each given (not None) value."""
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


# ---------------------------------------------------------------- the store on a dialect


class SQLStore:
    """The ``Store`` methods, in terms of a dialect's operations and three ways to run one.

    A backend provides ``_read`` and ``_write``/``_write_redoable``. ``atomic`` says what a write
    needs: None, that each of its statements may commit on its own (it is one statement, or its
    statements need not commit together); otherwise one transaction, which first takes the
    locks these commands need (PostgreSQL: ordering keys, the audit log). SQLite runs every
    write in its writer's transaction and takes no locks.
    """

    _dialect: Dialect

    def __init__(self) -> None:
        self._work_listeners: list[Callable[[str], None]] = []

    async def _read(self, operation: Callable[..., Operation[T]], *args: Any) -> T:
        raise NotImplementedError

    async def _write(
        self, operation: Callable[..., Operation[T]], *args: Any, atomic: Sequence[Command] | None = None
    ) -> T:
        raise NotImplementedError

    async def _write_redoable(
        self, operation: Callable[..., Operation[T]], *args: Any, atomic: Sequence[Command] | None = None
    ) -> T:
        """A write that a crash may lose, because it is redone then (a claim, a signed tree head)."""
        return await self._write(operation, *args, atomic=atomic)

    async def _read_snapshot(self, operation: Callable[..., Operation[T]], *args: Any) -> T:
        """A read whose statements all see one moment. SQLite's writer thread runs an operation's
        statements with no write of this store in between, so this is ``_read``; PostgreSQL opens
        a snapshot for it."""
        return await self._read(operation, *args)

    # -- lifecycle

    async def ping(self) -> None:
        await self._read(self._dialect.ping)

    async def probe_write(self) -> None:
        await self._write(self._dialect.probe_write)

    def on_new_work(self, callback: Callable[[str], None]) -> None:
        self._work_listeners.append(callback)

    def _announce(self, recipients: Iterable[str]) -> None:
        for recipient in set(recipients):
            for callback in self._work_listeners:
                callback(recipient)

    def _announce_accepted(self, results: Iterable[Any]) -> None:
        self._announce(
            result.message.recipient for result in results if isinstance(result, Acceptance) and not result.duplicate
        )

    # -- commands

    async def apply(self, commands: Sequence[Command], now: float) -> list[Any]:
        commands = list(commands)
        results = await self._write(self._dialect.apply_all, commands, now, atomic=commands)
        self._announce_accepted(results)
        return results

    async def accept(self, message: NewMessage, now: float) -> Acceptance:
        # Without an ordering key the accept takes no lock: on PostgreSQL, one statement.
        atomic = None if message.ordering_key is None else [AcceptMessage(message)]
        acceptance = await self._write(self._dialect.accept, message, now, atomic=atomic)
        if not acceptance.duplicate:
            self._announce([message.recipient])
        return acceptance

    # -- outbox

    async def get_message(self, message_id: str) -> Message | None:
        return await self._read(self._dialect.get_message, message_id)

    async def get_evidence(self, message_id: str) -> StoredEvidence | None:
        return await self._read(self._dialect.get_evidence, message_id)

    async def find_message(self, sender: str, client_message_id: str) -> Message | None:
        return await self._read(self._dialect.find_message, sender, client_message_id)

    async def find_inbound(self, sender: str, key: str) -> bytes | None:
        return await self._read(self._dialect.find_inbound, sender, key)

    async def claim(self, recipient: str, limit: int, now: float, lease_seconds: float, owner: str) -> list[Message]:
        return await self._write_redoable(self._dialect.claim, recipient, limit, now, lease_seconds, owner, atomic=())

    async def record_delivered(
        self, message_id: str, attempt: int, started_at: float, now: float, status: int, answer: bytes = b"",
        audit: Sequence[NewAuditEntry] = (),
    ) -> bool:
        return await self._record_outcome(
            message_id, attempt, started_at, now, audit, state=MessageState.DELIVERED, outcome="delivered",
            delivered_at=now, next_attempt_at=None, error=None, status=status, answer=answer or None, extra_attempts=0,
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
            message_id, attempt, started_at, now, audit,
            state=MessageState.DEAD if dead else MessageState.ACCEPTED, outcome="dead" if dead else "retry",
            delivered_at=None, next_attempt_at=now if dead else retry_at, error=error, status=status, answer=None,
            extra_attempts=0 if counted else 1,
        )

    async def _record_outcome(
        self, message_id: str, attempt: int, started_at: float, now: float, audit: Sequence[NewAuditEntry],
        *, state: MessageState, **outcome: Any,
    ) -> bool:
        params = {"id": message_id, "attempt": attempt, "started_at": started_at, "now": now, "state": state.value,
                  **outcome}
        atomic = [AppendAudit(audit)] if audit else None
        return await self._write(self._dialect.record_outcome, params, audit, atomic=atomic)

    async def next_due(self, recipient: str) -> float | None:
        return await self._read(self._dialect.next_due, recipient)

    async def list_messages(
        self,
        *,
        state: MessageState | None = None,
        recipient: str | None = None,
        sender: str | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[Message]:
        return await self._read(self._dialect.list_messages, state, recipient, sender, after_seq, limit)

    async def attempts(self, message_id: str) -> list[Attempt]:
        return await self._read(self._dialect.attempts, message_id)

    async def hand_out(
        self, recipient: str, *, after_seq: int, limit: int, now: float, lease_seconds: float, owner: str,
        audit: Callable[[Message], Sequence[NewAuditEntry]] = lambda message: (),
    ) -> list[Message]:
        # One transaction: what is handed out is audited, or nothing is handed out.
        return await self._write(self._dialect.hand_out, recipient, after_seq, limit, now, lease_seconds, owner,
                                 audit, atomic=[AppendAudit(())])

    async def acknowledge(
        self, recipient: str, audit: Mapping[str, Sequence[NewAuditEntry]], now: float
    ) -> list[str]:
        entries = [entry for audited in audit.values() for entry in audited]
        atomic = [AppendAudit(entries)]  # one transaction; on PostgreSQL, the audit log's lock first
        return await self._write(self._dialect.acknowledge, recipient, dict(audit), now, atomic=atomic)

    async def replay(self, message_ids: Sequence[str], now: float, deadline_at: float) -> list[str]:
        replayed = await self._write(self._dialect.replay, list(message_ids), now, deadline_at)
        self._announce(recipient for _, recipient in replayed)
        return [message_id for message_id, _ in replayed]

    async def counts(self) -> dict[tuple[str, MessageState], int]:
        return await self._read(self._dialect.counts)

    async def purge_delivered(self, before: float, limit: int = 10_000) -> int:
        return await self._write(self._dialect.purge_delivered, before, limit)

    async def purge_inbound(self, before: float, limit: int = 10_000) -> int:
        return await self._write(self._dialect.purge_inbound, before, limit)

    # -- cases and timers

    async def get_case(self, kind: str, case_id: str) -> Case | None:
        return await self._read(self._dialect.get_case, kind, case_id)

    async def list_cases(
        self,
        kind: str,
        *,
        state: str | None = None,
        subject_key: str | None = None,
        after_id: str = "",
        limit: int = 100,
    ) -> list[Case]:
        return await self._read(self._dialect.list_cases, kind, state, subject_key, after_id, limit)

    async def claim_timers(self, now: float, limit: int, lease_seconds: float, owner: str) -> list[Timer]:
        return await self._write_redoable(self._dialect.claim_timers, now, limit, lease_seconds, owner)

    async def complete_timer(self, timer_id: str, attempts: int, commands: Sequence[Command], now: float) -> bool:
        commands = list(commands)
        results = await self._write(self._dialect.complete_timer, timer_id, attempts, commands, now, atomic=commands)
        if results is None:
            return False
        self._announce_accepted(results)
        return True

    # -- audit log

    async def audit_size(self) -> int:
        return await self._read(self._dialect.audit_size)

    async def read_audit(self, start_seq: int = 1, limit: int = 1000) -> list[AuditRecord]:
        return await self._read(self._dialect.read_audit, start_seq, limit)

    async def audit_by_subject(self, subject_key: str, limit: int = 1000, after_seq: int = 0) -> list[AuditRecord]:
        return await self._read(self._dialect.audit_by_subject, subject_key, limit, after_seq)

    async def sequence_audit(self) -> None:
        # Redoable: the batch a lost round marked is marked again by the next one, and a tree
        # head is never on disk without the round before it (SQLite writes its WAL in order).
        await self._write_redoable(self._dialect.sequence_audit, atomic=())

    async def save_tree_head(self, head: TreeHead) -> None:
        await self.save_tree_heads([head])

    async def save_tree_heads(self, heads: Sequence[TreeHead]) -> None:
        await self._write_redoable(self._dialect.save_tree_heads, list(heads), atomic=())

    async def tree_heads(self, after_size: int = 0, limit: int = 1000) -> list[TreeHead]:
        return await self._read(self._dialect.tree_heads, after_size, limit)

    # -- indicator events (written with the Record* commands through ``apply``)

    async def indicator_referral(self, referral_key: str) -> IndicatorReferral | None:
        return await self._read(self._dialect.indicator_referral, referral_key)

    async def indicator_releases_of(self, pseudonym: str) -> list[IndicatorRelease]:
        return await self._read(self._dialect.indicator_releases_of, pseudonym)

    async def indicator_counts(self) -> IndicatorCounts:
        return await self._read_snapshot(self._dialect.indicator_counts)

    async def indicator_events(self) -> IndicatorEvents:
        # One snapshot for all three tables: the indicators are computed from one moment.
        return await self._read_snapshot(self._dialect.indicator_events)

    # -- console accounts and sessions

    async def add_console_account(self, account: ConsoleAccount) -> None:
        await self._write(self._dialect.add_console_account, account)

    async def console_account(self, username: str) -> ConsoleAccount | None:
        return await self._read(self._dialect.console_account, username)

    async def console_accounts(self) -> list[ConsoleAccount]:
        return await self._read(self._dialect.console_accounts)

    async def update_console_account(self, username: str, *, password_hash: str | None = None,
                                     disabled: bool | None = None) -> bool:
        return await self._write(self._dialect.update_console_account, username, password_hash, disabled)

    async def add_console_session(self, session: ConsoleSession) -> None:
        await self._write_redoable(self._dialect.add_console_session, session)

    async def console_session(self, session_id: str) -> ConsoleSession | None:
        return await self._read(self._dialect.console_session, session_id)

    async def touch_console_session(self, session_id: str, now: float) -> None:
        # Redoable: a lost touch only makes a session look idle a little sooner.
        await self._write_redoable(self._dialect.touch_console_session, session_id, now)

    async def end_console_sessions(self, *, session_id: str | None = None, username: str | None = None,
                                   idle_before: float | None = None, created_before: float | None = None) -> int:
        return await self._write(self._dialect.end_console_sessions, session_id, username, idle_before, created_before)

    async def search_messages(self, query: MessageQuery, *, before_seq: int | None = None,
                              limit: int = 50) -> list[Message]:
        return await self._read(self._dialect.search_messages, query, before_seq, limit)

    async def delivered_since(self, since: float) -> dict[str, int]:
        return await self._read(self._dialect.delivered_since, since)
