"""SOAP 1.1 envelopes and the bus messages inside them, built and read in one place.

Every SOAP message the gateway receives is read by ``parse_envelope`` (which parses with the
one hardened parser) and every message it writes is put together by ``build_envelope`` and
turned into bytes by ``serialise``. WS-Security slots in between: ``verified`` checks the
``Envelope`` that ``parse_envelope`` returns against the sender's pinned certificates and
swaps its Body for the one the signature covers, before anything reads the body; a
``Signer`` (``gateway.security.xmldsig``) takes the element ``build_envelope`` returns and adds
its header block before ``serialise``.

The bus content (``SendMessage`` on the synchronous and asynchronous channels) is read from and
written to ``BusRequest`` and ``BusResponse``. Reading assumes the body has already been
validated against the service's schema, so it does not re-check what the XSD guarantees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from lxml import etree

from gateway.security.xmldsig import SignatureRefused, Verifier
from gateway.security.xmlparse import DEFAULT_MAX_BYTES, MalformedXMLError, UnsafeXMLError, parse_untrusted
from gateway.soap.faults import BUS, SOAP11, SoapFault

__all__ = [
    "BUS",
    "BUS_ASYNC",
    "SOAP11",
    "BusRequest",
    "BusResponse",
    "Channel",
    "Envelope",
    "MessageType",
    "build_envelope",
    "build_request",
    "build_response",
    "parse_envelope",
    "read_request",
    "read_response",
    "serialise",
    "verified",
]

BUS_ASYNC = "urn:reentry-gateway:bus:async:v1"

_ENVELOPE = f"{{{SOAP11}}}Envelope"
_HEADER = f"{{{SOAP11}}}Header"
_BODY = f"{{{SOAP11}}}Body"
_MUST_UNDERSTAND = f"{{{SOAP11}}}mustUnderstand"


class Channel(StrEnum):
    """The bus channel, told apart by the namespace of the Body's root element."""

    SYNC = BUS
    ASYNC = BUS_ASYNC


class MessageType(StrEnum):
    REQUEST = "REQUEST"
    NOTIFICATION = "NOTIFICATION"
    UPDATE = "UPDATE"
    RESPONSE = "RESPONSE"


@dataclass(frozen=True, slots=True)
class Envelope:
    document: etree._Element
    """The soap:Envelope, for a signature verifier that needs the whole document."""
    header: etree._Element | None
    body: etree._Element
    """The one element inside soap:Body."""
    signed_by: x509.Certificate | None = None
    """The pinned certificate that verified the signature (``verified``), None if unsigned."""


@dataclass(frozen=True, slots=True)
class BusRequest:
    """A SendMessage request on either channel. The sender's bus password is never kept."""

    message_id: str
    service_id: str
    message_date: dt.datetime
    sender_id: str
    data: etree._Element | None
    """The business document: the one element inside data, or None when data is empty."""
    correlation_id: str | None = None
    message_type: MessageType | None = None
    """Set on the asynchronous channel, None on the synchronous one."""
    properties: tuple[tuple[str, str], ...] = ()

    @property
    def channel(self) -> Channel:
        return Channel.SYNC if self.message_type is None else Channel.ASYNC

    def property(self, key: str) -> str | None:
        """The value of the first property named ``key``."""
        return next((value for name, value in self.properties if name == key), None)


@dataclass(frozen=True, slots=True)
class BusResponse:
    message_id: str
    correlation_id: str
    """The messageId of the request answered."""
    response_date: dt.datetime
    status_code: str
    status_message: str
    data: etree._Element | None = None


def parse_envelope(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, understood: Collection[str] = ()) -> Envelope:
    """Parse bytes from outside as a SOAP 1.1 envelope; raise a Client SoapFault if they are not one.

    The envelope holds an optional Header and a Body with exactly one element. A header block
    marked mustUnderstand="1" is refused unless its Clark name is in ``understood``: the caller
    asked for that block's semantics to be honoured (SOAP 1.1 §4.2.3).
    """
    try:
        root = parse_untrusted(data, max_bytes=max_bytes)
    except UnsafeXMLError as error:
        raise SoapFault.client("unsafe-xml", str(error)) from None
    except MalformedXMLError as error:
        raise SoapFault.client("invalid-xml", str(error)) from None
    if root.tag != _ENVELOPE:
        raise SoapFault.client(
            "not-soap",
            f"the document element is {_name(root)}; send a SOAP 1.1 {{{SOAP11}}}Envelope",
        )
    children = [child for child in root if isinstance(child.tag, str)]
    header = children.pop(0) if children and children[0].tag == _HEADER else None
    if len(children) != 1 or children[0].tag != _BODY:
        found = ", ".join(_name(child) for child in children) or "nothing"
        raise SoapFault.client(
            "not-soap", f"the Envelope must hold an optional Header and then one Body; found {found}"
        )
    body = children[0]
    elements = [child for child in body if isinstance(child.tag, str)]
    if len(elements) != 1:
        raise SoapFault.client(
            "not-soap", f"the Body must hold exactly one element, but holds {len(elements)}", error_data="/Envelope/Body"
        )
    if (body.text or "").strip() or any((child.tail or "").strip() for child in body):
        raise SoapFault.client("not-soap", "the Body must hold only its element, no text", error_data="/Envelope/Body")
    if header is not None:
        for block in header:
            if isinstance(block.tag, str) and block.tag not in understood and block.get(_MUST_UNDERSTAND) in ("1", "true"):
                raise SoapFault.client(
                    "must-understand",
                    f"header block {_name(block)} is marked mustUnderstand but is not understood here",
                    error_data="/Envelope/Header",
                )
    return Envelope(document=root, header=header, body=elements[0])


def verified(envelope: Envelope, verifier: Verifier, *, at: dt.datetime) -> Envelope:
    """``envelope`` with the Body its signature covers (or as it is: unsigned, from a sender that
    may send unsigned); a Client SoapFault naming the failed check otherwise.

    ``at`` is when the message was received. Whatever reads the envelope next reads only the
    verified Body, parsed anew from the signed bytes: a comment, a second Body or anything else
    the signature does not cover is not in it.
    """
    try:
        signed = verifier.verify(envelope.document, at=at)
    except SignatureRefused as refusal:
        raise SoapFault.client(
            refusal.slug, refusal.detail, error_data="/Envelope/Header/wsse:Security", http_status=refusal.status
        ) from None
    if signed is None:
        return envelope
    (element,) = (child for child in signed.body if isinstance(child.tag, str))
    return Envelope(document=envelope.document, header=envelope.header, body=element,
                    signed_by=signed.certificate.certificate)


def build_envelope(body: etree._Element, *, header_blocks: Sequence[etree._Element] = ()) -> etree._Element:
    """A soap:Envelope around ``body``; a Header only when there are header blocks."""
    envelope = etree.Element(_ENVELOPE, nsmap={"soap": SOAP11})
    if header_blocks:
        header = etree.SubElement(envelope, _HEADER)
        header.extend(header_blocks)
    etree.SubElement(envelope, _BODY).append(body)
    return envelope


def serialise(envelope: etree._Element) -> bytes:
    """The bytes to send: UTF-8 with an XML declaration, whatever the request's encoding was."""
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


# ----------------------------------------------------------------- the bus messages


def _bus(local: str) -> str:
    return f"{{{BUS}}}{local}"


def read_request(body: etree._Element) -> BusRequest:
    """The bus request in a (schema-valid) SendMessage element of either channel."""
    channel = Channel(etree.QName(body).namespace)
    request = body[0]
    info, content = request[0], request[1]
    sender = info.find(_bus("sender"))
    message_type = info.findtext(_bus("messageType"))
    return BusRequest(
        message_id=info.findtext(_bus("messageId")),
        correlation_id=info.findtext(_bus("correlationId")),
        service_id=info.findtext(_bus("serviceId")),
        message_type=MessageType(message_type) if channel is Channel.ASYNC else None,
        message_date=_datetime(info.findtext(_bus("messageDate"))),
        sender_id=sender.findtext(_bus("senderId")),
        properties=tuple(
            (prop.findtext(_bus("key")), prop.findtext(_bus("value")) or "") for prop in info.iterfind(_bus("properties"))
        ),
        data=_payload(content),
    )


def build_request(message: BusRequest) -> etree._Element:
    """The SendMessage element for a request; the channel follows from ``message_type``."""
    channel = message.channel
    root = etree.Element(f"{{{channel.value}}}SendMessage", nsmap=_nsmap(channel))
    request = etree.SubElement(root, _bus("request"))
    info = etree.SubElement(request, _bus("requestInfo" if channel is Channel.SYNC else "messageInfo"))
    _text(info, "messageId", message.message_id)
    if message.correlation_id is not None:
        _text(info, "correlationId", message.correlation_id)
    _text(info, "serviceId", message.service_id)
    if message.message_type is not None:
        _text(info, "messageType", message.message_type.value)
    _text(info, "messageDate", _timestamp(message.message_date))
    _text(etree.SubElement(info, _bus("sender")), "senderId", message.sender_id)
    for key, value in message.properties:
        prop = etree.SubElement(info, _bus("properties"))
        _text(prop, "key", key)
        _text(prop, "value", value)
    content = etree.SubElement(request, _bus("requestData" if channel is Channel.SYNC else "messageData"))
    _data(content, message.data)
    return root


def build_response(response: BusResponse, *, channel: Channel) -> etree._Element:
    root = etree.Element(f"{{{channel.value}}}SendMessageResponse", nsmap=_nsmap(channel))
    content = etree.SubElement(root, _bus("response"))
    info = etree.SubElement(content, _bus("responseInfo"))
    _text(info, "messageId", response.message_id)
    _text(info, "correlationId", response.correlation_id)
    _text(info, "responseDate", _timestamp(response.response_date))
    status = etree.SubElement(info, _bus("status"))
    _text(status, "code", response.status_code)
    _text(status, "message", response.status_message)
    if response.data is not None:
        _data(etree.SubElement(content, _bus("responseData")), response.data)
    return root


def read_response(body: etree._Element) -> BusResponse:
    """The bus response in a (schema-valid) SendMessageResponse element of either channel."""
    content = body[0]
    info = content[0]
    status = info.find(_bus("status"))
    response_data = content.find(_bus("responseData"))
    return BusResponse(
        message_id=info.findtext(_bus("messageId")),
        correlation_id=info.findtext(_bus("correlationId")),
        response_date=_datetime(info.findtext(_bus("responseDate"))),
        status_code=status.findtext(_bus("code")),
        status_message=status.findtext(_bus("message")) or "",
        data=None if response_data is None else _payload(response_data),
    )


def _nsmap(channel: Channel) -> dict[str, str]:
    return {"bus": BUS} if channel is Channel.SYNC else {"async": BUS_ASYNC, "bus": BUS}


def _text(parent: etree._Element, local: str, value: str) -> None:
    etree.SubElement(parent, _bus(local)).text = value


def _data(content: etree._Element, payload: etree._Element | None) -> None:
    data = etree.SubElement(content, _bus("data"))
    if payload is not None:
        data.append(payload)


def _payload(content: etree._Element) -> etree._Element | None:
    data = content.find(_bus("data"))
    return next((child for child in data if isinstance(child.tag, str)), None) if data is not None else None


def _timestamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _datetime(text: str) -> dt.datetime:
    # xs:dateTime as the schema has already checked it; Python 3.11 reads the "Z" suffix.
    # The schema still admits what Python cannot represent (year 10000, 24:00:00).
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SoapFault.client(
            "schema-violation", "a date and time is outside the years 1-9999 or uses 24:00; send it as 00:00 of the next day"
        ) from None


def _name(element: etree._Element) -> str:
    return element.tag if isinstance(element.tag, str) else "a comment or processing instruction"
