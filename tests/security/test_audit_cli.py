"""``gateway audit verify`` and ``gateway audit subject``, run as an operator runs them: a subprocess
against the SQLite file of a configuration folder, tampered with behind the gateway's back."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.domain import Sex, make_iin
from gateway.security.audit import AuditEvent, AuditLog, EventKind, Outcome
from gateway.security.audit_keys import AuditKeys
from gateway.store import create_store
from support import write_config

PERSON = make_iin(dt.date(1979, 3, 8), Sex.FEMALE, 1203)
OTHER = make_iin(dt.date(1988, 7, 30), Sex.MALE, 560)
ENTRIES = 10


def gateway_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
async def logged(tmp_path) -> Path:
    """A configuration folder whose store holds ten signed entries, odd ones about PERSON."""
    directory = write_config(tmp_path / "config", receiver_url="http://127.0.0.1:1")
    config = load_config(directory, environ={})
    store = create_store(config.store.url, base_dir=config.base_dir)
    await store.open()
    audit = AuditLog(store, AuditKeys.provision(config.audit, config.base_dir))
    for number in range(1, ENTRIES + 1):
        about = PERSON if number % 2 else OTHER
        await audit.record([AuditEvent(
            kind=EventKind.DISCLOSURE, outcome=Outcome.DISCLOSED, member="court", member_role="court",
            counterpart="gateway", subject=about, purpose="pretrial_report", document_type="PreTrialReport",
            legal_basis="CPC art. 73" if number == 3 else None, fields=("subject.iin", "sections.identity.surname"),
            message_id=f"m-{number}",
        )])
    await audit.sign_tree_head()
    await store.close()
    return directory


def tamper(directory: Path, *statements: str) -> None:
    connection = sqlite3.connect(directory / "gateway.db")
    with connection:
        for statement in statements:
            connection.execute(statement)
    connection.close()


def verify(directory: Path) -> subprocess.CompletedProcess:
    return gateway_command("audit", "verify", "--config", str(directory))


def test_an_intact_log_verifies(logged):
    result = verify(logged)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"audit log intact: {ENTRIES} entries, {ENTRIES} signed tree heads" in result.stdout
    assert "tree-head key sha256:" in result.stdout


def test_a_changed_entry_fails_verification_naming_it(logged):
    tamper(logged, "UPDATE audit_log SET entry = CAST(REPLACE(CAST(entry AS TEXT), 'court', 'clinic') AS BLOB) "
                   "WHERE seq = 4")
    result = verify(logged)
    assert result.returncode == 1
    assert ("audit log NOT intact: first bad entry is 4: "
            "entry 4 is not the entry the tree head at size 4") in result.stdout


def test_a_deleted_entry_fails_verification_naming_it(logged):
    tamper(logged, "DELETE FROM audit_log WHERE seq = 6")
    result = verify(logged)
    assert result.returncode == 1
    assert "first bad entry is 6: entry 6 missing: removed from the log" in result.stdout


def test_reordered_entries_fail_verification_naming_the_first(logged):
    tamper(logged, "UPDATE audit_log SET seq = -seq WHERE seq IN (2, 5)",
           "UPDATE audit_log SET seq = CASE seq WHEN -2 THEN 5 ELSE 2 END WHERE seq < 0")
    result = verify(logged)
    assert result.returncode == 1
    assert "first bad entry is 2: entry 2 is not the entry the tree head at size 2" in result.stdout


def test_a_log_truncated_after_a_signed_head_fails_verification(logged):
    tamper(logged, "DELETE FROM audit_log WHERE seq > 8")
    result = verify(logged)
    assert result.returncode == 1
    assert ("first bad entry is 9: the log ends at entry 8, but a genuine tree head covers 10 entries: "
            "entries 9–10 were removed (the log was truncated)") in result.stdout


def test_a_forged_tree_head_fails_verification(logged):
    tamper(logged, "UPDATE audit_tree_heads SET root = zeroblob(32) WHERE size = 7")
    result = verify(logged)
    assert result.returncode == 1
    assert "tree head at size 7: the signature does not verify" in result.stdout


def test_subject_lists_exactly_that_person_s_disclosures(logged):
    result = gateway_command("audit", "subject", PERSON, "--json", "--config", str(logged))
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [entry["seq"] for entry in entries] == [1, 3, 5, 7, 9]
    assert {entry["subject"] for entry in entries} == {PERSON}
    third = entries[1]
    assert (third["member"], third["purpose"], third["legal_basis"], third["outcome"]) == (
        "court", "pretrial_report", "CPC art. 73", "disclosed")
    assert third["fields"] == ["subject.iin", "sections.identity.surname"]


def test_looking_a_person_up_is_recorded_as_a_disclosure_of_its_own(logged):
    gateway_command("audit", "subject", PERSON, "--config", str(logged))
    result = gateway_command("audit", "subject", PERSON, "--config", str(logged))
    assert result.stdout.startswith(f"6 audit entries about {PERSON}")
    assert "AuditTrail" in result.stdout and "member cli:" in result.stdout
    assert verify(logged).returncode == 0


def test_subject_refuses_an_invalid_iin_before_touching_the_store(tmp_path):
    wrong = PERSON[:11] + str((int(PERSON[11]) + 1) % 10)
    result = gateway_command("audit", "subject", wrong, "--config", str(tmp_path / "no-such-folder"))
    assert result.returncode == 2
    assert "IIN check digit (digit 12)" in result.stderr


def test_subject_without_the_secret_says_so(logged):
    (logged / "var" / "keys" / "audit-subject.key").unlink()
    result = gateway_command("audit", "subject", PERSON, "--config", str(logged))
    assert result.returncode == 2
    assert "the subject key secret is missing" in result.stderr
