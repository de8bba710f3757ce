"""The audit log's keys: the Ed25519 key that signs tree heads, and the secret behind subject keys.

Both are files named in ``[audit]`` of gateway.toml. The running gateway generates a
missing one on first start (mode 0600, in a folder of mode 0700); the ``gateway audit``
commands only read them, because a freshly generated key would make every existing tree
head look forged and every person's search come back empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.errors import ConfigError

if TYPE_CHECKING:  # settings are read, not depended on: gateway.config imports this package
    from gateway.config import AuditConfig

__all__ = ["AuditKeys", "fingerprint"]

_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """The keys one gateway (or one ``gateway audit`` command) works with.

    ``verification_keys`` holds the signing key's public half first, then the retired
    keys: a tree head is genuine when any of them verifies it.
    """

    signing_key: Ed25519PrivateKey | None
    verification_keys: tuple[Ed25519PublicKey, ...]
    subject_secret: bytes | None

    @classmethod
    def provision(cls, config: AuditConfig, base_dir: Path) -> AuditKeys:
        """The keys for a running gateway: read, or generated where missing."""
        signing_key = _read_signing_key(_create_if_missing(base_dir / config.signing_key, _new_signing_key))
        secret = _read_secret(_create_if_missing(base_dir / config.subject_key_secret, _new_secret))
        return cls(signing_key, _verification_keys(signing_key, config, base_dir), secret)

    @classmethod
    def read(cls, config: AuditConfig, base_dir: Path) -> AuditKeys:
        """The keys as they are, for inspection: a missing file stays missing (None)."""
        signing_path = base_dir / config.signing_key
        secret_path = base_dir / config.subject_key_secret
        signing_key = _read_signing_key(signing_path) if signing_path.exists() else None
        secret = _read_secret(secret_path) if secret_path.exists() else None
        return cls(signing_key, _verification_keys(signing_key, config, base_dir), secret)

    def genuine(self, message: bytes, signature: bytes) -> bool:
        """Whether one of the verification keys signed ``message``."""
        for key in self.verification_keys:
            try:
                key.verify(signature, message)
            except InvalidSignature:
                continue
            return True
        return False


def fingerprint(key: Ed25519PublicKey) -> str:
    """``sha256:`` and the hex SHA-256 of the raw public key, for pinning and display."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _verification_keys(
    signing_key: Ed25519PrivateKey | None, config: AuditConfig, base_dir: Path
) -> tuple[Ed25519PublicKey, ...]:
    current = (signing_key.public_key(),) if signing_key is not None else ()
    return current + tuple(_read_public_key(base_dir / path) for path in config.retired_public_keys)


def _new_signing_key() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_secret() -> bytes:
    return (secrets.token_hex(_SECRET_BYTES) + "\n").encode("ascii")


def _create_if_missing(path: Path, content: Callable[[], bytes]) -> Path:
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


def _private_bytes(path: Path) -> bytes:
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


def _read_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_private_bytes(path), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{path}: not an unencrypted PEM private key (PKCS#8)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: the tree-head key must be an Ed25519 key, not {type(key).__name__}")
    return key


def _read_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: a retired tree-head key must be an Ed25519 key, not {type(key).__name__}")
    return key


def _read_secret(path: Path) -> bytes:
    text = _private_bytes(path).decode("ascii", errors="replace").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < _SECRET_BYTES:
        raise ConfigError(
            f"{path}: the subject key secret must be at least {_SECRET_BYTES} random bytes written as hex "
            f"(for example: openssl rand -hex {_SECRET_BYTES})"
        )
    return secret
