"""Pseudonyms for the indicator events: HMAC-SHA-256 of the IIN under a secret of their own.

The indicators need to know that a re-offence and a release concern the same person, and
nothing about who that person is. A keyed hash gives exactly that: the same IIN always gives
the same pseudonym, and without the secret nobody can compute the pseudonym of an IIN they
know — an unkeyed hash of a 12-digit number with a checksum would be reversed by trying them
all in minutes. The secret is not the audit log's subject key (``[audit] subject_key_secret``),
so the indicator tables cannot be joined to the audit log or the cases by anyone who holds one
secret only. Referral ids are hashed under the same secret, with a label, so a
referral's row does not carry the case id it was made in.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from gateway.domain.iin import validate_iin
from gateway.security.secret_files import SECRET_BYTES, create_if_missing, new_secret, read_secret

__all__ = ["Pseudonyms"]


class Pseudonyms:
    """Keyed hashes of IINs and referral ids under the indicators' secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"the pseudonym secret must be at least {SECRET_BYTES} bytes")
        self._secret = secret

    @classmethod
    def provision(cls, path: Path) -> Pseudonyms:
        """The secret at ``path``, generated there (mode 0600) when missing."""
        return cls(read_secret(create_if_missing(path, new_secret), "the pseudonym secret"))

    def person(self, iin: str) -> str:
        """The person's pseudonym. Raises ``InvalidIIN`` for a number that is not an IIN."""
        return self._mac(str(validate_iin(iin)).encode("ascii"))

    def referral(self, referral_id: str) -> str:
        # The label keeps a referral id from ever hashing to a person's pseudonym.
        return self._mac(b"referral:" + referral_id.encode("utf-8"))

    def _mac(self, message: bytes) -> str:
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
