"""AsyncChannel v10 over real HTTP on loopback, on SQLite and PostgreSQL: every operation from a
hand-written envelope, the pull round trip, and the refusals."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from lxml import etree

from gateway.security.audit import AuditEntry
from gateway.soap.envelope import Channel, BusRequest, MessageType, build_envelope, build_request, parse_envelope, serialise
from gateway.store import MessageState, NewMessage
from support import person_payload, wait_until

from soap.async_messages import (
    PING, PULL_CONFIG, TYPES, destination_of, get_messages, ids_request, now_text, post, send_message,
)


@pytest.fixture
async def gateway(start_gateway, receiver):
    return await start_gateway(receiver.url, **PULL_CONFIG)


async def _outbound_entries(gateway) -> list[AuditEntry]:
    records = await gateway.store.read_audit(1, 1000)
    return [entry for entry in map(AuditEntry.parse, records) if entry.event.kind == "outbound"]


async def test_a_message_sent_by_hand_is_pulled_confirmed_and_followed_by_its_sender(gateway, http):
    sent = await post(http, gateway, "sendMessage", send_message("court-0001", text="Сәлем, әғқ"), member="court")
    assert sent.status == 200
    assert sent.body.tag == f"{{{TYPES}}}sendMessageResponse"
    assert sent.find("response/status/code").text == "ACCEPTED"
    assert sent.find("response/correlationId").text == "court-0001"
    gateway_id = sent.find("response/messageId").text
    stored = await gateway.store.get_message(gateway_id)
    assert (stored.sender, stored.recipient, stored.service, stored.state) == ("court", "probation", "inbox",
                                                                                MessageState.ACCEPTED)
    assert b"bus-password" not in stored.body  # the bus password is never kept
    # Nothing is pushed to a member that pulls.
    assert "probation" not in gateway.engine.breaker_states()

    status = await post(http, gateway, "getMessageStatus", ids_request("getMessageStatus", "court", "court-0001"),
                        member="court")
    assert status.status == 200
    assert status.texts("response/messageStatus/code") == ["ACCEPTED"]
    assert status.texts("response/messageStatus/messageId") == ["court-0001"]

    page = await post(http, gateway, "getMessages", get_messages("probation", 10), member="probation")
    assert page.status == 200
    (message,) = page.body.iterfind("response/message")
    assert message.findtext("messageInfo/messageId") == gateway_id
    assert message.findtext("messageInfo/serviceId") == "inbox"
    assert message.findtext("messageInfo/sender/senderId") == "court"
    assert message.find("messageInfo/sender/password") is None
    assert message.findtext("messageInfo/messageType") == "REQUEST"
    assert destination_of(message.find("messageData/data")) == "Сәлем, әғқ"
    assert page.find("response/nextCursor") is None
    assert (await gateway.store.get_message(gateway_id)).state is MessageState.IN_FLIGHT

    followed = await post(http, gateway, "getMessageStatus", ids_request("getMessageStatus", "court", gateway_id),
                          member="court")
    assert followed.texts("response/messageStatus/code") == ["IN_FLIGHT"]
    # The hand-out is a disclosure, audited before the page left.
    (handed,) = await _outbound_entries(gateway)
    assert (handed.event.outcome, handed.event.member, handed.event.counterpart, handed.event.message_id) == (
        "disclosed", "probation", "court", gateway_id)

    confirmed = await post(http, gateway, "sendDeliveryNotification",
                           ids_request("sendDeliveryNotification", "probation", gateway_id), member="probation")
    assert confirmed.status == 200
    assert confirmed.find("response/status/code").text == "OK"
    assert confirmed.texts("response/messageId") == [gateway_id]
    delivered = await gateway.store.get_message(gateway_id)
    assert delivered.state is MessageState.DELIVERED and delivered.acknowledged_at is not None

    # Audited as a pushed delivery is: one outbound entry, to the recipient, from the sender.
    (_, entry) = await _outbound_entries(gateway)
    assert (entry.event.outcome, entry.event.member, entry.event.counterpart, entry.event.message_id,
            entry.event.service, entry.event.purpose) == ("delivered", "probation", "court", gateway_id,
                                                          "probation/inbox", "relay_test")

    # Confirming again changes nothing and audits nothing more.
    again = await post(http, gateway, "sendDeliveryNotification",
                       ids_request("sendDeliveryNotification", "probation", gateway_id), member="probation")
    assert again.status == 200 and again.texts("response/messageId") == []
    assert len(await _outbound_entries(gateway)) == 2

    done = await post(http, gateway, "getMessageStatus", ids_request("getMessageStatus", "court", "court-0001"),
                      member="court")
    assert done.texts("response/messageStatus/code") == ["DELIVERED"]
    assert done.find("response/messageStatus/confirmationDate") is not None
    receiver_view = await post(http, gateway, "getMessageStatus",
                               ids_request("getMessageStatus", "probation", gateway_id), member="probation")
    assert receiver_view.texts("response/messageStatus/code") == ["DELIVERED"]

    empty = await post(http, gateway, "getMessages", get_messages("probation", 10), member="probation")
    assert list(empty.body.iterfind("response/message")) == []


async def test_unconfirmed_messages_are_handed_out_again_and_pages_follow_the_cursor(gateway, http):
    ids = []
    for number in range(3):
        sent = await post(http, gateway, "sendMessage", send_message(f"court-p{number}"), member="court")
        ids.append(sent.find("response/messageId").text)

    first = await post(http, gateway, "getMessages", get_messages("probation", 2), member="probation")
    assert first.texts("response/message/messageInfo/messageId") == ids[:2]
    cursor = first.find("response/nextCursor").text
    second = await post(http, gateway, "getMessages", get_messages("probation", 2, cursor), member="probation")
    assert second.texts("response/message/messageInfo/messageId") == ids[2:]
    assert second.find("response/nextCursor") is None

    # Nothing confirmed: from the start, everything again.
    again = await post(http, gateway, "getMessages", get_messages("probation", 100), member="probation")
    assert again.texts("response/message/messageInfo/messageId") == ids
    assert (await gateway.store.get_message(ids[0])).attempts == 2
    # Every hand-out is audited: three pages, six messages handed out.
    handed = [e for e in await _outbound_entries(gateway) if e.event.outcome == "disclosed"]
    assert sorted(e.event.message_id for e in handed) == sorted(ids[:2] + ids[2:] + ids)

    await post(http, gateway, "sendDeliveryNotification",
               ids_request("sendDeliveryNotification", "probation", ids[1]), member="probation")
    rest = await post(http, gateway, "getMessages", get_messages("probation", 100), member="probation")
    assert rest.texts("response/message/messageInfo/messageId") == [ids[0], ids[2]]


async def test_a_json_message_for_a_pull_member_is_handed_out_as_text(gateway, http):
    headers = {"X-Member-Id": "court", "X-Purpose": "relay_test", "X-Message-Id": "court-json-1"}
    async with http.post(f"{gateway.url}/api/v1/relay/probation/inbox", json=person_payload(text="Сәлем"),
                         headers=headers) as response:
        assert response.status == 202, await response.text()
        gateway_id = (await response.json())["message_id"]
    page = await post(http, gateway, "getMessages", get_messages("probation", 1), member="probation")
    (message,) = page.body.iterfind("response/message")
    assert message.findtext("messageInfo/messageId") == gateway_id
    assert json.loads(message.findtext("messageData/data")) == person_payload(text="Сәлем")
    properties = {p.findtext("key"): p.findtext("value") for p in message.iterfind("messageInfo/properties")}
    assert properties == {"contentType": "application/json", "purpose": "relay_test"}


async def test_a_pushed_message_is_followed_and_may_be_confirmed_by_its_receiver(start_gateway, agency, http):
    gateway = await start_gateway(agency.url, **PULL_CONFIG)
    sent = await post(http, gateway, "sendMessage", send_message("court-push", service_id="health/bulk"),
                      member="court")
    gateway_id = sent.find("response/messageId").text

    async def delivered() -> bool:
        return (await gateway.store.get_message(gateway_id)).state is MessageState.DELIVERED

    await wait_until(delivered)
    status = await post(http, gateway, "getMessageStatus", ids_request("getMessageStatus", "court", "court-push"),
                        member="court")
    assert status.texts("response/messageStatus/code") == ["DELIVERED"]
    assert status.find("response/messageStatus/deliveryDate") is not None
    # What health received is an AsyncChannel sendMessage in the sender's name, without the password.
    (delivery,) = agency.deliveries
    assert delivery.headers["X-Message-Id"] == gateway_id
    forwarded = parse_envelope(delivery.body).body
    assert forwarded.tag == f"{{{TYPES}}}sendMessage"
    assert forwarded.findtext("request/messageInfo/sender/senderId") == "court"
    assert forwarded.findtext("request/messageInfo/serviceId") == "bulk"
    assert destination_of(forwarded.find("request/messageData/data")) == "Сәлем"
    assert b"bus-password" not in delivery.body

    confirmed = await post(http, gateway, "sendDeliveryNotification",
                           ids_request("sendDeliveryNotification", "health", gateway_id), member="health")
    assert confirmed.texts("response/messageId") == [gateway_id]
    (first, second) = [e for e in await _outbound_entries(gateway) if e.event.message_id == gateway_id]
    assert (first.event.reason, second.event.reason) == (None, "confirmed after delivery")


async def test_a_notice_the_gateway_itself_queued_is_handed_out_with_its_document(gateway, http):
    # What a workflow step queued: a bus SendMessage its codec built, stored as it will be sent —
    # here in the deprecated asynchronous envelope, the one that carries a messageType.
    notice = etree.Element(f"{{{PING}}}ping", nsmap={"p": PING})
    notice.text = "уведомление"
    body = serialise(build_envelope(build_request(BusRequest(
        message_id="wf-1", service_id="inbox", message_date=dt.datetime.now(dt.UTC), sender_id="gateway",
        data=notice, message_type=MessageType.NOTIFICATION, properties=(("caseKind", "release"),),
        channel=Channel.LEGACY_ASYNC))))
    acceptance = await gateway.store.accept(NewMessage(
        sender="gateway", recipient="probation", service="inbox", body=body, content_type="text/xml; charset=utf-8",
        correlation_id="case-1", max_attempts=5, deadline_at=gateway.clock() + 3600, purpose="probation_supervision",
    ), gateway.clock())
    page = await post(http, gateway, "getMessages", get_messages("probation", 5), member="probation")
    (message,) = page.body.iterfind("response/message")
    assert message.findtext("messageInfo/messageId") == acceptance.message.id
    assert message.findtext("messageInfo/correlationId") == "case-1"
    assert message.findtext("messageInfo/messageType") == "NOTIFICATION"
    assert message.findtext("messageInfo/sender/senderId") == "gateway"
    assert message.find(f"messageData/data/{{{PING}}}ping").text == "уведомление"
    assert [(p.findtext("key"), p.findtext("value")) for p in message.iterfind("messageInfo/properties")] == [
        ("caseKind", "release")]
