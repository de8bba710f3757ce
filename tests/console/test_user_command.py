"""``gateway user add|passwd|disable|list`` on a real store: the command's own entry point
(``gateway.entrypoints.cli.main``), called in this process to spare an interpreter start per call."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass

from gateway.entrypoints import cli
from support import write_config


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _gateway(*args: str, stdin: str = "") -> Ran:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exit_:  # argparse and the commands' own refusals
                code = exit_.code if isinstance(exit_.code, int) else 2
    finally:
        sys.stdin = saved
    return Ran(code, out.getvalue(), err.getvalue())


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
