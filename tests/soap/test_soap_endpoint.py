"""The gateway's SOAP endpoint over real HTTP on loopback, with the real store."""

from __future__ import annotations

import asyncio
import datetime as dt

import requests
import zeep
from lxml import etree

from adapters.penal import codec as penal_codec
from adapters.penal.simulator import push_release_notices
from gateway.domain import ReleaseEvent
import pytest

from gateway.soap.envelope import BUS, BUS_ASYNC, SYNC_INTERFACES, SYNC_TYPES, Channel, parse_envelope, read_request, read_response
from gateway.soap.faults import read_fault
from gateway.workflows.ports import SourceRejected, SourceUnavailable
from support import wait_until

from soap.messages import PING, SOAP_HEADERS, release_notice, release_notice_request, relay_request

KAZAKH = "Сәлем, әғқңөұүһі ӘҒҚҢӨҰҮҺІ"


def _zeep_release_notice(wsdl_url: str, notice_element: etree._Element):
    """An independent client: zeep fetching the v10 WSDL and its XSDs from the gateway itself,
    writing the xs:anyType data as zeep does, typed with xsi:type."""
    session = requests.Session()
    session.headers["X-Member-Id"] = "penal"
    client = zeep.Client(wsdl_url, transport=zeep.Transport(session=session, timeout=10))
    notice_type = client.get_type("{urn:reentry-gateway:penal:v1}ReleaseNotice")
    notice = client.get_element("{urn:reentry-gateway:penal:v1}releaseNotice").parse(notice_element, client.wsdl.types)
    return client.service.SendMessage(
        request={
            "requestInfo": {
                "messageId": "zeep-1",
                "serviceId": "release-notices",
                "messageDate": dt.datetime.now(dt.UTC),
                "sender": {"senderId": "penal", "password": "not a credential"},
                "sessionId": "session-9",
            },
            "requestData": {"data": zeep.xsd.AnyObject(notice_type, notice)},
        }
    )


async def test_zeep_sends_a_release_notice_through_the_wsdl_the_gateway_publishes(soap_gateway, release_receiver):
    notice = release_notice()
    element = penal_codec.encode_release_notice(ReleaseEvent.PLANNED, notice)
    response = await asyncio.to_thread(_zeep_release_notice, f"{soap_gateway.url}/soap/release-notices?wsdl", element)
    info = response.responseInfo
    assert (info.status.code, info.correlationId, info.sessionId) == ("ACCEPTED", "zeep-1", "session-9")
    (received,) = release_receiver.received
    assert (received["notice"], received["sender"], received["message_id"]) == (notice, "penal", "zeep-1")


async def test_relay_forwards_a_v10_send_message_to_the_recipient_without_the_senders_password(soap_gateway, agency, http):
    request = relay_request(text=KAZAKH).replace(b"<password></password>", b"<password>bus-secret-7</password>")
    async with http.post(f"{soap_gateway.url}/soap/relay", data=request, headers=SOAP_HEADERS) as response:
        assert response.status == 200
        answer = read_response(parse_envelope(await response.read()).body)
    await wait_until(lambda: agency.deliveries)
    delivered = agency.deliveries[0]
    assert delivered.service == "bulk"
    assert delivered.headers["X-Message-Id"] == answer.message_id
    envelope = parse_envelope(delivered.body)
    assert envelope.body.tag == f"{{{SYNC_TYPES}}}SendMessage"
    forwarded = read_request(envelope.body)
    assert (forwarded.service_id, forwarded.sender_id, forwarded.message_id) == ("bulk", "penal", "penal-0001")
    assert forwarded.data.tag == f"{{{PING}}}ProbationNotice"
    assert forwarded.data.findtext(f"{{{PING}}}destination/{{{PING}}}raw") == KAZAKH
    # The bus password is never a credential here: not forwarded, not stored.
    assert b"bus-secret-7" not in delivered.body
    (stored,) = await soap_gateway.store.list_messages(limit=10)
    assert b"bus-secret-7" not in stored.body


@pytest.mark.parametrize("channel", [Channel.LEGACY_SYNC])
async def test_the_deprecated_envelope_is_still_relayed_and_answered_in_kind(soap_gateway, agency, http, channel):
    headers = {**SOAP_HEADERS, "SOAPAction": '"urn:reentry-gateway:relay:SendMessage"'}
    async with http.post(f"{soap_gateway.url}/soap/relay", data=relay_request(channel=channel), headers=headers) as response:
        assert response.status == 200
        body = parse_envelope(await response.read()).body
    assert body.tag == f"{{{BUS}}}SendMessageResponse"
    assert read_response(body).status_code == "ACCEPTED"
    await wait_until(lambda: agency.deliveries)
    # Whatever the caller spoke, the recipient receives v10.
    assert parse_envelope(agency.deliveries[0].body).body.tag == f"{{{SYNC_TYPES}}}SendMessage"


async def test_a_deprecated_release_notice_is_still_received(soap_gateway, release_receiver, http):
    request = release_notice_request(channel=Channel.LEGACY_ASYNC, message_id="legacy-1")
    async with http.post(f"{soap_gateway.url}/soap/release-notices", data=request, headers=SOAP_HEADERS) as response:
        assert response.status == 200
        body = parse_envelope(await response.read()).body
    assert body.tag == f"{{{BUS_ASYNC}}}SendMessageResponse"
    assert penal_codec.decode_release_notice_receipt(read_response(body).data) == "release-case-1"
    assert release_receiver.received[0]["message_id"] == "legacy-1"


async def test_published_wsdl_points_every_schema_location_back_at_the_gateway(soap_gateway, http):
    async with http.get(f"{soap_gateway.url}/soap/release-notices?wsdl") as response:
        wsdl = etree.fromstring(await response.read())
    locations = wsdl.xpath("//xs:import/@schemaLocation", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"})
    address = wsdl.xpath("//soap:address/@location", namespaces={"soap": "http://schemas.xmlsoap.org/wsdl/soap/"})
    assert address == [f"{soap_gateway.url}/soap/release-notices"]
    assert locations == [f"{soap_gateway.url}/soap/release-notices?xsd={name}" for name in ("sync-channel-v10.xsd", "penal.xsd")]
    assert wsdl.get("targetNamespace") == SYNC_INTERFACES
    assert wsdl.xpath("//wsdl:portType/@name", namespaces={"wsdl": "http://schemas.xmlsoap.org/wsdl/"}) == ["ISyncChannel"]
    async with http.get(locations[0]) as response:
        assert response.status == 200
        assert b'targetNamespace="http://bip.bee.kz/SyncChannel/v10/Types"' in await response.read()
    # The deprecated envelope's schemas validate its requests but are not published.
    async with http.get(f"{soap_gateway.url}/soap/release-notices?xsd=bus.xsd") as response:
        assert response.status == 404


async def test_a_schema_the_service_does_not_use_is_not_served(soap_gateway, http):
    async with http.get(f"{soap_gateway.url}/soap/relay?xsd=../../config/members.toml") as response:
        assert response.status == 404
        assert "has no schema by that name" in (await response.json())["detail"]


async def test_relay_over_soap_answers_only_once_the_message_is_stored(soap_gateway, http):
    async with http.post(f"{soap_gateway.url}/soap/relay", data=relay_request(), headers=SOAP_HEADERS) as response:
        assert response.status == 200
        answer = read_response(parse_envelope(await response.read()).body)
    stored = await soap_gateway.store.get_message(answer.message_id)
    assert stored is not None and (stored.recipient, stored.service, stored.sender) == ("health", "bulk", "penal")
    assert stored.client_message_id == "penal-0001" and stored.purpose == "relay_test"


async def test_resent_relay_message_gets_the_original_answer_and_is_stored_once(soap_gateway, http):
    answers = []
    for _ in range(3):
        async with http.post(f"{soap_gateway.url}/soap/relay", data=relay_request(), headers=SOAP_HEADERS) as response:
            answers.append(await response.read())
    assert answers[0] == answers[1] == answers[2]
    assert len(await soap_gateway.store.list_messages(limit=100)) == 1


async def test_release_notice_reaches_the_receiver_with_its_sender_and_message_id(soap_gateway, release_receiver, http):
    notice = release_notice()
    case_ids = await push_release_notices(soap_gateway.url, [(ReleaseEvent.PLANNED, notice)], http, message_ids=["penal-7"])
    assert case_ids == ["release-case-1"]
    (received,) = release_receiver.received
    assert received == {
        "event": ReleaseEvent.PLANNED, "notice": notice, "sender": "penal", "message_id": "penal-7", "correlation_id": None,
    }


async def test_resent_release_notice_gets_the_original_answer_and_reaches_the_receiver_once(
    soap_gateway, release_receiver, http
):
    answers = []
    for _ in range(2):
        async with http.post(f"{soap_gateway.url}/soap/release-notices", data=release_notice_request(), headers=SOAP_HEADERS) as response:
            assert response.status == 200
            answers.append(await response.read())
    assert answers[0] == answers[1]
    assert len(release_receiver.received) == 1
    receipt = read_response(parse_envelope(answers[1]).body).data
    assert penal_codec.decode_release_notice_receipt(receipt) == "release-case-1"


async def test_copies_of_a_release_notice_sent_at_once_reach_the_receiver_once(soap_gateway, release_receiver, http):
    async def send():
        async with http.post(f"{soap_gateway.url}/soap/release-notices", data=release_notice_request(), headers=SOAP_HEADERS) as response:
            return await response.read()

    answers = await asyncio.gather(*(send() for _ in range(5)))
    assert len(set(answers)) == 1
    assert len(release_receiver.received) == 1


async def test_member_other_than_the_penal_system_may_not_send_release_notices(soap_gateway, release_receiver, http):
    try:
        await push_release_notices(soap_gateway.url, [(ReleaseEvent.PLANNED, release_notice())], http, sender_id="interior")
    except SourceRejected as refusal:
        assert "forbidden" in refusal.reason and "may not send release notices" in refusal.reason
    else:
        raise AssertionError("the gateway accepted a release notice from the interior ministry")
    assert release_receiver.received == []


async def test_windows_1251_release_notice_is_decoded_as_declared(soap_gateway, release_receiver, http):
    notice = release_notice()
    utf8 = release_notice_request(notice)
    # Kazakh letters outside windows-1251 travel as character references, as a 1251 system writes them.
    cp1251 = etree.tostring(etree.fromstring(utf8), xml_declaration=True, encoding="windows-1251")
    assert b"&#" in cp1251 and cp1251 != utf8
    headers = {**SOAP_HEADERS, "Content-Type": "text/xml; charset=windows-1251"}
    async with http.post(f"{soap_gateway.url}/soap/release-notices", data=cp1251, headers=headers) as response:
        assert response.status == 200
    assert release_receiver.received[0]["notice"] == notice


async def test_receiver_failure_is_a_server_fault_and_the_notice_can_be_resent(soap_gateway, release_receiver, http):
    release_receiver.fail = True
    async with http.post(f"{soap_gateway.url}/soap/release-notices", data=release_notice_request(), headers=SOAP_HEADERS) as response:
        assert response.status == 500
        assert b"<faultcode>soap:Server</faultcode>" in await response.read()
    release_receiver.fail = False
    async with http.post(f"{soap_gateway.url}/soap/release-notices", data=release_notice_request(), headers=SOAP_HEADERS) as response:
        assert response.status == 200
    assert len(release_receiver.received) == 1


async def test_release_notices_service_is_closed_when_no_receiver_is_wired(start_gateway, receiver, http):
    gateway = await start_gateway(receiver.url)
    async with http.post(f"{gateway.url}/soap/release-notices", data=release_notice_request(), headers=SOAP_HEADERS) as response:
        assert response.status == 500
        answer = await response.read()
    assert b"<faultcode>soap:Client</faultcode>" in answer and b"no SOAP service 'release-notices' here" in answer
    assert read_fault(parse_envelope(answer).body).error_code == "unknown-service"


async def test_unreachable_gateway_is_source_unavailable_for_the_pusher(http):
    try:
        await push_release_notices("http://127.0.0.1:1", [(ReleaseEvent.PLANNED, release_notice())], http, timeout=2)
    except SourceUnavailable as failure:
        assert "cannot connect" in failure.reason
    else:
        raise AssertionError("pushing to a closed port succeeded")


async def test_a_request_without_sender_is_sent_in_the_name_the_caller_is_identified_by(soap_gateway, http):
    # v10 makes sender optional; the caller's identity comes from the transport, never the envelope.
    request = relay_request(sender=None, message_id="no-sender-1")
    assert b"<sender>" not in request
    async with http.post(f"{soap_gateway.url}/soap/relay", data=request, headers=SOAP_HEADERS) as response:
        assert response.status == 200
        answer = read_response(parse_envelope(await response.read()).body)
    stored = await soap_gateway.store.get_message(answer.message_id)
    assert (stored.sender, stored.client_message_id) == ("penal", "no-sender-1")
