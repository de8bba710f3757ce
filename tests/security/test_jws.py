"""Detached JWS over JSON bodies: what verifies, every classic attack refused, and the wiring —
inbound on the relay for members with ``sign_json``, outbound on deliveries to them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey, RSAKey
from joserfc.registry import HeaderParameter

from gateway.entrypoints.http.server import build
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.security.jws import SIGNATURE_HEADER, InvalidSignature, SigningKey, sign, verify
from gateway.security.replay import Freshness, StaleMessage
from support import person_payload, wait_until, write_config

BODY = json.dumps(person_payload(), ensure_ascii=False).encode()
NOW = 1_795_000_000.0
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEYS = {"penal-1": ECKey.import_key(EC_KEY.public_key()), "penal-rsa": RSAKey.import_key(RSA_KEY.public_key())}
SIGNER = SigningKey("penal-1", ECKey.import_key(EC_KEY))


def check(signature: str, body: bytes = BODY, *, message_id: str = "m-1", audience: str = "gateway", now: float = NOW):
    return verify(signature, body, keys=KEYS, audience=audience, message_id=message_id,
                  freshness=Freshness(300, lambda: now), max_lifetime=300)


def signed(**overrides) -> str:
    """A detached JWS signed with the genuine key whose header has ``overrides`` (None removes a key)."""
    header = {"alg": "ES256", "kid": "penal-1", "iat": int(NOW), "exp": int(NOW) + 60, "jti": "m-1", "aud": "gateway"}
    header = {key: value for key, value in {**header, **overrides}.items() if value is not None}
    lax = joserfc_jws.JWSRegistry(
        header_registry={name: HeaderParameter(name, lambda _: None) for name in ("iat", "exp", "jti", "aud", "x")},
        algorithms=["ES256", "PS256", "RS256"], strict_check_header=False,
    )
    key = ECKey.import_key(EC_KEY) if header["alg"] == "ES256" else RSAKey.import_key(RSA_KEY)
    return joserfc_jws.detach_content(joserfc_jws.serialize_compact(header, BODY, key, registry=lax))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_signature_made_with_a_configured_key_verifies():
    claims = check(sign(BODY, SIGNER, audience="gateway", message_id="m-1", now=NOW, lifetime=60))
    assert (claims.key_id, claims.algorithm, claims.message_id) == ("penal-1", "ES256", "m-1")


def test_an_rsa_key_signs_with_ps256():
    claims = check(sign(BODY, SigningKey("penal-rsa", RSAKey.import_key(RSA_KEY)), audience="gateway",
                        message_id="m-1", now=NOW, lifetime=60))
    assert claims.algorithm == "PS256"


def test_the_signature_travels_detached_and_covers_the_body_bytes():
    signature = sign(BODY, SIGNER, audience="gateway", message_id="m-1", now=NOW, lifetime=60)
    assert signature.split(".")[1] == ""
    with pytest.raises(InvalidSignature, match="does not match the body"):
        check(signature, BODY.replace(b"PLANNED", b"CHANGED"))


def test_the_longest_message_id_and_key_id_fit_in_the_protected_header():
    # joserfc refuses protected headers over 512 bytes; the ids' limits must stay under it.
    message_id, key_id = "m" * 128, "k" * 64
    signature = sign(BODY, SigningKey(key_id, SIGNER.key), audience="a" * 63, message_id=message_id, now=NOW,
                     lifetime=60)
    claims = verify(signature, BODY, keys={key_id: KEYS["penal-1"]}, audience="a" * 63, message_id=message_id,
                    freshness=Freshness(300, lambda: NOW), max_lifetime=300)
    assert claims.message_id == message_id


def test_alg_none_is_refused():
    header = {"alg": "none", "kid": "penal-1", "iat": int(NOW), "exp": int(NOW) + 60, "jti": "m-1", "aud": "gateway"}
    with pytest.raises(InvalidSignature, match="alg 'none' is not accepted"):
        check(b64(json.dumps(header).encode()) + "..")


def test_hs256_keyed_with_the_members_public_key_is_refused():
    # The HS/RS confusion: the attacker knows the public key and uses its PEM as an HMAC secret.
    public_pem = EC_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64(json.dumps({"alg": "HS256", "kid": "penal-1", "iat": int(NOW), "exp": int(NOW) + 60,
                             "jti": "m-1", "aud": "gateway"}).encode())
    mac = hmac.new(public_pem, f"{header}.{b64(BODY)}".encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidSignature, match="alg 'HS256' is not accepted"):
        check(f"{header}..{b64(mac)}")


def test_rs256_is_not_on_the_allow_list():
    with pytest.raises(InvalidSignature, match="alg 'RS256' is not accepted"):
        check(signed(alg="RS256", kid="penal-rsa"))


def test_an_unknown_kid_is_refused():
    with pytest.raises(InvalidSignature, match="kid 'penal-9' is not one of your configured keys"):
        check(signed(kid="penal-9"))


def test_a_signature_for_another_receiver_is_refused():
    with pytest.raises(InvalidSignature, match="for 'health', not 'gateway'"):
        check(signed(aud="health"))


def test_an_expired_signature_is_refused():
    with pytest.raises(InvalidSignature, match="expired"):
        check(signed(iat=int(NOW) - 100, exp=int(NOW) - 10))


def test_an_iat_older_than_the_window_is_refused_as_stale():
    with pytest.raises(StaleMessage, match="behind the gateway's clock"):
        check(signed(iat=int(NOW) - 301, exp=int(NOW) - 1))


def test_an_iat_ahead_of_the_window_is_refused_as_stale():
    with pytest.raises(StaleMessage, match="ahead of the gateway's clock"):
        check(signed(iat=int(NOW) + 301, exp=int(NOW) + 400))


def test_a_signature_valid_longer_than_the_lifetime_is_refused():
    with pytest.raises(InvalidSignature, match="at most 300 s after it"):
        check(signed(exp=int(NOW) + 3600))


def test_a_signature_for_another_message_id_is_refused():
    with pytest.raises(InvalidSignature, match="jti is not this message's X-Message-Id"):
        check(signed(jti="m-0"))


def test_a_signed_message_without_a_message_id_is_refused():
    with pytest.raises(InvalidSignature, match="send X-Message-Id"):
        verify(signed(), BODY, keys=KEYS, audience="gateway", message_id=None,
               freshness=Freshness(300, lambda: NOW), max_lifetime=300)


@pytest.mark.parametrize("parameter", ["jwk", "jku", "x5u", "crit"])
def test_header_parameters_that_bring_their_own_key_or_rules_are_refused(parameter):
    value = ["exp"] if parameter == "crit" else "https://127.0.0.1:1/keys" if parameter != "jwk" else {"kty": "EC"}
    with pytest.raises(InvalidSignature, match=f"header parameters {parameter} are not accepted"):
        check(signed(**{parameter: value}))


def test_a_signature_with_the_payload_inside_is_refused():
    attached = joserfc_jws.serialize_compact({"alg": "ES256"}, BODY, ECKey.import_key(EC_KEY))
    with pytest.raises(InvalidSignature, match="payload detached"):
        check(attached)


@pytest.mark.parametrize("garbage", [None, "", "abc", "a.b.c.d", "!!!..!!!", "e30..", "x" * 5000])
def test_missing_or_malformed_signatures_are_refused(garbage):
    with pytest.raises(InvalidSignature):
        check(garbage)


# ---------------------------------------------------------------- the wiring


def write_key(path, key, *, public: bool = False) -> str:
    if public:
        data = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    path.write_bytes(data)
    return json.dumps(str(path))


GATEWAY_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
async def signing_gateway(tmp_path, receiver):
    """penal and health sign JSON; penal relays to health, the gateway signs what it delivers."""
    environ = {
        "GATEWAY__JWS__SIGNING_KEY": write_key(tmp_path / "gateway-jws.pem", GATEWAY_KEY),
        "GATEWAY__MEMBERS__PENAL__SIGN_JSON": "true",
        "GATEWAY__MEMBERS__PENAL__JWS_KEYS__PENAL-1": write_key(tmp_path / "penal-1.pub.pem", EC_KEY, public=True),
        "GATEWAY__MEMBERS__HEALTH__SIGN_JSON": "true",
        "GATEWAY__MEMBERS__HEALTH__JWS_KEYS__HEALTH-1": write_key(tmp_path / "health-1.pub.pem", RSA_KEY, public=True),
    }
    gateway = build(load_config(write_config(tmp_path / "config", receiver_url=receiver.url), environ=environ))
    await gateway.start(port=0)
    yield gateway
    await gateway.stop()


def relay_headers(member: str, message_id: str, signature: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Member-Id": member, "X-Purpose": "continuity_of_care",
               "X-Message-Id": message_id}
    return headers | ({SIGNATURE_HEADER: signature} if signature else {})


async def test_a_signed_relay_is_accepted_and_the_delivery_is_signed_by_the_gateway(signing_gateway, receiver, http):
    message_id = str(uuid.uuid4())
    signature = sign(BODY, SIGNER, audience="gateway", message_id=message_id, now=time.time(), lifetime=60)
    async with http.post(signing_gateway.url + "/api/v1/relay/health/notices", data=BODY,
                         headers=relay_headers("penal", message_id, signature)) as response:
        assert response.status == 202, await response.text()
        stored_id = (await response.json())["message_id"]
    await wait_until(lambda: receiver.received)
    delivery = receiver.received[0]
    assert delivery.body == BODY  # detached: the relayed bytes are untouched
    claims = verify(delivery.headers[SIGNATURE_HEADER], delivery.body, keys={"gateway-1": ECKey.import_key(GATEWAY_KEY.public_key())},
                    audience="health", message_id=stored_id, freshness=Freshness(300), max_lifetime=300)
    assert claims.message_id == delivery.headers["X-Message-Id"]


async def test_an_unsigned_relay_from_a_signing_member_is_refused_and_stores_nothing(signing_gateway, http):
    async with http.post(signing_gateway.url + "/api/v1/relay/health/notices", data=BODY,
                         headers=relay_headers("penal", "m-unsigned", None)) as response:
        problem = await response.json()
    assert response.status == 401 and problem["type"] == "urn:reentry-gateway:problem:invalid-signature"
    assert await signing_gateway.store.list_messages(limit=10) == []


async def test_a_member_without_sign_json_relays_unsigned_as_before(signing_gateway, http):
    async with http.post(signing_gateway.url + "/api/v1/relay/health/notices", data=BODY,
                         headers=relay_headers("interior", "m-plain", None)) as response:
        assert response.status == 202


def test_sign_json_without_keys_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="sign_json needs jws_keys"):
        load_config(write_config(tmp_path, receiver_url="http://127.0.0.1:1"),
                    environ={"GATEWAY__MEMBERS__PENAL__SIGN_JSON": "true"})


def test_signing_members_without_a_gateway_key_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="jws.signing_key: members penal sign JSON"):
        load_config(write_config(tmp_path, receiver_url="http://127.0.0.1:1"),
                    environ={"GATEWAY__MEMBERS__PENAL__SIGN_JSON": "true",
                             "GATEWAY__MEMBERS__PENAL__JWS_KEYS__K": json.dumps(str(tmp_path / "k.pem"))})


def test_a_weak_rsa_key_is_refused_at_start_up(tmp_path):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    environ = {
        "GATEWAY__JWS__SIGNING_KEY": write_key(tmp_path / "gateway-jws.pem", EC_KEY),
        "GATEWAY__MEMBERS__PENAL__SIGN_JSON": "true",
        "GATEWAY__MEMBERS__PENAL__JWS_KEYS__WEAK": write_key(tmp_path / "weak.pub.pem", weak, public=True),
    }
    config = load_config(write_config(tmp_path / "config", receiver_url="http://127.0.0.1:1"), environ=environ)
    with pytest.raises(ConfigError, match="at least 2048 bits"):
        build(config)
