"""AsyncChannel in ``identity = "mtls"`` mode: the caller is the member its client certificate
names, and every request's sender/senderId must be that member."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.config import load_config
from gateway.entrypoints.http.server import build
from gateway.security.tls import DevelopmentPki
from support import write_config

from security.test_tls import mtls_environment, session
from soap.async_messages import ACTION, PULL_CONFIG, Answer, get_messages, send_message

MEMBERS = ["gateway", "penal", "health", "court", "probation", "stranger"]


@pytest.fixture
def pki(tmp_path) -> DevelopmentPki:
    return DevelopmentPki.init(tmp_path / "pki", MEMBERS)


@pytest.fixture
async def gateway(tmp_path, pki, receiver, store_url):
    directory = write_config(tmp_path / "config", receiver_url=receiver.url, store_url=store_url,
                             **PULL_CONFIG)
    started = build(load_config(directory, environ=mtls_environment(pki)))
    await started.start(port=0)
    yield started
    await started.stop()


async def _post(pki, gateway, member: str, operation: str, xml: str) -> Answer:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{ACTION}{operation}"'}
    async with session(pki.client_context(member)) as client, client.post(
        gateway.url + "/soap/async-channel", data=xml.encode(), headers=headers
    ) as response:
        return Answer(response.status, etree.fromstring(await response.read()))


async def test_the_sender_is_the_member_of_the_certificate(gateway, pki):
    sent = await _post(pki, gateway, "court", "sendMessage", send_message("court-tls-1"))
    assert sent.status == 200 and sent.find("response/status/code").text == "ACCEPTED"
    gateway_id = sent.find("response/messageId").text
    assert (await gateway.store.get_message(gateway_id)).sender == "court"

    # The court's certificate cannot send in the penal system's name, nor pull for probation.
    mismatch = await _post(pki, gateway, "court", "sendMessage", send_message("court-tls-2", sender="penal"))
    assert (mismatch.status, *mismatch.fault[:3]) == (
        500, "soap:Client", "sender-mismatch", "/Envelope/Body/types:sendMessage/request/messageInfo/sender/senderId")
    foreign = await _post(pki, gateway, "court", "getMessages", get_messages("probation", 10))
    assert foreign.fault[1] == "sender-mismatch"

    page = await _post(pki, gateway, "probation", "getMessages", get_messages("probation", 10))
    assert page.texts("response/message/messageInfo/messageId") == [gateway_id]
    assert len(await gateway.store.list_messages()) == 1


async def test_a_certificate_of_no_member_gets_the_channels_fault(gateway, pki):
    refused = await _post(pki, gateway, "stranger", "getMessages", get_messages("stranger", 10))
    assert (refused.status, *refused.fault[:2]) == (500, "soap:Client", "unauthenticated")
