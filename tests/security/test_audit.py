"""The audit log on the real store — SQLite and PostgreSQL — appended, signed, proven, verified and tampered with."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.config import AuditConfig
from gateway.domain import Sex, make_iin
from gateway.errors import ConfigError
from gateway.security import merkle
from gateway.security.audit import (
    AuditEvent,
    AuditLog,
    AuditTampered,
    EventKind,
    Outcome,
    tree_head_message,
)
from gateway.security.audit_keys import AuditKeys
from gateway.store import AppendAudit, ConflictError, SaveCase

PERSON = make_iin(dt.date(1984, 5, 17), Sex.MALE, 4021)
OTHER = make_iin(dt.date(1991, 12, 2), Sex.FEMALE, 77)


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        self.now += 1.25
        return self.now


@pytest.fixture
def keys(tmp_path) -> AuditKeys:
    return AuditKeys.provision(AuditConfig(), tmp_path)


@pytest.fixture
def audit(store, keys) -> AuditLog:
    return AuditLog(store, keys, gateway_member="gateway", clock=Clock())


def disclosure(number: int, subject: str | None = PERSON, **changes) -> AuditEvent:
    fields = dict(
        kind=EventKind.DISCLOSURE, outcome=Outcome.DISCLOSED, member="court", member_role="court",
        counterpart="gateway", subject=subject, purpose="pretrial_report", document_type="PreTrialReport",
        service="pretrial-reports", fields=("subject.iin", "sections.criminal_history[].court"),
        withheld=("sections.health_summary.registrations[].icd10",), message_id=f"m-{number}",
        correlation_id=f"c-{number}",
    )
    return AuditEvent(**{**fields, **changes})


async def filled(audit: AuditLog, count: int = 10) -> None:
    for number in range(1, count + 1):
        await audit.record([disclosure(number, PERSON if number % 2 else OTHER)])
    await audit.sign_tree_head()


def first_bad(report) -> int | None:
    problem = report.first_bad_entry
    return problem.seq if problem else None


# ---------------------------------------------------------------- appending


async def test_appended_and_signed_entries_verify_intact(store, audit):
    await filled(audit, 10)
    report = await audit.verify()
    assert report.intact, report.problems
    assert (report.entries, report.tree_heads, report.signed_size) == (10, 10, 10)


async def test_an_entry_is_canonical_json_carrying_the_iin_under_a_keyed_subject_key(store, audit, keys):
    (seq,) = await audit.record([disclosure(1, at=1_790_000_000.123456)])
    (record,) = await store.read_audit(seq, 1)
    document = json.loads(record.entry)
    assert record.entry == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert document["subject"] == PERSON and document["at"] == "2026-09-21T14:13:20.123456Z"
    assert not any(isinstance(value, float) for value in document.values())
    assert record.subject_key == hmac.new(keys.subject_secret, PERSON.encode(), hashlib.sha256).hexdigest()


async def test_an_audit_entry_commits_only_with_the_change_it_describes(store, audit):
    stale = SaveCase(kind="release", id="r-1", state="notified", data={}, expected_version=3)
    with pytest.raises(ConflictError):
        await store.apply([stale, audit.command([disclosure(1)])], now=1.0)
    assert await store.audit_size() == 0
    fresh = SaveCase(kind="release", id="r-1", state="notified", data={}, expected_version=0)
    await store.apply([fresh, audit.command([disclosure(1)])], now=1.0)
    assert await store.audit_size() == 1


async def test_the_disclosure_command_records_what_left_and_for_whom(store, audit):
    command = audit.disclosure(
        recipient="court", recipient_role="court", subject_iin=PERSON, fields=["subject.iin"],
        purpose="pretrial_report",
        withheld=["sections.health_summary.registrations[].icd10"], legal_basis=None, message_id="m-1",
        correlation_id="c-1", service="pretrial-reports", at=1_790_000_000.0,
    )
    assert isinstance(command, AppendAudit)
    await store.apply([command], now=1.0)
    (entry,) = await audit.by_subject(PERSON)
    assert entry.as_json() | {"id": None, "leaf_hash": None} == {
        "seq": 1, "id": None, "at": "2026-09-21T14:13:20.000000Z", "kind": "disclosure", "outcome": "disclosed",
        "member": "court", "member_role": "court", "counterpart": "gateway", "subject": PERSON,
        "document_type": None, "service": "pretrial-reports", "purpose": "pretrial_report", "legal_basis": None,
        "fields": ["subject.iin"], "withheld": ["sections.health_summary.registrations[].icd10"],
        "message_id": "m-1", "correlation_id": "c-1", "reason": None, "leaf_hash": None,
    }


def test_an_event_about_an_invalid_iin_is_refused():
    with pytest.raises(ValueError, match="check digit"):
        disclosure(1, subject=PERSON[:11] + str((int(PERSON[11]) + 1) % 10))


async def test_concurrent_appends_keep_the_sequence_gapless(store, audit):
    batches = [[disclosure(n * 10 + k) for k in range(n % 3 + 1)] for n in range(40)]
    results = await asyncio.gather(*(audit.record(batch) for batch in batches))
    seqs = sorted(seq for result in results for seq in result)
    assert seqs == list(range(1, sum(len(b) for b in batches) + 1))
    await audit.sign_tree_head()
    assert (await audit.verify()).intact


async def test_a_person_s_entries_are_exactly_theirs(store, audit):
    await filled(audit, 10)
    mine = await audit.by_subject(PERSON)
    assert [entry.seq for entry in mine] == [1, 3, 5, 7, 9]
    assert {entry.event.subject for entry in mine} == {PERSON}
    assert [entry.seq for entry in await audit.by_subject(OTHER)] == [2, 4, 6, 8, 10]


# ---------------------------------------------------------------- signing


async def test_every_size_gets_a_genuine_signed_tree_head(store, audit, keys):
    await filled(audit, 5)
    heads = await store.tree_heads()
    assert [head.size for head in heads] == [1, 2, 3, 4, 5]
    leaves = [merkle.leaf_hash(record.entry) for record in await store.read_audit()]
    for head in heads:
        assert head.root == merkle.root(leaves[: head.size])
        keys.verification_keys[0].verify(head.signature, tree_head_message(head.size, head.root,
                                                                           round(head.signed_at * 1000)))


async def test_signing_again_without_new_entries_adds_no_head(store, audit):
    await filled(audit, 3)
    head = await audit.sign_tree_head()
    assert head.size == 3 and len(await store.tree_heads()) == 3


async def test_a_restarted_signer_continues_where_the_heads_end(store, keys):
    first = AuditLog(store, keys, clock=Clock())
    await filled(first, 4)
    second = AuditLog(store, keys, clock=Clock())
    await second.record([disclosure(5)])
    assert (await second.sign_tree_head()).size == 5
    assert (await second.verify()).intact


async def test_a_signer_refuses_to_sign_over_a_rewritten_log(store, store_url, backend, keys):
    await filled(AuditLog(store, keys, clock=Clock()), 4)
    backend.execute(store_url, "UPDATE audit_log SET entry = (SELECT entry FROM audit_log WHERE seq = 1) WHERE seq = 4")
    restarted = AuditLog(store, keys, clock=Clock())
    await restarted.record([disclosure(5)])
    with pytest.raises(AuditTampered, match="no longer matches the tree head signed at size 4"):
        await restarted.sign_tree_head()


async def test_the_background_signer_covers_new_entries_and_signs_once_more_on_stop(store, keys):
    audit = AuditLog(store, keys)
    audit.start(interval_seconds=0.05)
    await audit.record([disclosure(1)])
    for _ in range(200):
        if await store.tree_heads():
            break
        await asyncio.sleep(0.01)
    await audit.record([disclosure(2)])
    await audit.stop()
    assert [head.size for head in await store.tree_heads()] == [1, 2]


# ---------------------------------------------------------------- proofs


async def test_inclusion_proofs_verify_against_the_signed_root(store, audit):
    await filled(audit, 7)
    head = await audit.latest_tree_head()
    records = await store.read_audit()
    for record in records:
        proof = await audit.inclusion_proof(record.seq, head.size)
        merkle.verify_inclusion(merkle.leaf_hash(record.entry), record.seq - 1, head.size, proof, head.root)


async def test_consistency_proofs_verify_between_signed_heads(store, audit):
    await filled(audit, 9)
    heads = {head.size: head for head in await store.tree_heads()}
    for old, new in ((1, 9), (3, 7), (4, 8), (6, 6)):
        proof = await audit.consistency_proof(old, new)
        merkle.verify_consistency(old, new, heads[old].root, heads[new].root, proof)


async def test_a_proof_beyond_the_log_is_refused(store, audit):
    await filled(audit, 3)
    with pytest.raises(ValueError, match="fewer than 5"):
        await audit.inclusion_proof(2, 5)
    with pytest.raises(ValueError):
        await audit.consistency_proof(3, 2)


# ---------------------------------------------------------------- tampering, named precisely


def _changed(entry: bytes) -> bytes:
    return entry.replace(b'"member":"court"', b'"member":"clinic"')


async def test_a_changed_entry_is_named(store, store_url, backend, audit):
    await filled(audit, 10)
    (record,) = await store.read_audit(4, 1)
    changed = _changed(record.entry).hex()
    literal = f"X'{changed}'" if backend.name == "sqlite" else f"'\\x{changed}'::bytea"
    backend.execute(store_url, f"UPDATE audit_log SET entry = {literal} WHERE seq = 4")
    report = await audit.verify()
    assert first_bad(report) == 4
    assert "entry 4 is not the entry the tree head at size 4" in report.first_bad_entry.description


async def test_a_deleted_entry_is_named(store, store_url, backend, audit):
    await filled(audit, 10)
    backend.execute(store_url, "DELETE FROM audit_log WHERE seq = 4")
    report = await audit.verify()
    assert first_bad(report) == 4
    assert report.first_bad_entry.description == "entry 4 missing: removed from the log"


async def test_a_deletion_hidden_by_renumbering_is_named(store, store_url, backend, audit):
    await filled(audit, 10)
    backend.execute(store_url, "DELETE FROM audit_log WHERE seq = 4")
    for seq in range(5, 11):
        backend.execute(store_url, f"UPDATE audit_log SET seq = {seq - 1} WHERE seq = {seq}")
    assert first_bad(await audit.verify()) == 4


async def test_swapped_entries_are_named_at_the_first(store, store_url, backend, audit):
    await filled(audit, 10)
    backend.execute(store_url, "UPDATE audit_log SET seq = -seq WHERE seq IN (3, 6)")
    backend.execute(store_url, "UPDATE audit_log SET seq = CASE seq WHEN -3 THEN 6 ELSE 3 END WHERE seq < 0")
    report = await audit.verify()
    assert first_bad(report) == 3
    assert "it was changed, replaced or moved" in report.first_bad_entry.description


async def test_a_truncated_log_is_named_at_its_first_missing_entry(store, store_url, backend, audit):
    await filled(audit, 10)
    backend.execute(store_url, "DELETE FROM audit_log WHERE seq > 7")
    report = await audit.verify()
    assert first_bad(report) == 8
    assert "entries 8–10 were removed (the log was truncated)" in report.first_bad_entry.description


async def test_a_forged_tree_head_is_reported(store, store_url, backend, audit):
    await filled(audit, 6)
    backend.execute(store_url, "UPDATE audit_tree_heads SET signature = "
                               "(SELECT signature FROM audit_tree_heads WHERE size = 4) WHERE size = 5")
    report = await audit.verify()
    assert not report.intact
    assert [p.description for p in report.problems] == [
        "tree head at size 5: the signature does not verify with the tree-head key or any retired key: "
        "the head was forged or altered"
    ]


async def test_removed_tree_heads_are_reported(store, store_url, backend, audit):
    await filled(audit, 6)
    backend.execute(store_url, "DELETE FROM audit_tree_heads WHERE size IN (3, 4)")
    report = await audit.verify()
    assert [p.description for p in report.problems] == [
        "no tree heads for sizes 3–4: heads are signed for every size, so they were removed"
    ]


async def test_an_altered_subject_key_is_named(store, store_url, backend, audit):
    await filled(audit, 4)
    backend.execute(store_url, "UPDATE audit_log SET subject_key = NULL WHERE seq = 3")
    report = await audit.verify()
    assert first_bad(report) == 3 and "subject key does not match" in report.first_bad_entry.description
    assert [entry.seq for entry in await audit.by_subject(PERSON)] == [1]


async def test_entries_after_the_last_head_are_checked_for_form(store, store_url, backend, audit):
    await filled(audit, 3)
    await audit.record([disclosure(4)])
    backend.execute(store_url, "UPDATE audit_log SET subject_key = NULL WHERE seq = 4")
    report = await audit.verify()
    assert report.signed_size == 3 and first_bad(report) == 4


# ---------------------------------------------------------------- keys


def test_missing_keys_are_generated_readable_by_the_owner_only(tmp_path):
    keys = AuditKeys.provision(AuditConfig(), tmp_path)
    folder = tmp_path / "var" / "keys"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("audit-tree-head.pem", "audit-subject.key"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    again = AuditKeys.provision(AuditConfig(), tmp_path)
    assert again.subject_secret == keys.subject_secret
    assert again.verification_keys[0].public_bytes_raw() == keys.verification_keys[0].public_bytes_raw()


def test_reading_keys_never_creates_them(tmp_path):
    keys = AuditKeys.read(AuditConfig(), tmp_path)
    assert (keys.signing_key, keys.verification_keys, keys.subject_secret) == (None, (), None)
    assert not (tmp_path / "var").exists()


def test_a_key_others_may_read_is_refused(tmp_path):
    AuditKeys.provision(AuditConfig(), tmp_path)
    os.chmod(tmp_path / "var" / "keys" / "audit-subject.key", 0o644)
    with pytest.raises(ConfigError, match=r"audit-subject\.key: other users may read .* chmod 600"):
        AuditKeys.read(AuditConfig(), tmp_path)


async def test_heads_signed_by_a_retired_key_still_verify(store, tmp_path):
    old = AuditKeys.provision(AuditConfig(), tmp_path)
    await filled(AuditLog(store, old, clock=Clock()), 3)
    retired = tmp_path / "retired.pem"
    retired.write_bytes(old.verification_keys[0].public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ))
    (tmp_path / "var" / "keys" / "audit-tree-head.pem").unlink()
    rotated = AuditKeys.provision(AuditConfig(retired_public_keys=[retired.name]), tmp_path)
    audit = AuditLog(store, rotated, clock=Clock())
    await audit.record([disclosure(4)])
    assert (await audit.sign_tree_head()).size == 4
    report = await audit.verify()
    assert report.intact and report.signed_size == 4
    without_retired = await AuditLog(store, AuditKeys.provision(AuditConfig(), tmp_path)).verify()
    assert len(without_retired.problems) == 3
