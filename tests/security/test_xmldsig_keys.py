"""Signing keys and pinned certificates as configuration: files, modes, windows, precise errors."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from lxml import etree

from gateway.entrypoints.http.server import build
from gateway.config import SigningConfig, load_config
from gateway.errors import ConfigError
from gateway.security.keys import DevelopmentKeys, gateway_signer, member_verifier
from gateway.soap.envelope import parse_envelope
from soap.messages import relay_request
from soap.signing import penal, serialise, write_pins
from support import write_config

NOW = dt.datetime.now(dt.UTC)


def configured(directory, **environ):
    return load_config(write_config(directory, receiver_url="http://127.0.0.1:1"), environ=environ)


def test_the_gateway_key_is_generated_once_readable_by_its_owner_only(tmp_path):
    first = gateway_signer(SigningConfig(), tmp_path, member_id="gateway")
    key = tmp_path / "var/keys/gateway-signing.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    again = gateway_signer(SigningConfig(), tmp_path, member_id="gateway")
    assert again.certificate == first.certificate
    assert first.certificate.subject.rfc4514_string().endswith("CN=gateway")


def test_an_ecdsa_gateway_key_is_generated_for_an_ecdsa_algorithm(tmp_path):
    signer = gateway_signer(SigningConfig(algorithm="ecdsa-sha256"), tmp_path, member_id="gateway")
    assert signer.algorithm == "ecdsa-sha256"


def test_a_key_of_the_wrong_type_for_the_algorithm_is_a_configuration_error(tmp_path):
    gateway_signer(SigningConfig(), tmp_path, member_id="gateway")
    with pytest.raises(ConfigError, match="signing: .*ecdsa-sha256 needs an ECDSA key"):
        gateway_signer(SigningConfig(algorithm="ecdsa-sha256"), tmp_path, member_id="gateway")


def test_a_key_others_may_read_is_refused(tmp_path):
    gateway_signer(SigningConfig(), tmp_path, member_id="gateway")
    (tmp_path / "var/keys/gateway-signing.pem").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        gateway_signer(SigningConfig(), tmp_path, member_id="gateway")


def test_a_certificate_whose_key_is_missing_is_not_silently_replaced(tmp_path):
    gateway_signer(SigningConfig(), tmp_path, member_id="gateway")
    (tmp_path / "var/keys/gateway-signing.pem").unlink()
    with pytest.raises(ConfigError, match="missing, but its certificate .* exists"):
        gateway_signer(SigningConfig(), tmp_path, member_id="gateway")


def test_certificates_are_bare_paths_or_tables_with_a_window(tmp_path):
    write_pins(tmp_path / "gw", [penal(), penal()])
    config = configured(
        tmp_path / "gw",
        GATEWAY__MEMBERS__PENAL__CERTIFICATES='["keys/penal-0.pem", '
        '{ path = "keys/penal-1.pem", not_after = 2030-01-01T00:00:00Z }]',
    )
    first, second = member_verifier("penal", config.members["penal"], config.base_dir).pinned
    assert first.not_after == penal().certificate.not_valid_after_utc
    assert second.not_after == min(penal().certificate.not_valid_after_utc, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))


def test_requiring_signatures_without_a_certificate_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="members.penal: .*require_signature needs at least one certificate"):
        configured(tmp_path / "gw", GATEWAY__MEMBERS__PENAL__REQUIRE_SIGNATURE="true")


def test_a_window_that_ends_before_it_starts_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="not_before must be earlier than not_after"):
        configured(
            tmp_path / "gw",
            GATEWAY__MEMBERS__PENAL__CERTIFICATES='[{ path = "a.pem", not_before = 2027-01-01T00:00:00Z, '
            "not_after = 2026-01-01T00:00:00Z }]",
        )


def test_a_missing_pinned_certificate_stops_the_gateway_naming_the_key_and_the_file(tmp_path):
    config = configured(tmp_path / "gw", GATEWAY__MEMBERS__PENAL__CERTIFICATES='["keys/absent.pem"]')
    with pytest.raises(ConfigError, match=r"members.penal.certificates\[0\]: .*keys/absent.pem: no such file"):
        build(config)


def test_a_pinned_file_that_is_not_a_certificate_is_a_configuration_error(tmp_path):
    (tmp_path / "gw/keys").mkdir(parents=True)
    (tmp_path / "gw/keys/penal.pem").write_text("not a certificate")
    config = configured(tmp_path / "gw", GATEWAY__MEMBERS__PENAL__CERTIFICATES='["keys/penal.pem"]')
    with pytest.raises(ConfigError, match="not a PEM X.509 certificate"):
        build(config)


def test_development_keys_sign_as_the_pinned_members_and_trust_the_gateway(tmp_path):
    config = configured(tmp_path / "gw", GATEWAY__MEMBERS__PENAL__CERTIFICATES='["keys/members/penal.pem"]')
    keys = DevelopmentKeys.provision(config, ["penal", "interior"])
    assert set(keys.signers) == {"penal"}  # interior pins nothing, so its simulator stays unsigned
    assert stat.S_IMODE((config.base_dir / "keys/members/penal.key.pem").stat().st_mode) == 0o600
    envelope = parse_envelope(serialise(keys.signers["penal"].sign(etree.fromstring(relay_request()))))
    body = member_verifier("penal", config.members["penal"], config.base_dir).verified_body(envelope.document, at=NOW)
    assert body is not None
    gateway = gateway_signer(config.signing, config.base_dir, member_id="gateway")
    assert keys.gateway.pinned[0].certificate == gateway.certificate
