"""The durable store's interface: records, commands, the role protocols and ``Store``.

Every backend (embedded SQLite, PostgreSQL) implements ``Store`` with the same
observable behaviour; the contract tests in ``tests/store`` run against each.
Nothing here assumes a particular database: times are float seconds since the
epoch handed in by the caller (so the clock stays injectable), identifiers are
text, bodies are bytes.

Writes that must happen together go through ``Store.apply`` as a list of
commands executed in one transaction — the transactional outbox: a workflow
step that saves its case, schedules a timer and enqueues a message either does
all three or none.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class StoreError(Exception):
    """The store could not do what was asked (unreachable, corrupt, conflict)."""


class ConflictError(StoreError):
    """An optimistic-concurrency check failed: someone else changed the row first."""


class MessageState(enum.StrEnum):
    ACCEPTED = "accepted"  # durably stored, waiting for (another) delivery attempt
    IN_FLIGHT = "in_flight"  # claimed by a worker holding a lease
    DELIVERED = "delivered"  # the recipient answered 2xx
    DEAD = "dead"  # permanent failure or attempts/age exhausted: waits for replay


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to be relayed, as accepted from a sender."""

    sender: str
    recipient: str
    service: str
    body: bytes
    content_type: str
    correlation_id: str
    max_attempts: int
    deadline_at: float
    # The sender's own id (``X-Message-Id``): the idempotency key, unique per sender.
    client_message_id: str | None = None
    purpose: str | None = None
    # Messages sharing (recipient, ordering_key) are delivered one at a time, in
    # acceptance order. None means the message may overtake and be overtaken.
    ordering_key: str | None = None
    # The gateway's id for the message; chosen by the store when None. A workflow
    # chooses it, so the id it records is the id the recipient sees.
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message with its delivery state."""

    id: str
    seq: int
    sender: str
    recipient: str
    service: str
    body: bytes
    content_type: str
    correlation_id: str
    client_message_id: str | None
    purpose: str | None
    ordering_key: str | None
    state: MessageState
    attempts: int
    max_attempts: int
    accepted_at: float
    next_attempt_at: float
    deadline_at: float
    updated_at: float
    delivered_at: float | None = None
    last_error: str | None = None
    last_status: int | None = None
    replays: int = 0
    # The recipient's answer to the delivery (a court's receipt, say), kept with the message.
    answer: bytes | None = None
    # When the recipient confirmed it has the message (AsyncChannel sendDeliveryNotification).
    acknowledged_at: float | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """A sender's signed document exactly as it arrived (the bytes its signature was checked
    on), kept beside the message it became: the sender's proof of what it sent, which the
    gateway's own signature on the delivery does not replace."""

    document: bytes
    media_type: str
    certificate: bytes | None = None
    """DER of the pinned certificate that verified the signature, as it was then."""


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    """``Evidence`` as kept, with the message it belongs to."""

    message_id: str
    sender: str
    recipient: str
    received_at: float
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The answer to an accept: the stored message, and whether it was already there."""

    message: Message
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt, kept for operators (``gateway dlq show``)."""

    message_id: str
    number: int
    started_at: float
    finished_at: float
    outcome: str  # delivered | retry | dead
    status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Case:
    """A persisted workflow instance (pre-trial report, release case)."""

    kind: str
    id: str
    state: str
    data: Mapping[str, Any]
    version: int
    created_at: float
    updated_at: float
    subject_key: str | None = None


@dataclass(frozen=True, slots=True)
class Timer:
    """A stored timer: a deadline or an escalation that survives restarts."""

    id: str
    case_kind: str
    case_id: str
    name: str
    fire_at: float
    payload: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class NewAuditEntry:
    """An entry to append to the audit log.

    ``entry`` is the canonical serialisation that the Merkle tree hashes; the store
    keeps it verbatim and never re-serialises it. ``subject_key`` (a keyed hash of
    the person's IIN, never the IIN itself) lets oversight list one person's entries.
    """

    entry: bytes
    subject_key: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored entry of the audit log."""

    seq: int  # 1-based and gapless: the Merkle leaf index is seq - 1
    entry: bytes
    recorded_at: float
    subject_key: str | None = None
    tree_size: int | None = None
    """On the entry that ends a batch, the size the log reached with it (``seq``: a tree head is
    signed at it); None on the others, and on entries whose batch is still open (SQLite, until
    the next sequencing round)."""


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed tree head of the audit log at ``size`` entries."""

    size: int
    root: bytes
    signed_at: float
    signature: bytes


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class AcceptMessage:
    """Store a new message in the outbox, or find the one already stored under
    the same (sender, client_message_id). Result: ``Acceptance``.

    ``audit`` entries are appended with the message, and only if it is new: a resend is
    answered from the store without a prior look-up, and leaves no trace of its own here."""

    message: NewMessage
    audit: Sequence[NewAuditEntry] = ()
    evidence: Evidence | None = None
    """Kept with the message, and only if it is new: a resend keeps the first one's."""


@dataclass(frozen=True, slots=True)
class RecordInbound:
    """Remember the answer given to an inbound message that is not relayed (a SOAP
    notification, say), so a resend gets the same answer. Result: True if recorded,
    False if an answer was already recorded under this (sender, key). Forgotten
    after the de-duplication period, like every idempotency record."""

    sender: str
    key: str
    answer: bytes


@dataclass(frozen=True, slots=True)
class SaveCase:
    """Create (``expected_version`` 0) or update a case, checking its version.
    Result: the new version. Raises ``ConflictError`` on a version mismatch."""

    kind: str
    id: str
    state: str
    data: Mapping[str, Any]
    expected_version: int
    subject_key: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleTimer:
    """Schedule a timer; scheduling an existing timer id moves it. Result: None."""

    timer: Timer


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Remove a timer if it is still pending. Result: True if it was there."""

    timer_id: str


@dataclass(frozen=True, slots=True)
class AppendAudit:
    """Append entries to the audit log. Result: the sequence number of each."""

    entries: Sequence[NewAuditEntry]


# ---------------------------------------------------------------- indicator events
# The events the Strategy's target indicators are computed from (gateway.services.indicators),
# kept in tables of their own apart from identifiable data: a person is a pseudonym (a keyed
# hash of the IIN under the indicators' own secret), a referral a keyed hash of its id. No
# name, IIN, address, case id or time of recording is stored with them.


@dataclass(frozen=True, slots=True)
class RecordRelease:
    """An actual release, watched for re-offence until ``watch_until``. Result: True if new,
    False if this (pseudonym, release date) is recorded already. A new release also becomes the
    release date of the person's referrals still ``sent``: those sent while preparing it knew only
    the planned date."""

    pseudonym: str
    release_date: dt.date
    region: str
    cohort: str
    watch_until: dt.date


@dataclass(frozen=True, slots=True)
class RecordReferral:
    """A referral sent to ``recipient`` (the member that reports its outcomes). Result: True if
    new, False if this referral is recorded already."""

    referral_key: str
    pseudonym: str
    recipient: str
    category: str
    region: str
    release_date: dt.date
    sent_on: dt.date


@dataclass(frozen=True, slots=True)
class RecordReferralOutcome:
    """The referral reached ``state`` on ``on``; it must still be in ``expected_state`` (the state
    the outcome was checked against), else ``ConflictError`` and nothing is written. Result: None."""

    referral_key: str
    expected_state: str
    state: str
    on: dt.date


@dataclass(frozen=True, slots=True)
class RecordReoffence:
    """A new case or conviction of a watched person. Result: True if new, False if recorded already."""

    pseudonym: str
    kind: str
    on: dt.date
    region: str


@dataclass(frozen=True, slots=True)
class DecideReferralOutcome:
    """Read the referral ``referral_key`` and write what ``decide`` makes of it, in one transaction
    (one round trip: an outcome costs what a relayed message does). ``decide`` is pure: given the
    stored referral, or None, it returns the ``RecordReferralOutcome`` to write, or None to write
    nothing; what it raises is the command's error, and nothing is written. Result: what was written."""

    referral_key: str
    decide: Callable[[IndicatorReferral | None], RecordReferralOutcome | None]


IndicatorCommand = RecordRelease | RecordReferral | RecordReferralOutcome | DecideReferralOutcome | RecordReoffence


@dataclass(frozen=True, slots=True)
class IndicatorRelease:
    pseudonym: str
    release_date: dt.date
    region: str
    cohort: str
    watch_until: dt.date


@dataclass(frozen=True, slots=True)
class IndicatorReferral:
    referral_key: str
    pseudonym: str
    recipient: str
    category: str
    region: str
    release_date: dt.date
    state: str
    transitions: tuple[tuple[str, dt.date], ...]
    """(state, date) from sent on, in the order they happened."""


@dataclass(frozen=True, slots=True)
class IndicatorReoffence:
    pseudonym: str
    kind: str
    on: dt.date
    region: str


@dataclass(frozen=True, slots=True)
class IndicatorEvents:
    """Every indicator event, for computing the indicators."""

    releases: tuple[IndicatorRelease, ...]
    referrals: tuple[IndicatorReferral, ...]
    reoffences: tuple[IndicatorReoffence, ...]


@dataclass(frozen=True, slots=True)
class IndicatorCounts:
    """What the indicators are computed from, counted where the events are kept (set-based): per
    (region, quarter) the releases, and per release that was followed by a signal the first signal
    before any later release (indicator 1); the persons assisted and placed by (region or category,
    quarter) with ``count(DISTINCT pseudonym)`` (indicators 2 and 3). A quarter is written ``2026Q4``."""

    first_day: dt.date | None
    """The earliest release or referral date, for the first quarter shown."""
    released: tuple[tuple[str, str, int], ...]
    """(region, cohort, releases)."""
    signalled: tuple[tuple[str, str, dt.date, dt.date], ...]
    """(region, cohort, release date, the first signal dated after it and before the person's next release)."""
    assisted: tuple[tuple[str, str, int], ...]
    """(region, quarter provided, persons with a referral provided)."""
    assisted_by_category: tuple[tuple[str, str, int], ...]
    """(category, quarter provided, persons)."""
    placement: tuple[tuple[str, str, int, int, bool], ...]
    """(region, quarter sent, persons referred for a place to stay, of them placed, any still open)."""


Command = AcceptMessage | RecordInbound | SaveCase | ScheduleTimer | CancelTimer | AppendAudit | IndicatorCommand


# ---------------------------------------------------------------- protocols
# The store's port, split into the roles its callers play. A caller names the narrowest role
# that covers what it uses; ``Store`` combines them all, and each backend implements ``Store``.


@dataclass(frozen=True, slots=True)
class ConsoleAccount:
    """A person who signs in to the console: an operator, a probation officer (bound to an
    office and its region), oversight or an auditor. ``password_hash`` is an argon2id string."""

    username: str
    role: str
    password_hash: str
    display_name: str
    office: str | None = None
    region: str | None = None
    disabled: bool = False
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in browser. ``id`` is the SHA-256 of the cookie's secret, never the secret."""

    id: str
    username: str
    csrf_token: str
    created_at: float
    last_seen_at: float


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """What the console's message search filters on; None leaves a filter out."""

    message_id: str | None = None
    correlation_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    service: str | None = None
    state: MessageState | None = None
    accepted_from: float | None = None
    accepted_until: float | None = None


class Transactions(Protocol):
    """Writes that commit together: the one way to write a case, a timer, an inbound answer
    or an audit entry, and to accept messages along with them."""

    async def apply(self, commands: Sequence[Command], now: float) -> list[Any]:
        """Execute ``commands`` in one transaction; results in the same order.
        Returns only after the transaction is durably committed."""


class Outbox(Transactions, Protocol):
    """Messages to relay: accepted, claimed by delivery workers, delivered or dead-lettered,
    replayed, counted and purged after their retention period."""

    def on_new_work(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(recipient)`` on the event loop after a message for
        ``recipient`` is committed (or replayed) — by this process or, where the
        backend can tell (PostgreSQL LISTEN/NOTIFY), by another instance — so idle
        delivery workers wake at once instead of polling."""

    async def accept(self, message: NewMessage, now: float) -> Acceptance:
        """``apply([AcceptMessage(message)])`` — the relay's hot path."""

    async def get_message(self, message_id: str) -> Message | None: ...

    async def get_evidence(self, message_id: str) -> StoredEvidence | None:
        """The sender's signed document the message was accepted with, if it was signed."""
        ...

    async def find_message(self, sender: str, client_message_id: str) -> Message | None: ...

    async def claim(
        self, recipient: str, limit: int, now: float, lease_seconds: float, owner: str
    ) -> list[Message]:
        """Lease up to ``limit`` due messages for ``recipient`` and count an attempt on each.

        A message is due when it is accepted with ``next_attempt_at <= now``, or in
        flight with an expired lease (its worker died). A message with an ordering
        key is due only if no earlier message with the same (recipient, key) is
        still undelivered and not dead, and no message of that key is in flight:
        one at a time per key, even after a replay. The returned messages carry the new attempt
        number, which fences the outcome calls below.
        """

    async def record_delivered(
        self, message_id: str, attempt: int, started_at: float, now: float, status: int, answer: bytes = b"",
        audit: Sequence[NewAuditEntry] = (),
    ) -> bool:
        """Mark delivered and keep the recipient's ``answer``; ``audit`` entries commit with
        it. False (and nothing written) if the lease was lost (another worker owns the attempt)."""

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
        """Schedule a retry at ``retry_at``, or dead-letter when it is None; ``audit``
        entries commit with it. ``counted`` False gives the attempt back to the budget
        (``max_attempts`` grows by one): it never reached the receiver. False (and
        nothing written) if the lease was lost."""

    async def next_due(self, recipient: str) -> float | None:
        """When the earliest pending message for ``recipient`` becomes due (or None)."""

    async def list_messages(
        self,
        *,
        state: MessageState | None = None,
        recipient: str | None = None,
        sender: str | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[Message]: ...

    async def attempts(self, message_id: str) -> list[Attempt]: ...

    async def hand_out(
        self, recipient: str, *, after_seq: int, limit: int, now: float, lease_seconds: float, owner: str,
        audit: Callable[[Message], Sequence[NewAuditEntry]] = lambda message: (),
    ) -> list[Message]:
        """Up to ``limit`` unconfirmed (accepted or in flight) messages for ``recipient`` after
        ``after_seq``, in acceptance order, for a member that pulls: each is marked in flight,
        leased to ``owner`` and counted as an attempt, and the entries ``audit(message)`` gives
        are appended in the same transaction. A message is handed out again at every pull until
        the recipient confirms it (``acknowledge``); it never goes dead by itself."""

    async def acknowledge(
        self, recipient: str, audit: Mapping[str, Sequence[NewAuditEntry]], now: float
    ) -> list[str]:
        """The recipient confirms it has each message of ``audit`` (message id -> the audit
        entries of the confirmation): the message is delivered, if it was not, and its
        confirmation time kept. Returns the ids confirmed now, in one transaction with their
        entries; a message confirmed before, or not for ``recipient``, is left as it is."""

    async def replay(self, message_ids: Sequence[str], now: float, deadline_at: float) -> list[str]:
        """Move dead messages back to accepted with a fresh attempt budget (as many
        attempts as the message was first given).
        Returns the ids that were dead and are now queued again."""

    async def counts(self) -> dict[tuple[str, MessageState], int]:
        """Number of accepted, in-flight and dead messages by (recipient, state),
        for metrics and readiness. Delivered messages are counted by the metrics
        counters, not here: their number grows without bound."""

    async def purge_delivered(self, before: float, limit: int = 10_000) -> int:
        """Delete up to ``limit`` messages delivered before ``before`` (retention:
        payloads hold personal data and are not kept longer than needed). The
        idempotency record of each message stays until ``purge_inbound``."""


class Inbox(Transactions, Protocol):
    """Inbound idempotency: the answers recorded (``RecordInbound``) for inbound messages that
    are not relayed, and the retention of every idempotency record, the outbox's included."""

    async def find_inbound(self, sender: str, key: str) -> bytes | None:
        """The answer recorded by ``RecordInbound`` for (sender, key), if any."""

    async def purge_inbound(self, before: float, limit: int = 10_000) -> int:
        """Forget idempotency records older than ``before`` whose message is gone."""


class CaseStore(Transactions, Protocol):
    """Workflow cases and their timers (written with ``SaveCase``, ``ScheduleTimer``, ``CancelTimer``)."""

    async def get_case(self, kind: str, case_id: str) -> Case | None: ...

    async def list_cases(
        self,
        kind: str,
        *,
        state: str | None = None,
        subject_key: str | None = None,
        after_id: str = "",
        limit: int = 100,
    ) -> list[Case]: ...

    async def claim_timers(self, now: float, limit: int, lease_seconds: float, owner: str) -> list[Timer]:
        """Lease due timers; a timer whose lease expired (its worker died) is due again."""

    async def complete_timer(self, timer_id: str, attempts: int, commands: Sequence[Command], now: float) -> bool:
        """Delete a fired timer and apply the commands its handling produced, atomically.
        False (and nothing applied) if the lease was lost: the timer fires once."""


class AuditStore(Transactions, Protocol):
    """The audit log (appended with ``AppendAudit``) and its signed tree heads."""

    async def audit_size(self) -> int: ...

    async def read_audit(self, start_seq: int = 1, limit: int = 1000) -> list[AuditRecord]: ...

    async def audit_by_subject(self, subject_key: str, limit: int = 1000, after_seq: int = 0) -> list[AuditRecord]:
        """The subject's entries after ``after_seq``, oldest first (keyset paging)."""

    async def sequence_audit(self) -> None:
        """Number every entry committed so far, as one batch: afterwards ``read_audit`` and
        ``audit_by_subject`` see them, and the batch's entries carry its ``tree_size``."""

    async def save_tree_head(self, head: TreeHead) -> None: ...

    async def save_tree_heads(self, heads: Sequence[TreeHead]) -> None: ...

    async def tree_heads(self, after_size: int = 0, limit: int = 1000) -> list[TreeHead]: ...


class IndicatorStore(Transactions, Protocol):
    """The indicator events (written with ``RecordRelease``, ``RecordReferral``,
    ``RecordReferralOutcome`` and ``RecordReoffence``), pseudonymous, apart from identifiable data."""

    async def indicator_referral(self, referral_key: str) -> IndicatorReferral | None: ...

    async def indicator_releases_of(self, pseudonym: str) -> list[IndicatorRelease]:
        """The person's recorded releases, oldest first."""

    async def indicator_counts(self) -> IndicatorCounts:
        """The counts the indicators are computed from, counted by the database (set-based)."""

    async def indicator_events(self) -> IndicatorEvents:
        """Every indicator event, read from one snapshot: the indicators are computed from one moment."""


class ConsoleStore(Protocol):
    """The console's people (accounts, not members), their server-side sessions, and the
    message reads its screens need."""

    async def add_console_account(self, account: ConsoleAccount) -> None:
        """Raises ``ConflictError`` when the username is taken."""

    async def console_account(self, username: str) -> ConsoleAccount | None: ...

    async def console_accounts(self) -> list[ConsoleAccount]: ...

    async def update_console_account(self, username: str, *, password_hash: str | None = None,
                                     disabled: bool | None = None) -> bool:
        """False when there is no such account."""

    async def add_console_session(self, session: ConsoleSession) -> None: ...

    async def console_session(self, session_id: str) -> ConsoleSession | None: ...

    async def touch_console_session(self, session_id: str, now: float) -> None: ...

    async def end_console_sessions(self, *, session_id: str | None = None, username: str | None = None,
                                   idle_before: float | None = None, created_before: float | None = None) -> int:
        """Delete the sessions matching any of the conditions given; returns how many."""

    async def search_messages(self, query: MessageQuery, *, before_seq: int | None = None,
                              limit: int = 50) -> list[Message]:
        """Messages matching every filter of ``query``, newest first, below ``before_seq``."""

    async def delivered_since(self, since: float) -> dict[str, int]:
        """Messages delivered since ``since``, by recipient (those not yet purged)."""


class Lifecycle(Protocol):
    """Opening and closing the store, and whether it answers (readiness)."""

    async def open(self) -> None:
        """Connect and bring the schema up to date (migrations)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``StoreError`` unless the store answers a trivial query."""

    async def probe_write(self) -> None:
        """Raise ``StoreError`` unless the store can commit (a full disk, a read-only or lost
        connection fail here as an acceptance would)."""


class DeliveryStore(Outbox, Inbox, Protocol):
    """What the delivery engine uses: the outbox, and the retention of idempotency records."""


class WorkflowStore(CaseStore, Outbox, Protocol):
    """What the workflow runtime uses: cases and timers, and the messages its steps send."""


class Store(Lifecycle, Outbox, Inbox, CaseStore, AuditStore, IndicatorStore, ConsoleStore, Protocol):
    """What the gateway needs from durable storage. See the module docstring."""

