"""The AsyncChannel v10 SOAP service (``/soap/async-channel``): the bus's asynchronous channel.

Thin: each operation reads its request with the toolkit (``gateway.soap.async_channel``),
checks that the request's ``sender/senderId`` is the calling member (identified by the
transport; the bus password is never a credential, and is neither kept nor logged) and hands
over to a use case:

- ``sendMessage`` relays through the same path as the synchronous ``relay`` service
  (``relay_message``: grants, purposes, idempotency by messageId, the answer only once the
  message is stored); the recipient receives an AsyncChannel ``sendMessage``, pushed to its
  endpoint or pulled;
- ``getMessageStatus``, ``getMessages`` and ``sendDeliveryNotification`` go to the mailbox
  (``gateway.services.mailbox``).

Every fault carries ``AsyncChannelFault/ErrorInfo`` and travels with HTTP 500, as WS-I Basic
Profile asks of SOAP 1.1; soap:Client marks the sender's mistake. docs/integration-soap.md,
"AsyncChannel", describes it for integrators.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from lxml import etree

from gateway.bootstrap import Services
from gateway.entrypoints.soap.relay import KNOWN_DOCUMENTS, RelayPaths, evidence_of, relay_message
from gateway.services.mailbox import Page, Tracked, UnknownCursor, UnknownMessages
from gateway.soap import async_channel as channel
from gateway.soap.contracts import contract
from gateway.soap.envelope import BUS, BUS_ASYNC, BusRequest, MessageType, parse_envelope, read_request
from gateway.soap.faults import SoapFault
from gateway.soap.server import SoapCall, SoapService
from gateway.store import Message, MessageState
from gateway.web.identity import caller_of

__all__ = ["PATH", "async_channel_service", "error_detail"]

_REQUEST = "/Envelope/Body/types:{operation}/request"
_PATHS = RelayPaths(
    service_id=_REQUEST.format(operation="sendMessage") + "/messageInfo/serviceId",
    properties=_REQUEST.format(operation="sendMessage") + "/messageInfo/properties",
    data=_REQUEST.format(operation="sendMessage") + "/messageData/data",
)
PATH = "/soap/" + channel.WSDL.removesuffix(".wsdl")
"""Where the service is served (the WSDL's name, as every SOAP service)."""
error_detail = channel.error_detail
# A stored message is the gateway's own: it was bounded when it was accepted.
_STORED_LIMIT = 64 * 1024 * 1024
_BUS_MESSAGES = (f"{{{BUS}}}SendMessage", f"{{{BUS_ASYNC}}}SendMessage")
_CODES = {
    MessageState.ACCEPTED: "ACCEPTED",
    MessageState.IN_FLIGHT: "IN_FLIGHT",
    MessageState.DELIVERED: "DELIVERED",
    MessageState.DEAD: "DEAD",
}


def async_channel_service(services: Services) -> SoapService:
    mailbox = services.mailbox
    members = services.config.members

    def member_of(call: SoapCall, sender_id: str) -> str:
        member = caller_of(call.http)
        if not member or member not in members:
            raise SoapFault.client(
                "unauthenticated", "identify yourself: a member's client certificate (or X-Member-Id in development)",
            )
        if sender_id != member:
            raise SoapFault.client(
                "sender-mismatch",
                f"sender/senderId {sender_id[:128]!r} is not the calling member {member!r}; "
                "send in your own name",
                error_data=channel.sender_path(call.operation.name),
            )
        return member

    async def send_message(call: SoapCall) -> etree._Element:
        message = call.message
        member = member_of(call, message.sender_id)
        stored = await relay_message(services, member, message, paths=_PATHS, forward=channel.build_send_message,
                                     evidence=evidence_of(call))
        # Dated when it was stored, so a resent message gets the very same answer.
        return channel.send_message_response(
            message_id=stored.id, correlation_id=message.message_id,
            response_date=dt.datetime.fromtimestamp(stored.accepted_at, dt.UTC), code="ACCEPTED",
            message=f"stored for delivery to {stored.recipient}/{stored.service}",
        )

    async def get_message_status(call: SoapCall) -> etree._Element:
        request = channel.read_ids(call.envelope.body)
        member = member_of(call, request.sender_id)
        try:
            tracked = await mailbox.status(member, request.message_ids)
        except UnknownMessages as unknown:
            raise _unknown(call, unknown) from None
        return channel.status_response(call.received_at, [_status(entry, member, mailbox.pulls) for entry in tracked])

    async def send_delivery_notification(call: SoapCall) -> etree._Element:
        request = channel.read_ids(call.envelope.body)
        member = member_of(call, request.sender_id)
        try:
            confirmed = await mailbox.confirm(member, request.message_ids)
        except UnknownMessages as unknown:
            raise _unknown(call, unknown) from None
        asked = len(set(request.message_ids))
        before = asked - len(confirmed)
        return channel.notification_response(
            call.received_at, code="OK", confirmed=confirmed,
            message=f"{len(confirmed)} confirmed now" + (f", {before} confirmed before" if before else ""),
        )

    async def get_messages(call: SoapCall) -> etree._Element:
        request = channel.read_page(call.envelope.body)
        member = member_of(call, request.sender_id)
        try:
            page: Page = await mailbox.pull(member, request.page_size, request.cursor)
        except UnknownCursor as unknown:
            raise SoapFault.client(unknown.slug, unknown.detail,
                                   error_data=_REQUEST.format(operation="getMessages") + "/cursor") from None
        return channel.messages_response(call.received_at, [_handed_out(m) for m in page.messages], page.next_cursor)

    return SoapService(
        contract(channel.WSDL, also_validates=KNOWN_DOCUMENTS),
        {
            "sendMessage": send_message,
            "getMessageStatus": get_message_status,
            "sendDeliveryNotification": send_delivery_notification,
            "getMessages": get_messages,
        },
        read=channel.read_request,
        fault_detail=channel.error_detail,
    )


def _unknown(call: SoapCall, unknown: UnknownMessages) -> SoapFault:
    where = _REQUEST.format(operation=call.operation.name) + f"/messageId[{unknown.positions[0]}]"
    return SoapFault.client(unknown.slug, unknown.detail, error_data=where)


def _date(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _status(entry: Tracked, member: str, pulls) -> channel.MessageStatus:
    if entry.received is not None:
        return channel.MessageStatus(
            entry.asked, "RECEIVED", f"received and answered by the gateway with messageId "
                                     f"{entry.received.response_message_id}",
            status_date=entry.received.answered_at,
        )
    message = entry.message
    destination = f"{message.recipient}/{message.service}"
    pulled = pulls(message.recipient)
    text = {
        MessageState.ACCEPTED: f"stored, waiting for {message.recipient} to fetch it" if pulled
        else f"stored, waiting for delivery to {destination}",
        MessageState.IN_FLIGHT: f"handed out to {message.recipient}, waiting for its confirmation" if pulled
        else f"being delivered to {destination} (attempt {message.attempts})",
        MessageState.DELIVERED: f"delivered to {destination}",
        MessageState.DEAD: f"not delivered to {destination} after {message.attempts} attempts: "
                           "dead-lettered until an operator replays it",
    }[message.state]
    return channel.MessageStatus(
        entry.asked, _CODES[message.state], text, status_date=_date(message.updated_at),
        delivery_date=_date(message.delivered_at) if message.delivered_at is not None else None,
        confirmation_date=_date(message.acknowledged_at) if message.acknowledged_at is not None else None,
    )


def _handed_out(message: Message) -> etree._Element:
    """A stored message as ``getMessages`` hands it out: the gateway's id (what the member
    confirms), its sender and service, and the document it carries."""
    info = BusRequest(
        message_id=message.id, correlation_id=message.correlation_id, service_id=message.service,
        message_date=_date(message.accepted_at), sender_id=message.sender, data=None,
        message_type=MessageType.REQUEST,
    )
    body = _envelope_body(message)
    if body is None:  # JSON, say: its text, and what it is
        properties = [("contentType", message.content_type)]
        if message.purpose is not None:
            properties.append(("purpose", message.purpose))
        return channel.build_message(_with(info, properties=tuple(properties)),
                                     text=message.body.decode("utf-8", errors="replace"))
    if body.tag == f"{{{channel.TYPES}}}sendMessage":
        sent = channel.read_message(body.find("request"))
    elif body.tag in _BUS_MESSAGES:
        sent = read_request(body)
    else:  # a document the gateway's own workflow wrote: handed out whole
        return channel.build_message(_with(info, data=body))
    return channel.build_message(_with(info, message_type=sent.message_type or MessageType.REQUEST,
                                       properties=sent.properties, data=sent.data))


def _envelope_body(message: Message) -> etree._Element | None:
    """The Body element of a stored SOAP message; None for any other content."""
    if not message.content_type.startswith("text/xml"):
        return None
    try:
        return parse_envelope(message.body, max_bytes=_STORED_LIMIT, understood=_ANY_HEADER).body
    except SoapFault:  # XML, but no envelope: handed out as it is
        return None


def _with(info: BusRequest, **changes) -> BusRequest:
    return dataclasses.replace(info, **changes)


class _Everything:
    """Every header block is understood: a stored message's header (its signature) is not read."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY_HEADER = _Everything()
