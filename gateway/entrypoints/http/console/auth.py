"""Signing in to the console: server-side sessions, CSRF tokens, the Origin check, throttling.

- The session cookie carries a random secret; the store keeps only its SHA-256, so a copy
  of the store does not let anyone in. Sessions end after ``console.idle_seconds`` without a
  request and ``console.absolute_seconds`` after signing in, by the gateway's injected clock,
  and at sign-out. The cookie is ``HttpOnly``, ``SameSite=Strict`` and, on TLS, ``Secure``.
- Every state-changing form carries the session's CSRF token, and every POST must come
  from the console's own origin (OWASP CSRF cheat sheet: synchroniser token and
  Origin verification). Before sign-in, the login form's token is a double-submit cookie.
- Failed sign-ins are counted per account and per address over
  ``console.throttle_window_seconds``; past ``console.throttle_per_account`` (or ``_per_address``), sign-in is refused (even with the right password) until the window
  has passed, and the person is told when to try again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.config import ConsoleConfig
from gateway.store import ConsoleAccount, ConsoleSession, ConsoleStore

__all__ = ["LOGIN_CSRF_COOKIE", "SESSION_COOKIE", "Signed", "Throttle", "same_origin", "session_id_of"]

SESSION_COOKIE = "console_session"
LOGIN_CSRF_COOKIE = "console_login_csrf"
COOKIE_PATH = "/console/"


@dataclass(frozen=True, slots=True)
class Signed:
    """The signed-in person of a request: the account and its session."""

    account: ConsoleAccount
    session: ConsoleSession

    @property
    def actor(self) -> str:
        """How the audit log names the person: never a member id."""
        return f"console:{self.account.username}"


def session_id_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii", "replace")).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, path=COOKIE_PATH, httponly=True, samesite="Strict", secure=request.secure,
                        max_age=max_age)


def same_origin(request: web.Request) -> bool:
    """Whether a POST comes from a page of this console (Origin, or Referer when there is none)."""
    own = f"{request.scheme}://{request.host}"
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin == own
    referer = request.headers.get("Referer", "")
    return referer == own or referer.startswith(own + "/")


async def start_session(store: ConsoleStore, account: ConsoleAccount, now: float) -> tuple[str, ConsoleSession]:
    secret = new_secret()
    session = ConsoleSession(id=session_id_of(secret), username=account.username, csrf_token=new_secret(),
                             created_at=now, last_seen_at=now)
    await store.add_console_session(session)
    return secret, session


async def current(request: web.Request, store: ConsoleStore, now: float, limits: ConsoleConfig) -> Signed | None:
    """The live session of the request's cookie, touched; None when there is none or it expired."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    session = await store.console_session(session_id_of(secret))
    if session is None:
        return None
    if now - session.last_seen_at > limits.idle_seconds or now - session.created_at > limits.absolute_seconds:
        await store.end_console_sessions(session_id=session.id)
        return None
    account = await store.console_account(session.username)
    if account is None or account.disabled:
        await store.end_console_sessions(session_id=session.id)
        return None
    await store.touch_console_session(session.id, now)
    return Signed(account, session)


class Throttle:
    """Failed sign-ins per account and per address in a sliding window, by the injected clock.

    Kept in the process: with several gateway instances each counts its own, which bounds
    guessing at the limit times the number of instances."""

    def __init__(self, clock: Callable[[], float], limits: ConsoleConfig) -> None:
        self._clock = clock
        self._window = limits.throttle_window_seconds
        self._limits = {"account": limits.throttle_per_account, "address": limits.throttle_per_address}
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        cutoff = self._clock() - self._window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    def wait_seconds(self, username: str, address: str) -> float:
        """How long sign-in stays refused for this account or address; 0 when it is allowed."""
        waits = []
        for key in (("account", username), ("address", address)):
            failures, limit = self._recent(key), self._limits[key[0]]
            if len(failures) >= limit:
                waits.append(failures[-limit] + self._window - self._clock())
        return max(waits, default=0.0)

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        self._recent(("account", username)).append(now)
        self._recent(("address", address)).append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(("account", username), None)
