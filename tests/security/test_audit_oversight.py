"""The oversight API on a running gateway: who saw what about whom, for oversight members only, with proofs."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.domain import Sex, make_iin
from gateway.security import merkle
from gateway.security.audit import AuditEvent, EventKind, Outcome, tree_head_message

PERSON = make_iin(dt.date(1975, 10, 1), Sex.MALE, 3300)
OTHER = make_iin(dt.date(1999, 1, 31), Sex.FEMALE, 18)
OVERSIGHT_MEMBERS = """
[members.prosecutor]
name = "Prosecutor's office"
role = "oversight"
roles = ["oversight"]

[members.dpa]
name = "Data-protection authority (through operations)"
role = "operations"
roles = ["oversight"]
"""
PREFIX = "/api/v1/oversight"


@pytest.fixture
async def gateway(start_gateway, receiver):
    gateway = await start_gateway(receiver.url, extra_members=OVERSIGHT_MEMBERS)
    for number, subject in enumerate((PERSON, OTHER, PERSON, OTHER, PERSON), start=1):
        await gateway.audit.record([AuditEvent(
            kind=EventKind.DISCLOSURE, outcome=Outcome.DISCLOSED, member="health", member_role="health",
            counterpart="gateway", subject=subject, purpose="continuity_of_care", document_type="ReleaseNotice",
            fields=("iin", "destination.kato"), message_id=f"m-{number}",
        )])
    await gateway.audit.sign_tree_head()
    return gateway


def as_member(member: str | None) -> dict[str, str]:
    return {"X-Member-Id": member} if member else {}


@pytest.mark.parametrize("member", ["prosecutor", "dpa"])
async def test_an_oversight_member_sees_every_disclosure_about_a_person(gateway, http, member):
    async with http.get(f"{gateway.url}{PREFIX}/subjects/{PERSON}/disclosures", headers=as_member(member)) as r:
        assert r.status == 200
        body = await r.json()
    assert body["subject"] == PERSON
    assert [entry["seq"] for entry in body["entries"]] == [1, 3, 5]
    assert {(e["member"], e["purpose"], e["outcome"]) for e in body["entries"]} == {
        ("health", "continuity_of_care", "disclosed")}


async def test_the_look_up_itself_is_recorded(gateway, http):
    async with http.get(f"{gateway.url}{PREFIX}/subjects/{PERSON}/disclosures", headers=as_member("prosecutor")):
        pass
    latest = (await gateway.audit.by_subject(PERSON))[-1].event
    assert (latest.member, latest.member_role, latest.document_type) == ("prosecutor", "oversight", "AuditTrail")


@pytest.mark.parametrize(("member", "status"), [("penal", 403), ("ops", 403), (None, 401), ("stranger", 401)])
async def test_the_oversight_api_refuses_everyone_else(gateway, http, member, status):
    for path in (f"/subjects/{PERSON}/disclosures", "/tree-heads", "/tree-heads/latest",
                 "/proofs/inclusion?seq=1&tree_size=5", "/proofs/consistency?old=1&new=5"):
        async with http.get(gateway.url + PREFIX + path, headers=as_member(member)) as r:
            assert r.status == status, path
            assert r.content_type == "application/problem+json"
    assert [entry.event.member for entry in await gateway.audit.by_subject(PERSON)] == ["health"] * 3


async def test_an_invalid_iin_is_a_problem_the_caller_can_act_on(gateway, http):
    wrong = PERSON[:11] + str((int(PERSON[11]) + 1) % 10)
    async with http.get(f"{gateway.url}{PREFIX}/subjects/{wrong}/disclosures", headers=as_member("prosecutor")) as r:
        assert r.status == 400
        assert r.content_type == "application/problem+json"
        assert "IIN check digit (digit 12)" in (await r.json())["detail"]


async def test_tree_heads_and_proofs_let_an_auditor_check_an_entry(gateway, http):
    headers = as_member("prosecutor")
    async with http.get(f"{gateway.url}{PREFIX}/tree-heads/latest", headers=headers) as r:
        latest = await r.json()
    head = latest["head"]
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(latest["keys"][0]["public_key"]))
    root = bytes.fromhex(head["root"])
    key.verify(bytes.fromhex(head["signature"]), tree_head_message(head["size"], root, head["timestamp_ms"]))

    async with http.get(f"{gateway.url}{PREFIX}/subjects/{PERSON}/disclosures", headers=headers) as r:
        entry = (await r.json())["entries"][1]
    async with http.get(f"{gateway.url}{PREFIX}/proofs/inclusion",
                        params={"seq": entry["seq"], "tree_size": head["size"]}, headers=headers) as r:
        inclusion = await r.json()
    merkle.verify_inclusion(bytes.fromhex(entry["leaf_hash"]), inclusion["leaf_index"], head["size"],
                            [bytes.fromhex(node) for node in inclusion["proof"]], root)

    async with http.get(f"{gateway.url}{PREFIX}/tree-heads", params={"limit": 2}, headers=headers) as r:
        page = await r.json()
    assert [h["size"] for h in page["heads"]] == [1, 2] and page["next_after"] == 2
    old = page["heads"][1]
    async with http.get(f"{gateway.url}{PREFIX}/proofs/consistency", params={"old": old["size"], "new": head["size"]},
                        headers=headers) as r:
        consistency = await r.json()
    merkle.verify_consistency(old["size"], head["size"], bytes.fromhex(old["root"]), root,
                              [bytes.fromhex(node) for node in consistency["proof"]])


@pytest.mark.parametrize("query", ["seq=9&tree_size=5", "seq=x&tree_size=5", "tree_size=5"])
async def test_a_proof_that_cannot_exist_is_a_bad_request(gateway, http, query):
    async with http.get(f"{gateway.url}{PREFIX}/proofs/inclusion?{query}", headers=as_member("prosecutor")) as r:
        assert r.status == 400
        assert r.content_type == "application/problem+json"
