"""AsyncChannel refusals: each a soap:Client Fault (HTTP 500, as WS-I Basic Profile asks) whose
AsyncChannelFault/ErrorInfo names the problem and where it is, and nothing stored or changed."""

from __future__ import annotations

import json

import pytest

from gateway.store import MessageState
from support import wait_until

from lxml import etree

from soap.async_messages import (
    PULL_CONFIG, Answer, get_messages, ids_request, notice_xml, now_text, post, send_message,
)


@pytest.fixture
async def gateway(start_gateway, agency):
    return await start_gateway(agency.url, **PULL_CONFIG)


async def _snapshot(gateway):
    """What a refusal must leave as it was: the messages, and the audit log but for the entry
    that records the refusal itself (an identified caller's refusals are audited)."""
    messages = await gateway.store.list_messages(limit=1000)
    entries = await gateway.store.read_audit(1, 10_000)
    kept = [record.entry for record in entries if json.loads(record.entry).get("outcome") != "refused"]
    return [(m.id, m.state, m.attempts, m.acknowledged_at) for m in messages], kept


async def _refused(http, gateway, operation, xml, *, member, code, where=None, says=None):
    before = await _snapshot(gateway)
    answer = await post(http, gateway, operation, xml, member=member)
    faultcode, error_code, error_data, message = answer.fault
    assert (answer.status, faultcode, error_code) == (500, "soap:Client", code), message
    if where is not None:
        assert error_data is not None and where in error_data, error_data
    if says is not None:
        assert says in message, message
    assert await _snapshot(gateway) == before
    return message


async def _accepted(http, gateway, message_id, *, sender="court", service_id="probation/inbox"):
    sent = await post(http, gateway, "sendMessage", send_message(message_id, sender=sender, service_id=service_id),
                      member=sender)
    assert sent.status == 200, sent.fault
    return sent.find("response/messageId").text


@pytest.mark.parametrize(("service_id", "code", "says"), [
    ("probation/nothing", "not-found", "offers no service 'nothing'"),
    ("nobody/inbox", "not-found", "no member 'nobody'"),
    ("probation", "unknown-service", "recipient/service"),
    ("health/notices", "forbidden", "may not call health/notices"),
])
async def test_an_unknown_or_ungranted_service_is_refused(gateway, http, service_id, code, says):
    where = "messageInfo/serviceId" if code == "unknown-service" else None
    await _refused(http, gateway, "sendMessage", send_message("court-bad-1", service_id=service_id),
                   member="court", code=code, where=where, says=says)


async def test_a_sender_id_other_than_the_caller_is_refused(gateway, http):
    await _refused(http, gateway, "sendMessage", send_message("court-bad-2", sender="penal"), member="court",
                   code="sender-mismatch", where="/Envelope/Body/types:sendMessage/request/messageInfo/sender/senderId")
    for operation in ("getMessageStatus", "sendDeliveryNotification"):
        await _refused(http, gateway, operation, ids_request(operation, "court", "x-1"), member="probation",
                       code="sender-mismatch", where=f"types:{operation}/request/sender/senderId")
    await _refused(http, gateway, "getMessages", get_messages("court", 5), member="probation",
                   code="sender-mismatch", where="types:getMessages/request/sender/senderId")
    # Client faults travel with HTTP 500, but they are the caller's mistakes, not the gateway's errors.
    assert gateway.metrics.internal_errors.labels("/soap/{service}")._value.get() == 0


async def test_an_unidentified_caller_is_refused(gateway, http):
    await _refused(http, gateway, "getMessages", get_messages("stranger", 5), member="stranger",
                   code="unauthenticated")


async def test_a_request_refused_before_the_service_runs_still_answers_the_channels_fault(gateway, http):
    # A malformed correlation header is refused by the HTTP layer, before the SOAP endpoint.
    before = await _snapshot(gateway)
    headers = {"Content-Type": "text/xml; charset=utf-8", "X-Member-Id": "court", "X-Message-Id": "has spaces"}
    async with http.post(f"{gateway.url}/soap/async-channel", data=send_message("court-hdr-1").encode(),
                         headers=headers) as response:
        answer = Answer(response.status, etree.fromstring(await response.read()))
    faultcode, error_code, _, _ = answer.fault
    assert (answer.status, faultcode, error_code) == (500, "soap:Client", "malformed-header")
    assert await _snapshot(gateway) == before


async def test_another_members_message_is_unknown_like_one_that_does_not_exist(gateway, http):
    gateway_id = await _accepted(http, gateway, "court-own-1")
    # health neither sent nor receives it: the same answer as for an id nobody used.
    mine_not = await _refused(http, gateway, "getMessageStatus", ids_request("getMessageStatus", "health", gateway_id),
                              member="health", code="unknown-message",
                              where="/Envelope/Body/types:getMessageStatus/request/messageId[1]")
    nobodys = await _refused(http, gateway, "getMessageStatus", ids_request("getMessageStatus", "health", "no-such"),
                             member="health", code="unknown-message")
    assert mine_not.replace(gateway_id, "X") == nobodys.replace("no-such", "X")
    # By the sender's own id only for the sender.
    await _refused(http, gateway, "getMessageStatus", ids_request("getMessageStatus", "probation", "court-own-1"),
                   member="probation", code="unknown-message")
    # Confirming: only the recipient, and one unknown id refuses the whole notification.
    await _refused(http, gateway, "sendDeliveryNotification",
                   ids_request("sendDeliveryNotification", "court", gateway_id), member="court",
                   code="unknown-message")
    await _refused(http, gateway, "sendDeliveryNotification",
                   ids_request("sendDeliveryNotification", "probation", gateway_id, "no-such"), member="probation",
                   code="unknown-message", where="request/messageId[2]")
    assert (await gateway.store.get_message(gateway_id)).state is MessageState.ACCEPTED


@pytest.mark.parametrize("page_size", ["0", "101", "-1", "99999999999999999999", "ten", ""])
async def test_a_page_size_outside_1_to_100_is_refused(gateway, http, page_size):
    await _refused(http, gateway, "getMessages", get_messages("probation", page_size), member="probation",
                   code="schema-violation", where="pageSize")


async def test_an_unknown_cursor_is_refused(gateway, http):
    await _refused(http, gateway, "getMessages", get_messages("probation", 5, "no-such-message"), member="probation",
                   code="unknown-cursor", where="types:getMessages/request/cursor")
    # The id of a message for another member is no cursor of probation's.
    pushed = await _accepted(http, gateway, "court-health-1", service_id="health/bulk")

    async def delivered() -> bool:
        return (await gateway.store.get_message(pushed)).state is MessageState.DELIVERED

    await wait_until(delivered)
    await _refused(http, gateway, "getMessages", get_messages("probation", 5, pushed), member="probation",
                   code="unknown-cursor")


async def test_a_member_that_is_pushed_to_cannot_pull(gateway, http):
    await _refused(http, gateway, "getMessages", get_messages("health", 5), member="health",
                   code="not-a-pull-member", says='delivery = "pull"')


@pytest.mark.parametrize("message_type", ["PING", "request", ""])
async def test_an_unknown_message_type_is_refused(gateway, http, message_type):
    await _refused(http, gateway, "sendMessage", send_message("court-type-1", message_type=message_type),
                   member="court", code="schema-violation", where="messageType")


@pytest.mark.parametrize(("date", "code"), [
    ("0001-01-01T00:00:00Z", "stale-message"),
    ("9999-12-31T23:59:59Z", "stale-message"),
    ("10000-01-01T00:00:00Z", "schema-violation"),
    ("2026-02-30T00:00:00Z", "schema-violation"),
    ("2026-01-01T24:00:00Z", "schema-violation"),
    ("2026-01-01", "schema-violation"),
    ("an hour ago", "stale-message"),
    ("in an hour", "stale-message"),
])
async def test_a_message_date_at_or_past_its_limits_is_refused(gateway, http, date, code):
    # Dated when the test runs (and named the same on every collection, as pytest-xdist needs).
    date = {"an hour ago": now_text(-3600), "in an hour": now_text(+3600)}.get(date, date)
    await _refused(http, gateway, "sendMessage", send_message("court-date-1", date=date), member="court", code=code)


@pytest.mark.parametrize("count", [0, 101])
async def test_a_status_question_names_1_to_100_ids(gateway, http, count):
    ids = [f"id-{n}" for n in range(count)]
    await _refused(http, gateway, "getMessageStatus", ids_request("getMessageStatus", "court", *ids), member="court",
                   code="schema-violation")


async def test_a_known_document_in_data_is_validated_against_its_schema(gateway, http):
    xml = send_message("court-doc-1", data='<pen:releaseNotice xmlns:pen="urn:reentry-gateway:penal:v1">'
                                           '<pen:unknown/></pen:releaseNotice>')
    await _refused(http, gateway, "sendMessage", xml, member="court", code="schema-violation", where="releaseNotice")


async def test_an_operation_the_channel_does_not_have_is_refused(gateway, http):
    xml = ids_request("getMessageStatus", "court", "x").replace("getMessageStatus", "changeMessageStatus")
    await _refused(http, gateway, "getMessageStatus", xml, member="court", code="unknown-operation")


async def test_a_resent_message_gets_its_first_answer_and_a_changed_one_is_refused(gateway, http):
    date = now_text()
    first = await post(http, gateway, "sendMessage", send_message("court-again", date=date), member="court")
    resent = await post(http, gateway, "sendMessage", send_message("court-again", date=date), member="court")
    assert (first.status, resent.status) == (200, 200)
    assert first.find("response/messageId").text == resent.find("response/messageId").text
    assert first.find("response/responseDate").text == resent.find("response/responseDate").text
    changed = await _refused(http, gateway, "sendMessage", send_message("court-again", date=date, text="другой"),
                             member="court", code="idempotency-key-reused")
    assert "already used" in changed
    assert len(await gateway.store.list_messages()) == 1


@pytest.mark.parametrize("service_id", ["probation/inbox", "health/bulk"])
async def test_a_document_with_a_field_outside_the_rule_is_refused_naming_the_field(gateway, http, agency,
                                                                                    service_id):
    # A ProbationNotice that also carries a diagnosis: no rule lets it go to probation or health.
    xml = send_message("court-overshared-1", service_id=service_id, data=notice_xml(diagnosis="B24"))
    message = await _refused(http, gateway, "sendMessage", xml, member="court", code="disclosure-exceeded",
                             says="does not allow diagnosis")
    answer = await post(http, gateway, "sendMessage", xml, member="court")
    assert answer.fault[2] == "diagnosis"  # errorData: the fields to remove, as the JSON API's problem names them
    assert "B24" not in message  # the value is never repeated back
    # Nothing stored, so nothing to hand out or push.
    page = await post(http, gateway, "getMessages", get_messages("probation", 10), member="probation")
    assert list(page.body.iterfind("response/message")) == [] and agency.deliveries == []
    # The same notice without the diagnosis is accepted under the same messageId.
    assert await _accepted(http, gateway, "court-overshared-1", service_id=service_id)


async def test_data_that_is_not_the_services_document_is_refused(gateway, http):
    xml = send_message("court-ping-1", data='<p:ping xmlns:p="urn:example:ping">Сәлем</p:ping>')
    await _refused(http, gateway, "sendMessage", xml, member="court", code="unprocessable-content",
                   says="this service takes a ProbationNotice element")
