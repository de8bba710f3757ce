"""Key and secret files the gateway keeps beside its configuration: generated on first start
readable by their owner only, and refused when other users may read or change them.

The audit log's keys (``gateway.security.audit_keys``) and the indicators' pseudonym secret
(``gateway.security.pseudonyms``) are such files; each names its own secret in its messages.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from gateway.errors import ConfigError

__all__ = ["SECRET_BYTES", "create_if_missing", "new_secret", "private_bytes", "read_secret"]

SECRET_BYTES = 32


def new_secret() -> bytes:
    """A fresh secret as a secret file holds it: hex of ``SECRET_BYTES`` random bytes and a newline."""
    return (secrets.token_hex(SECRET_BYTES) + "\n").encode("ascii")


def create_if_missing(path: Path, content: Callable[[], bytes]) -> Path:
    """Write ``content()`` to ``path`` unless it exists; readable by its owner only."""
    if path.exists():
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        # O_EXCL: when two instances start at once, one creates the file and both use it.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "wb") as file:
        file.write(content())
    return path


def private_bytes(path: Path) -> bytes:
    """The file's content; ``ConfigError`` if it cannot be read or others may read or change it."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: other users may read or change this key (mode {stat.S_IMODE(mode):04o}); "
            f"restrict it with: chmod 600 {path}"
        )
    return data


def read_secret(path: Path, name: str) -> bytes:
    """The secret in ``path``, at least ``SECRET_BYTES`` written as hex; ``name`` (say, "the
    subject key secret") says which secret in the error message."""
    text = private_bytes(path).decode("ascii", errors="replace").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < SECRET_BYTES:
        raise ConfigError(
            f"{path}: {name} must be at least {SECRET_BYTES} random bytes written as hex "
            f"(for example: openssl rand -hex {SECRET_BYTES})"
        )
    return secret
