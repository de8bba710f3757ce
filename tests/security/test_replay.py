"""Replay protection on the relay: fresh dates, one message per id, and verify before record.

A gateway on loopback with the real store; penal signs its JSON (``sign_json``), so each
case is also a signature case: the id is bound to the signature (``jti``).
"""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from gateway.entrypoints.http.server import build
from gateway.config import load_config
from gateway.security.audit import AuditEntry, EventKind, Outcome
from gateway.security.jws import SIGNATURE_HEADER, SigningKey, sign
from gateway.security.replay import Freshness, StaleMessage
from support import person_payload, write_config

RELAY = "/api/v1/relay/health/notices"
PENAL_KEY = ec.generate_private_key(ec.SECP256R1())
PENAL = SigningKey("penal-1", ECKey.import_key(PENAL_KEY))


def test_a_date_within_the_window_is_fresh():
    Freshness(300, lambda: 1000.0).check(1000.0 - 299, what="messageDate")


def test_a_date_older_than_the_window_is_refused():
    with pytest.raises(StaleMessage, match="messageDate is 301 s behind the gateway's clock"):
        Freshness(300, lambda: 10_000.0).check(10_000.0 - 301, what="messageDate")


def test_a_date_ahead_of_the_window_is_refused():
    with pytest.raises(StaleMessage, match="ahead of the gateway's clock"):
        Freshness(300, lambda: 10_000.0).check(10_000.0 + 301, what="messageDate")


def pem(path, data: bytes) -> str:
    path.write_bytes(data)
    return json.dumps(str(path))


@pytest.fixture
async def gateway(tmp_path, receiver):
    public = PENAL_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    gateway_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    environ = {
        "GATEWAY__JWS__SIGNING_KEY": pem(tmp_path / "gateway-jws.pem", gateway_key),
        "GATEWAY__MEMBERS__PENAL__SIGN_JSON": "true",
        "GATEWAY__MEMBERS__PENAL__JWS_KEYS__PENAL-1": pem(tmp_path / "penal-1.pub.pem", public),
    }
    started = build(load_config(write_config(tmp_path / "config", receiver_url=receiver.url), environ=environ))
    await started.start(port=0)
    yield started
    await started.stop()


def body(number: int) -> bytes:
    return json.dumps(person_payload(number), ensure_ascii=False).encode()


async def send(http, gateway, payload: bytes, message_id: str, signature: str):
    headers = {"Content-Type": "application/json", "X-Member-Id": "penal", "X-Purpose": "continuity_of_care",
               "X-Message-Id": message_id, SIGNATURE_HEADER: signature}
    async with http.post(gateway.url + RELAY, data=payload, headers=headers) as response:
        return response.status, await response.json()


def signature(payload: bytes, message_id: str, *, now: float | None = None) -> str:
    return sign(payload, PENAL, audience="gateway", message_id=message_id, now=now or time.time(), lifetime=120)


async def entries(gateway, outcome: Outcome) -> list:
    """Inbound audit entries with ``outcome`` (deliveries and first acceptances are audited too)."""
    events = [AuditEntry.parse(record).event for record in await gateway.store.read_audit(1, 1000)]
    return [event for event in events if event.kind is EventKind.INBOUND and event.outcome is outcome]


async def stored(gateway) -> list:
    return await gateway.store.list_messages(limit=100)


async def test_a_tampered_copy_sent_first_does_not_block_the_genuine_message(gateway, http):
    genuine = body(1)
    proof = signature(genuine, "m-1")
    status, _ = await send(http, gateway, body(2), "m-1", proof)  # another body under the genuine signature
    assert status == 401 and await stored(gateway) == []
    status, answer = await send(http, gateway, genuine, "m-1", proof)
    assert status == 202 and answer["duplicate"] is False
    assert [message.body for message in await stored(gateway)] == [genuine]


async def test_a_replay_gets_the_original_answer_and_is_audited(gateway, http):
    payload = body(1)
    proof = signature(payload, "m-1")
    first = await send(http, gateway, payload, "m-1", proof)
    again = await send(http, gateway, payload, "m-1", proof)
    assert first[0] == again[0] == 202
    assert again[1]["message_id"] == first[1]["message_id"] and again[1]["duplicate"] is True
    assert len(await stored(gateway)) == 1
    (event,) = [event for event in await entries(gateway, Outcome.ACCEPTED) if event.reason]
    assert event.member == "penal" and event.message_id == first[1]["message_id"]
    assert event.reason.startswith("replay:")


async def test_an_id_reused_for_other_content_is_refused_even_when_validly_signed(gateway, http):
    assert (await send(http, gateway, body(1), "m-1", signature(body(1), "m-1")))[0] == 202
    status, problem = await send(http, gateway, body(2), "m-1", signature(body(2), "m-1"))
    assert status == 422 and "different message" in problem["detail"]
    assert len(await stored(gateway)) == 1
    (event,) = await entries(gateway, Outcome.REFUSED)
    assert event.reason == "refused with HTTP 422: idempotency-key-reused"


async def test_a_captured_signature_cannot_be_sent_again_under_a_new_message_id(gateway, http):
    payload = body(1)
    proof = signature(payload, "m-1")
    assert (await send(http, gateway, payload, "m-1", proof))[0] == 202
    status, problem = await send(http, gateway, payload, "m-2", proof)
    assert status == 401 and "jti is not this message's X-Message-Id" in problem["detail"]
    assert len(await stored(gateway)) == 1


@pytest.mark.parametrize("offset", [-400, 400], ids=["too old", "ahead"])
async def test_a_message_dated_outside_the_window_is_refused_and_audited(gateway, http, offset):
    payload = body(1)
    status, problem = await send(http, gateway, payload, "m-1", signature(payload, "m-1", now=time.time() + offset))
    assert status == 400 and problem["type"] == "urn:reentry-gateway:problem:stale-message"
    assert await stored(gateway) == []
    (event,) = await entries(gateway, Outcome.REFUSED)
    assert event.reason == "refused with HTTP 400: stale-message"
