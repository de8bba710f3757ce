"""Revoked signing certificates at the gateway's doors: SOAP relay (XML signature) and the JSON
relay (JWS with a key configured as a certificate). A revoked certificate refuses the message
with a precise error and stores nothing; the metric counts each outcome."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography import x509
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey
from joserfc.registry import HeaderParameter

from gateway.config import load_config
from gateway.entrypoints.http.server import build
from gateway.errors import ConfigError
from gateway.security.jws import SIGNATURE_HEADER, SigningKey, sign
from security.revocation_pki import Responder, TestCa
from soap.messages import SOAP_HEADERS, relay_request
from soap.signing import fault_of, signed
from support import person_payload, write_config


@pytest.fixture
def ca() -> TestCa:
    return TestCa()


@pytest.fixture
async def responder(ca):
    running = await Responder(ca).start()
    yield running
    await running.stop()


@pytest.fixture
async def recipient_url():
    async def accept(request: web.Request) -> web.Response:
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/{path:.*}", accept)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def start(tmp_path, ca, recipient_url):
    """A gateway where penal's signing certificate (XML, and JSON as key penal-1) is ``member``'s,
    issued by ``ca``, whose CRL (as now) and certificate are configured."""
    started = []

    async def start_gateway(member, *, on_unreachable="hard-fail", extra=None):
        directory = write_config(tmp_path / f"gw{len(started)}", receiver_url=recipient_url)
        (directory / "keys").mkdir()
        (directory / "keys/penal.pem").write_bytes(member.pem())
        (directory / "keys/ca.pem").write_bytes(ca.pem())
        (directory / "keys/crl.pem").write_bytes(ca.crl())
        gateway_key = ECKey.generate_key("P-256").as_pem(private=True)
        (directory / "keys/gateway-jws.pem").write_bytes(gateway_key)
        environ = {
            "GATEWAY__MEMBERS__PENAL__CERTIFICATES": '["keys/penal.pem"]',
            "GATEWAY__MEMBERS__PENAL__SIGN_JSON": "true",
            "GATEWAY__MEMBERS__PENAL__JWS_KEYS__PENAL-1": '"keys/penal.pem"',
            "GATEWAY__JWS__SIGNING_KEY": '"keys/gateway-jws.pem"',
            "GATEWAY__REVOCATION__ISSUERS": '["keys/ca.pem"]',
            "GATEWAY__REVOCATION__CRLS": '["keys/crl.pem"]',
            "GATEWAY__REVOCATION__ON_UNREACHABLE": f'"{on_unreachable}"',
            "GATEWAY__REVOCATION__TIMEOUT_SECONDS": "2",
            **(extra or {}),
        }
        gateway = build(load_config(directory, environ=environ))
        await gateway.start(port=0)
        started.append(gateway)
        return gateway

    yield start_gateway
    for gateway in started:
        await gateway.stop()


def fresh_request(prefix: str) -> bytes:
    """A relay request under an id of its own, so it is dated now (message dates are kept per id)."""
    return relay_request(message_id=f"{prefix}-{uuid.uuid4().hex[:12]}")


async def soap_answer(gateway, http, request: bytes):
    async with http.post(f"{gateway.url}/soap/relay", data=request, headers=SOAP_HEADERS) as response:
        return response.status, await response.read()


def metric(gateway, source: str, outcome: str) -> float:
    value = gateway.metrics.registry.get_sample_value(
        "gateway_revocation_checks_total", {"source": source, "outcome": outcome})
    return value or 0.0


async def test_a_soap_message_signed_with_a_good_certificate_is_relayed(ca, responder, start, http):
    member = ca.issue("penal", ocsp_url=responder.url)
    gateway = await start(member)
    status, _ = await soap_answer(gateway, http, signed(fresh_request("good"), member))
    assert status == 200
    assert len(await gateway.store.list_messages(limit=10)) == 1
    assert metric(gateway, "ocsp", "good") == 1 and metric(gateway, "crl", "good") == 1


async def test_a_soap_message_signed_with_a_certificate_revoked_in_the_crl_is_refused(ca, start, http):
    member = ca.issue("penal")
    ca.revoke(member)
    gateway = await start(member)
    status, body = await soap_answer(gateway, http, signed(fresh_request("signed"), member))
    fault = fault_of(status, body)
    assert fault.is_client_fault and fault.error_code == "certificate-revoked"
    assert "revoked by its CA" in fault.message and "(crl)" in fault.message
    assert await gateway.store.list_messages(limit=10) == []


async def test_a_soap_message_signed_with_a_certificate_the_responder_revoked_is_refused(ca, responder, start, http):
    member = ca.issue("penal", ocsp_url=responder.url)
    gateway = await start(member)  # its CRL predates the revocation
    ca.revoke(member)
    status, body = await soap_answer(gateway, http, signed(fresh_request("signed"), member))
    fault = fault_of(status, body)
    assert fault.is_client_fault and fault.error_code == "certificate-revoked" and "(ocsp)" in fault.message
    assert await gateway.store.list_messages(limit=10) == []
    assert metric(gateway, "ocsp", "revoked") == 1


async def test_responder_down_under_hard_fail_refuses_and_stores_nothing(ca, responder, start, http):
    member = ca.issue("penal", ocsp_url=responder.url)
    gateway = await start(member, extra={"GATEWAY__REVOCATION__CRLS": "[]"})
    await responder.stop()
    status, body = await soap_answer(gateway, http, signed(fresh_request("signed"), member))
    fault = fault_of(status, body)
    assert fault.error_code == "revocation-unavailable"
    assert not fault.is_client_fault  # nothing is wrong with the message: send it again later
    assert await gateway.store.list_messages(limit=10) == []
    assert metric(gateway, "none", "hard_fail") == 1


async def test_responder_down_under_soft_fail_accepts_with_a_warning_and_a_metric(ca, responder, start, http,
                                                                                  log_lines):
    member = ca.issue("penal", ocsp_url=responder.url)
    gateway = await start(member, on_unreachable="soft-fail", extra={"GATEWAY__REVOCATION__CRLS": "[]"})
    await responder.stop()
    status, _ = await soap_answer(gateway, http, signed(fresh_request("signed"), member))
    assert status == 200
    assert len(await gateway.store.list_messages(limit=10)) == 1
    assert metric(gateway, "none", "soft_fail") == 1
    assert metric(gateway, "ocsp", "unreachable") == 1
    assert any('"level": "warning"' in line and "soft-fail" in line for line in log_lines.getvalue().splitlines())
    async with http.get(f"{gateway.url}/metrics") as response:
        assert 'gateway_revocation_checks_total{outcome="soft_fail",source="none"} 1.0' in await response.text()


async def test_a_member_may_be_soft_fail_in_a_hard_fail_deployment(ca, responder, start, http):
    member = ca.issue("penal", ocsp_url=responder.url)
    gateway = await start(member, extra={"GATEWAY__REVOCATION__CRLS": "[]",
                                         "GATEWAY__MEMBERS__PENAL__REVOCATION_UNREACHABLE": '"soft-fail"'})
    await responder.stop()
    status, _ = await soap_answer(gateway, http, signed(fresh_request("signed"), member))
    assert status == 200


async def test_many_soap_messages_ask_the_responder_once(ca, responder, start, http):
    member = ca.issue("penal", ocsp_url=responder.url)
    gateway = await start(member)
    for number in range(5):
        status, _ = await soap_answer(gateway, http, signed(fresh_request(f"many-{number}"), member))
        assert status == 200
    assert responder.hits == 1


# ---------------------------------------------------------------- JSON


def jws_headers(member, message_id: str, body: bytes) -> dict[str, str]:
    key = ECKey.import_key(member.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    signature = sign(body, SigningKey("penal-1", key), audience="gateway", message_id=message_id, now=time.time(),
                     lifetime=60)
    return {"Content-Type": "application/json", "X-Member-Id": "penal", "X-Purpose": "continuity_of_care",
            "X-Message-Id": message_id, SIGNATURE_HEADER: signature}


BODY = json.dumps(person_payload()).encode()  # the ProbationNotice health/notices takes
# The receiver's own JOSE library, told of the claims the exchange's protected header carries.
LAX_REGISTRY = joserfc_jws.JWSRegistry(
    header_registry={name: HeaderParameter(name, lambda _: None) for name in ("iat", "exp", "jti", "aud")},
    algorithms=["ES256"])


async def test_json_signed_with_a_good_certificate_is_relayed(ca, responder, start, http):
    member = ca.issue("penal", ocsp_url=responder.url, algorithm="ecdsa-sha256")
    gateway = await start(member)
    message_id = str(uuid.uuid4())
    async with http.post(f"{gateway.url}/api/v1/relay/health/notices", data=BODY,
                         headers=jws_headers(member, message_id, BODY)) as response:
        assert response.status == 202, await response.text()
    assert responder.hits == 1


async def test_json_signed_with_a_revoked_certificate_is_a_problem_and_stores_nothing(ca, responder, start, http):
    member = ca.issue("penal", ocsp_url=responder.url, algorithm="ecdsa-sha256")
    gateway = await start(member)
    ca.revoke(member)
    message_id = str(uuid.uuid4())
    async with http.post(f"{gateway.url}/api/v1/relay/health/notices", data=BODY,
                         headers=jws_headers(member, message_id, BODY)) as response:
        problem = await response.json()
        assert response.status == 401 and response.content_type == "application/problem+json"
    assert problem["type"] == "urn:reentry-gateway:problem:certificate-revoked"
    assert "revoked by its CA" in problem["detail"]
    assert await gateway.store.list_messages(limit=10) == []


async def test_signed_json_is_kept_as_the_attached_jws_the_sender_made(ca, responder, start, http):
    member = ca.issue("penal", ocsp_url=responder.url, algorithm="ecdsa-sha256")
    gateway = await start(member)
    message_id = str(uuid.uuid4())
    headers = jws_headers(member, message_id, BODY)
    async with http.post(f"{gateway.url}/api/v1/relay/health/notices", data=BODY, headers=headers) as response:
        stored_id = (await response.json())["message_id"]
    async with http.get(f"{gateway.url}/api/v1/messages/{stored_id}/evidence",
                        headers={"X-Member-Id": "health"}) as response:
        assert response.status == 200 and response.content_type == "application/jose"
        evidence = await response.read()
    async with http.get(f"{gateway.url}/api/v1/messages/{stored_id}/evidence/certificate",
                        headers={"X-Member-Id": "health"}) as response:
        certificate = x509.load_pem_x509_certificate(await response.read())
    assert certificate == member.certificate
    token = joserfc_jws.deserialize_compact(evidence, ECKey.import_key(certificate.public_key()),
                                            registry=LAX_REGISTRY)
    assert token.payload == BODY and token.headers()["jti"] == message_id
    assert evidence.split(b".")[0] + b".." + evidence.split(b".")[2] == headers[SIGNATURE_HEADER].encode()


# ---------------------------------------------------------------- start-up


async def test_a_pinned_certificate_naming_a_responder_of_an_unconfigured_ca_stops_the_start(ca, responder, start):
    member = TestCa("Another CA").issue("penal", ocsp_url=responder.url)
    with pytest.raises(ConfigError, match=r"members\.penal\.certificates\[0\]: it names an OCSP responder"):
        await start(member)


def test_an_unknown_unreachable_mode_is_a_configuration_error(tmp_path):
    directory = write_config(tmp_path / "config", receiver_url="http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="revocation.on_unreachable"):
        load_config(directory, environ={"GATEWAY__REVOCATION__ON_UNREACHABLE": '"sometimes"'})
    with pytest.raises(ConfigError, match="members.penal.revocation_unreachable"):
        load_config(directory, environ={"GATEWAY__MEMBERS__PENAL__REVOCATION_UNREACHABLE": '"never"'})


def test_soft_fail_with_a_configured_ca_is_warned_about(tmp_path):
    directory = write_config(tmp_path / "config", receiver_url="http://127.0.0.1:1")
    soft = load_config(directory, environ={"GATEWAY__REVOCATION__ISSUERS": '["keys/ca.pem"]',
                                           "GATEWAY__MEMBERS__PENAL__REVOCATION_UNREACHABLE": '"soft-fail"'})
    (warning,) = [line for line in soft.warnings() if line.startswith("revocation:")]
    assert "signatures of penal are accepted" in warning
    hard = load_config(directory, environ={"GATEWAY__REVOCATION__ISSUERS": '["keys/ca.pem"]'})
    assert not [line for line in hard.warnings() if line.startswith("revocation:")]
