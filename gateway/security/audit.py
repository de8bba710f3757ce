"""The audit log: who sent or received what about whom, when, why, and with what outcome.

Oversight — the prosecutor, the data-protection authority, the person themself — must be
able to see afterwards every disclosure about a person, and trust that the record was
only ever appended to. So the log lives in the store (not in log files), one entry per
inbound message, outbound message and disclosure decision, and it is tamper-evident:

- each entry is canonical JSON (sorted keys, no floats, UTF-8), so the same entry always
  has the same bytes and the same hash;
- the entries are the leaves of an RFC 9162 Merkle tree (``gateway.security.merkle``);
- an entry is written in the transaction that makes the disclosure it records, without a
  number; a **sequencing round** numbers every entry committed since the last one, as one
  batch, in one total order that never changes afterwards (``AuditStore.sequence_audit``:
  on SQLite the one writer numbers as it appends, on PostgreSQL whichever instance holds the
  log's advisory lock numbers what is pending). No audited transaction waits for another
  one's entries; only rounds wait for each other;
- the log grows batch by batch, so the sizes it reaches are its batches' ends (the entry
  that ends a batch carries its ``tree_size``), and a signer signs the tree head — size and root — with
  an Ed25519 key for **every** size the log reaches: one head per batch, not per entry.
  Comparing the stored entries with those heads one size after another names the first
  entry that was changed, removed or moved: the first head whose root no longer matches
  covers the first bad entry. A hash chain inside the entries would do the same only if
  entries were built in commit order, which concurrent transactions (and several gateway
  instances) do not guarantee;
- oversight finds a person's entries by ``subject_key``, a keyed hash (HMAC-SHA-256) of
  the IIN: the store holds no unkeyed index of IINs. The entry itself carries the IIN,
  because it is evidence that must be shown to the person.

Entries written since the last signing are protected once the next head is signed, at
most ``[audit] tree_head_interval_seconds`` later (and on stop). Until their round, entries
are pending: committed, so a crash loses none of them (the next round numbers them), but not
yet in the tree, which proofs and verification cover. A reader that must see its own entries
in the log (``record``, ``by_subject``) asks for a round first.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.domain import validate_iin
from gateway.logs import get_logger
from gateway.security import merkle
from gateway.security.audit_keys import AuditKeys
from gateway.store import AppendAudit, AuditRecord, AuditStore, Message, NewAuditEntry, StoreError, TreeHead

__all__ = [
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "AuditProblem",
    "AuditReport",
    "AuditTampered",
    "EventKind",
    "MissingAuditKey",
    "Outcome",
    "delivery_event",
    "tree_head_message",
]

log = get_logger("gateway.audit")

_FORMAT_VERSION = 1
_PAGE = 1000
# A person's entries are read in one go: tens in a lifetime, not thousands.
_SUBJECT_LIMIT = 100_000
# A log damaged throughout would otherwise produce one problem per entry.
_MAX_PROBLEMS = 100


class EventKind(StrEnum):
    """What an entry records."""

    INBOUND = "inbound"
    """A message a member sent to the gateway."""
    OUTBOUND = "outbound"
    """A message the gateway delivered, or tried to deliver, to a member."""
    DISCLOSURE = "disclosure"
    """The disclosure policy's decision on a document leaving for a member, or a person's view of one."""
    SIGN_IN = "sign_in"
    """A person signing in to the console (accepted or refused) or signing out."""
    ACTION = "action"
    """Something a person did in the console that changes what the gateway does (a replay, say)."""


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    REFUSED = "refused"
    """Refused by the recipient, or dead-lettered."""
    FAILED = "failed"
    DISCLOSED = "disclosed"
    DENIED = "denied"
    """The disclosure policy did not allow it: nothing left the gateway."""


class AuditTampered(Exception):
    """The stored log does not match its signed tree heads; the signer will not sign over it."""


class MissingAuditKey(Exception):
    """A key the operation needs is not configured or not readable."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing to record. ``member`` received (outbound, disclosure) or sent (inbound);
    ``counterpart`` is the other side. ``fields`` are the dotted paths disclosed."""

    kind: EventKind
    outcome: Outcome
    member: str
    counterpart: str
    member_role: str | None = None
    """The kind of body the member is (court, clinic…), as the configuration said then."""
    subject: str | None = None
    """The person's IIN; None when the message is about no one in particular."""
    purpose: str | None = None
    legal_basis: str | None = None
    document_type: str | None = None
    service: str | None = None
    fields: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()
    message_id: str | None = None
    correlation_id: str | None = None
    reason: str | None = None
    """Why it was denied, refused or failed; never personal data."""
    at: float | None = None
    """Seconds since the epoch; None: when it is recorded."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", EventKind(self.kind))
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        object.__setattr__(self, "fields", tuple(self.fields))
        object.__setattr__(self, "withheld", tuple(self.withheld))
        if self.subject is not None:
            # A wrong IIN would file the entry under another person, or under no one.
            object.__setattr__(self, "subject", str(validate_iin(self.subject)))
        if not self.member or not self.counterpart:
            raise ValueError("an audit event needs the member and its counterpart")


def delivery_event(message: Message, outcome: Outcome, *, member_role: str | None, at: float,
                   reason: str | None = None) -> AuditEvent:
    """The entry of a message's final delivery outcome, pushed to its recipient or pulled and
    confirmed by it: one way to record both."""
    return AuditEvent(
        kind=EventKind.OUTBOUND, outcome=outcome, member=message.recipient, counterpart=message.sender,
        member_role=member_role, purpose=message.purpose, service=f"{message.recipient}/{message.service}",
        message_id=message.id, correlation_id=message.correlation_id, reason=reason, at=at,
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An entry as stored: its position, identity, time and the event it records."""

    seq: int
    id: str
    at: dt.datetime
    event: AuditEvent
    leaf_hash: bytes

    @classmethod
    def parse(cls, record: AuditRecord) -> AuditEntry:
        """Read a stored entry; ``ValueError`` says how it is not a well-formed one."""
        try:
            document = json.loads(record.entry.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not UTF-8 JSON ({exc})") from None
        if not isinstance(document, dict) or set(document) != _KEYS:
            raise ValueError("not an audit entry: its keys are not those of the entry format")
        if document["v"] != _FORMAT_VERSION:
            raise ValueError(f"unknown format version {document['v']!r}")
        if _canonical(document) != record.entry:
            raise ValueError("not in canonical form (sorted keys, no spaces, UTF-8)")
        try:
            at = _parse_time(document["at"])
            event = AuditEvent(
                kind=document["kind"],
                outcome=document["outcome"],
                member=document["member"],
                counterpart=document["counterpart"],
                member_role=document["member_role"],
                subject=document["subject"],
                purpose=document["purpose"],
                legal_basis=document["legal_basis"],
                document_type=document["document_type"],
                service=document["service"],
                fields=_strings(document["fields"]),
                withheld=_strings(document["withheld"]),
                message_id=document["message_id"],
                correlation_id=document["correlation_id"],
                reason=document["reason"],
                at=at.timestamp(),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a value is out of place: {exc}") from None
        return cls(record.seq, document["id"], at, event, merkle.leaf_hash(record.entry))

    def as_json(self) -> dict[str, Any]:
        """The entry for people and programs: what oversight shows."""
        e = self.event
        return {
            "seq": self.seq,
            "id": self.id,
            "at": _format_time(self.at),
            "kind": e.kind.value,
            "outcome": e.outcome.value,
            "member": e.member,
            "member_role": e.member_role,
            "counterpart": e.counterpart,
            "subject": e.subject,
            "document_type": e.document_type,
            "service": e.service,
            "purpose": e.purpose,
            "legal_basis": e.legal_basis,
            "fields": list(e.fields),
            "withheld": list(e.withheld),
            "message_id": e.message_id,
            "correlation_id": e.correlation_id,
            "reason": e.reason,
            "leaf_hash": self.leaf_hash.hex(),
        }


_KEYS = frozenset({
    "v", "id", "at", "kind", "outcome", "member", "member_role", "counterpart", "subject", "purpose", "legal_basis",
    "document_type", "service", "fields", "withheld", "message_id", "correlation_id", "reason",
})


def _entry_bytes(event: AuditEvent, at: float) -> bytes:
    return _canonical({
        "v": _FORMAT_VERSION,
        # Two identical events (the same message sent twice) must still be two leaves.
        "id": str(uuid.uuid4()),
        "at": _format_time(dt.datetime.fromtimestamp(at, dt.UTC)),
        "kind": event.kind.value,
        "outcome": event.outcome.value,
        "member": event.member,
        "member_role": event.member_role,
        "counterpart": event.counterpart,
        "subject": event.subject,
        "purpose": event.purpose,
        "legal_basis": event.legal_basis,
        "document_type": event.document_type,
        "service": event.service,
        "fields": list(event.fields),
        "withheld": list(event.withheld),
        "message_id": event.message_id,
        "correlation_id": event.correlation_id,
        "reason": event.reason,
    })


def _canonical(document: dict[str, Any]) -> bytes:
    # No floats: their text form differs between serialisers, and a re-serialised entry
    # must hash the same as the stored one.
    _refuse_floats(document)
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("an audit entry holds no floating-point numbers")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_floats(item)


def _format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError("fields and withheld are lists of text")
    return tuple(value)


def tree_head_message(size: int, root: bytes, timestamp_ms: int) -> bytes:
    """The bytes a tree-head signature covers: RFC 9162 §4.10 ``TreeHead``.

    ``timestamp`` (uint64, ms), ``tree_size`` (uint64), ``root_hash`` (one length byte and
    the hash) and empty ``sth_extensions`` (two zero bytes), so any RFC 9162 tooling can
    check a head with the public key.
    """
    return struct.pack(">QQB", timestamp_ms, size, len(root)) + root + struct.pack(">H", 0)


def _timestamp_ms(head: TreeHead) -> int:
    return round(head.signed_at * 1000)


# ---------------------------------------------------------------- verification report


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """Something wrong with the log. ``seq`` is the first entry concerned, None when the
    problem is a tree head's alone (forged, removed)."""

    seq: int | None
    description: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The result of ``AuditLog.verify``."""

    entries: int
    tree_heads: int
    signed_size: int
    """Entries covered by a genuine tree head that matches the log."""
    problems: tuple[AuditProblem, ...]
    unlisted_problems: int = 0
    """Problems beyond the first ``_MAX_PROBLEMS``, counted but not listed."""

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first_bad_entry(self) -> AuditProblem | None:
        """The problem with the lowest entry number: where the log stops being trustworthy."""
        located = [problem for problem in self.problems if problem.seq is not None]
        return min(located, key=lambda problem: problem.seq) if located else None


@dataclass
class _Findings:
    problems: list[AuditProblem] = field(default_factory=list)
    unlisted: int = 0

    def add(self, seq: int | None, description: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(AuditProblem(seq, description))
        else:
            self.unlisted += 1


# ---------------------------------------------------------------- the log


class AuditLog:
    """Append, sign, prove and verify the audit log kept in ``store``."""

    def __init__(
        self,
        store: AuditStore,
        keys: AuditKeys,
        *,
        gateway_member: str = "gateway",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._keys = keys
        self._gateway_member = gateway_member
        self._clock = clock
        # The tree over every entry signed so far, kept so each signing reads only new entries.
        self._signed: merkle.CompactRange | None = None
        self._signing = asyncio.Lock()
        self._signer: asyncio.Task | None = None

    @property
    def keys(self) -> AuditKeys:
        return self._keys

    def subject_key(self, iin: str) -> str:
        """The keyed hash under which the person's entries are found."""
        if self._keys.subject_secret is None:
            raise MissingAuditKey("the subject key secret ([audit] subject_key_secret) is missing")
        return hmac.new(self._keys.subject_secret, str(validate_iin(iin)).encode("ascii"), hashlib.sha256).hexdigest()

    # -- appending

    def command(self, events: Iterable[AuditEvent]) -> AppendAudit:
        """The store command appending ``events``: put it in the same ``store.apply`` as the
        message it describes, so both commit or neither does."""
        entries = []
        for event in events:
            at = self._clock() if event.at is None else event.at
            subject_key = self.subject_key(event.subject) if event.subject is not None else None
            entries.append(NewAuditEntry(entry=_entry_bytes(event, at), subject_key=subject_key))
        return AppendAudit(entries)

    def disclosure(
        self,
        *,
        recipient: str,
        recipient_role: str,
        subject_iin: str | None,
        fields: Sequence[str],
        purpose: str,
        withheld: Sequence[str] = (),
        legal_basis: str | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
        service: str | None = None,
        document_type: str | None = None,
        at: float | None = None,
    ) -> AppendAudit:
        """The command recording that a filtered document goes to ``recipient``."""
        return self.command([
            AuditEvent(
                kind=EventKind.DISCLOSURE,
                outcome=Outcome.DISCLOSED,
                member=recipient,
                counterpart=self._gateway_member,
                member_role=recipient_role,
                subject=subject_iin,
                purpose=purpose,
                legal_basis=legal_basis,
                document_type=document_type,
                service=service,
                fields=tuple(fields),
                withheld=tuple(withheld),
                message_id=message_id,
                correlation_id=correlation_id,
                at=at,
            )
        ])

    async def record(self, events: Iterable[AuditEvent]) -> list[int]:
        """Append ``events`` on their own; returns their sequence numbers, once their batch is
        closed (a head is signed for it at the next signing)."""
        (seqs,) = await self._store.apply([self.command(events)], now=self._clock())
        await self._store.sequence_audit()
        return seqs

    # -- reading

    async def by_subject(self, iin: str, *, after_seq: int = 0, limit: int = _SUBJECT_LIMIT) -> list[AuditEntry]:
        """The entries about the person after ``after_seq`` (every one by default), oldest first."""
        iin = str(validate_iin(iin))
        # Entries committed but not yet numbered are the person's too.
        await self._store.sequence_audit()
        records = await self._store.audit_by_subject(self.subject_key(iin), limit=limit, after_seq=after_seq)
        entries = []
        for record in records:
            try:
                entry = AuditEntry.parse(record)
            except ValueError:
                continue  # ``verify`` reports it; it cannot be shown as anyone's
            # The subject_key column is outside the hashed entry: trust only the entry itself.
            if entry.event.subject == iin:
                entries.append(entry)
        return entries

    async def _records(self, after: int = 0, until: int | None = None) -> AsyncIterator[AuditRecord]:
        start = after + 1
        while until is None or start <= until:
            page = await self._store.read_audit(start, _PAGE)
            for record in page:
                if until is not None and record.seq > until:
                    return
                yield record
            if len(page) < _PAGE:
                return
            start = page[-1].seq + 1

    async def _heads(self, until: int | None = None, after: int = 0) -> AsyncIterator[TreeHead]:
        while until is None or after < until:
            page = await self._store.tree_heads(after, _PAGE)
            for head in page:
                if until is not None and head.size > until:
                    return
                yield head
            if len(page) < _PAGE:
                return
            after = page[-1].size

    async def _leaf_hashes(self, size: int) -> list[bytes]:
        """The leaf hashes of the first ``size`` entries, which must all be there."""
        leaves = []
        async for record in self._records(until=size):
            if record.seq != len(leaves) + 1:
                raise AuditTampered(f"entry {len(leaves) + 1} is missing from the log")
            leaves.append(merkle.leaf_hash(record.entry))
        if len(leaves) < size:
            raise ValueError(f"the log has {len(leaves)} entries, fewer than {size}")
        return leaves

    # -- proofs for auditors

    async def inclusion_proof(self, seq: int, tree_size: int) -> list[bytes]:
        """The RFC 9162 audit path of entry ``seq`` (leaf ``seq - 1``) in the tree of ``tree_size``."""
        if not 1 <= seq <= tree_size:
            raise ValueError(f"entry {seq} is not in a tree of {tree_size} entries")
        return merkle.inclusion_proof(await self._leaf_hashes(tree_size), seq - 1)

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 9162 proof that the log at ``new_size`` extends the log at ``old_size``."""
        if not 1 <= old_size <= new_size:
            raise ValueError(f"sizes must satisfy 1 <= old ({old_size}) <= new ({new_size})")
        return merkle.consistency_proof(await self._leaf_hashes(new_size), old_size)

    # -- signing

    async def sign_tree_head(self) -> TreeHead | None:
        """Number what is pending, then sign a tree head for every size the log reached since
        the last one (one per batch); return the newest head, or None when the log is empty.

        Raises ``AuditTampered`` instead of signing when the stored log no longer matches
        the last head signed: a new signature must not vouch for a rewritten history. Heads
        another instance signed meanwhile are checked, not signed again.
        """
        signing_key = self._keys.signing_key
        if signing_key is None:
            raise MissingAuditKey("the tree-head signing key ([audit] signing_key) is missing")
        async with self._signing:
            await self._store.sequence_audit()
            try:
                if self._signed is None:
                    self._signed = await self._signed_tree()
                tree = merkle.CompactRange(self._signed.size, self._signed.hashes)
                signed = {head.size: head async for head in self._heads(after=tree.size)}
                new_heads: list[TreeHead] = []
                batch: list[bytes] = []
                async for record in self._records(after=tree.size):
                    if record.seq != tree.size + len(batch) + 1:
                        raise AuditTampered(f"entry {tree.size + len(batch) + 1} is missing from the log")
                    batch.append(merkle.leaf_hash(record.entry))
                    if record.seq != record.tree_size:
                        continue  # inside a batch, or appended after the round (the next one closes it)
                    for leaf in batch:
                        tree.append(leaf)
                    batch = []
                    root = tree.root()
                    known = signed.get(tree.size)
                    if known is not None:
                        if known.root != root:
                            raise AuditTampered(f"the log no longer matches the tree head signed at size {tree.size}")
                        continue
                    timestamp_ms = round(self._clock() * 1000)
                    signature = signing_key.sign(tree_head_message(tree.size, root, timestamp_ms))
                    new_heads.append(TreeHead(size=tree.size, root=root, signed_at=timestamp_ms / 1000,
                                              signature=signature))
                if new_heads:
                    await self._store.save_tree_heads(new_heads)
            except BaseException:
                # Start again from what is stored.
                self._signed = None
                raise
            self._signed = tree
            if not tree.size:
                return None
            newest = signed.get(tree.size)
            if new_heads and new_heads[-1].size == tree.size:
                newest = new_heads[-1]
            if newest is None:
                (newest,) = await self._store.tree_heads(tree.size - 1, 1)
            return newest

    async def _signed_tree(self) -> merkle.CompactRange:
        """The tree over the entries the newest head covers, checked against that head."""
        # Heads first: a head only ever covers committed entries, so a log read afterwards
        # that is shorter than the head was truncated, not merely read too early.
        newest = await self.latest_tree_head()
        size = await self._store.audit_size()
        if newest is not None and newest.size > size:
            raise AuditTampered(f"a tree head covers {newest.size} entries but the log has {size}: it was truncated")
        tree = merkle.CompactRange()
        if newest is None:
            return tree
        async for record in self._records(until=newest.size):
            if record.seq != tree.size + 1:
                raise AuditTampered(f"entry {tree.size + 1} is missing from the log")
            tree.append(merkle.leaf_hash(record.entry))
        if tree.root() != newest.root:
            raise AuditTampered(f"the log no longer matches the tree head signed at size {newest.size}")
        return tree

    async def latest_tree_head(self) -> TreeHead | None:
        """The tree head of the largest size, or None before the first signing."""
        # The smallest x with no head above it is the newest head's size: searching for it
        # costs O(log n) queries instead of reading a head for every entry.
        high = max(1, await self._store.audit_size())
        while await self._store.tree_heads(high, 1):
            high *= 2
        low = 0
        while low < high:
            middle = (low + high) // 2
            if await self._store.tree_heads(middle, 1):
                low = middle + 1
            else:
                high = middle
        if low == 0:
            return None
        (head,) = await self._store.tree_heads(low - 1, 1)
        return head

    def start(self, interval_seconds: float) -> None:
        """Sign new tree heads every ``interval_seconds`` in the background."""
        if self._signer is None:
            self._signer = asyncio.create_task(self._sign_every(interval_seconds), name="audit-tree-heads")

    async def stop(self) -> None:
        """Stop the background signer, after one last signing so nothing recorded is left unsigned."""
        if self._signer is not None:
            self._signer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._signer
            self._signer = None
            await self._sign_reporting_failures()

    async def _sign_every(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            await self._sign_reporting_failures()

    async def _sign_reporting_failures(self) -> None:
        try:
            await self.sign_tree_head()
        except AuditTampered as exc:
            log.error("audit log does not match its signed tree heads; not signing", problem=str(exc))
        except StoreError as exc:
            log.warning("audit tree head not signed: the store is unavailable", error=str(exc))
        except Exception:
            # The signer must outlive one bad round: the next one covers the same entries.
            log.exception("audit tree head signing failed")

    # -- verification

    async def verify(self) -> AuditReport:
        """Recompute every leaf and, at every signed tree head, the root; check each head's
        signature. Consecutive heads are consistent exactly when each root matches the one
        recomputed over the same stored sequence, so that check covers RFC 9162
        consistency between every pair of heads."""
        findings = _Findings()
        # Only heads that exist now: the log is read after them, so each head's entries are
        # there to be read unless they were removed (a gateway may sign while this runs).
        newest = await self.latest_tree_head()
        signed_until = newest.size if newest else 0
        heads = aiter(self._heads(until=signed_until))
        head = await anext(heads, None)
        tree = merkle.CompactRange()
        head_count = 0
        head_sizes: set[int] = set()
        batch_ends: list[int] = []  # the sizes the log reached, up to the newest head
        last_matched = 0  # size of the newest genuine head that matches the log
        mismatch_found = False
        expected_seq = 1
        async for record in self._records():
            if record.seq != expected_seq:
                missing = (
                    f"entry {expected_seq}" if record.seq == expected_seq + 1
                    else f"entries {expected_seq}–{record.seq - 1}"
                )
                findings.add(expected_seq, f"{missing} missing: removed from the log")
            expected_seq = record.seq + 1
            self._check_entry(record, findings)
            tree.append(merkle.leaf_hash(record.entry))
            if record.tree_size == record.seq <= signed_until:
                batch_ends.append(record.seq)
            while head is not None and head.size <= tree.size:
                head_count += 1
                head_sizes.add(head.size)
                if self._check_signature(head, findings) and not mismatch_found:
                    if head.root == tree.root():
                        last_matched = head.size
                    else:
                        mismatch_found = True
                        findings.add(last_matched + 1, _mismatch(last_matched, head))
                head = await anext(heads, None)
        truncated_to = 0
        while head is not None:
            head_count += 1
            head_sizes.add(head.size)
            if self._check_signature(head, findings):
                truncated_to = head.size
            head = await anext(heads, None)
        self._check_density(batch_ends, head_sizes, findings)
        if head_count and not self._keys.verification_keys:
            findings.add(None, "no key to check the tree heads with: [audit] signing_key is missing "
                               "and no retired public key is configured")
        if truncated_to:
            first_missing = tree.size + 1
            findings.add(
                first_missing,
                f"the log ends at entry {tree.size}, but a genuine tree head covers {truncated_to} entries: "
                f"entries {first_missing}–{truncated_to} were removed (the log was truncated)",
            )
        return AuditReport(
            entries=tree.size,
            tree_heads=head_count,
            signed_size=last_matched,
            problems=tuple(sorted(findings.problems, key=lambda p: (p.seq is None, p.seq or 0))),
            unlisted_problems=findings.unlisted,
        )

    def _check_entry(self, record: AuditRecord, findings: _Findings) -> None:
        try:
            entry = AuditEntry.parse(record)
        except ValueError as exc:
            findings.add(record.seq, f"entry {record.seq} is not a well-formed audit entry: {exc}")
            return
        if self._keys.subject_secret is None:
            return
        expected = self.subject_key(entry.event.subject) if entry.event.subject is not None else None
        if record.subject_key != expected:
            findings.add(
                record.seq,
                f"entry {record.seq}: its subject key does not match the person it is about, "
                "so a search for that person would miss it (the subject_key column was altered)",
            )

    def _check_signature(self, head: TreeHead, findings: _Findings) -> bool:
        """Whether the head may be compared with the log: genuine, or uncheckable for want of
        a key (reported once, at the end)."""
        if not self._keys.verification_keys:
            return True
        if self._keys.genuine(tree_head_message(head.size, head.root, _timestamp_ms(head)), head.signature):
            return True
        findings.add(
            None,
            f"tree head at size {head.size}: the signature does not verify with the tree-head key "
            "or any retired key: the head was forged or altered",
        )
        return False

    @staticmethod
    def _check_density(batch_ends: list[int], head_sizes: set[int], findings: _Findings) -> None:
        # A head is signed for every size the log reaches, so a size without one means heads
        # were removed; consecutive such sizes are reported together.
        run: list[int] = []
        for size in [*batch_ends, None]:
            if size is not None and size not in head_sizes:
                run.append(size)
                continue
            if run:
                missing = f"size {run[0]}" if len(run) == 1 else f"sizes {run[0]}–{run[-1]}"
                findings.add(None, f"no tree heads for {missing}: heads are signed for every size, so they were removed")
                run = []


def _mismatch(last_matched: int, head: TreeHead) -> str:
    signed = _format_time(dt.datetime.fromtimestamp(head.signed_at, dt.UTC))
    if head.size == last_matched + 1:
        return (
            f"entry {head.size} is not the entry the tree head at size {head.size} (signed {signed}) "
            "commits to: it was changed, replaced or moved"
        )
    return (
        f"one of entries {last_matched + 1}–{head.size} is not what the tree head at size {head.size} "
        f"(signed {signed}) commits to: changed, replaced or moved"
    )
