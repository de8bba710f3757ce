"""SOAP 1.1 envelopes and the bus messages inside them, built and read in one place.

Every SOAP message the gateway receives is read by ``parse_envelope`` (which parses with the
one hardened parser) and every message it writes is put together by ``build_envelope`` and
turned into bytes by ``serialise``. WS-Security slots in between: ``verified`` checks the
``Envelope`` that ``parse_envelope`` returns against the sender's pinned certificates and
swaps its Body for the one the signature covers, before anything reads the body; a
``Signer`` (``gateway.security.xmldsig``) takes the element ``build_envelope`` returns and adds
its header block before ``serialise``.

The bus content is read from and written to ``BusRequest`` and ``BusResponse``. On the wire it
is ШЭП SyncChannel v10 (``Channel.SYNC``: ``SendMessage`` in ``SYNC_TYPES``, unqualified
content); the gateway's earlier envelope (``urn:reentry-gateway:bus:v1``, synchronous and
asynchronous) is still read and answered in kind until the end of its deprecation period
(docs/integration-soap.md, "Deprecated envelope"). ``read_info`` and ``response_info`` are the
v10 requestInfo and responseInfo alone, for channels that carry them under other roots.
Reading assumes the body has already been validated against the service's schema, so it does
not re-check what the XSD guarantees.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from lxml import etree

from gateway.security.xmldsig import SignatureRefused, Verifier
from gateway.security.xmlparse import DEFAULT_MAX_BYTES, MalformedXMLError, UnsafeXMLError, parse_untrusted
from gateway.soap.faults import BUS, BUS_ASYNC, SOAP11, SYNC_INTERFACES, SYNC_TYPES, SoapFault, read_fault

__all__ = [
    "BUS",
    "BUS_ASYNC",
    "SOAP11",
    "SYNC_INTERFACES",
    "SYNC_TYPES",
    "BusRequest",
    "BusResponse",
    "Channel",
    "Envelope",
    "MessageType",
    "build_envelope",
    "build_request",
    "build_response",
    "fault_code_of",
    "parse_envelope",
    "read_info",
    "read_request",
    "read_response",
    "response_info",
    "serialise",
    "verified",
]

_ENVELOPE = f"{{{SOAP11}}}Envelope"
_HEADER = f"{{{SOAP11}}}Header"
_BODY = f"{{{SOAP11}}}Body"
_MUST_UNDERSTAND = f"{{{SOAP11}}}mustUnderstand"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

TypedDocuments = Callable[[str], "str | None"]
"""The document element (Clark name) of an xsi:type (Clark name), or None: a contract's
``document_for_type``."""


class Channel(StrEnum):
    """The bus channel and envelope, told apart by the namespace of the Body's root element."""

    SYNC = SYNC_TYPES
    """ШЭП SyncChannel v10."""
    LEGACY_SYNC = BUS
    """The gateway's earlier synchronous envelope (deprecated)."""
    LEGACY_ASYNC = BUS_ASYNC
    """The gateway's earlier asynchronous envelope, with messageType (deprecated)."""

    @property
    def deprecated(self) -> bool:
        return self is not Channel.SYNC


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
    """A SendMessage request. The sender's bus password is never read, kept or logged."""

    message_id: str
    service_id: str
    message_date: dt.datetime
    sender_id: str | None
    """requestInfo.sender.senderId; None when the request names no sender (v10 allows it)."""
    data: etree._Element | None
    """The business document: the one element inside data, or None when data is empty."""
    correlation_id: str | None = None
    message_type: MessageType | None = None
    """Set on the deprecated asynchronous envelope only."""
    properties: tuple[tuple[str, str], ...] = ()
    route_id: str | None = None
    session_id: str | None = None
    channel: Channel = Channel.SYNC

    def property(self, key: str) -> str | None:
        """The value of the first property named ``key``."""
        return next((value for name, value in self.properties if name == key), None)


@dataclass(frozen=True, slots=True)
class BusResponse:
    message_id: str
    correlation_id: str | None
    """The messageId of the request answered."""
    response_date: dt.datetime
    status_code: str
    status_message: str
    data: etree._Element | None = None
    session_id: str | None = None


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
            refusal.slug, refusal.detail, error_data="/Envelope/Header/wsse:Security"
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


def fault_code_of(content: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> SoapFault | None:
    """The SOAP fault in an answer's bytes, or None when they are not a SOAP fault.

    For those who receive an HTTP 500 and must tell a Client fault (permanent: resending fails
    again) from a Server fault (worth retrying): the status alone cannot say, the fault code can.
    Nothing here verifies a signature; a caller that pins the answerer's certificates verifies
    the envelope itself (``verified``) before acting on more than this classification.
    """
    try:
        envelope = parse_envelope(content, max_bytes=max_bytes, understood=_ANY_HEADER)
    except SoapFault:
        return None
    return read_fault(envelope.body)


class _AnyHeader(Collection[str]):
    """Every header block is understood: only the Body's fault is read."""

    def __contains__(self, item: object) -> bool:
        return True

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


_ANY_HEADER = _AnyHeader()


# ----------------------------------------------------------------- the bus messages


def _names(channel: Channel):
    """The Clark name of a child element on ``channel``: unqualified on v10, ``bus:`` before."""
    if channel is Channel.SYNC:
        return lambda local: local
    return lambda local: f"{{{BUS}}}{local}"


def read_request(body: etree._Element, *, typed: TypedDocuments | None = None) -> BusRequest:
    """The bus request in a (schema-valid) SendMessage element of any channel.

    ``typed`` reads a data typed with xsi:type (``<data xsi:type="pen:ReleaseNotice">…``) as the
    document of that type; without it, or for a type that names no document, such a data is
    refused.
    """
    channel = Channel(etree.QName(body).namespace)
    name = _names(channel)
    request = body.find(name("request"))
    info_name, content_name = ("messageInfo", "messageData") if channel is Channel.LEGACY_ASYNC else ("requestInfo", "requestData")
    info = read_info(request.find(name(info_name)), channel=channel)
    data = _payload(request.find(name(content_name)).find(name("data")), channel=channel, where=f"{content_name}/data",
                    typed=typed)
    return BusRequest(
        message_id=info["messageId"],
        correlation_id=info.get("correlationId"),
        service_id=info["serviceId"],
        message_type=MessageType(info["messageType"]) if "messageType" in info else None,
        message_date=_datetime(info["messageDate"], where=_where(channel, f"{info_name}/messageDate")),
        sender_id=info.get("senderId"),
        properties=info["properties"],
        route_id=info.get("routeId"),
        session_id=info.get("sessionId"),
        data=data,
        channel=channel,
    )


def read_info(info: etree._Element, *, channel: Channel = Channel.SYNC) -> dict:
    """A (schema-valid) requestInfo or messageInfo as a dict of its texts: ``senderId`` from
    ``sender`` (the password is never read), ``properties`` as a tuple of (key, value) pairs."""
    name = _names(channel)
    found: dict = {}
    properties = []
    for child in info:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        if local == "sender":
            found["senderId"] = (child.findtext(name("senderId")) or "").strip()
        elif local == "properties":
            properties.append(((child.findtext(name("key")) or "").strip(), child.findtext(name("value")) or ""))
        else:
            found[local] = (child.text or "").strip()
    found["properties"] = tuple(properties)
    return found


def build_request(message: BusRequest) -> etree._Element:
    """The SendMessage element for a request, on the message's channel."""
    channel = message.channel
    name = _names(channel)
    root = etree.Element(f"{{{channel.value}}}SendMessage", nsmap=_nsmap(channel))
    request = etree.SubElement(root, name("request"))
    legacy_async = channel is Channel.LEGACY_ASYNC
    info = etree.SubElement(request, name("messageInfo" if legacy_async else "requestInfo"))
    _text(info, name("messageId"), message.message_id)
    if message.correlation_id is not None:
        _text(info, name("correlationId"), message.correlation_id)
    _text(info, name("serviceId"), message.service_id)
    if legacy_async:
        _text(info, name("messageType"), (message.message_type or MessageType.REQUEST).value)
    _text(info, name("messageDate"), _timestamp(message.message_date))
    if channel is Channel.SYNC:
        if message.route_id is not None:
            _text(info, "routeId", message.route_id)
        if message.sender_id is not None:
            sender = etree.SubElement(info, "sender")
            _text(sender, "senderId", message.sender_id)
            # The bus asks for a password; it is never a credential in this exchange.
            _text(sender, "password", "")
    else:
        _text(etree.SubElement(info, name("sender")), name("senderId"), message.sender_id or "")
    for key, value in message.properties:
        prop = etree.SubElement(info, name("properties"))
        _text(prop, name("key"), key)
        _text(prop, name("value"), value)
    if channel is Channel.SYNC and message.session_id is not None:
        _text(info, "sessionId", message.session_id)
    content = etree.SubElement(request, name("messageData" if legacy_async else "requestData"))
    _data(etree.SubElement(content, name("data")), message.data)
    return root


def response_info(response: BusResponse) -> etree._Element:
    """The v10 responseInfo for ``response``."""
    info = etree.Element("responseInfo")
    _text(info, "messageId", response.message_id)
    if response.correlation_id is not None:
        _text(info, "correlationId", response.correlation_id)
    _text(info, "responseDate", _timestamp(response.response_date))
    status = etree.SubElement(info, "status")
    _text(status, "code", response.status_code)
    _text(status, "message", response.status_message)
    if response.session_id is not None:
        _text(info, "sessionId", response.session_id)
    return info


def build_response(response: BusResponse, *, channel: Channel = Channel.SYNC) -> etree._Element:
    """The SendMessageResponse for ``response``, on the channel of the request it answers."""
    root = etree.Element(f"{{{channel.value}}}SendMessageResponse", nsmap=_nsmap(channel))
    if channel is Channel.SYNC:
        content = etree.SubElement(root, "response")
        content.append(response_info(response))
        # responseData is required on v10; an answer without a document has an empty data.
        _data(etree.SubElement(etree.SubElement(content, "responseData"), "data"), response.data)
        return root
    name = _names(channel)
    content = etree.SubElement(root, name("response"))
    info = etree.SubElement(content, name("responseInfo"))
    _text(info, name("messageId"), response.message_id)
    _text(info, name("correlationId"), response.correlation_id or "")
    _text(info, name("responseDate"), _timestamp(response.response_date))
    status = etree.SubElement(info, name("status"))
    _text(status, name("code"), response.status_code)
    _text(status, name("message"), response.status_message)
    if response.data is not None:
        _data(etree.SubElement(etree.SubElement(content, name("responseData")), name("data")), response.data)
    return root


def read_response(body: etree._Element, *, typed: TypedDocuments | None = None) -> BusResponse:
    """The bus response in a (schema-valid) SendMessageResponse element of any channel
    (``typed`` as for ``read_request``)."""
    channel = Channel(etree.QName(body).namespace)
    name = _names(channel)
    content = body.find(name("response"))
    info = content.find(name("responseInfo"))
    status = info.find(name("status"))
    response_data = content.find(name("responseData"))
    correlation = info.findtext(name("correlationId"))
    return BusResponse(
        message_id=info.findtext(name("messageId")).strip(),
        correlation_id=correlation.strip() if correlation is not None else None,
        response_date=_datetime(info.findtext(name("responseDate")), where=_where(channel, "responseInfo/responseDate",
                                                                                     root="SendMessageResponse/response")),
        status_code=status.findtext(name("code")).strip(),
        status_message=status.findtext(name("message")) or "",
        data=None if response_data is None else _payload(response_data.find(name("data")), channel=channel,
                                                          where="responseData/data", typed=typed),
        session_id=(info.findtext("sessionId") or "").strip() or None if channel is Channel.SYNC else None,
    )


def _nsmap(channel: Channel) -> dict[str, str]:
    if channel is Channel.SYNC:
        return {"v10": SYNC_TYPES}
    return {"bus": BUS} if channel is Channel.LEGACY_SYNC else {"async": BUS_ASYNC, "bus": BUS}


def _text(parent: etree._Element, tag: str, value: str) -> None:
    etree.SubElement(parent, tag).text = value


def _data(data: etree._Element, payload: etree._Element | None) -> None:
    if payload is not None:
        data.append(payload)


def _payload(data: etree._Element | None, *, channel: Channel, where: str,
             typed: TypedDocuments | None = None) -> etree._Element | None:
    """The one document element in ``data``; None when data is empty.

    v10 types data as xs:anyType, so the schema admits several elements or text beside one:
    the exchange carries one document, and anything else is refused here. A data typed with
    xsi:type holds the document's content itself: it is read as the document of that type.
    """
    if data is None:
        return None
    if data.get(_XSI_TYPE) is not None:
        return _typed_payload(data, typed, where=_where(channel, where))
    elements = [child for child in data if isinstance(child.tag, str)]
    text = (data.text or "").strip() or any((child.tail or "").strip() for child in data)
    if len(elements) > 1 or (text and elements) or (text and channel is Channel.SYNC):
        raise SoapFault.client(
            "unexpected-data",
            f"data must hold exactly one document element in its own namespace, but holds "
            f"{len(elements)} element(s){' and text' if text else ''}",
            error_data=_where(channel, where),
        )
    return elements[0] if elements else None


def _typed_payload(data: etree._Element, typed: TypedDocuments | None, *, where: str) -> etree._Element:
    prefix, _, local = data.get(_XSI_TYPE).strip().rpartition(":")
    type_name = f"{{{data.nsmap.get(prefix or None, '')}}}{local}"
    document = typed(type_name) if typed is not None else None
    if document is None:
        raise SoapFault.client(
            "unexpected-data",
            f"data is typed {type_name[:200]}, which is no document of this service; send the document "
            "element itself inside data, or type data with the document's type",
            error_data=where,
        )
    element = etree.Element(document, nsmap={key: value for key, value in data.nsmap.items() if key is not None})
    element.text = data.text
    for child in data:
        element.append(copy.deepcopy(child))
    return element


def _where(channel: Channel, rest: str, *, root: str = "SendMessage/request") -> str:
    prefix = "v10" if channel is Channel.SYNC else "bus" if channel is Channel.LEGACY_SYNC else "async"
    if channel is Channel.SYNC:
        return f"/Envelope/Body/{prefix}:{root}/{rest}"
    steps = root.split("/") + rest.split("/")
    return f"/Envelope/Body/{prefix}:{steps[0]}/" + "/".join(f"bus:{step}" for step in steps[1:])


def _timestamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _datetime(text: str, *, where: str) -> dt.datetime:
    # xs:dateTime as the schema has already checked it; Python 3.11 reads the "Z" suffix.
    # The schema still admits what Python cannot represent (year 0 and below, year 10000 and
    # above, 24:00:00): the sender's mistake, said precisely.
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SoapFault.client(
            "date-out-of-range",
            "a date and time must be within the years 0001-9999 and before 24:00; send midnight as 00:00 of the next day",
            error_data=where,
        ) from None


def _name(element: etree._Element) -> str:
    return element.tag if isinstance(element.tag, str) else "a comment or processing instruction"
