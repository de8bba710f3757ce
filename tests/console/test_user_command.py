"""``gateway user add|passwd|disable|list`` on a real store."""

from __future__ import annotations

import subprocess
import sys

from support import write_config


def _gateway(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


def test_accounts_are_added_listed_disabled_and_given_new_passwords(tmp_path):
    config = str(write_config(tmp_path, receiver_url="http://127.0.0.1:9", store_url=f"sqlite:///{tmp_path}/s.db"))
    added = _gateway("user", "add", "dana", "--role", "probation_officer", "--name", "Dana", "--office", "PO-7",
                     "--region", "Almaty", "--password-stdin", "--config", config, stdin="a long enough secret\n")
    assert added.returncode == 0, added.stderr
    assert _gateway("user", "passwd", "dana", "--password-stdin", "--config", config,
                    stdin="another long secret\n").returncode == 0
    assert _gateway("user", "disable", "dana", "--config", config).returncode == 0
    listing = _gateway("user", "list", "--config", config)
    assert "dana  probation_officer  Dana  office PO-7 region Almaty  DISABLED" in listing.stdout


def test_an_officer_without_an_office_or_a_short_password_is_refused_with_the_reason(tmp_path):
    config = str(write_config(tmp_path, receiver_url="http://127.0.0.1:9", store_url=f"sqlite:///{tmp_path}/s.db"))
    no_office = _gateway("user", "add", "erik", "--role", "probation_officer", "--password-stdin", "--config", config,
                         stdin="a long enough secret\n")
    assert no_office.returncode == 2 and "probation office" in no_office.stderr
    short = _gateway("user", "add", "erik", "--role", "operator", "--password-stdin", "--config", config,
                     stdin="short\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    assert _gateway("user", "list", "--config", config).stdout.strip() == "no accounts"
