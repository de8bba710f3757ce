"""Signing in and out, and choosing the language."""

from __future__ import annotations

import math

from aiohttp import web

from gateway.entrypoints.http.console import auth
from gateway.entrypoints.http.console.accounts import verify_password
from gateway.entrypoints.http.console.i18n import LANGUAGE_COOKIE, LANGUAGES
from gateway.entrypoints.http.context import SERVICES
from gateway.entrypoints.http.console.views import gettext_of, home_of, record, render, services, signed_of
from gateway.security.audit import AuditEvent, EventKind, Outcome

THROTTLE = web.AppKey("console_throttle", auth.Throttle)
_MAX_USERNAME = 64


def add_routes(app: web.Application, prefix: str) -> None:
    # The gateway's clock, injected at build: tests move it instead of waiting.
    app[THROTTLE] = auth.Throttle(app[SERVICES].clock, app[SERVICES].config.console)
    app.router.add_get(prefix, _home)
    app.router.add_get(prefix + "/", _home)
    app.router.add_get(prefix + "/login", login_form)
    app.router.add_post(prefix + "/login", login)
    app.router.add_post(prefix + "/logout", logout)
    app.router.add_get(prefix + "/language/{language}", choose_language)


def _next(request: web.Request, value: str | None) -> str | None:
    # Only a console path: never an open redirect to another site.
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


async def _home(request: web.Request) -> web.StreamResponse:
    signed = signed_of(request)
    raise web.HTTPSeeOther(home_of(signed.account.role) if signed else "/console/login")


def _login_page(request: web.Request, *, error: str | None = None, username: str = "", status: int = 200,
                next_path: str | None = None) -> web.Response:
    token = auth.new_secret()
    response = render(request, "login.html", {"error": error, "username": username, "login_csrf": token,
                                              "next": next_path or ""}, status=status)
    auth.set_cookie(response, request, auth.LOGIN_CSRF_COOKIE, token)
    return response


async def login_form(request: web.Request) -> web.Response:
    signed = signed_of(request)
    if signed is not None:
        raise web.HTTPSeeOther(home_of(signed.account.role))
    return _login_page(request, next_path=_next(request, request.query.get("next")))


async def login(request: web.Request) -> web.Response:
    gateway = services(request)
    _ = gettext_of(request)
    form = await request.post()
    cookie_token = request.cookies.get(auth.LOGIN_CSRF_COOKIE, "")
    if not cookie_token or not auth.tokens_match(cookie_token, form.get("csrf")):
        raise web.HTTPForbidden()
    username = str(form.get("username", "")).strip().lower()[:_MAX_USERNAME]
    password = str(form.get("password", ""))
    next_path = _next(request, str(form.get("next", "")))
    address = request.remote or "unknown"
    throttle = request.app[THROTTLE]
    wait = throttle.wait_seconds(username, address)
    if wait > 0:
        await _record_sign_in(request, username, Outcome.REFUSED, "throttled: too many failed sign-ins")
        minutes = max(1, math.ceil(wait / 60))
        message = _("Too many failed sign-ins. Sign-in is blocked for this account or address; "
                    "try again in %(minutes)d min.") % {"minutes": minutes}
        return _login_page(request, error=message, username=username, status=429, next_path=next_path)
    account = await verify_password(gateway.store, username, password) if username and password else None
    if account is None:
        throttle.failed(username, address)
        await _record_sign_in(request, username, Outcome.REFUSED, "wrong username or password, or disabled")
        return _login_page(request, error=_("Wrong username or password."), username=username, status=401,
                           next_path=next_path)
    throttle.succeeded(username)
    secret, _session = await auth.start_session(gateway.store, account, gateway.clock())
    await _record_sign_in(request, username, Outcome.ACCEPTED, None, role=account.role)
    response = web.HTTPSeeOther(next_path or home_of(account.role))
    auth.set_cookie(response, request, auth.SESSION_COOKIE, secret)
    response.del_cookie(auth.LOGIN_CSRF_COOKIE, path=auth.COOKIE_PATH)
    raise response


async def _record_sign_in(request: web.Request, username: str, outcome: Outcome, reason: str | None, *,
                          role: str | None = None, service: str = "console/login") -> None:
    await record(request, [AuditEvent(
        kind=EventKind.SIGN_IN, outcome=outcome, member=f"console:{username or '-'}", member_role=role,
        counterpart=services(request).config.server.member_id, service=service, reason=reason,
        correlation_id=request.headers.get("X-Correlation-Id"),
    )])


async def logout(request: web.Request) -> web.Response:
    signed = signed_of(request)
    if signed is not None:
        form = await request.post()
        if not auth.tokens_match(signed.session.csrf_token, form.get("csrf")):
            raise web.HTTPForbidden()
        await services(request).store.end_console_sessions(session_id=signed.session.id)
        await _record_sign_in(request, signed.account.username, Outcome.ACCEPTED, None, role=signed.account.role,
                              service="console/logout")
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(auth.SESSION_COOKIE, path=auth.COOKIE_PATH)
    raise response


async def choose_language(request: web.Request) -> web.Response:
    language = request.match_info["language"]
    if language not in LANGUAGES:
        raise web.HTTPNotFound()
    response = web.HTTPSeeOther(_next(request, request.query.get("next")) or "/console/")
    response.set_cookie(LANGUAGE_COOKIE, language, path="/console/", samesite="Strict", secure=request.secure,
                        max_age=365 * 86400)
    raise response
