"""The sender's signed document kept as evidence with its message, on SQLite and PostgreSQL."""

from __future__ import annotations

from gateway.store import AcceptMessage, Evidence, NewMessage

T0 = 1_000.0
SIGNED = "<?xml version='1.0'?>\n<soap:Envelope>Сәлем — signed, byte for byte\r\n</soap:Envelope>".encode("utf-8")


def message(client_id: str = "c-1", body: bytes = b"<forwarded/>") -> NewMessage:
    return NewMessage(sender="penal", recipient="health", service="notices", body=body, content_type="text/xml",
                      correlation_id="corr-1", max_attempts=5, deadline_at=T0 + 86_400, client_message_id=client_id)


async def test_evidence_is_kept_verbatim_with_the_message_it_came_with(store):
    (acceptance,) = await store.apply(
        [AcceptMessage(message(), evidence=Evidence(SIGNED, "text/xml; charset=utf-8", b"\x30\x82der"))], T0)
    kept = await store.get_evidence(acceptance.message.id)
    assert (kept.message_id, kept.sender, kept.recipient, kept.received_at) == (acceptance.message.id, "penal",
                                                                                  "health", T0)
    assert kept.evidence == Evidence(SIGNED, "text/xml; charset=utf-8", b"\x30\x82der")


async def test_a_message_accepted_without_evidence_has_none(store):
    (acceptance,) = await store.apply([AcceptMessage(message())], T0)
    assert await store.get_evidence(acceptance.message.id) is None
    assert await store.get_evidence("no-such-message") is None


async def test_a_resend_keeps_the_first_evidence(store):
    (first,) = await store.apply([AcceptMessage(message(), evidence=Evidence(SIGNED, "text/xml"))], T0)
    (again,) = await store.apply([AcceptMessage(message(), evidence=Evidence(b"<resigned/>", "text/xml"))], T0 + 1)
    assert again.duplicate and again.message.id == first.message.id
    assert (await store.get_evidence(first.message.id)).evidence.document == SIGNED


async def test_evidence_is_purged_with_its_delivered_message(store):
    (kept,) = await store.apply([AcceptMessage(message("c-kept"), evidence=Evidence(SIGNED, "text/xml"))], T0)
    (purged,) = await store.apply([AcceptMessage(message("c-purged"), evidence=Evidence(SIGNED, "text/xml"))], T0)
    assert len(await store.claim("health", 10, T0, 30, "worker-1")) == 2
    assert await store.record_delivered(purged.message.id, 1, T0, T0 + 1, 200)
    assert await store.purge_delivered(before=T0 + 10) == 1
    assert await store.get_evidence(purged.message.id) is None
    assert (await store.get_evidence(kept.message.id)).evidence.document == SIGNED
