"""Who is calling: the member a request comes from, in the configured identity mode.

``header`` (loopback development): ``X-Member-Id`` names the caller and nothing proves it.

``mtls``: the listener has already verified the client certificate during the handshake (CA,
validity, CRL), so the member is the one the certificate names. ``X-Member-Id`` is optional
then, but when sent it must name the same member: a client that believes it acts for someone
else is misconfigured, and silently ignoring the header would hide that. A certificate the CA
issued to an id that is not (or no longer) a member of the exchange is refused with 401.

Every entry point asks ``caller_of`` (below), which reads what ``identify``
established here, so the JSON API and the SOAP endpoints identify callers the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from aiohttp import web

from gateway.config import MemberConfig
from gateway.errors import Forbidden, Unauthenticated
from gateway.web.headers import check_headers
from gateway.security.tls import member_of_certificate

__all__ = ["MEMBER_HEADER", "Caller", "caller_identification", "caller_of", "identified", "member_with_role"]

MEMBER_HEADER = "X-Member-Id"


@dataclass(frozen=True, slots=True)
class Caller:
    """The member a request says it comes from, and whether a verified certificate says so."""

    member: str | None
    certified: bool = False


_CALLER = web.RequestKey("caller", Caller)


def identified(request: web.Request) -> Caller:
    """The caller ``caller_identification`` established; a bare header claim outside it."""
    caller = request.get(_CALLER)
    return caller if caller is not None else Caller(request.headers.get(MEMBER_HEADER) or None)


def caller_identification(mode: str, members: Collection[str]):
    """The middleware that establishes each request's caller in ``mode`` (``header`` or ``mtls``)."""

    @web.middleware
    async def identify(request: web.Request, handler):
        claimed = request.headers.get(MEMBER_HEADER) or None
        if mode != "mtls":
            request[_CALLER] = Caller(claimed)
            check_headers(request)
            return await handler(request)
        transport = request.transport
        member = member_of_certificate(transport.get_extra_info("peercert") if transport is not None else None)
        request[_CALLER] = Caller(member, certified=member is not None)
        if member is None:
            raise Unauthenticated("your client certificate names no member: it needs the SAN URI "
                                  "urn:reentry-gateway:member:<your id> (or your id as its common name)")
        if member not in members:
            raise Unauthenticated(f"your client certificate names {member[:64]!r}, which is not a member of this "
                                  "exchange; ask the exchange operator to add it to members.toml")
        # Once the caller is known, so that a refusal is audited against it.
        check_headers(request)
        if claimed is not None and claimed != member:
            raise Forbidden(f"{MEMBER_HEADER} names another member than your client certificate, which "
                            f"identifies you as {member!r}: send your own id, or leave the header out")
        return await handler(request)

    return identify


def caller_of(request: web.Request) -> str | None:
    """The calling member: named by the verified client certificate in ``mtls`` identity mode,
    by X-Member-Id in ``header`` mode (loopback development)."""
    return identified(request).member


def member_with_role(request: web.Request, members: Mapping[str, MemberConfig], role: str) -> str:
    """The calling member, who must hold ``role`` in its ``roles`` (access is granted by roles
    only: gateway.config refuses a bare ``role = "oversight"``)."""
    caller = caller_of(request)
    member = members.get(caller) if caller else None
    if member is None:
        raise Unauthenticated(f"identify yourself with X-Member-Id as a member with the {role} role")
    if role not in member.roles:
        raise Forbidden(f"member {caller!r} does not have the {role} role")
    return caller
