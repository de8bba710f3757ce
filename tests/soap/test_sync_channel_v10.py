"""Independent checks of the SyncChannel v10 contract: envelopes written by hand from the
contract (literal strings, not produced by project code), answers validated by the independent
``xmlschema`` package against the shipped XSD, a client that reads faults only on HTTP 500 (as
JAX-WS RI does), and the delivery side telling a Client fault from a Server fault at HTTP 500."""

from __future__ import annotations

import datetime as dt

import pytest
import xmlschema
from aiohttp import web
from lxml import etree

from gateway.delivery.transport import HttpTransport
from gateway.resources import resource_dir
from gateway.store import MessageState
from support import person_payload, wait_until

V10 = "http://bip.bee.kz/SyncChannel/v10/Types"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XSD = resource_dir("schemas") / "soap" / "sync-channel-v10.xsd"


def handwritten(*, message_id: str, sender: str, service_id: str = "health/bulk", when: str | None = None) -> bytes:
    """A relay request as an integrator writes it from the contract: SOAP 1.1, SendMessage in the
    Types namespace, everything inside it unqualified, a sender with the bus password, a
    sessionId, a routeId, and a business document in its own namespace inside data (the
    ProbationNotice the test services take, written out by hand)."""
    when = when or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
                  xmlns:typ="http://bip.bee.kz/SyncChannel/v10/Types">
  <soapenv:Header/>
  <soapenv:Body>
    <typ:SendMessage>
      <request>
        <requestInfo>
          <messageId>{message_id}</messageId>
          <serviceId>{service_id}</serviceId>
          <messageDate>{when}</messageDate>
          <routeId>direct</routeId>
          <sender>
            <senderId>{sender}</senderId>
            <password>whatever-the-bus-issued</password>
          </sender>
          <properties>
            <key>purpose</key>
            <value>relay_test</value>
          </properties>
          <sessionId>sess-42</sessionId>
        </requestInfo>
        <requestData>
          <data>
            <p:ProbationNotice xmlns:p="urn:example:ping">
              <p:event>PLANNED</p:event>
              <p:person>
                <p:iin>900215400281</p:iin>
                <p:surname>Жұмабекова</p:surname>
                <p:given_name>Әлия</p:given_name>
                <p:patronymic>Серікқызы</p:patronymic>
                <p:birth_date>1990-02-15</p:birth_date>
                <p:sex>FEMALE</p:sex>
                <p:citizenship>KAZ</p:citizenship>
              </p:person>
              <p:release_type>PAROLE</p:release_type>
              <p:release_date>2027-01-15</p:release_date>
              <p:facility><p:code>UG-165/9</p:code><p:name>Учреждение УГ-165/9</p:name></p:facility>
              <p:destination><p:raw>Сәлем</p:raw></p:destination>
              <p:probation_office><p:code>PROB-0</p:code><p:name>Пробация қызметі</p:name></p:probation_office>
            </p:ProbationNotice>
          </data>
        </requestData>
      </request>
    </typ:SendMessage>
  </soapenv:Body>
</soapenv:Envelope>""".encode()


@pytest.fixture(scope="module")
def v10_schema() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(XSD))


def _body_element(answer: bytes) -> etree._Element:
    envelope = etree.fromstring(answer)
    (body,) = envelope.findall(f"{{{SOAP}}}Body")
    (element,) = [child for child in body if isinstance(child.tag, str)]
    return element


async def test_a_handwritten_request_is_accepted_and_the_answer_is_valid_v10(soap_gateway, agency, http, v10_schema):
    headers = {"Content-Type": "text/xml; charset=utf-8", "X-Member-Id": "penal", "SOAPAction": '""'}
    async with http.post(f"{soap_gateway.url}/soap/relay", data=handwritten(message_id="hand-1", sender="penal"),
                         headers=headers) as response:
        assert response.status == 200
        answer = await response.read()
    element = _body_element(answer)
    v10_schema.validate(element)
    assert element.tag == f"{{{V10}}}SendMessageResponse"
    info = element.find("response/responseInfo")
    assert info.findtext("correlationId") == "hand-1"
    assert info.findtext("status/code") == "ACCEPTED"
    assert info.findtext("sessionId") == "sess-42"
    assert element.find("response/responseData/data") is not None
    (stored,) = await soap_gateway.store.list_messages(limit=10)
    assert stored.client_message_id == "hand-1" and b"whatever-the-bus-issued" not in stored.body


async def test_the_wcf_default_soap_action_is_accepted(soap_gateway, http):
    action = '"http://bip.bee.kz/SyncChannel/v10/Interfaces/ISyncChannel/SendMessage"'
    headers = {"Content-Type": "text/xml; charset=utf-8", "X-Member-Id": "penal", "SOAPAction": action}
    async with http.post(f"{soap_gateway.url}/soap/relay", data=handwritten(message_id="hand-2", sender="penal"),
                         headers=headers) as response:
        assert response.status == 200


async def jax_ws_call(http, url: str, body: bytes, member: str) -> tuple[str, dict[str, str]]:
    """What JAX-WS RI does with an answer: a fault is read only from an HTTP 500, and its detail
    entry is bound by its element name (SendMessageFault) to the ErrorInfo bean."""
    headers = {"Content-Type": "text/xml; charset=utf-8", "X-Member-Id": member}
    async with http.post(url, data=body, headers=headers) as response:
        status, answer = response.status, await response.read()
    if status == 200:
        return "ok", {}
    if status != 500:
        raise AssertionError(f"HTTP {status}: a JAX-WS client reports a transport error and no fault")
    element = _body_element(answer)
    assert element.tag == f"{{{SOAP}}}Fault"
    (entry,) = element.find("detail")
    assert entry.tag == f"{{{V10}}}SendMessageFault"
    info = entry.find("ErrorInfo")
    return element.findtext("faultcode"), {child.tag: child.text for child in info}


async def test_a_client_that_reads_faults_only_on_http_500_gets_the_error_info(soap_gateway, http, v10_schema):
    faultcode, info = await jax_ws_call(http, f"{soap_gateway.url}/soap/relay",
                                        handwritten(message_id="hand-3", sender="interior"), "penal")
    assert faultcode == "soap:Client"
    assert info["errorCode"] == "sender-mismatch"
    assert info["errorData"] == "/Envelope/Body/v10:SendMessage/request/requestInfo/sender/senderId"
    assert "errorDate" in info and "'interior' is not the calling member 'penal'" in info["errorMessage"]
    assert await soap_gateway.store.list_messages(limit=10) == []


@pytest.mark.parametrize(
    ("body", "error_code"),
    [
        (handwritten(message_id="hand-4", sender="penal", service_id="health/no-such-service"), "not-found"),
        (handwritten(message_id="hand-5", sender="penal", service_id="GBDFL_Service"), "unknown-service"),
        (handwritten(message_id="hand-6", sender="penal", when="2026-12-04T24:00:00Z"), "date-out-of-range"),
        (handwritten(message_id="hand-7", sender="penal").replace(b"<serviceId>health/bulk</serviceId>", b""),
         "schema-violation"),
    ],
    ids=["unknown service of a known recipient", "serviceId of another bus", "messageDate at 24:00", "no serviceId"],
)
async def test_refusals_carry_a_schema_valid_send_message_fault(soap_gateway, http, v10_schema, body, error_code):
    async with http.post(f"{soap_gateway.url}/soap/relay", data=body,
                         headers={"Content-Type": "text/xml", "X-Member-Id": "penal"}) as response:
        assert response.status == 500
        fault = _body_element(await response.read())
    assert fault.findtext("faultcode") == "soap:Client"
    entry = fault.find(f"detail/{{{V10}}}SendMessageFault")
    v10_schema.validate(entry)
    assert entry.findtext("ErrorInfo/errorCode") == error_code
    assert await soap_gateway.store.list_messages(limit=10) == []


async def test_schema_problems_past_the_first_are_sub_errors(soap_gateway, http, v10_schema):
    body = handwritten(message_id="hand 8", sender="penal").replace(b"<routeId>direct</routeId>", b"<routeId>a b</routeId>")
    async with http.post(f"{soap_gateway.url}/soap/relay", data=body,
                         headers={"Content-Type": "text/xml", "X-Member-Id": "penal"}) as response:
        fault = _body_element(await response.read())
    info = fault.find(f"detail/{{{V10}}}SendMessageFault/ErrorInfo")
    v10_schema.validate(fault.find(f"detail/{{{V10}}}SendMessageFault"))
    assert info.findtext("errorData").endswith("/requestInfo/messageId")
    assert [sub.findtext("errorData").rpartition("/")[2] for sub in info.iterfind("subError")] == ["routeId"]


async def test_client_and_server_faults_are_counted_apart_and_a_client_fault_is_no_internal_error(
    soap_gateway, release_receiver, http
):
    from soap.messages import release_notice_request

    await jax_ws_call(http, f"{soap_gateway.url}/soap/relay", handwritten(message_id="hand-9", sender="interior"), "penal")
    release_receiver.fail = True
    async with http.post(f"{soap_gateway.url}/soap/release-notices", data=release_notice_request(),
                         headers={"Content-Type": "text/xml", "X-Member-Id": "penal"}) as response:
        assert response.status == 500 and b"soap:Server" in await response.read()
    async with http.get(f"{soap_gateway.url}/metrics") as response:
        metrics = await response.text()
    assert 'gateway_soap_faults_total{fault="Client",route="/soap/{service}"} 1.0' in metrics
    assert 'gateway_soap_faults_total{fault="Server",route="/soap/{service}"} 1.0' in metrics
    assert 'gateway_internal_errors_total{route="/soap/{service}"} 1.0' in metrics


# ----------------------------------------------------------------- receiving faults at HTTP 500

CLIENT_FAULT = b"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
<faultcode>s:Client</faultcode><faultstring>refused</faultstring><detail>
<t:SendMessageFault xmlns:t="http://bip.bee.kz/SyncChannel/v10/Types"><ErrorInfo><errorCode>SCE0001</errorCode>
<errorMessage>refused</errorMessage><errorDate>2026-12-04T10:00:00Z</errorDate></ErrorInfo></t:SendMessageFault>
</detail></s:Fault></s:Body></s:Envelope>"""
SERVER_FAULT = CLIENT_FAULT.replace(b"s:Client", b"s:Server").replace(b"SCE0001", b"SE0002")


@pytest.fixture
async def faulting_agency():
    """An agency answering every POST with the fault in ``answer["body"]`` and HTTP 500."""
    answer = {"body": CLIENT_FAULT, "seen": 0}

    async def respond(request: web.Request) -> web.Response:
        await request.read()
        answer["seen"] += 1
        return web.Response(body=answer["body"], status=500, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/{path:.*}", respond)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    answer["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield answer
    await runner.cleanup()


@pytest.mark.parametrize(("fault", "retryable", "words"), [
    (CLIENT_FAULT, False, "soap:Client fault SCE0001"), (SERVER_FAULT, True, "soap:Server fault SE0002"),
])
async def test_the_transport_reads_the_fault_code_of_an_http_500(faulting_agency, fault, retryable, words):
    from gateway.store import Message

    faulting_agency["body"] = fault
    transport = HttpTransport(connect_timeout=5)
    await transport.start()
    try:
        message = Message(id="m-1", seq=1, sender="gateway", recipient="court", service="pretrial-reports",
                          body=b"<x/>", content_type="text/xml; charset=utf-8", correlation_id="c-1",
                          client_message_id="m-1", purpose=None, ordering_key=None, state=MessageState.IN_FLIGHT,
                          attempts=0, max_attempts=3, accepted_at=0.0, next_attempt_at=0.0, deadline_at=60.0,
                          updated_at=0.0)
        outcome = await transport.send(faulting_agency["url"] + "/soap/court", message, timeout=5, now=0.0)
    finally:
        await transport.close()
    assert (outcome.delivered, outcome.status, outcome.retryable) == (False, 500, retryable)
    assert words in outcome.error


async def test_a_message_refused_with_a_client_fault_is_dead_lettered_after_one_attempt(
    start_gateway, faulting_agency, http
):
    gateway = await start_gateway(faulting_agency["url"])
    async with http.post(gateway.url + "/api/v1/relay/health/bulk", json=person_payload(),
                         headers={"Content-Type": "application/json", "X-Member-Id": "penal",
                                  "X-Purpose": "continuity_of_care"}) as response:
        assert response.status == 202, await response.text()
        message_id = (await response.json())["message_id"]

    async def dead() -> bool:
        return (await gateway.store.get_message(message_id)).state is MessageState.DEAD

    await wait_until(dead)
    message = await gateway.store.get_message(message_id)
    assert message.attempts == 1 and "permanent" in message.last_error and "soap:Client" in message.last_error


# ----------------------------------------------------------------- the documented request

async def test_the_documented_request_is_accepted_and_reaches_the_court_in_its_own_schema(tmp_path, http):
    # docs/integration-soap.md, "Try it": the example with its date made current, as the curl
    # command there sends it, from a member the shipped members.toml grants the service; the
    # court (its simulator, signing its answers as `gateway simulate` does) registers the report.
    import shutil
    from pathlib import Path

    from adapters.court import codec as court_xml
    from adapters.court.simulator import create_simulator
    from adapters.simulation import Recorder
    from gateway.config import load_config
    from gateway.entrypoints.http.server import build
    from gateway.entrypoints.tools.simulate import SIGNING_SYSTEMS
    from gateway.security.keys import DevelopmentKeys

    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "config", tmp_path / "config")
    config = load_config(tmp_path / "config", environ={})
    keys = DevelopmentKeys.provision(config, SIGNING_SYSTEMS)
    recorder = Recorder()
    court = web.AppRunner(create_simulator(recorder=recorder, signer=keys.signers["court"], verifier=keys.gateway),
                          access_log=None)
    await court.setup()
    site = web.TCPSite(court, "127.0.0.1", 0)
    await site.start()
    members = tmp_path / "config" / "members.toml"
    members.write_text(members.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:9105", f"http://127.0.0.1:{court.addresses[0][1]}"), encoding="utf-8")
    gateway = build(load_config(tmp_path / "config", environ={}))
    await gateway.start(port=0)
    try:
        example = (root / "docs" / "examples" / "soap" / "relay-request.xml").read_bytes()
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        body = example.replace(b"2026-11-26T09:30:00.000+00:00", now)
        headers = {"Content-Type": "text/xml; charset=utf-8", "X-Member-Id": "probation"}
        async with http.post(f"{gateway.url}/soap/relay", data=body, headers=headers) as response:
            answer = await response.read()
            assert response.status == 200, answer
        info = _body_element(answer).find("response/responseInfo")
        assert (info.findtext("status/code"), info.findtext("correlationId")) == ("ACCEPTED", "probation-2026-000123")
        message_id = info.findtext("messageId")
        stored = await gateway.store.get_message(message_id)
        assert (stored.recipient, stored.service, stored.sender) == ("court", "pretrial-reports", "probation")

        async def delivered() -> bool:
            return (await gateway.store.get_message(message_id)).state is MessageState.DELIVERED
        await wait_until(delivered)
    finally:
        await gateway.stop()
        await court.cleanup()
    (arrival,) = recorder.deliveries
    report = etree.fromstring(arrival.body).find(f".//{court_xml.PRETRIAL_REPORT}")
    # The court's own schema, not the canonical one the prober wrote: its decoder reads it whole.
    assert report is not None
    decoded = court_xml.decode_pretrial_report(report)
    assert (decoded.report_id, decoded.version) == ("PTR-2026-0042", 2)
