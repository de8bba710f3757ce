"""Hostile input against a live gateway: refused with a 4xx, never a 5xx, and nothing changes.

One gateway for the module, as deployed: ``identity = "mtls"`` with a development PKI, the
shipped configuration with the workflows running, the embedded store, a small body limit and
a short receive timeout so the limits are cheap to reach. The clinic signs its JSON.

Every case checks that

- the answer is a 4xx: an RFC 9457 problem for the JSON API, a SOAP Client fault for SOAP;
- nothing was stored: no message, no case (store counts before and after);
- the refusal is in the audit log when the caller is identified — every case here comes over
  mTLS with a certificate from the exchange's CA, so every one of them is (see
  ``gateway.web.intake`` for the rule);
- the gateway still answers ``/healthz``.

Outside this file: handshake refusals (expired, not yet valid, other CA, revoked, no
certificate) are in test_tls.py; XML Signature Wrapping variants in
test_signature_wrapping.py. External resources (entities, XInclude, schemaLocation) point at a
loopback listener that counts connections, to prove none is made.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import gzip
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey
from lxml import etree

from adapters.population import Population
from gateway.entrypoints.http.server import build
from gateway.security.audit import AuditEntry, EventKind, Outcome
from gateway.security.jws import SIGNATURE_HEADER, SigningKey, sign
from gateway.security.tls import DevelopmentPki
from gateway.entrypoints.tools.simulate import SYSTEMS, system_config
from gateway.soap.envelope import BusRequest, build_envelope, build_request, serialise
from gateway.workflows import pretrial, release
from support import PERSON_IIN, person_payload

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_BODY = 64 * 1024
RECEIVE_TIMEOUT = 1.0
RELAY = "/api/v1/relay/health/release-notices"
SOAP_RELAY = "/soap/relay"
PING = "urn:example:ping"
CLINIC_KEY = ec.generate_private_key(ec.SECP256R1())
CLINIC = SigningKey("clinic-1", ECKey.import_key(CLINIC_KEY))
CLINIC_PUBLIC_PEM = CLINIC_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)
PEOPLE = Population(size=60)


@dataclass
class Exchange:
    gateway: object
    pki: DevelopmentPki
    url: str

    def client(self, member: str) -> aiohttp.ClientSession:
        # A connection per request: the receive timeout also closes idle keep-alive connections.
        connector = aiohttp.TCPConnector(ssl=self.pki.client_context(member), force_close=True)
        return aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def state(self) -> tuple[int, int, int]:
        store = self.gateway.store
        messages = await store.list_messages(limit=100_000)
        return (len(messages), len(await store.list_cases(pretrial.KIND, limit=10_000)),
                len(await store.list_cases(release.KIND, limit=10_000)))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exchange(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hostile")
    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({}, status=200)

    receiver = web.Application()
    receiver.router.add_post("/{path:.*}", accept)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    pki = DevelopmentPki(directory / "pki")
    (directory / "clinic-1.pub.pem").write_bytes(CLINIC_PUBLIC_PEM)
    (directory / "gateway-jws.pem").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    settings = {
        "server.identity": "mtls",
        "server.max_body_bytes": MAX_BODY,
        "server.receive_timeout_seconds": RECEIVE_TIMEOUT,
        "tls.ca_certificate": str(pki.ca_certificate),
        "tls.crl": str(pki.crl),
        "tls.certificate": str(pki.certificate("gateway")),
        "tls.private_key": str(pki.private_key("gateway")),
        "jws.signing_key": str(directory / "gateway-jws.pem"),
        "members.clinic.sign_json": True,
        "members.clinic.jws_keys.clinic-1": str(directory / "clinic-1.pub.pem"),
        "audit.tree_head_interval_seconds": 3600,
        # The hostile cases are unsigned SOAP (the signature cases are tests/security/test_signature_wrapping.py).
        "members.penal.require_signature": False,
        "members.interior.require_signature": False,
        "members.court.require_signature": False,
    }
    config = system_config(directory / "config", urls={system: receiver_url for system in SYSTEMS},
                           gateway_port=0, store_url="sqlite:///gateway.db", settings=settings)
    DevelopmentPki.init(pki.directory, ["gateway", *config.members, "stranger"])
    gateway = build(config)
    await gateway.start(port=0)
    yield Exchange(gateway, pki, gateway.url)
    await gateway.stop()
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module")
async def listener():
    """A loopback TCP listener that counts connections: a fetched entity or schema would show."""
    connections = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    server.connections = connections
    server.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    yield server
    server.close()
    await server.wait_closed()


# ---------------------------------------------------------------- the checks every case shares


@dataclass
class Answer:
    status: int
    content_type: str
    text: str


async def post(exchange: Exchange, member: str, path: str, data, headers: dict[str, str]) -> Answer:
    async with exchange.client(member) as client, client.post(exchange.url + path, data=data,
                                                               headers=headers) as response:
        return Answer(response.status, response.content_type, await response.text())


async def refused(exchange: Exchange, send: Callable[[], Awaitable[Answer]], *, member: str, soap: bool,
                  status: int | None = None) -> Answer:
    """Send one hostile request and check everything the module docstring promises."""
    before, audited_before = await exchange.state(), await exchange.gateway.store.audit_size()
    answer = await send()
    assert 400 <= answer.status < 500, (answer.status, answer.text[:500])
    if status is not None:
        assert answer.status == status, answer.text[:500]
    if soap:
        assert answer.content_type == "text/xml" and "<faultcode>soap:Client</faultcode>" in answer.text, answer.text
    else:
        assert answer.content_type == "application/problem+json", answer.text
        assert json.loads(answer.text)["type"].startswith("urn:reentry-gateway:problem:")
    assert await exchange.state() == before
    # Deliveries of messages accepted earlier may be audited meanwhile; inbound entries are this request's.
    events = [AuditEntry.parse(record).event
              for record in await exchange.gateway.store.read_audit(audited_before + 1, 100)]
    (event,) = [event for event in events if event.kind is EventKind.INBOUND]
    assert (event.outcome, event.member) == (Outcome.REFUSED, member)
    assert event.reason.startswith(f"refused with HTTP {answer.status}: ")
    async with exchange.client("operations") as client, client.get(exchange.url + "/healthz") as health:
        assert health.status == 200
    return answer


# ---------------------------------------------------------------- SOAP and XML


def soap_request(*, message_id: str | None = None, sender: str = "penal", service_id: str = "health/release-notices",
                 purpose: str = "continuity_of_care", text: str = "Сәлем", message_date: dt.datetime | None = None,
                 payload: etree._Element | None = None) -> bytes:
    if payload is None:
        payload = etree.Element(f"{{{PING}}}ping", nsmap={"p": PING})
        payload.text = text
    message = BusRequest(
        message_id=message_id or str(uuid.uuid4()), service_id=service_id,
        message_date=message_date or dt.datetime.now(dt.UTC), sender_id=sender, data=payload,
        properties=(("purpose", purpose),),
    )
    return serialise(build_envelope(build_request(message)))


SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}


def with_doctype(doctype: str, *, text: str = "x") -> bytes:
    """A valid relay request with ``doctype`` before its root and ``text`` in its payload."""
    envelope = soap_request(text="PLACEHOLDER").decode().split("?>", 1)[1]
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}\n{envelope}'.replace("PLACEHOLDER", text).encode()


async def soap_refused(exchange: Exchange, body: bytes, *, member: str = "penal", status: int | None = None,
                       headers: dict[str, str] | None = None) -> Answer:
    return await refused(exchange, lambda: post(exchange, member, SOAP_RELAY, body, headers or SOAP_HEADERS),
                         member=member, soap=True, status=status)


BILLION_LAUGHS = "".join(
    ['<!DOCTYPE lolz [<!ENTITY lol "lol">']
    + [f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10 if n > 1 else "&lol;" * 10}">' for n in range(1, 10)]
    + ["]>"]
)


async def test_billion_laughs_is_refused(exchange):
    answer = await soap_refused(exchange, with_doctype(BILLION_LAUGHS, text="&lol9;"))
    assert "DOCTYPE declarations are not accepted" in answer.text


async def test_quadratic_blowup_is_refused(exchange):
    doctype = f'<!DOCTYPE q [<!ENTITY a "{"a" * 20_000}">]>'
    await soap_refused(exchange, with_doctype(doctype, text="&a;" * 1_000))


async def test_an_external_entity_is_refused_without_a_connection(exchange, listener):
    await soap_refused(exchange, with_doctype(f'<!DOCTYPE x [<!ENTITY ext SYSTEM "{listener.url}/secret">]>',
                                              text="&ext;"))
    assert listener.connections == []


async def test_an_external_entity_reading_a_file_is_refused(exchange):
    answer = await soap_refused(exchange, with_doctype('<!DOCTYPE x [<!ENTITY f SYSTEM "file:///etc/passwd">]>',
                                                       text="&f;"))
    assert "root:" not in answer.text


async def test_parameter_entities_are_refused_without_a_connection(exchange, listener):
    doctype = f'<!DOCTYPE x [<!ENTITY % remote SYSTEM "{listener.url}/evil.dtd"> %remote;]>'
    await soap_refused(exchange, with_doctype(doctype))
    assert listener.connections == []


async def test_xinclude_is_refused_without_a_connection(exchange, listener):
    include = etree.Element("{http://www.w3.org/2001/XInclude}include", href=f"{listener.url}/doc.xml",
                            nsmap={"xi": "http://www.w3.org/2001/XInclude"})
    answer = await soap_refused(exchange, soap_request(payload=include))
    assert "XInclude" in answer.text and listener.connections == []


@pytest.mark.parametrize("attribute", ["schemaLocation", "noNamespaceSchemaLocation"])
async def test_a_schema_location_is_never_fetched(exchange, listener, attribute):
    # A penal document that breaks the gateway's own schema, pointing at a "better" one.
    payload = etree.Element("{urn:reentry-gateway:penal:v1}releaseNotice", nsmap={
        "pn": "urn:reentry-gateway:penal:v1", "xsi": "http://www.w3.org/2001/XMLSchema-instance"})
    location = f"urn:reentry-gateway:penal:v1 {listener.url}/penal.xsd" if attribute == "schemaLocation" \
        else f"{listener.url}/penal.xsd"
    payload.set(f"{{http://www.w3.org/2001/XMLSchema-instance}}{attribute}", location)
    await soap_refused(exchange, soap_request(payload=payload))
    assert listener.connections == []


async def test_a_processing_instruction_pointing_outside_is_refused(exchange, listener):
    body = soap_request().replace(b"?>", f'?>\n<?xml-stylesheet href="{listener.url}/x.xsl"?>'.encode(), 1)
    await soap_refused(exchange, body)
    assert listener.connections == []


async def test_excessive_depth_is_refused(exchange):
    deep = etree.Element(f"{{{PING}}}ping", nsmap={"p": PING})
    node = deep
    for _ in range(150):
        node = etree.SubElement(node, f"{{{PING}}}n")
    answer = await soap_refused(exchange, soap_request(payload=deep))
    assert "nesting deeper than" in answer.text


async def test_a_huge_attribute_count_is_refused(exchange):
    payload = etree.Element(f"{{{PING}}}ping", {f"a{n}": "1" for n in range(2_000)}, nsmap={"p": PING})
    answer = await soap_refused(exchange, soap_request(payload=payload))
    assert "attributes" in answer.text


async def test_a_doctype_hidden_in_utf16_is_refused(exchange):
    body = with_doctype(BILLION_LAUGHS, text="&lol9;").decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    await soap_refused(exchange, body.encode("utf-16"), headers={"Content-Type": "text/xml"})


async def test_utf7_is_refused(exchange):
    body = soap_request().replace(b"encoding='UTF-8'", b"encoding='UTF-7'", 1)
    assert b"UTF-7" in body
    await soap_refused(exchange, body, headers={"Content-Type": "text/xml"})


async def test_malformed_xml_is_a_client_fault(exchange):
    await soap_refused(exchange, soap_request()[:-40], status=400)


async def test_an_oversized_soap_body_is_refused_by_content_length(exchange):
    await soap_refused(exchange, soap_request(text="x" * (MAX_BODY + 1)), status=413)


async def test_an_oversized_chunked_soap_body_is_refused(exchange):
    body = soap_request(text="x" * (MAX_BODY + 1))

    async def chunks():
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    await refused(exchange, lambda: post(exchange, "penal", SOAP_RELAY, chunks(), SOAP_HEADERS), member="penal",
                  soap=True, status=413)


async def test_a_gzip_bomb_is_refused_by_its_inflated_size(exchange):
    bomb = gzip.compress(soap_request(text="x" * (200 * MAX_BODY)), compresslevel=9)
    assert len(bomb) < MAX_BODY // 4  # small on the wire: only the inflated size can catch it
    await soap_refused(exchange, bomb, status=413, headers={**SOAP_HEADERS, "Content-Encoding": "gzip"})


async def test_a_replayed_soap_message_id_with_other_content_is_refused(exchange):
    message_id = str(uuid.uuid4())
    genuine = await post(exchange, "penal", SOAP_RELAY, soap_request(message_id=message_id, text="first"),
                         SOAP_HEADERS)
    assert genuine.status == 200, genuine.text
    answer = await soap_refused(exchange, soap_request(message_id=message_id, text="second"), status=422)
    assert "idempotency-key-reused" in answer.text


async def test_a_soap_message_dated_outside_the_window_is_refused(exchange):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    await soap_refused(exchange, soap_request(message_date=old), status=400)


async def test_a_soap_sender_other_than_the_certificate_is_refused(exchange):
    await soap_refused(exchange, soap_request(sender="interior"), status=403)


async def test_soap_to_a_service_not_granted_is_refused(exchange):
    await soap_refused(exchange, soap_request(service_id="court/pretrial-reports"), status=403)


async def test_soap_for_a_purpose_not_granted_is_refused(exchange):
    await soap_refused(exchange, soap_request(purpose="relay_test"), status=403)


async def test_soap_sent_as_another_media_type_is_refused(exchange):
    await soap_refused(exchange, soap_request(), status=415, headers={"Content-Type": "application/soap+xml"})


# ---------------------------------------------------------------- JSON


def json_headers(message_id: str | None = None, **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Purpose": "continuity_of_care",
            "X-Message-Id": message_id or str(uuid.uuid4()), **extra}


async def json_refused(exchange: Exchange, body: bytes, *, member: str = "penal", path: str = RELAY,
                       status: int | None = None, headers: dict[str, str] | None = None) -> Answer:
    return await refused(exchange, lambda: post(exchange, member, path, body, headers or json_headers()),
                         member=member, soap=False, status=status)


BAD_JSON = {
    "duplicate keys": b'{"iin": "1", "iin": "2"}',
    "NaN": b'{"a": NaN}',
    "a number that overflows": b'{"a": 1e400}',
    "deep nesting": b"[" * 20_000 + b"]" * 20_000,
    "invalid UTF-8": b'{"a": "\xc3\x28"}',
    "a byte-order mark": b'\xef\xbb\xbf{"a": 1}',
    "truncated": b'{"a": [1, 2',
}


@pytest.mark.parametrize("body", BAD_JSON.values(), ids=BAD_JSON.keys())
async def test_malformed_json_is_refused(exchange, body):
    await json_refused(exchange, body, status=400)


async def test_an_oversized_json_body_is_refused_by_content_length(exchange):
    await json_refused(exchange, json.dumps({"pad": "x" * MAX_BODY}).encode(), status=413)


async def test_an_oversized_chunked_json_body_is_refused(exchange):
    async def chunks():
        for _ in range(2 * MAX_BODY // 8192):
            yield b" " * 8192

    await refused(exchange, lambda: post(exchange, "penal", RELAY, chunks(), json_headers()), member="penal",
                  soap=False, status=413)


async def test_a_json_gzip_bomb_is_refused_by_its_inflated_size(exchange):
    bomb = gzip.compress(b'{"pad": "' + b"0" * (200 * MAX_BODY) + b'"}', compresslevel=9)
    await json_refused(exchange, bomb, status=413, headers=json_headers(**{"Content-Encoding": "gzip"}))


async def test_a_body_that_is_not_the_gzip_it_claims_is_refused(exchange):
    await json_refused(exchange, b'{"a": 1}', status=400, headers=json_headers(**{"Content-Encoding": "gzip"}))


async def test_a_soap_body_that_is_not_the_gzip_it_claims_is_a_client_fault(exchange):
    await soap_refused(exchange, soap_request(), status=400, headers={**SOAP_HEADERS, "Content-Encoding": "gzip"})


async def test_chunked_framing_broken_mid_body_does_not_hold_the_handler(exchange):
    async def send() -> Answer:
        # The framing breaks after the request reached its handler (sent at once, aiohttp's
        # parser answers a plain-text 400 before any of the gateway runs). aiohttp then stops
        # feeding the body without failing it: only the body deadline ends the wait.
        return await raw_exchange(exchange, "penal", RELAY, "application/json",
                                  b"Transfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n", b"zz\r\n:1}\r\n0\r\n\r\n")

    await refused(exchange, send, member="penal", soap=False, status=408)


def clinic_body() -> bytes:
    return json.dumps(person_payload(), ensure_ascii=False).encode()


async def clinic_refused(exchange: Exchange, body: bytes, message_id: str, signature: str | None,
                         status: int) -> Answer:
    headers = json_headers(message_id) | ({SIGNATURE_HEADER: signature} if signature else {})
    return await json_refused(exchange, body, member="clinic", status=status, headers=headers)


def clinic_signature(body: bytes, message_id: str, *, audience: str = "gateway", now: float | None = None,
                     key: SigningKey = CLINIC) -> str:
    return sign(body, key, audience=audience, message_id=message_id, now=now or time.time(), lifetime=60)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_jws_alg_none_is_refused(exchange):
    header = {"alg": "none", "kid": "clinic-1", "iat": int(time.time()), "exp": int(time.time()) + 60,
              "jti": "m-none", "aud": "gateway"}
    await clinic_refused(exchange, clinic_body(), "m-none", b64(json.dumps(header).encode()) + "..", 401)


async def test_jws_hs256_keyed_with_the_clinics_public_key_is_refused(exchange):
    header = b64(json.dumps({"alg": "HS256", "kid": "clinic-1", "iat": int(time.time()),
                             "exp": int(time.time()) + 60, "jti": "m-hs", "aud": "gateway"}).encode())
    mac = hmac.new(CLINIC_PUBLIC_PEM, f"{header}.{b64(clinic_body())}".encode(), hashlib.sha256).digest()
    await clinic_refused(exchange, clinic_body(), "m-hs", f"{header}..{b64(mac)}", 401)


async def test_jws_for_another_audience_is_refused(exchange):
    body = clinic_body()
    await clinic_refused(exchange, body, "m-aud", clinic_signature(body, "m-aud", audience="health"), 401)


async def test_an_expired_jws_is_refused(exchange):
    body = clinic_body()
    await clinic_refused(exchange, body, "m-exp", clinic_signature(body, "m-exp", now=time.time() - 120), 401)


async def test_a_jws_dated_outside_the_window_is_refused(exchange):
    body = clinic_body()
    await clinic_refused(exchange, body, "m-old", clinic_signature(body, "m-old", now=time.time() - 3600), 400)


async def test_a_replayed_jti_under_a_new_message_id_is_refused(exchange):
    body = clinic_body()
    await clinic_refused(exchange, body, "m-new", clinic_signature(body, "m-captured"), 401)


async def test_a_jws_with_an_unknown_kid_is_refused(exchange):
    body = clinic_body()
    other = SigningKey("clinic-9", ECKey.import_key(ec.generate_private_key(ec.SECP256R1())))
    await clinic_refused(exchange, body, "m-kid", clinic_signature(body, "m-kid", key=other), 401)


async def test_a_jws_over_other_content_is_refused(exchange):
    signature = clinic_signature(clinic_body(), "m-tamper")
    await clinic_refused(exchange, clinic_body().replace(b"notice", b"notica"), "m-tamper", signature, 401)


async def test_unsigned_json_from_a_signing_member_is_refused(exchange):
    await clinic_refused(exchange, clinic_body(), "m-unsigned", None, 401)


async def test_a_member_without_a_grant_is_refused(exchange):
    await json_refused(exchange, clinic_body(), member="interior", status=403)


async def test_a_service_not_granted_is_refused(exchange):
    await json_refused(exchange, clinic_body(), path="/api/v1/relay/court/pretrial-reports", status=403)


async def test_a_purpose_not_granted_is_refused(exchange):
    await json_refused(exchange, clinic_body(), status=403, headers=json_headers(**{"X-Purpose": "relay_test"}))


async def test_a_certificate_for_an_unknown_member_is_refused(exchange):
    await json_refused(exchange, clinic_body(), member="stranger", status=401)


async def test_a_header_claiming_another_member_is_refused(exchange):
    await json_refused(exchange, clinic_body(), status=403, headers=json_headers(**{"X-Member-Id": "clinic"}))


async def test_a_release_notice_from_a_member_that_is_not_the_penal_system_opens_no_case(exchange):
    body = json.dumps({"event": "PLANNED", "notice": PEOPLE.in_custody()[0].release.model_dump(mode="json")})
    await json_refused(exchange, body.encode(), member="clinic", path="/api/v1/release-notices", status=403)


async def test_a_release_notice_with_an_invalid_iin_opens_no_case(exchange):
    notice = PEOPLE.in_custody()[0].release.model_dump(mode="json") | {"iin": PERSON_IIN[:-1] + "0"}
    body = json.dumps({"event": "PLANNED", "notice": notice}).encode()
    await json_refused(exchange, body, path="/api/v1/release-notices", status=400)


async def test_a_pretrial_report_request_with_unknown_fields_opens_no_case(exchange):
    body = json.dumps({"subject_iin": PERSON_IIN, "extra": "<script>"}).encode()
    await json_refused(exchange, body, member="probation", path="/api/v1/pretrial-reports", status=400,
                       headers=json_headers(**{"X-Purpose": "pretrial_report"}))


# ---------------------------------------------------------------- raw senders


def parse_response(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    content_type = next(line.split(b":", 1)[1].split(b";")[0].strip().decode()
                        for line in head.split(b"\r\n") if line.lower().startswith(b"content-type:"))
    return Answer(status, content_type, body.decode(errors="replace"))


async def raw_exchange(exchange: Exchange, member: str, path: str, content_type: str, *parts: bytes) -> Answer:
    """One request written by hand after the request line and the usual headers, in ``parts``
    a moment apart."""
    reader, writer = await asyncio.open_connection("127.0.0.1", exchange.gateway.port,
                                                   ssl=exchange.pki.client_context(member))
    writer.write((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                  f"X-Purpose: continuity_of_care\r\nConnection: close\r\n").encode())
    for part in parts:
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.05)
    raw = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    return parse_response(raw)


async def trickle(exchange: Exchange, member: str, path: str, content_type: str) -> Answer:
    """Send the headers, then the body a byte at a time, slower than the receive timeout allows;
    meanwhile another client must be served at once. Bounded: at most 40 bytes, 10 seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", exchange.gateway.port,
                                                   ssl=exchange.pki.client_context(member))
    writer.write((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                  f"X-Purpose: continuity_of_care\r\nContent-Length: 1000\r\n\r\n").encode())
    await writer.drain()
    response = asyncio.create_task(reader.read())
    started = time.monotonic()
    for _ in range(40):
        if response.done() or time.monotonic() - started > 10:
            break
        writer.write(b" ")
        await writer.drain()
        if _ == 2:  # a well-behaved client meanwhile
            async with exchange.client("operations") as client, client.get(exchange.url + "/healthz") as health:
                assert health.status == 200 and time.monotonic() - started < RECEIVE_TIMEOUT
        await asyncio.wait({response}, timeout=0.2)
    raw = await asyncio.wait_for(response, timeout=5)
    writer.close()
    elapsed = time.monotonic() - started
    assert RECEIVE_TIMEOUT <= elapsed < RECEIVE_TIMEOUT + 3, elapsed
    return parse_response(raw)


async def test_a_slow_json_sender_is_cut_off_with_408_while_others_are_served(exchange):
    answer = await refused(exchange, lambda: trickle(exchange, "penal", RELAY, "application/json"),
                           member="penal", soap=False, status=408)
    assert "did not arrive within" in answer.text


async def test_a_slow_soap_sender_is_cut_off_with_a_408_client_fault(exchange):
    await refused(exchange, lambda: trickle(exchange, "penal", SOAP_RELAY, "text/xml"), member="penal",
                  soap=True, status=408)
