"""The gateway's own SOAP services under /soap: ``relay`` and, when wired, ``release-notices`` and
``resocialisation-plans``.

Both speak ШЭП SyncChannel v10 and, until the end of its deprecation period, the gateway's
earlier ``bus:v1`` envelope (``DEPRECATED``). The caller is identified as for the JSON API
(mTLS, or ``X-Member-Id`` in the development identity mode) and must be the ``senderId`` the
envelope names; ``sender/password`` is never read. What a member sends is verified against
the certificates pinned for it (``members.<id>.certificates``) before anything reads it, and
every answer is signed with the gateway's key. The relay goes through the same use case
as ``POST /api/v1/relay/...``: the same grants and purposes, the same idempotency by messageId,
and the answer only once the message is durably stored. The recipient receives a bus
SendMessage whose serviceId is its own service and whose sender is the authenticated caller,
signed by the gateway; the caller's signed request is kept verbatim beside it as evidence
(``gateway.services.evidence``), and the certificate that verified it must not be revoked
(``gateway.security.revocation``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.bootstrap import Services
from gateway.services.relay import RelayRequest
from gateway.errors import BadRequest
from gateway.security.disclosure import DisclosureExceeded
from gateway.web.identity import caller_of
from gateway.security.replay import Freshness, record_replay
from gateway.soap.contracts import contract
from gateway.soap.envelope import BUS, BUS_ASYNC, BusRequest, Channel, BusResponse, build_envelope, build_request, serialise
from gateway.soap.faults import SoapFault
from gateway.entrypoints.soap.plans import plan_service
from gateway.entrypoints.soap import DEPRECATED_SCHEMAS
from gateway.entrypoints.soap.release_notices import release_notice_service
from gateway.soap.server import SoapCall, SoapEndpoint, SoapService
from gateway.store import Evidence, Message

__all__ = ["RelayPaths", "add_routes", "caller", "evidence_of", "relay_message"]

# Relayed documents in the exchange's known namespaces are validated on the way in (the
# wildcard in data is processContents="lax"), so a malformed one is refused, not dead-lettered.
KNOWN_DOCUMENTS = ("penal.xsd", "interior.xsd", "court.xsd")
_PURPOSE = "purpose"
_ORDERING_KEY = "orderingKey"
_FORWARDED_TYPE = "text/xml; charset=utf-8"


def add_routes(app: web.Application, services: Services, *, also: Sequence[SoapService] = ()) -> None:
    """Serve the gateway's SOAP services on ``app`` (built by ``gateway.entrypoints.http.app.create_app``),
    with the services ``also`` defined elsewhere (AsyncChannel)."""
    soap_services = [SoapService(contract("relay.wsdl", also_validates=(*KNOWN_DOCUMENTS, *DEPRECATED_SCHEMAS),
                                          deprecated=(f"{{{BUS}}}SendMessage",)),
                                 {"SendMessage": _relay(services)}), *also]
    if services.release_intake is not None:
        soap_services.append(release_notice_service(services.release_intake, caller=caller))
    if services.plans is not None:
        soap_services.append(plan_service(services.plans, caller=caller))
    SoapEndpoint(
        soap_services,
        max_bytes=services.config.server.max_body_bytes,
        clock=services.clock,
        signer=services.signer,
        # Only the caller the transport names can be checked; an unknown one is refused later.
        verifier_for=lambda request: services.verifiers.get(caller_of(request) or ""),
        signer_check=services.revocation.check,
        freshness=Freshness(services.config.server.max_clock_skew_seconds, services.clock),
        public_url=services.config.server.public_url,
        public_host=services.config.server.host,
    ).add_routes(app)


def caller(call: SoapCall) -> str:
    """The calling member, who must be the envelope's sender."""
    member = caller_of(call.http)
    if not member:
        raise SoapFault.client(
            "unauthenticated", "identify yourself: with your client certificate (or X-Member-Id on loopback)"
        )
    sender = call.message.sender_id
    if sender is not None and sender != member:
        # The certificate (or the development header) says who calls; the envelope must agree.
        raise SoapFault.client(
            "sender-mismatch",
            f"sender/senderId {sender[:64]!r} is not the calling member {member!r} your certificate names; "
            "send messages in your own name",
            error_data=call.path("Info/sender/senderId"),
        )
    return member


@dataclass(frozen=True, slots=True)
class RelayPaths:
    """Where a contract's request names what the relay checks, for the faults' errorData."""

    service_id: str
    properties: str
    data: str

    @classmethod
    def of(cls, call: SoapCall) -> RelayPaths:
        """The paths in the request's own channel (SyncChannel v10, or the deprecated bus envelope)."""
        return cls(service_id=call.path("Info/serviceId"), properties=call.path("Info/properties"),
                   data=call.path("Data/data"))


async def relay_message(
    services: Services, member: str, message: BusRequest, *, paths: RelayPaths,
    forward: Callable[[BusRequest], etree._Element], evidence: Evidence | None = None,
) -> Message:
    """Relay ``message`` from the authenticated ``member``: its serviceId names the destination
    as recipient/service. ``forward`` builds the Body the recipient receives (its serviceId its
    own service, its sender the caller); ``evidence`` is the signed request as it arrived, kept
beside the message. Returns the stored message, once it is committed."""
    relay, audit = services.relay, services.audit
    recipient, _, service = message.service_id.partition("/")
    if not service:
        raise SoapFault.client(
            "unknown-service",
            f"serviceId {message.service_id!r} must name the destination as recipient/service, "
            "for example health/release-notices",
            error_data=paths.service_id,
        )
    purpose = message.property(_PURPOSE)
    request = RelayRequest(
        caller=member,
        recipient=recipient,
        service=service,
        body=b"",
        content_type=_FORWARDED_TYPE,
        client_message_id=message.message_id,
        correlation_id=message.correlation_id,
        purpose=purpose,
        ordering_key=message.property(_ORDERING_KEY),
    )
    # Who and where first: an unauthorised caller learns nothing from the content.
    try:
        relay.authorise(request)
    except BadRequest as error:
        if purpose is None:
            # The use case speaks of the JSON API's X-Purpose header; over SOAP it is a property.
            raise SoapFault.client(
                "purpose-required",
                f"add the property purpose: {error.detail.partition(': ')[2]}",
                error_data=paths.properties,
            ) from None
        raise
    if message.data is None:
        raise SoapFault.client("unexpected-data", "data is empty: put the document to relay in it",
                               error_data=paths.data)
    # The recipient's own service, in the caller's name, on SyncChannel v10 whatever the caller spoke,
    # the document in the recipient's own schema where the exchange knows one (checked as sent).
    forwarded = forward(dataclasses.replace(message, service_id=service, sender_id=member, channel=Channel.SYNC,
                                            route_id=None, session_id=None,
                                            data=relay.wire_xml(recipient, service, message.data)))
    try:
        acceptance = await relay.submit(dataclasses.replace(
            request, body=serialise(build_envelope(forwarded)), evidence=evidence, document=message.data))
    except DisclosureExceeded as refusal:
        # The fields to remove, as the JSON API's problem names them.
        raise SoapFault.client(refusal.slug, refusal.detail, error_data=", ".join(refusal.fields)) from None
    stored = acceptance.message
    if acceptance.duplicate:
        roles = {member_id: config.role for member_id, config in services.config.members.items()}
        await record_replay(audit, stored, member_role=roles.get(member), counterpart=services.config.server.member_id)
    return stored


def _relay(services: Services):
    async def send_message(call: SoapCall) -> BusResponse:
        member = caller(call)
        message = call.message
        stored = await relay_message(services, member, message, paths=RelayPaths.of(call), forward=build_request,
                                     evidence=evidence_of(call))
        recipient, _, service = message.service_id.partition("/")
        # Dated when it was stored, so a resent message gets the very same answer.
        return BusResponse(
            message_id=stored.id,
            correlation_id=message.message_id,
            response_date=dt.datetime.fromtimestamp(stored.accepted_at, dt.UTC),
            status_code="ACCEPTED",
            status_message=f"stored for delivery to {recipient}/{service}",
            session_id=message.session_id,
        )

    return send_message


def evidence_of(call: SoapCall) -> Evidence | None:
    """A signed request's bytes as they arrived, and the certificate that verified them: the
    sender's proof, kept beside the message the recipient gets under the gateway's signature."""
    certificate = call.envelope.signed_by
    if certificate is None:
        return None
    media_type = f"text/xml; charset={call.http.charset}" if call.http.charset else "text/xml"
    return Evidence(call.raw, media_type, certificate.public_bytes(Encoding.DER))
