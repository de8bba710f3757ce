"""The bus's AsyncChannel v10: its messages read from and written to plain values, in one place.

The contract is ``schemas/soap/async-channel.wsdl`` with ``async-channel-v10.xsd``: port type
``IAsyncChannel`` in ``http://bip.bee.kz/AsyncChannel/v10/Interfaces``, its four operations'
elements in ``http://bip.bee.kz/AsyncChannel/v10/Types``, and everything inside those
unqualified, as on the bus:

- ``sendMessage``: ``request{messageInfo, messageData{data}}``, read as a ``BusRequest`` (the
  bus message every SOAP endpoint shares), answered with ``sendMessageResponse``;
- ``getMessageStatus`` and ``sendDeliveryNotification``: ``request{sender, messageId+}``, read
  as ``MessageIds``;
- ``getMessages``: ``request{sender, pageSize, cursor?}``, read as ``Page``, answered with
  messages built like a ``sendMessage`` request's ``messageInfo`` and ``messageData``;
- every fault's detail: ``AsyncChannelFault{ErrorInfo{errorCode, errorMessage, errorData?,
  errorDate, subError*}}``.

Reading assumes the body is schema-valid (``gateway.soap.contracts``), so it does not re-check
what the XSD guarantees. The sender's bus password is read past, never kept. This module
knows nothing of the gateway: ``gateway.entrypoints.soap.async_channel`` serves it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from gateway.soap.envelope import BusRequest, MessageType
from gateway.soap.faults import SoapFault

__all__ = [
    "INTERFACES",
    "WSDL",
    "TYPES",
    "MessageIds",
    "MessageStatus",
    "Page",
    "build_message",
    "build_send_message",
    "error_detail",
    "messages_response",
    "notification_response",
    "read_ids",
    "read_message",
    "read_page",
    "read_request",
    "send_message_response",
    "sender_path",
    "status_response",
]

TYPES = "http://bip.bee.kz/AsyncChannel/v10/Types"
INTERFACES = "http://bip.bee.kz/AsyncChannel/v10/Interfaces"
WSDL = "async-channel.wsdl"

_SEND_MESSAGE = f"{{{TYPES}}}sendMessage"
_NSMAP = {"types": TYPES}


@dataclass(frozen=True, slots=True)
class MessageIds:
    """A ``getMessageStatus`` or ``sendDeliveryNotification`` request."""

    sender_id: str
    message_ids: tuple[str, ...]
    """In the order asked (``messageId[n]`` is the n-th)."""


@dataclass(frozen=True, slots=True)
class Page:
    """A ``getMessages`` request."""

    sender_id: str
    page_size: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """One message's entry in a ``getMessageStatus`` answer."""

    message_id: str
    """As asked: the sender's messageId or the gateway's id."""
    code: str
    """ACCEPTED, IN_FLIGHT, DELIVERED, DEAD or RECEIVED."""
    message: str
    status_date: dt.datetime
    delivery_date: dt.datetime | None = None
    confirmation_date: dt.datetime | None = None


def sender_path(operation: str) -> str:
    """Where an operation's request names its sender, for ``errorData``."""
    info = "/messageInfo" if operation == "sendMessage" else ""
    return f"/Envelope/Body/types:{operation}/request{info}/sender/senderId"


# ----------------------------------------------------------------- reading requests


def read_request(body: etree._Element) -> BusRequest | None:
    """The bus message of a (schema-valid) request: a ``sendMessage``'s, or None for the operations
    that carry no message (``SoapService.read`` in ``gateway.soap.server``)."""
    if body.tag != _SEND_MESSAGE:
        return None
    return read_message(body.find("request"))


def read_message(element: etree._Element) -> BusRequest:
    """A message: ``messageInfo`` and ``messageData`` under ``element`` (a request or a handed-out message)."""
    info = element.find("messageInfo")
    return BusRequest(
        message_id=info.findtext("messageId"),
        correlation_id=info.findtext("correlationId"),
        service_id=info.findtext("serviceId"),
        message_type=MessageType(info.findtext("messageType")),
        message_date=_datetime(info.findtext("messageDate")),
        sender_id=info.findtext("sender/senderId"),
        properties=tuple((prop.findtext("key"), prop.findtext("value") or "") for prop in info.iterfind("properties")),
        data=next((child for child in element.find("messageData/data") if isinstance(child.tag, str)), None),
    )


def read_ids(body: etree._Element) -> MessageIds:
    request = body.find("request")
    return MessageIds(
        sender_id=request.findtext("sender/senderId"),
        message_ids=tuple(node.text for node in request.iterfind("messageId")),
    )


def read_page(body: etree._Element) -> Page:
    request = body.find("request")
    return Page(
        sender_id=request.findtext("sender/senderId"),
        page_size=int(request.findtext("pageSize")),
        cursor=request.findtext("cursor"),
    )


# ----------------------------------------------------------------- writing answers


def send_message_response(
    *, message_id: str, correlation_id: str, response_date: dt.datetime, code: str, message: str
) -> etree._Element:
    root, response = _root("sendMessageResponse", "response")
    _text(response, "messageId", message_id)
    _text(response, "correlationId", correlation_id)
    _text(response, "responseDate", _timestamp(response_date))
    _status(response, code, message)
    return root


def status_response(response_date: dt.datetime, statuses: Sequence[MessageStatus]) -> etree._Element:
    root, response = _root("getMessageStatusResponse", "response")
    _text(response, "responseDate", _timestamp(response_date))
    for status in statuses:
        entry = etree.SubElement(response, "messageStatus")
        _text(entry, "messageId", status.message_id)
        _text(entry, "code", status.code)
        _text(entry, "message", status.message)
        _text(entry, "statusDate", _timestamp(status.status_date))
        if status.delivery_date is not None:
            _text(entry, "deliveryDate", _timestamp(status.delivery_date))
        if status.confirmation_date is not None:
            _text(entry, "confirmationDate", _timestamp(status.confirmation_date))
    return root


def notification_response(
    response_date: dt.datetime, *, code: str, message: str, confirmed: Sequence[str]
) -> etree._Element:
    root, response = _root("sendDeliveryNotificationResponse", "response")
    _text(response, "responseDate", _timestamp(response_date))
    _status(response, code, message)
    for message_id in confirmed:
        _text(response, "messageId", message_id)
    return root


def messages_response(
    response_date: dt.datetime, messages: Sequence[etree._Element], next_cursor: str | None
) -> etree._Element:
    """``messages`` are built by ``build_message``."""
    root, response = _root("getMessagesResponse", "response")
    _text(response, "responseDate", _timestamp(response_date))
    response.extend(messages)
    if next_cursor is not None:
        _text(response, "nextCursor", next_cursor)
    return root


def build_message(message: BusRequest, *, text: str | None = None, tag: str = "message") -> etree._Element:
    """A message as ``getMessages`` hands it out (``tag`` ``request`` for a ``sendMessage``):
    ``data`` holds ``message.data``, or ``text`` for a document that is not XML (JSON, say)."""
    element = etree.Element(tag)
    info = etree.SubElement(element, "messageInfo")
    _text(info, "messageId", message.message_id)
    if message.correlation_id is not None:
        _text(info, "correlationId", message.correlation_id)
    _text(info, "serviceId", message.service_id)
    _text(info, "messageType", (message.message_type or MessageType.REQUEST).value)
    _text(info, "messageDate", _timestamp(message.message_date))
    _text(etree.SubElement(info, "sender"), "senderId", message.sender_id)
    for key, value in message.properties:
        prop = etree.SubElement(info, "properties")
        _text(prop, "key", key)
        _text(prop, "value", value)
    data = etree.SubElement(etree.SubElement(element, "messageData"), "data")
    if message.data is not None:
        data.append(message.data)
    elif text is not None:
        data.text = text
    return element


def error_detail(fault: SoapFault, now: dt.datetime) -> etree._Element:
    """``AsyncChannelFault{ErrorInfo}``: the detail of every fault of the channel."""
    root = etree.Element(f"{{{TYPES}}}AsyncChannelFault", nsmap=_NSMAP)
    info = etree.SubElement(root, "ErrorInfo")
    _text(info, "errorCode", fault.error_code)
    _text(info, "errorMessage", _bounded(fault.message))
    if fault.error_data:
        _text(info, "errorData", _bounded(fault.error_data))
    _text(info, "errorDate", _timestamp(now))
    return root


# ----------------------------------------------------------------- writing a request (what the gateway relays)


def build_send_message(message: BusRequest) -> etree._Element:
    root = etree.Element(_SEND_MESSAGE, nsmap=_NSMAP)
    root.append(build_message(message, tag="request"))
    return root


# ----------------------------------------------------------------- helpers

_TEXT_LIMIT = 2000


def _root(name: str, child: str) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{{{TYPES}}}{name}", nsmap=_NSMAP)
    return root, etree.SubElement(root, child)


def _status(parent: etree._Element, code: str, message: str) -> None:
    status = etree.SubElement(parent, "status")
    _text(status, "code", code)
    _text(status, "message", _bounded(message))


def _text(parent: etree._Element, name: str, value: str) -> None:
    etree.SubElement(parent, name).text = value


def _bounded(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def _timestamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _datetime(text: str) -> dt.datetime:
    # xs:dateTime as the schema has checked it, which still admits what Python cannot hold.
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SoapFault.client(
            "schema-violation",
            "messageDate is outside the years 1-9999 or uses 24:00; send it as 00:00 of the next day",
            error_data="/Envelope/Body/types:sendMessage/request/messageInfo/messageDate",
        ) from None
