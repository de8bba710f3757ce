"""The console's routes: the middleware every /console/ request passes, and the pages."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.entrypoints.http.console import auth, pages, session_pages
from gateway.entrypoints.http.console.i18n import LANGUAGE_COOKIE, choose
from gateway.entrypoints.http.console.views import (
    CONTENT_SECURITY_POLICY,
    JINJA,
    LANGUAGE,
    SIGNED,
    render,
    services,
)
from gateway.errors import GatewayError
from gateway.logs import get_logger
from gateway.store import StoreError

PREFIX = "/console"
_HERE = Path(__file__).resolve().parent
log = get_logger("gateway.console")


def add_routes(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(_HERE / "templates"), app_key=JINJA,
                         autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.ChainableUndefined)
    app.middlewares.append(_console)
    app.router.add_static(PREFIX + "/static/", _HERE / "static", append_version=False)
    session_pages.add_routes(app, PREFIX)
    pages.add_routes(app, PREFIX)


@web.middleware
async def _console(request: web.Request, handler):
    if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
        return await handler(request)
    gateway = services(request)
    request[LANGUAGE] = choose(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("Accept-Language"))
    try:
        if not request.path.startswith(PREFIX + "/static/"):
            request[SIGNED] = await auth.current(request, gateway.store, gateway.clock(), gateway.config.console)
            if request.method not in ("GET", "HEAD") and not auth.same_origin(request):
                raise web.HTTPForbidden(reason="cross-origin")
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            response = exc
        else:
            response = _error_page(request, exc.status, exc.reason)
    except GatewayError as error:
        response = _error_page(request, error.status, error.detail)
    except StoreError as exc:
        log.error("store unavailable", route=request.path, error=str(exc))
        response = _error_page(request, 503, None)
    except Exception:
        log.exception("unexpected console error", route=request.path)
        response = _error_page(request, 500, None)
    _secure(response, request)
    if isinstance(response, web.HTTPException):
        raise response
    return response


_ERROR_TITLES = {403: "This request was refused", 404: "There is nothing here", 405: "Not allowed"}


def _error_page(request: web.Request, status: int, detail: str | None) -> web.Response:
    title = _ERROR_TITLES.get(status, "Something went wrong")
    if status == 403:
        detail = "The form was not sent from this console, or it has expired: reload the page and try again."
    elif status == 404:
        detail = "No page here, or none you may see."
    elif status >= 500:
        log.error("console page failed", route=request.path, status=status)
        detail = "The gateway could not answer; try again later."
    return render(request, "error.html", {"status": status, "title": title, "detail": detail}, status=status)


def _secure(response: web.StreamResponse, request: web.Request) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if not request.path.startswith(PREFIX + "/static/"):
        headers["Cache-Control"] = "no-store"
    if request.secure:
        headers["Strict-Transport-Security"] = "max-age=31536000"
