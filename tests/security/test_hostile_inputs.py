"""Hostile input against a live gateway: refused with a 4xx, never a 5xx, and nothing changes.

One gateway for the module on each store backend (SQLite, PostgreSQL), as deployed:
``identity = "mtls"`` with a development PKI, the shipped configuration with the workflows
running, a small body limit and
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
import zlib
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

from adapters.penal.codec import encode_release_notice
from adapters.population import Population
from backends import Backend
from gateway.domain import ReleaseEvent
from gateway.entrypoints.http.server import build
from gateway.security.audit import AuditEntry, EventKind, Outcome
from gateway.security.keys import new_private_key, self_signed_certificate
from gateway.security.xmldsig import DS, WsSecuritySigner
from gateway.security.jws import SIGNATURE_HEADER, SigningKey, sign
from gateway.security.tls import DevelopmentPki
from gateway.entrypoints.tools.simulate import SYSTEMS, system_config
from gateway.soap.envelope import BusRequest, MessageType, build_envelope, build_request, serialise
from gateway.workflows import pretrial, release
from soap.messages import document_element
from support import PERSON_IIN, release_payload

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


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgres"])
async def exchange(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp("hostile")
    if request.param == "postgres":
        request.getfixturevalue("postgres_reachable")
    backend = Backend(request.param, directory)
    store_url = "sqlite:///gateway.db" if request.param == "sqlite" else backend.fresh_url()
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
        "members.operations.roles": ["operator", "oversight"],
    }
    config = system_config(directory / "config", urls={system: receiver_url for system in SYSTEMS},
                           gateway_port=0, store_url=store_url, settings=settings)
    DevelopmentPki.init(pki.directory, ["gateway", *config.members, "stranger"])
    gateway = build(config)
    await gateway.start(port=0)
    yield Exchange(gateway, pki, gateway.url)
    await gateway.stop()
    await runner.cleanup()
    backend.discard_all()


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
    if soap:
        # Every SOAP fault comes with HTTP 500 (WS-I BP R1126); its code says whose mistake it is.
        assert answer.status == 500, (answer.status, answer.text[:500])
        assert answer.content_type == "text/xml" and "<faultcode>soap:Client</faultcode>" in answer.text, answer.text
    else:
        assert 400 <= answer.status < 500, (answer.status, answer.text[:500])
        if status is not None:
            assert answer.status == status, answer.text[:500]
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
        payload = document_element(release_payload(text), tag="ReleaseNotice")
    message = BusRequest(
        message_id=message_id or str(uuid.uuid4()), service_id=service_id,
        message_date=message_date or dt.datetime.now(dt.UTC), sender_id=sender, data=payload,
        properties=(("purpose", purpose),),
    )
    return serialise(build_envelope(build_request(message)))


SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}
SOAP_RELEASE = "/soap/release-notices"


def release_soap(notice, *, event: ReleaseEvent = ReleaseEvent.PLANNED, message_id: str | None = None) -> bytes:
    """A release notice as the penal system sends it over SOAP."""
    message = BusRequest(
        message_id=message_id or str(uuid.uuid4()), service_id="release-notices",
        message_type=MessageType.NOTIFICATION, message_date=dt.datetime.now(dt.UTC), sender_id="penal",
        data=encode_release_notice(event, notice),
    )
    return serialise(build_envelope(build_request(message)))


def with_doctype(doctype: str, *, text: str = "x") -> bytes:
    """A valid relay request with ``doctype`` before its root and ``text`` in its payload."""
    envelope = soap_request(text="PLACEHOLDER").decode().split("?>", 1)[1]
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}\n{envelope}'.replace("PLACEHOLDER", text).encode()


async def soap_refused(exchange: Exchange, body: bytes, *, member: str = "penal",
                       headers: dict[str, str] | None = None) -> Answer:
    return await refused(exchange, lambda: post(exchange, member, SOAP_RELAY, body, headers or SOAP_HEADERS),
                         member=member, soap=True)


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
    await soap_refused(exchange, soap_request()[:-40])


async def test_an_oversized_soap_body_is_refused_by_content_length(exchange):
    await soap_refused(exchange, soap_request(text="x" * (MAX_BODY + 1)))


async def test_an_oversized_chunked_soap_body_is_refused(exchange):
    body = soap_request(text="x" * (MAX_BODY + 1))

    async def chunks():
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    await refused(exchange, lambda: post(exchange, "penal", SOAP_RELAY, chunks(), SOAP_HEADERS), member="penal",
                  soap=True)


async def test_a_gzip_bomb_is_refused_by_its_inflated_size(exchange):
    bomb = gzip.compress(soap_request(text="x" * (200 * MAX_BODY)), compresslevel=9)
    assert len(bomb) < MAX_BODY // 4  # small on the wire: only the inflated size can catch it
    await soap_refused(exchange, bomb, headers={**SOAP_HEADERS, "Content-Encoding": "gzip"})


async def test_a_replayed_soap_message_id_with_other_content_is_refused(exchange):
    message_id = str(uuid.uuid4())
    genuine = await post(exchange, "penal", SOAP_RELAY, soap_request(message_id=message_id, text="first"),
                         SOAP_HEADERS)
    assert genuine.status == 200, genuine.text
    answer = await soap_refused(exchange, soap_request(message_id=message_id, text="second"))
    assert "idempotency-key-reused" in answer.text


async def test_a_soap_message_dated_outside_the_window_is_refused(exchange):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    await soap_refused(exchange, soap_request(message_date=old))


EDGE_DATES = {
    "year 9999 with a negative offset": "9999-12-31T23:59:59-05:00",
    "year 1 with a positive offset": "0001-01-01T00:00:00+05:00",
    "a naive year-1 date": "0001-01-01T00:00:00",
}


@pytest.mark.parametrize("stamp", EDGE_DATES.values(), ids=EDGE_DATES.keys())
async def test_a_soap_message_dated_at_the_edges_of_xs_datetime_is_a_client_fault(exchange, stamp):
    body = soap_request(message_date=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    body = body.replace(b"2030-01-01T00:00:00.000+00:00", stamp.encode())
    assert stamp.encode() in body
    answer = await soap_refused(exchange, body)
    assert "stale-message" in answer.text and stamp[:4] not in answer.text.split("<faultstring>")[1][:200]


SIGNING_KEY = new_private_key("rsa-sha256")
SIGNER = WsSecuritySigner(SIGNING_KEY, self_signed_certificate(SIGNING_KEY, "penal", days=30), algorithm="rsa-sha256")


@pytest.mark.parametrize("serial", ["9" * 5_000, "²", "1" * 50], ids=["5,000 digits", "a superscript two",
                                                                     "more than 20 octets"])
async def test_a_key_info_serial_number_that_is_no_serial_number_is_a_client_fault(exchange, serial):
    document = SIGNER.sign(etree.fromstring(soap_request()))
    key_info = document.find(f".//{{{DS}}}KeyInfo")
    issuer_serial = etree.SubElement(etree.SubElement(key_info, f"{{{DS}}}X509Data"), f"{{{DS}}}X509IssuerSerial")
    etree.SubElement(issuer_serial, f"{{{DS}}}X509IssuerName").text = "CN=penal"
    etree.SubElement(issuer_serial, f"{{{DS}}}X509SerialNumber").text = serial
    answer = await soap_refused(exchange, etree.tostring(document, xml_declaration=True, encoding="UTF-8"))
    assert serial not in answer.text


async def test_a_soap_sender_other_than_the_certificate_is_refused(exchange):
    await soap_refused(exchange, soap_request(sender="interior"))


async def test_soap_to_a_service_not_granted_is_refused(exchange):
    await soap_refused(exchange, soap_request(service_id="court/pretrial-reports"))


async def test_soap_for_a_purpose_not_granted_is_refused(exchange):
    await soap_refused(exchange, soap_request(purpose="relay_test"))


async def test_soap_sent_as_another_media_type_is_refused(exchange):
    await soap_refused(exchange, soap_request(), headers={"Content-Type": "application/soap+xml"})


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
    "an integer longer than Python converts": b'{"a": ' + b"9" * 5_000 + b"}",
    "deep nesting": b"[" * 20_000 + b"]" * 20_000,
    "invalid UTF-8": b'{"a": "\xc3\x28"}',
    "a byte-order mark": b'\xef\xbb\xbf{"a": 1}',
    "truncated": b'{"a": [1, 2',
}


@pytest.mark.parametrize("body", BAD_JSON.values(), ids=BAD_JSON.keys())
async def test_malformed_json_is_refused(exchange, body):
    await json_refused(exchange, body, status=400)


LONG_INTEGER = b"1" + b"0" * 4_400


@pytest.mark.parametrize(("member", "path", "purpose"), [
    ("penal", "/api/v1/release-notices", "continuity_of_care"),
    ("probation", "/api/v1/pretrial-reports", "pretrial_report"),
    ("clinic", "/api/v1/continuity-notices/n-1/acknowledgement", "continuity_of_care"),
], ids=["release notice", "pre-trial report", "clinic acknowledgement"])
async def test_an_integer_longer_than_python_converts_is_refused_at_every_json_entry_point(exchange, member, path,
                                                                                              purpose):
    body = b'{"event": ' + LONG_INTEGER + b"}"
    headers = json_headers(**{"X-Purpose": purpose})
    if member == "clinic":
        headers[SIGNATURE_HEADER] = clinic_signature(body, headers["X-Message-Id"])
    answer = await json_refused(exchange, body, member=member, path=path, status=400, headers=headers)
    assert "digits; the limit is" in answer.text


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


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br", "x-unheard-of"])
async def test_an_unsupported_content_encoding_is_a_415_listing_the_supported_ones(exchange, encoding):
    answer = await json_refused(exchange, b'{"a": 1}', status=415,
                                headers=json_headers(**{"Content-Encoding": encoding}))
    assert json.loads(answer.text)["supported_encodings"] == ["gzip", "deflate", "identity"]


async def test_an_unsupported_content_encoding_on_soap_is_a_415_client_fault(exchange):
    answer = await soap_refused(exchange, soap_request(), headers={**SOAP_HEADERS, "Content-Encoding": "br"})
    assert "gzip, deflate, identity" in answer.text


async def test_a_deflated_json_body_is_accepted(exchange):
    answer = await post(exchange, "penal", RELAY, zlib.compress(clinic_body()),
                        json_headers(**{"Content-Encoding": "deflate"}))
    assert answer.status == 202, answer.text


async def test_a_body_that_is_not_the_gzip_it_claims_is_refused(exchange):
    await json_refused(exchange, b'{"a": 1}', status=400, headers=json_headers(**{"Content-Encoding": "gzip"}))


async def test_a_soap_body_that_is_not_the_gzip_it_claims_is_a_client_fault(exchange):
    await soap_refused(exchange, soap_request(), headers={**SOAP_HEADERS, "Content-Encoding": "gzip"})


async def test_chunked_framing_broken_mid_body_does_not_hold_the_handler(exchange):
    async def send() -> Answer:
        # The framing breaks after the request reached its handler (sent at once, aiohttp's
        # parser answers a plain-text 400 before any of the gateway runs). aiohttp then stops
        # feeding the body without failing it: only the body deadline ends the wait.
        return await raw_exchange(exchange, "penal", RELAY, "application/json",
                                  b"Transfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n", b"zz\r\n:1}\r\n0\r\n\r\n")

    await refused(exchange, send, member="penal", soap=False, status=408)


def clinic_body() -> bytes:
    return json.dumps(release_payload(), ensure_ascii=False).encode()


async def clinic_refused(exchange: Exchange, body: bytes, message_id: str, signature: str | None,
                         status: int) -> Answer:
    headers = json_headers(message_id) | ({SIGNATURE_HEADER: signature} if signature else {})
    return await json_refused(exchange, body, member="clinic", status=status, headers=headers)


def clinic_signature(body: bytes, message_id: str, *, audience: str = "gateway", now: float | None = None,
                     key: SigningKey = CLINIC) -> str:
    return sign(body, key, audience=audience, message_id=message_id, now=time.time() if now is None else now,
                lifetime=60)


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


@pytest.mark.parametrize("issued_at", [10**30, -(10**30), 2**63, 253402300800], ids=str)
async def test_a_jws_with_an_out_of_range_iat_is_refused(exchange, issued_at):
    body = clinic_body()
    await clinic_refused(exchange, body, "m-iat", clinic_signature(body, "m-iat", now=issued_at), 400)


async def test_a_replayed_jti_under_a_new_message_id_is_refused(exchange):
    body = clinic_body()
    await clinic_refused(exchange, body, "m-new", clinic_signature(body, "m-captured"), 401)


async def test_a_jws_with_an_unknown_kid_is_refused(exchange):
    body = clinic_body()
    other = SigningKey("clinic-9", ECKey.import_key(ec.generate_private_key(ec.SECP256R1())))
    await clinic_refused(exchange, body, "m-kid", clinic_signature(body, "m-kid", key=other), 401)


async def test_a_jws_over_other_content_is_refused(exchange):
    signature = clinic_signature(clinic_body(), "m-tamper")
    await clinic_refused(exchange, clinic_body().replace(b"RENTED", b"FAMILY"), "m-tamper", signature, 401)


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
    answer = await json_refused(exchange, body, path="/api/v1/release-notices", status=400)
    assert "check digit" in answer.text and PERSON_IIN[:6] not in answer.text


async def test_a_soap_release_notice_with_an_invalid_iin_is_a_fault_without_its_digits(exchange):
    notice = PEOPLE.in_custody()[0].release.model_copy(update={"iin": "850230400911"})
    answer = await refused(exchange, lambda: post(exchange, "penal", SOAP_RELEASE, release_soap(notice), SOAP_HEADERS),
                           member="penal", soap=True)
    # What the fault says (the Body's text): the answer's signature header and the Body's wsu:Id
    # are random digits and hex that may hold "1985" by chance.
    said = "".join(etree.fromstring(answer.text.encode()).find("{http://schemas.xmlsoap.org/soap/envelope/}Body").itertext())
    assert "invalid-iin" in said and "850230" not in said and "1985" not in said


def release_json(event: str, notice) -> bytes:
    return json.dumps({"event": event, "notice": notice.model_dump(mode="json")}).encode()


async def test_a_release_notice_id_reused_for_other_content_is_refused(exchange):
    notice, message_id = PEOPLE.in_custody()[2].release, str(uuid.uuid4())
    first = await post(exchange, "penal", "/api/v1/release-notices", release_json("PLANNED", notice),
                       json_headers(message_id))
    again = await post(exchange, "penal", "/api/v1/release-notices", release_json("PLANNED", notice),
                       json_headers(message_id))
    assert (first.status, again.status) == (202, 202) and json.loads(first.text) == json.loads(again.text)
    answer = await json_refused(exchange, release_json("CANCELLED", notice), path="/api/v1/release-notices",
                                status=422, headers=json_headers(message_id))
    assert "idempotency-key-reused" in answer.text
    case = await exchange.gateway.workflows.runtime.get(release.KIND, json.loads(first.text)["case_id"])
    assert [event["event"] for event in case.data["events"]] == ["PLANNED"]


async def test_a_soap_release_notice_id_reused_for_other_content_is_a_client_fault(exchange):
    notice, message_id = PEOPLE.in_custody()[3].release, str(uuid.uuid4())
    first = await post(exchange, "penal", SOAP_RELEASE, release_soap(notice, message_id=message_id), SOAP_HEADERS)
    assert first.status == 200, first.text
    cancelled = release_soap(notice, event=ReleaseEvent.CANCELLED, message_id=message_id)
    answer = await refused(exchange, lambda: post(exchange, "penal", SOAP_RELEASE, cancelled, SOAP_HEADERS),
                           member="penal", soap=True)
    assert "idempotency-key-reused" in answer.text


@pytest.mark.parametrize("field", ["planned_date", "actual_date"])
async def test_a_release_notice_dated_outside_the_exchange_window_opens_no_case(exchange, field):
    notice = PEOPLE.in_custody()[4].release.model_dump(mode="json") | {field: "9999-12-31"}
    body = json.dumps({"event": "PLANNED", "notice": notice}).encode()
    answer = await json_refused(exchange, body, path="/api/v1/release-notices", status=400)
    assert field in answer.text


async def test_a_pretrial_report_due_outside_the_exchange_window_opens_no_case(exchange):
    body = json.dumps({"subject_iin": PERSON_IIN, "erdr_number": "261000000000001", "due_date": "9999-12-31",
                       "court": {"code": "C-1", "name": "Court"},
                       "requesting_body": {"code": "P-1", "name": "Probation"}}).encode()
    answer = await json_refused(exchange, body, member="probation", path="/api/v1/pretrial-reports", status=400,
                                headers=json_headers(**{"X-Purpose": "pretrial_report"}))
    assert "due_date" in answer.text


async def test_a_pretrial_report_request_with_unknown_fields_opens_no_case(exchange):
    body = json.dumps({"subject_iin": PERSON_IIN, "extra": "<script>"}).encode()
    await json_refused(exchange, body, member="probation", path="/api/v1/pretrial-reports", status=400,
                       headers=json_headers(**{"X-Purpose": "pretrial_report"}))


# ---------------------------------------------------------------- query parameters


async def get(exchange: Exchange, member: str, path: str, headers: dict[str, str] | None = None) -> Answer:
    async with exchange.client(member) as client, client.get(exchange.url + path, headers=headers) as response:
        return Answer(response.status, response.content_type, await response.text())


HUGE = "9" * 30
BAD_QUERIES = {
    "release cases, limit 0": "/api/v1/release-cases?limit=0",
    "release cases, limit -1": "/api/v1/release-cases?limit=-1",
    "release cases, limit 501": "/api/v1/release-cases?limit=501",
    "release cases, huge limit": f"/api/v1/release-cases?limit={HUGE}",
    "release cases, an after that is no id": "/api/v1/release-cases?after=" + "x" * 300,
    "dead letters, limit 0": "/api/v1/dlq?limit=0",
    "dead letters, limit 501": "/api/v1/dlq?limit=501",
    "dead letters, huge after": f"/api/v1/dlq?after={HUGE}",
    "dead letters, after past 64 bits": f"/api/v1/dlq?after={2**63}",
    "dead letters, a superscript digit": "/api/v1/dlq?limit=%C2%B2",
    "dead letters, limit twice": "/api/v1/dlq?limit=1&limit=2",
    "dead letters, a fraction": "/api/v1/dlq?limit=1.5",
    "dead letters, a signed number": "/api/v1/dlq?limit=+5",
    "tree heads, huge after": f"/api/v1/oversight/tree-heads?after={HUGE}",
    "tree heads, huge limit": f"/api/v1/oversight/tree-heads?limit={HUGE}",
    "tree heads, limit -1": "/api/v1/oversight/tree-heads?limit=-1",
    "inclusion proof, huge seq": f"/api/v1/oversight/proofs/inclusion?seq={HUGE}&tree_size=1",
    "consistency proof, huge new": f"/api/v1/oversight/proofs/consistency?old=0&new={HUGE}",
}


@pytest.mark.parametrize("path", BAD_QUERIES.values(), ids=BAD_QUERIES.keys())
async def test_a_query_number_out_of_range_is_refused_naming_the_range(exchange, path):
    answer = await refused(exchange, lambda: get(exchange, "operations", path), member="operations", soap=False,
                           status=400)
    detail = json.loads(answer.text)["detail"]
    assert "must be" in detail and HUGE not in detail, detail


async def test_the_largest_page_of_release_cases_is_served(exchange):
    answer = await get(exchange, "operations", "/api/v1/release-cases?limit=500&after=")
    assert answer.status == 200, answer.text


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/api/v1/release-notices", "POST"),
    ("PUT", "/healthz", "GET, HEAD"),
    ("PATCH", "/soap/relay", "GET, HEAD, POST"),
])
async def test_a_method_not_allowed_is_a_405_with_an_allow_header(exchange, method, path, allowed):
    async with exchange.client("penal") as client, client.request(method, exchange.url + path) as response:
        assert (response.status, response.content_type) == (405, "application/problem+json")
        assert response.headers["Allow"] == allowed


@pytest.mark.parametrize("query", ["wsdl", "xsd=sync-channel-v10.xsd"])
async def test_a_served_contract_never_points_at_the_host_the_request_names(exchange, query):
    answer = await get(exchange, "penal", f"/soap/relay?{query}", headers={"Host": "attacker.example"})
    assert answer.status == 200, answer.text
    assert "attacker.example" not in answer.text
    if query == "wsdl":
        assert f'location="{exchange.url}/soap/relay"' in answer.text


# ---------------------------------------------------------------- the gateway's own faults


async def test_an_unexpected_failure_is_a_500_internal_error_counted_by_route(exchange, monkeypatch):
    async def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(exchange.gateway.store, "list_cases", broken)
    answer = await get(exchange, "operations", "/api/v1/release-cases")
    monkeypatch.undo()
    assert (answer.status, answer.content_type) == (500, "application/problem+json")
    problem = json.loads(answer.text)
    assert problem["type"] == "urn:reentry-gateway:problem:internal-error" and "own fault" in problem["detail"]
    assert "a bug" not in answer.text
    metrics = await get(exchange, "operations", "/metrics")
    assert 'gateway_internal_errors_total{route="/api/v1/release-cases"} 1.0' in metrics.text


async def disconnects(exchange: Exchange, route: str) -> float:
    metrics = await get(exchange, "operations", "/metrics")
    line = f'gateway_client_disconnects_total{{route="{route}"}} '
    return next((float(row.removeprefix(line)) for row in metrics.text.splitlines() if row.startswith(line)), 0.0)


@pytest.mark.parametrize(("path", "content_type", "route"), [
    (SOAP_RELAY, "text/xml", "/soap/{service}"),
    (RELAY, "application/json", "/api/v1/relay/{recipient}/{service}"),
], ids=["SOAP", "JSON"])
async def test_a_caller_that_goes_away_mid_body_is_one_info_line_and_counted(exchange, log_lines, path,
                                                                              content_type, route):
    before = await disconnects(exchange, route)
    reader, writer = await asyncio.open_connection("127.0.0.1", exchange.gateway.port,
                                                   ssl=exchange.pki.client_context("penal"))
    writer.write((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                  "X-Purpose: continuity_of_care\r\nContent-Length: 10000\r\n\r\n").encode() + b"<" * 100)
    await writer.drain()
    writer.transport.abort()
    for _ in range(200):  # bounded: the count, not the time, decides
        if await disconnects(exchange, route) > before:
            break
        await asyncio.sleep(0.02)
    assert await disconnects(exchange, route) == before + 1
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert [line["level"] for line in lines if "went away" in line["event"]] == ["info"]
    assert not [line for line in lines if line["level"] in ("error", "critical") or "exception" in line]


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


async def raw_post(exchange: Exchange, member: str, path: str, headers: bytes, body: bytes) -> Answer:
    """One POST written by hand, headers (raw bytes, CRLF-terminated lines) and all."""
    reader, writer = await asyncio.open_connection("127.0.0.1", exchange.gateway.port,
                                                   ssl=exchange.pki.client_context(member))
    writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers
                 + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    return parse_response(raw)


@pytest.mark.parametrize(("member", "path", "purpose", "body"), [
    ("penal", "/api/v1/release-notices", "continuity_of_care",
     json.dumps({"event": "PLANNED", "notice": PEOPLE.in_custody()[1].release.model_dump(mode="json")}).encode()),
    ("probation", "/api/v1/pretrial-reports", "pretrial_report", json.dumps({"subject_iin": PERSON_IIN}).encode()),
], ids=["release notice", "pre-trial report"])
async def test_a_message_id_that_is_not_utf8_is_refused_and_nothing_is_kept(exchange, member, path, purpose, body):
    headers = (b"Content-Type: application/json\r\nX-Purpose: " + purpose.encode()
               + b"\r\nX-Message-Id: m-\xff\xfe-1\r\n")
    answer = await refused(exchange, lambda: raw_post(exchange, member, path, headers, body), member=member,
                           soap=False, status=400)
    assert "X-Message-Id must be" in answer.text


BAD_HEADER_VALUES = {
    # Other control characters never reach the gateway: aiohttp's parser answers them itself.
    "a tab": b"m\tx",
    "a space": b"two words",
    "too long": b"x" * 129,
    "not UTF-8": b"\xc3\x28",
    "Cyrillic": "Иванов".encode(),
}


@pytest.mark.parametrize("value", BAD_HEADER_VALUES.values(), ids=BAD_HEADER_VALUES.keys())
@pytest.mark.parametrize("header", ["X-Message-Id", "X-Correlation-Id", "X-Purpose", "X-Ordering-Key", "X-Member-Id"])
async def test_a_misshapen_header_the_gateway_reads_is_refused_naming_it(exchange, header, value):
    headers = b"Content-Type: application/json\r\n" + header.encode() + b": " + value + b"\r\n"
    if header != "X-Purpose":
        headers += b"X-Purpose: continuity_of_care\r\n"
    answer = await refused(exchange, lambda: raw_post(exchange, "penal", RELAY, headers, clinic_body()),
                           member="penal", soap=False, status=400)
    assert f"{header} must be" in answer.text


async def test_a_checked_header_sent_twice_is_refused(exchange):
    headers = b"Content-Type: application/json\r\nX-Purpose: continuity_of_care\r\nX-Message-Id: a\r\nX-Message-Id: b\r\n"
    answer = await refused(exchange, lambda: raw_post(exchange, "penal", RELAY, headers, clinic_body()),
                           member="penal", soap=False, status=400)
    assert "at most once" in answer.text


# ---------------------------------------------------------------- what reaches the log


async def test_a_name_in_a_correlation_id_or_a_soap_path_never_reaches_the_log(exchange, log_lines):
    name = "Ivanov"
    relayed = await post(exchange, "penal", RELAY, clinic_body(), json_headers(**{"X-Correlation-Id": f"{name}-Ivan"}))
    assert relayed.status == 202, relayed.text
    for service in (name, name.lower()):
        await refused(exchange, lambda: post(exchange, "penal", f"/soap/{service}", soap_request(),
                                             {**SOAP_HEADERS, "X-Correlation-Id": f"{name}-Ivan"}),
                      member="penal", soap=True)
    logged = log_lines.getvalue()
    assert logged and name not in logged and name.lower() not in logged


async def test_a_slow_json_sender_is_cut_off_with_408_while_others_are_served(exchange):
    answer = await refused(exchange, lambda: trickle(exchange, "penal", RELAY, "application/json"),
                           member="penal", soap=False, status=408)
    assert "did not arrive within" in answer.text


async def test_a_slow_soap_sender_is_cut_off_with_a_408_client_fault(exchange):
    await refused(exchange, lambda: trickle(exchange, "penal", SOAP_RELAY, "text/xml"), member="penal",
                  soap=True)
