"""Transport identity: the development PKI, the mTLS listener and the caller it names.

Real TLS on loopback: a gateway in ``identity = "mtls"`` mode with the real store, and
clients presenting certificates from ``gateway pki init``'s CA (or from another CA).
"""

from __future__ import annotations

import datetime as dt
import asyncio
import json
import ssl
import stat
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import NameOID

from gateway.entrypoints.http.server import build
from gateway.config import load_config
from gateway.security.audit import AuditEntry, EventKind, Outcome
from gateway.security.tls import MEMBER_URI_PREFIX, DevelopmentPki, PkiError, member_of_certificate
from support import person_payload, wait_until, write_config

RELAY = "/api/v1/relay/health/notices"
PURPOSE = {"X-Purpose": "continuity_of_care"}
MEMBERS = ["gateway", "penal", "interior", "social", "ops", "health", "stranger"]


@pytest.fixture
def pki(tmp_path) -> DevelopmentPki:
    return DevelopmentPki.init(tmp_path / "pki", MEMBERS)


def mtls_environment(pki: DevelopmentPki) -> dict[str, str]:
    return {
        "GATEWAY__SERVER__IDENTITY": "mtls",
        "GATEWAY__TLS__CA_CERTIFICATE": json.dumps(str(pki.ca_certificate)),
        "GATEWAY__TLS__CRL": json.dumps(str(pki.crl)),
        "GATEWAY__TLS__CERTIFICATE": json.dumps(str(pki.certificate("gateway"))),
        "GATEWAY__TLS__PRIVATE_KEY": json.dumps(str(pki.private_key("gateway"))),
    }


@pytest.fixture
async def gateway(tmp_path, pki, receiver):
    config = load_config(write_config(tmp_path / "config", receiver_url=receiver.url), environ=mtls_environment(pki))
    started = build(config)
    await started.start(port=0)
    yield started
    await started.stop()


def session(context: ssl.SSLContext | None) -> aiohttp.ClientSession:
    """A client with one certificate; a new one for each attempt, so every attempt is a new handshake."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context if context is not None else False))


async def post_as(context: ssl.SSLContext, url: str, **headers: str) -> tuple[int, dict]:
    async with session(context) as client, client.post(url + RELAY, json=person_payload(),
                                                        headers={**PURPOSE, **headers}) as response:
        return response.status, await response.json(content_type=None)


async def refused_at_handshake(context: ssl.SSLContext, url: str) -> bool:
    try:
        async with session(context) as client, client.get(url + "/healthz") as response:
            await response.read()
    except aiohttp.ClientError:
        return True
    return False


async def audit_events(gateway):
    return [AuditEntry.parse(record).event for record in await gateway.store.read_audit(1, 1000)]


# ---------------------------------------------------------------- the development PKI


def test_pki_init_writes_a_ca_an_empty_crl_and_private_keys_only_the_owner_can_read(tmp_path):
    directory = tmp_path / "pki"
    result = subprocess.run([sys.executable, "-m", "gateway", "pki", "init", "--dir", str(directory),
                             "--members", "gateway", "penal"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    pki = DevelopmentPki(directory)
    assert list(x509.load_pem_x509_crl(pki.crl.read_bytes())) == []
    for key in (directory / "ca.key", pki.private_key("gateway"), pki.private_key("penal")):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(pki.ca_certificate.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_member_certificate_names_the_member_in_its_san_uri_and_common_name(pki):
    certificate = x509.load_pem_x509_certificate(pki.certificate("penal").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [MEMBER_URI_PREFIX + "penal"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "penal"


def test_pki_init_refuses_to_replace_an_existing_ca(pki):
    with pytest.raises(PkiError, match="a CA already exists"):
        DevelopmentPki.init(pki.directory, ["penal"])


def test_a_member_id_that_could_escape_the_folder_is_refused(pki):
    with pytest.raises(PkiError, match="not a member id"):
        pki.issue("../evil")


def test_the_san_uri_wins_over_the_common_name():
    peer = {"subject": ((("commonName", "interior"),),),
            "subjectAltName": (("DNS", "localhost"), ("URI", MEMBER_URI_PREFIX + "penal"))}
    assert member_of_certificate(peer) == "penal"


def test_without_a_member_uri_the_common_name_names_the_member():
    assert member_of_certificate({"subject": ((("commonName", "penal"),),), "subjectAltName": ()}) == "penal"


def test_a_certificate_naming_two_members_names_none():
    peer = {"subject": ((("commonName", "penal"),),),
            "subjectAltName": (("URI", MEMBER_URI_PREFIX + "penal"), ("URI", MEMBER_URI_PREFIX + "interior"))}
    assert member_of_certificate(peer) is None


# ---------------------------------------------------------------- the listener


async def test_the_listener_requires_client_certificates_tls_1_2_or_newer_and_checks_the_crl(gateway):
    context = gateway.tls.context
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
    assert gateway.url.startswith("https://")


async def test_plain_http_gets_no_answer_from_an_mtls_gateway(gateway):
    plain = gateway.url.replace("https://", "http://")
    with pytest.raises(aiohttp.ClientError):
        async with session(None) as client, client.get(plain + "/healthz", headers={"X-Member-Id": "ops"}) as response:
            await response.read()


async def test_the_caller_is_the_member_its_certificate_names(gateway, pki, receiver):
    status, answer = await post_as(pki.client_context("penal"), gateway.url)
    assert status == 202, answer
    assert (await gateway.store.get_message(answer["message_id"])).sender == "penal"
    await wait_until(lambda: receiver.received)
    assert receiver.received[0].headers["X-Sender"] == "penal"


async def test_x_member_id_naming_the_same_member_is_accepted(gateway, pki):
    status, _ = await post_as(pki.client_context("penal"), gateway.url, **{"X-Member-Id": "penal"})
    assert status == 202


async def test_x_member_id_naming_another_member_is_refused_and_audited(gateway, pki):
    status, problem = await post_as(pki.client_context("penal"), gateway.url, **{"X-Member-Id": "interior"})
    assert status == 403 and "identifies you as 'penal'" in problem["detail"]
    assert await gateway.store.list_messages(limit=10) == []
    (event,) = await audit_events(gateway)
    assert (event.kind, event.outcome, event.member) == (EventKind.INBOUND, Outcome.REFUSED, "penal")


async def test_a_certificate_for_an_unknown_member_is_refused_with_401_and_audited(gateway, pki):
    status, problem = await post_as(pki.client_context("stranger"), gateway.url)
    assert status == 401
    assert problem["type"] == "urn:reentry-gateway:problem:unauthenticated"
    assert "'stranger', which is not a member" in problem["detail"]
    (event,) = await audit_events(gateway)
    assert (event.member, event.member_role, event.outcome) == ("stranger", None, Outcome.REFUSED)
    assert event.reason == "refused with HTTP 401: unauthenticated"


async def test_a_soap_caller_with_an_unknown_certificate_gets_a_client_fault(gateway, pki):
    async with session(pki.client_context("stranger")) as client, client.post(
        gateway.url + "/soap/relay", data=b"<x/>", headers={"Content-Type": "text/xml"}
    ) as response:
        text = await response.text()
    assert response.status == 500 and "<faultcode>soap:Client</faultcode>" in text


async def test_an_expired_certificate_is_refused_at_the_handshake(gateway, pki):
    now = dt.datetime.now(dt.UTC)
    pki.issue("penal", replace=True, not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1))
    assert await refused_at_handshake(pki.client_context("penal"), gateway.url)
    assert await gateway.store.read_audit(1, 10) == []  # no request ever existed to audit


async def test_a_certificate_not_yet_valid_is_refused_at_the_handshake(gateway, pki):
    now = dt.datetime.now(dt.UTC)
    pki.issue("penal", replace=True, not_before=now + dt.timedelta(days=1), not_after=now + dt.timedelta(days=30))
    assert await refused_at_handshake(pki.client_context("penal"), gateway.url)


async def test_a_certificate_from_another_ca_is_refused_at_the_handshake(gateway, pki, tmp_path):
    other = DevelopmentPki.init(tmp_path / "other-ca", ["penal"])
    # It trusts the gateway's CA, but presents a certificate the gateway's CA never issued.
    context = other.client_context("penal")
    context.load_verify_locations(cafile=str(pki.ca_certificate))
    assert await refused_at_handshake(context, gateway.url)


async def test_a_client_without_a_certificate_is_refused_at_the_handshake(gateway, pki):
    context = ssl.create_default_context(cafile=str(pki.ca_certificate))
    assert await refused_at_handshake(context, gateway.url)


async def test_a_revoked_certificate_is_refused_from_the_next_handshake_without_a_restart(gateway, pki):
    assert (await post_as(pki.client_context("penal"), gateway.url))[0] == 202
    pki.revoke(pki.certificate("penal"))
    assert await refused_at_handshake(pki.client_context("penal"), gateway.url)
    assert (await post_as(pki.client_context("interior"), gateway.url))[0] == 202  # others carry on


async def test_a_rotated_certificate_works_and_the_old_one_until_it_is_revoked(gateway, pki):
    old = pki.client_context("penal")
    serial = x509.load_pem_x509_certificate(pki.certificate("penal").read_bytes()).serial_number
    pki.issue("penal", replace=True)
    assert (await post_as(pki.client_context("penal"), gateway.url))[0] == 202
    assert (await post_as(old, gateway.url))[0] == 202
    pki.revoke(pki.certificate("penal").with_name(f"penal.{serial:x}.pem"))
    assert await refused_at_handshake(old, gateway.url)
    assert (await post_as(pki.client_context("penal"), gateway.url))[0] == 202


async def test_a_corrupt_crl_keeps_the_previous_one_in_force(gateway, pki):
    interior, penal = pki.client_context("interior"), pki.client_context("penal")
    pki.revoke(pki.certificate("interior"))
    assert await refused_at_handshake(interior, gateway.url)
    pki.crl.write_text("not a CRL")
    assert await refused_at_handshake(interior, gateway.url)
    assert (await post_as(penal, gateway.url))[0] == 202


# ---------------------------------------------------------------- outbound


async def test_deliveries_to_an_https_member_present_the_gateways_certificate(tmp_path, pki):
    seen = []

    async def receive(request: web.Request) -> web.Response:
        seen.append(request.transport.get_extra_info("peercert"))
        await request.read()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/{path:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_context("health"))
    await site.start()
    receiver_url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    config = load_config(write_config(tmp_path / "config", receiver_url=receiver_url), environ=mtls_environment(pki))
    gateway = build(config)
    await gateway.start(port=0)
    try:
        assert (await post_as(pki.client_context("penal"), gateway.url))[0] == 202
        await wait_until(lambda: seen, timeout=10)
        assert member_of_certificate(seen[0]) == "gateway"
    finally:
        await gateway.stop()
        await runner.cleanup()


async def test_a_missing_tls_file_is_a_configuration_error_naming_it(tmp_path, pki, receiver):
    from gateway.errors import ConfigError

    pki.crl.unlink()
    config = load_config(write_config(tmp_path / "config", receiver_url=receiver.url), environ=mtls_environment(pki))
    with pytest.raises(ConfigError, match=r"crl\.pem: missing; create a development PKI with `gateway pki init`"):
        build(config)


async def test_a_connection_that_never_starts_the_handshake_is_closed_after_the_receive_timeout(tmp_path, pki,
                                                                                                   receiver):
    environment = {**mtls_environment(pki), "GATEWAY__SERVER__RECEIVE_TIMEOUT_SECONDS": "1"}
    config = load_config(write_config(tmp_path / "config", receiver_url=receiver.url), environ=environment)
    gateway = build(config)
    await gateway.start(port=0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        # Silent after connecting: asyncio's default would hold the connection for 60 s.
        assert await asyncio.wait_for(reader.read(), timeout=20) == b""
        writer.close()
    finally:
        await gateway.stop()
