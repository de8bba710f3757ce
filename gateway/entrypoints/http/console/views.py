"""What every console page shares: rendering in the person's language, the security headers,
who is signed in, and the audit entries of what a person sees and does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.bootstrap import Services
from gateway.entrypoints.http.console.accounts import ROLES
from gateway.entrypoints.http.console.auth import Signed
from gateway.entrypoints.http.console.i18n import LANGUAGES, language_name, translations
from gateway.entrypoints.http.context import services_of
from gateway.security.audit import AuditEvent, EventKind, Outcome

JINJA = web.AppKey("console_jinja", jinja2.Environment)
SIGNED = web.RequestKey("console_signed", Signed)
LANGUAGE = web.RequestKey("console_language", str)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# A pre-trial report document carries its own print styles and no script at all.
DOCUMENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"


@dataclass(frozen=True, slots=True)
class Link:
    path: str
    label: str


# What each role's menu offers, in order; the first is where it lands after signing in.
_NAVIGATION: dict[str, tuple[Link, ...]] = {
    "operator": (Link("/console/dashboard", "Dashboard"), Link("/console/messages", "Messages"),
                 Link("/console/dead-letters", "Dead letters"), Link("/console/release-cases", "Release cases"),
                 Link("/console/indicators", "Indicators")),
    "probation_officer": (Link("/console/pretrial", "Pre-trial reports"),
                          Link("/console/release-cases", "Release cases"), Link("/console/indicators", "Indicators")),
    "oversight": (Link("/console/oversight", "Subject report"), Link("/console/audit", "Audit log"),
                  Link("/console/indicators", "Indicators")),
    "auditor": (Link("/console/audit", "Audit log"), Link("/console/indicators", "Indicators")),
}


def home_of(role: str) -> str:
    return _NAVIGATION[role][0].path


def services(request: web.Request) -> Services:
    return services_of(request)


def signed_of(request: web.Request) -> Signed | None:
    return request.get(SIGNED)


def require(request: web.Request, *roles: str) -> Signed:
    """The signed-in person, who must hold one of ``roles``; otherwise to the sign-in page,
    or 404 for a page the role has no business knowing of."""
    signed = signed_of(request)
    if signed is None:
        raise web.HTTPSeeOther(f"/console/login?next={_quote(request.path_qs)}")
    if signed.account.role not in roles:
        raise web.HTTPNotFound()
    return signed


def _quote(text: str) -> str:
    return quote(text, safe="/")


def gettext_of(request: web.Request):
    return translations(request.get(LANGUAGE, "en")).gettext


def render(request: web.Request, template: str, context: dict | None = None, *, status: int = 200) -> web.Response:
    language = request.get(LANGUAGE, "en")
    catalogue = translations(language)
    signed = signed_of(request)
    base = {
        "_": catalogue.gettext,
        "ngettext": catalogue.ngettext,
        "lang": language,
        "languages": [(code, language_name(code)) for code in LANGUAGES],
        "signed": signed,
        "csrf": signed.session.csrf_token if signed else "",
        "navigation": _NAVIGATION[signed.account.role] if signed else (),
        "here": request.path,
        "here_qs": request.path_qs,
    }
    text = aiohttp_jinja2.render_string(template, request, base | (context or {}), app_key=JINJA)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


async def record(request: web.Request, events: Iterable[AuditEvent]) -> None:
    await services(request).audit.record(list(events))


def _event(request: web.Request, signed: Signed, **fields) -> AuditEvent:
    gateway = services(request)
    return AuditEvent(member=signed.actor, member_role=signed.account.role,
                      counterpart=gateway.config.server.member_id,
                      correlation_id=request.headers.get("X-Correlation-Id"), **fields)


async def record_view(request: web.Request, signed: Signed, *, subject: str | None, fields: Sequence[str],
                      document_type: str, message_id: str | None = None, reason: str | None = None) -> None:
    """A person saw personal data: recorded like any disclosure, under the account and its role's purpose."""
    await record(request, [_event(
        request, signed, kind=EventKind.DISCLOSURE, outcome=Outcome.DISCLOSED, subject=subject,
        purpose=ROLES[signed.account.role].purpose, document_type=document_type, service="console",
        fields=tuple(fields), message_id=message_id, reason=reason,
    )])


async def record_views(request: web.Request, signed: Signed, views: Iterable[tuple[str, Sequence[str]]], *,
                       document_type: str) -> None:
    """One disclosure entry per person shown on a list page."""
    await record(request, [_event(
        request, signed, kind=EventKind.DISCLOSURE, outcome=Outcome.DISCLOSED, subject=subject,
        purpose=ROLES[signed.account.role].purpose, document_type=document_type, service="console",
        fields=tuple(fields),
    ) for subject, fields in views])


async def record_action(request: web.Request, signed: Signed, *, action: str, message_ids: Sequence[str] = (),
                        reason: str | None = None) -> None:
    ids = list(message_ids) or [None]
    await record(request, [_event(
        request, signed, kind=EventKind.ACTION, outcome=Outcome.ACCEPTED, service=f"console/{action}",
        purpose=ROLES[signed.account.role].purpose, message_id=message_id, reason=reason,
    ) for message_id in ids])
