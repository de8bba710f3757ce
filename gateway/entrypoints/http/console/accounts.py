"""People who use the console: local accounts with argon2id password hashes, and their roles.

Members are agency systems identified by mTLS; people are not members. Each role has the
purpose under which what it is shown is recorded in the audit log (``views``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.store import ConflictError, ConsoleAccount, ConsoleStore

__all__ = ["ROLES", "AccountError", "Role", "add_account", "change_password", "disable_account", "hasher",
           "verify_password"]


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    purpose: str
    """Why this role sees personal data: the purpose its views are recorded under."""


ROLES: dict[str, Role] = {role.name: role for role in (
    Role("operator", "operations"),
    Role("probation_officer", "probation_supervision"),
    Role("oversight", "oversight"),
    Role("auditor", "audit_verification"),
)}

_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
_MIN_PASSWORD = 12

# argon2-cffi's defaults are RFC 9106's second recommended option (argon2id, 64 MiB, t=3).
hasher = PasswordHasher()
# A hash to verify against when the account does not exist, so the answer takes as long.
_DUMMY_HASH = hasher.hash("not a password of anyone's")


class AccountError(ValueError):
    """An account cannot be created or changed as asked; the message says why."""


def _check_password(password: str) -> None:
    if len(password) < _MIN_PASSWORD:
        raise AccountError(f"the password must be at least {_MIN_PASSWORD} characters long")


async def add_account(store: ConsoleStore, *, username: str, role: str, password: str, display_name: str,
                      office: str | None, region: str | None, now: float) -> ConsoleAccount:
    if not _USERNAME.fullmatch(username):
        raise AccountError("a username is 2-64 lower-case letters, digits, '.', '_' or '-', starting with a letter")
    if role not in ROLES:
        raise AccountError(f"role must be one of: {', '.join(ROLES)}")
    if role == "probation_officer" and not (office and region):
        raise AccountError("a probation officer is bound to a probation office and its region: give --office and --region")
    if role != "probation_officer" and (office or region):
        raise AccountError("only a probation officer has an office and a region")
    _check_password(password)
    account = ConsoleAccount(username=username, role=role, password_hash=hasher.hash(password),
                             display_name=display_name or username, office=office, region=region, created_at=now)
    try:
        await store.add_console_account(account)
    except ConflictError:
        raise AccountError(f"an account named {username!r} already exists") from None
    return account


async def change_password(store: ConsoleStore, username: str, password: str) -> None:
    """Set a new password; the account's sessions end, so an old one cannot go on."""
    _check_password(password)
    if not await store.update_console_account(username, password_hash=hasher.hash(password)):
        raise AccountError(f"no account named {username!r}")
    await store.end_console_sessions(username=username)


async def disable_account(store: ConsoleStore, username: str, disabled: bool = True) -> None:
    if not await store.update_console_account(username, disabled=disabled):
        raise AccountError(f"no account named {username!r}")
    if disabled:
        await store.end_console_sessions(username=username)


async def verify_password(store: ConsoleStore, username: str, password: str) -> ConsoleAccount | None:
    """The account if ``password`` is its password and it is enabled; None otherwise."""
    account = await store.console_account(username)
    try:
        hasher.verify(account.password_hash if account else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if account is None or account.disabled:
        return None
    if hasher.check_needs_rehash(account.password_hash):
        await store.update_console_account(username, password_hash=hasher.hash(password))
        account = replace(account, password_hash="")
    return account
