"""The JSON API under /api/v1: relay, message status, dead letters."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, ValidationError

from gateway.services.dead_letters import replay_dead_letters
from gateway.services.evidence import signed_evidence
from gateway.services.relay import RelayRequest
from gateway.bootstrap import Services
from gateway.entrypoints.http.context import services_of
from gateway.errors import BadRequest, NotFound, Unauthenticated
from gateway.web.body import parse_json, read_body, require_json_media_type
from gateway.entrypoints.http.schemas import (
    AttemptView,
    DeadLetter,
    DeadLetterPage,
    MessageStatus,
    RelayAccepted,
    ReplayRequest,
    ReplayResult,
)
from gateway.web.identity import caller_of, member_with_role
from gateway.web.query import SEQUENCE_MAX, token, whole_number
from gateway.security.jws import SIGNATURE_HEADER
from gateway.security.replay import record_replay
from gateway.store import MessageState

PREFIX = "/api/v1"
_PAGE_MAX = 500


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX + "/relay/{recipient}/{service}", relay)
    app.router.add_get(PREFIX + "/messages/{message_id}", message_status)
    app.router.add_get(PREFIX + "/messages/{message_id}/evidence", evidence)
    app.router.add_get(PREFIX + "/messages/{message_id}/evidence/certificate", evidence_certificate)
    app.router.add_get(PREFIX + "/dlq", dead_letters)
    app.router.add_get(PREFIX + "/dlq/{message_id}", dead_letter)
    app.router.add_post(PREFIX + "/dlq/replay", replay)


def _gateway(request: web.Request) -> Services:
    return services_of(request)


def json_response(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=model.model_dump_json().encode(), status=status, content_type="application/json", headers=headers
    )


def _require_role(request: web.Request, role: str) -> str:
    return member_with_role(request, _gateway(request).config.members, role)


async def relay(request: web.Request) -> web.Response:
    """Accept a message for another member's service; 202 only once it is durably stored."""
    gateway = _gateway(request)
    server = gateway.config.server
    relay_request = RelayRequest(
        caller=caller_of(request),
        recipient=request.match_info["recipient"],
        service=request.match_info["service"],
        body=b"",
        content_type="application/json",
        client_message_id=request.headers.get("X-Message-Id"),
        correlation_id=request.headers.get("X-Correlation-Id"),
        purpose=request.headers.get("X-Purpose"),
        ordering_key=request.headers.get("X-Ordering-Key"),
    )
    # Who and where first: an unauthorised caller learns nothing from body errors.
    gateway.relay.authorise(relay_request)
    content_type = require_json_media_type(request)
    body = await read_body(request, server.max_body_bytes)
    document = parse_json(body, server.max_json_depth)
    # Verify before submit, which records the message id: a forged copy sent first must not
    # use up the id of the genuine message (gateway.security.replay).
    signature = request.headers.get(SIGNATURE_HEADER)
    claims = await gateway.json_signatures.verify(
        relay_request.caller, signature, body, message_id=relay_request.client_message_id
    )
    # A signed body is kept as the sender signed it: the delivery carries the gateway's signature.
    evidence = None if claims is None else gateway.json_signatures.evidence(relay_request.caller, claims,
                                                                             signature or "", body)
    acceptance = await gateway.relay.submit(
        RelayRequest(**{**_fields(relay_request), "body": body, "content_type": content_type, "evidence": evidence,
                        "document": document})
    )
    message = acceptance.message
    if acceptance.duplicate:
        await record_replay(gateway.audit, message, member_role=gateway.config.members[message.sender].role,
                            counterpart=server.member_id)
    return json_response(
        RelayAccepted(message_id=message.id, status=message.state.value, duplicate=acceptance.duplicate),
        status=202,
        headers={"Location": f"{PREFIX}/messages/{message.id}"},
    )


def _fields(relay_request: RelayRequest) -> dict:
    return {name: getattr(relay_request, name) for name in RelayRequest.__slots__}


async def message_status(request: web.Request) -> web.Response:
    """A message's delivery status, for its sender or an operator."""
    gateway = _gateway(request)
    caller = caller_of(request)
    if not caller or caller not in gateway.config.members:
        raise Unauthenticated("identify yourself with X-Member-Id")
    message = await gateway.store.get_message(request.match_info["message_id"])
    # Someone else's message is "not found": its existence is not disclosed.
    if message is None or (message.sender != caller and "operator" not in gateway.config.members[caller].roles):
        raise NotFound("no message with this id was sent by you")
    return json_response(MessageStatus.of(message))


async def evidence(request: web.Request) -> web.Response:
    """What the sender signed, for the sender or the recipient: a signed SOAP request byte for byte
    as it arrived, or signed JSON as the compact JWS with the body put back in."""
    gateway = _gateway(request)
    kept = await signed_evidence(gateway.store, gateway.audit, gateway.config.members, caller=caller_of(request),
                                 message_id=request.match_info["message_id"])
    document = kept.evidence.document
    return web.Response(body=document, headers={
        "Content-Type": kept.evidence.media_type,
        # RFC 9530: the receiver can check it has the bytes the gateway kept.
        "Repr-Digest": f"sha-256=:{base64.b64encode(hashlib.sha256(document).digest()).decode()}:",
        "X-Evidence-Received-At": dt.datetime.fromtimestamp(kept.received_at, dt.UTC).isoformat(),
        "X-Evidence-Sender": kept.sender,
    })


async def evidence_certificate(request: web.Request) -> web.Response:
    """The certificate that verified the evidence's signature when it arrived (PEM)."""
    gateway = _gateway(request)
    kept = await signed_evidence(gateway.store, gateway.audit, gateway.config.members, caller=caller_of(request),
                                 message_id=request.match_info["message_id"], what="certificate")
    if kept.evidence.certificate is None:
        raise NotFound("the evidence of this message was kept without its certificate")
    pem = x509.load_der_x509_certificate(kept.evidence.certificate).public_bytes(serialization.Encoding.PEM)
    return web.Response(body=pem, content_type="application/pem-certificate-chain")


async def dead_letters(request: web.Request) -> web.Response:
    """Dead letters, oldest first, paged: ?recipient=&after=&limit= (operators)."""
    _require_role(request, "operator")
    store = _gateway(request).store
    after = whole_number(request, "after", minimum=0, maximum=SEQUENCE_MAX, default=0)
    limit = whole_number(request, "limit", minimum=1, maximum=_PAGE_MAX, default=100)
    recipient = token(request, "recipient") or None
    messages = await store.list_messages(state=MessageState.DEAD, recipient=recipient, after_seq=after, limit=limit)
    next_after = messages[-1].seq if len(messages) == limit else None
    return json_response(DeadLetterPage(items=[MessageStatus.of(m) for m in messages], next_after=next_after))


async def dead_letter(request: web.Request) -> web.Response:
    """One dead letter with its attempt history (operators)."""
    _require_role(request, "operator")
    store = _gateway(request).store
    message = await store.get_message(request.match_info["message_id"])
    if message is None or message.state is not MessageState.DEAD:
        raise NotFound("no dead letter with this id")
    history = [AttemptView.of(a) for a in await store.attempts(message.id)]
    return json_response(DeadLetter(**MessageStatus.of(message).model_dump(), history=history))


async def replay(request: web.Request) -> web.Response:
    """Queue dead letters again with a fresh attempt budget (operators)."""
    _require_role(request, "operator")
    gateway = _gateway(request)
    require_json_media_type(request)
    body = parse_json(await read_body(request, gateway.config.server.max_body_bytes), gateway.config.server.max_json_depth)
    try:
        wanted = ReplayRequest.model_validate(body)
    except ValidationError as exc:
        raise BadRequest(_validation_message(exc)) from None
    if not wanted.message_ids and not wanted.recipient:
        raise BadRequest("name the dead letters to replay: message_ids, or recipient for all of one recipient's")
    replayed, not_dead = await replay_dead_letters(
        gateway.store,
        now=gateway.clock(),
        max_age_seconds=gateway.config.delivery.max_age_seconds,
        message_ids=wanted.message_ids,
        recipient=wanted.recipient,
    )
    return json_response(ReplayResult(replayed=replayed, not_dead=not_dead))


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}" for error in exc.errors()
    )
