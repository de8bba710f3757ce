"""AsyncChannel through an independent client: zeep reading the WSDL the gateway publishes."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import requests
import zeep
from lxml import etree

from support import person_payload

from soap.async_messages import PING, PULL_CONFIG, TYPES
from soap.messages import document_element


@pytest.fixture
async def gateway(start_gateway, receiver):
    return await start_gateway(receiver.url, **PULL_CONFIG)


def _client(wsdl_url: str, member: str) -> zeep.Client:
    session = requests.Session()
    session.headers["X-Member-Id"] = member
    return zeep.Client(wsdl_url, transport=zeep.Transport(session=session, timeout=10))


def _send_with_document(client: zeep.Client, url: str, document: etree._Element, *, request: dict):
    """sendMessage built and read by zeep. zeep gives xs:anyType only typed values (xsi:type), so
    the business document, an element of its own namespace, is put into data after zeep built the rest."""
    binding = client.service._binding
    operation = binding.get("sendMessage")
    envelope = client.create_message(client.service, "sendMessage", request=request)
    envelope.find(".//messageData/data").append(document)
    reply = client.transport.post_xml(url, envelope, {"SOAPAction": f'"{operation.soapaction}"',
                                                      "Content-Type": "text/xml; charset=utf-8"})
    return binding.process_reply(client, operation, reply)


def _round_trip(wsdl_url: str) -> dict:
    court, probation = _client(wsdl_url, "court"), _client(wsdl_url, "probation")
    payload = document_element(person_payload(text="Сәлем, zeep"))
    sent = _send_with_document(court, wsdl_url.removesuffix("?wsdl"), payload, request={
        "messageInfo": {
            "messageId": "zeep-async-1", "serviceId": "probation/inbox", "messageType": "NOTIFICATION",
            "messageDate": dt.datetime.now(dt.UTC), "sender": {"senderId": "court", "password": "not-a-credential"},
            "properties": [{"key": "purpose", "value": "relay_test"}],
        },
        "messageData": {"data": ""},
    })
    page = probation.service.getMessages(request={"sender": {"senderId": "probation"}, "pageSize": 10})
    status_before = court.service.getMessageStatus(request={"sender": {"senderId": "court"},
                                                            "messageId": ["zeep-async-1"]})
    confirmed = probation.service.sendDeliveryNotification(request={
        "sender": {"senderId": "probation"}, "messageId": [sent.messageId]})
    status_after = court.service.getMessageStatus(request={"sender": {"senderId": "court"},
                                                           "messageId": [sent.messageId]})
    try:
        probation.service.getMessages(request={"sender": {"senderId": "probation"}, "pageSize": 10,
                                               "cursor": "no-such-cursor"})
        fault = None
    except zeep.exceptions.Fault as error:
        fault = error
    return {"sent": sent, "page": page, "before": status_before, "confirmed": confirmed, "after": status_after,
            "fault": fault}


async def test_zeep_sends_pulls_confirms_and_follows_through_the_published_wsdl(gateway):
    result = await asyncio.to_thread(_round_trip, f"{gateway.url}/soap/async-channel?wsdl")
    sent = result["sent"]
    assert sent.status.code == "ACCEPTED" and sent.correlationId == "zeep-async-1"
    (message,) = result["page"].message
    assert message.messageInfo.messageId == sent.messageId
    assert message.messageInfo.messageType == "NOTIFICATION"
    assert message.messageInfo.sender.senderId == "court" and message.messageInfo.sender.password is None
    data = message.messageData.data
    (document,) = data if isinstance(data, list) else [data]  # zeep gives anyType content as its elements
    assert document.tag == f"{{{PING}}}ProbationNotice"
    assert document.findtext(f"{{{PING}}}destination/{{{PING}}}raw") == "Сәлем, zeep"
    assert [s.code for s in result["before"].messageStatus] == ["IN_FLIGHT"]
    assert result["confirmed"].messageId == [sent.messageId]
    (after,) = result["after"].messageStatus
    assert after.code == "DELIVERED" and after.confirmationDate is not None
    fault = result["fault"]
    assert fault is not None and fault.code == "soap:Client"
    info = fault.detail.find(f"{{{TYPES}}}AsyncChannelFault/ErrorInfo")
    assert info.findtext("errorCode") == "unknown-cursor"


async def test_the_published_wsdl_and_schema_point_back_at_the_gateway(gateway, http):
    url = f"{gateway.url}/soap/async-channel"
    async with http.get(url + "?wsdl") as response:
        assert response.status == 200
        wsdl = etree.fromstring(await response.read())
    ns = {"wsdl": "http://schemas.xmlsoap.org/wsdl/", "soap": "http://schemas.xmlsoap.org/wsdl/soap/",
          "xs": "http://www.w3.org/2001/XMLSchema"}
    assert wsdl.get("targetNamespace") == "http://bip.bee.kz/AsyncChannel/v10/Interfaces"
    assert wsdl.xpath("//wsdl:portType/@name", namespaces=ns) == ["IAsyncChannel"]
    assert sorted(wsdl.xpath("//wsdl:portType/wsdl:operation/@name", namespaces=ns)) == [
        "getMessageStatus", "getMessages", "sendDeliveryNotification", "sendMessage"]
    assert wsdl.xpath("//soap:address/@location", namespaces=ns) == [url]
    (location,) = wsdl.xpath("//xs:import/@schemaLocation", namespaces=ns)
    assert location == f"{url}?xsd=async-channel-v10.xsd"
    async with http.get(location) as response:
        schema = etree.fromstring(await response.read())
    assert schema.get("targetNamespace") == TYPES
