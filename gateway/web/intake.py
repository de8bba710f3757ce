"""What every request meets around its handler: a deadline for its body, a 400 for a body
that cannot be decoded, and an audit entry when an identified caller is refused.

**Headers** are checked once, as the caller is identified (``gateway.web.headers``).

**Body deadline.** aiohttp waits for a body as long as the client keeps the connection open,
so a client that sends its headers and then trickles the body a byte at a time holds a handler
for ever (slowloris). When the body has not fully arrived ``receive_timeout_seconds`` after the
headers, the body stream fails with ``BodyTimeout``: the handler's read raises it, the answer is
408 (a problem, or a SOAP Client fault), and the connection is closed.

**Undecodable bodies.** ``gateway.web.body.read_body`` inflates ``Content-Encoding: gzip``/
``deflate`` bodies in bounded steps (the body limit counts inflated bytes, so a decompression
bomb is a 413) and refuses any other encoding with a 415. A body that is not what its encoding
claims (corrupt gzip, broken chunked framing) is the client's fault: ``UnreadableBody`` (400),
whether the inflater or aiohttp's stream (``RequestPayloadError``) finds it.

**Refusals are audited** when the caller is identified: in ``mtls`` mode every request (the
certificate was verified, even one naming an unknown member), in ``header`` mode a request
whose ``X-Member-Id`` names a configured member. Every 4xx answer to such a caller becomes an
``inbound``/``refused`` entry naming the member, the service and the problem type. Unidentified
requests are only logged: nobody can be held to them, and writing whatever an anonymous client
claims into a permanent, signed log would let anyone fill it. Handshakes refused by TLS never
become requests, so they are not audited either.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping

from aiohttp import streams, web
from aiohttp.web_protocol import RequestPayloadError

from gateway.config import PURPOSES, MemberConfig
from gateway.errors import GatewayError
from gateway.logs import get_logger
from gateway.security.audit import AuditEvent, AuditLog, EventKind, Outcome
from gateway.web.body import UnreadableBody
from gateway.web.headers import well_formed
from gateway.web.identity import identified
from gateway.store import StoreError

__all__ = ["CLIENT_CLOSED", "BodyTimeout", "UnreadableBody", "body_deadline", "refusal_audit"]

CLIENT_CLOSED = 499
FAULT_CODE = web.ResponseKey("soap_fault_code", str)
"""Set on an answer carrying a SOAP fault, which is HTTP 500 whatever its cause: the fault code,
"Client" (the sender's mistake: a refusal, audited and counted as such) or "Server"."""
"""The status noted for a request whose caller went away before its answer (nginx's 499):
nobody receives it, it is neither refused nor failed, so it is not audited."""

log = get_logger("gateway.intake")

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_PROBLEM_PREFIX = "urn:reentry-gateway:problem:"
# Our own fault's errorCode (never a document from outside: no XML parser needed).
_FAULT_CODE = re.compile(rb"<(?:[A-Za-z0-9_]+:)?errorCode>([A-Za-z0-9._-]{1,64})</")


class BodyTimeout(GatewayError, TimeoutError):
    # Also a TimeoutError: once the answer is sent, aiohttp drops the rest of such a body
    # and closes the connection instead of reading on.
    status, slug, title = 408, "body-timeout", "The request body did not arrive in time"


def body_deadline(seconds: float):
    """The middleware failing a request body that has not fully arrived within ``seconds``,
    and turning a body aiohttp cannot decode into ``UnreadableBody``."""

    @web.middleware
    async def deadline(request: web.Request, handler):
        content = request.content
        # No timer when there is nothing left to wait for: no body, or all of it is here.
        timer = None if content.is_eof() else asyncio.get_running_loop().call_later(seconds, _expire, content, seconds)
        try:
            return await handler(request)
        except RequestPayloadError as exc:
            raise UnreadableBody(f"the body cannot be decoded ({str(exc).splitlines()[-1].strip()[:120]}): "
                                 "check its Content-Encoding and Transfer-Encoding") from None
        finally:
            if timer is not None:
                timer.cancel()

    return deadline


def _expire(content: streams.StreamReader, seconds: float) -> None:
    if not content.is_eof():
        content.set_exception(BodyTimeout(
            f"the request body did not arrive within {seconds:g} s of the headers; send it without pauses"
        ))


def refusal_audit(audit: AuditLog, members: Mapping[str, MemberConfig], gateway_id: str):
    """The middleware recording every refusal of an identified caller in the audit log."""

    @web.middleware
    async def record_refusals(request: web.Request, handler):
        response = await handler(request)
        # A throttled caller is counted (gateway_rate_limited_total), not written to a permanent
        # log once per request: a flood would fill it.
        sender_fault = response.get(FAULT_CODE) == "Client"
        if not (400 <= response.status < 500 or sender_fault) or response.status in (429, CLIENT_CLOSED):
            return response
        caller = identified(request)
        if caller.member is None or not (caller.certified or caller.member in members):
            return response
        member = members.get(caller.member)
        # What the caller sent goes into a permanent log only when it is well-formed.
        message_id, correlation_id, purpose = (
            request.headers.get(name, "") for name in ("X-Message-Id", "X-Correlation-Id", "X-Purpose"))
        event = AuditEvent(
            kind=EventKind.INBOUND,
            outcome=Outcome.REFUSED,
            member=caller.member,
            member_role=member.role if member is not None else None,
            counterpart=gateway_id,
            service=service_of(request),
            purpose=purpose if purpose in PURPOSES else None,
            message_id=message_id if well_formed(message_id) else None,
            correlation_id=correlation_id if well_formed(correlation_id) else None,
            # The problem type only: details can quote what the caller sent.
            reason=f"refused with HTTP {response.status}: {_problem_type(response)}",
        )
        try:
            await audit.record([event])
        except StoreError as exc:
            # The refusal stands either way; the operator must learn the record is missing.
            log.error("a refusal could not be audited: the store is unavailable", status=response.status,
                      error=str(exc))
        return response

    return record_refusals


def service_of(request: web.Request) -> str:
    """What the request was for, in names the configuration uses — never a path that may hold an IIN."""
    match = request.match_info
    recipient, service = match.get("recipient", ""), match.get("service", "")
    if request.path.startswith("/soap/"):
        return f"soap/{service if _NAME.match(service) else '?'}"
    if recipient or service:
        return "/".join(part if _NAME.match(part) else "?" for part in (recipient, service))
    resource = match.route.resource
    return f"{request.method} {resource.canonical if resource is not None else '(no route)'}"


def _problem_type(response: web.StreamResponse) -> str:
    body = getattr(response, "body", None)
    if not isinstance(body, bytes):
        return "unknown"
    if response.content_type == "application/problem+json":
        try:
            problem_type = json.loads(body).get("type", "")
        except (ValueError, AttributeError):
            return "unknown"
        return problem_type.removeprefix(_PROBLEM_PREFIX)[:64] or "unknown"
    found = _FAULT_CODE.search(body)
    return f"soap-fault:{found.group(1).decode()}" if found else "unknown"
