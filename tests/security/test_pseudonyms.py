"""Pseudonyms: stable per IIN, secret-dependent, generated privately, never a plain hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import stat

import pytest

from gateway.domain import Sex, make_iin
from gateway.errors import ConfigError
from gateway.security.pseudonyms import Pseudonyms

IIN = make_iin(dt.date(1985, 7, 9), Sex.FEMALE, 20)


def test_the_same_iin_gives_the_same_pseudonym_under_one_secret_and_another_under_another(tmp_path):
    first = Pseudonyms.provision(tmp_path / "a.key")
    assert first.person(IIN) == Pseudonyms.provision(tmp_path / "a.key").person(IIN)
    assert first.person(IIN) != Pseudonyms.provision(tmp_path / "b.key").person(IIN)
    assert first.person(IIN) != hashlib.sha256(IIN.encode()).hexdigest()
    assert first.referral(IIN) != first.person(IIN)


def test_a_missing_secret_is_generated_readable_by_its_owner_only(tmp_path):
    Pseudonyms.provision(tmp_path / "keys" / "p.key")
    assert stat.S_IMODE((tmp_path / "keys" / "p.key").stat().st_mode) == 0o600


def test_a_short_secret_is_refused_naming_the_pseudonym_secret(tmp_path):
    path = tmp_path / "p.key"
    path.write_text("abcd\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="the pseudonym secret must be at least 32"):
        Pseudonyms.provision(path)


def test_the_configuration_refuses_an_audit_key_file_as_the_pseudonym_secret():
    from pydantic import ValidationError

    from gateway.config import GatewayConfig

    with pytest.raises(ValidationError, match="must be a file of its own"):
        GatewayConfig.model_validate({"indicators": {"pseudonym_key_secret": "var/keys/audit-subject.key"}})
