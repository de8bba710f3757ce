"""SOAP 1.1 Faults with the bus's ErrorInfo: what goes wrong, said so the caller can act on it.

A fault is ``soap:Client`` when the request is at fault (resending it unchanged will fail
again) and ``soap:Server`` only when the gateway or the service itself failed. Every fault
travels with HTTP 500 (``FAULT_STATUS``), as SOAP 1.1 §6.2 and WS-I Basic Profile R1126 ask:
SOAP 1.1 stacks (JAX-WS RI, CXF, WCF) read a fault only then. The fault code, not the HTTP
status, tells a permanent refusal from a failure worth retrying (``read_fault``,
``fault_code_of``). docs/integration-soap.md says the same to integrators.

On the wire the detail is the bus's ``SendMessageFault{ErrorInfo{errorCode, errorMessage,
errorData?, errorDate, subError*}}`` (SyncChannel v10; ``send_message_fault``), or, for a
request in the deprecated ``urn:reentry-gateway:bus:v1`` envelope, ``bus:ErrorInfo``.
``error_info`` builds the ErrorInfo itself, for any channel that wraps it in its own element.

Messages never carry personal data: validation messages name the element and the rule, not
the value that broke it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from enum import StrEnum

from lxml import etree

from gateway.errors import GatewayError

__all__ = [
    "BUS",
    "BUS_ASYNC",
    "FAULT_STATUS",
    "SOAP11",
    "SYNC_INTERFACES",
    "SYNC_TYPES",
    "FaultCode",
    "SoapFault",
    "error_info",
    "fault_body",
    "read_error_info",
    "read_fault",
    "send_message_fault",
]

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SYNC_TYPES = "http://bip.bee.kz/SyncChannel/v10/Types"
"""ШЭП SyncChannel v10: the namespace of SendMessage, SendMessageResponse and SendMessageFault."""
SYNC_INTERFACES = "http://bip.bee.kz/SyncChannel/v10/Interfaces"
"""ШЭП SyncChannel v10: the WSDL's target namespace (port type ISyncChannel)."""
BUS = "urn:reentry-gateway:bus:v1"
"""The gateway's own envelope before v10; accepted until the end of its deprecation period."""
BUS_ASYNC = "urn:reentry-gateway:bus:async:v1"

FAULT_STATUS = 500
"""The HTTP status of every SOAP 1.1 fault (WS-I Basic Profile R1126), Client or Server."""

_FAULT = f"{{{SOAP11}}}Fault"
_SEND_MESSAGE_FAULT = "SendMessageFault"
_LEGACY_ERROR_INFO = f"{{{BUS}}}ErrorInfo"
# ErrorInfo's text fields are bounded by the XSDs.
_MESSAGE_LIMIT = 2000
_SUB_ERRORS = 20
_TOO_MANY_REQUESTS = 429


class FaultCode(StrEnum):
    CLIENT = "Client"
    SERVER = "Server"


class SoapFault(Exception):
    """A fault to answer with, or one an endpoint answered with.

    ``error_code`` is stable and machine-readable (``schema-violation``, ``invalid-iin``,
    ``not-found`` …); ``message`` is for a person; ``error_data`` says where, when the problem
    has a place (the path of the offending element); ``sub_errors`` are further problems of the
    same request (ErrorInfo's subError).
    """

    def __init__(
        self,
        code: FaultCode,
        error_code: str,
        message: str,
        *,
        error_data: str | None = None,
        sub_errors: Sequence[SoapFault] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.error_code = error_code
        self.message = message
        self.error_data = error_data
        self.sub_errors = tuple(sub_errors)

    @classmethod
    def client(
        cls, error_code: str, message: str, *, error_data: str | None = None, sub_errors: Sequence[SoapFault] = ()
    ) -> SoapFault:
        return cls(FaultCode.CLIENT, error_code, message, error_data=error_data, sub_errors=sub_errors)

    @classmethod
    def server(cls, error_code: str, message: str) -> SoapFault:
        return cls(FaultCode.SERVER, error_code, message)

    @classmethod
    def of(cls, error: GatewayError) -> SoapFault:
        """The fault for an error of the gateway's one hierarchy, keeping its slug.

        A client error is a Client fault, except being throttled (429): the same request sent
        again later succeeds, which is what a Server fault tells a SOAP stack or an outbox.
        """
        code = FaultCode.CLIENT if error.is_client_error and error.status != _TOO_MANY_REQUESTS else FaultCode.SERVER
        return cls(code, error.slug, error.detail)

    @property
    def is_client_fault(self) -> bool:
        return self.code is FaultCode.CLIENT


def error_info(fault: SoapFault, *, now: dt.datetime, tag: str = "ErrorInfo") -> etree._Element:
    """The bus's ErrorInfo for ``fault``: unqualified children, its sub-errors as ``subError``."""
    info = etree.Element(tag)
    etree.SubElement(info, "errorCode").text = fault.error_code
    etree.SubElement(info, "errorMessage").text = _bounded(fault.message)
    if fault.error_data:
        etree.SubElement(info, "errorData").text = _bounded(fault.error_data)
    etree.SubElement(info, "errorDate").text = now.isoformat(timespec="milliseconds")
    for sub in fault.sub_errors[:_SUB_ERRORS]:
        info.append(error_info(sub, now=now, tag="subError"))
    return info


def send_message_fault(fault: SoapFault, *, now: dt.datetime, namespace: str = SYNC_TYPES) -> etree._Element:
    """``{namespace}SendMessageFault{ErrorInfo}``, a fault's detail entry on a v10 channel."""
    wrapper = etree.Element(f"{{{namespace}}}{_SEND_MESSAGE_FAULT}", nsmap={"v10": namespace})
    wrapper.append(error_info(fault, now=now))
    return wrapper


def _legacy_error_info(fault: SoapFault, *, now: dt.datetime) -> etree._Element:
    info = etree.Element(_LEGACY_ERROR_INFO, nsmap={"bus": BUS})
    etree.SubElement(info, f"{{{BUS}}}errorCode").text = fault.error_code
    etree.SubElement(info, f"{{{BUS}}}errorMessage").text = _bounded(fault.message)
    if fault.error_data:
        etree.SubElement(info, f"{{{BUS}}}errorData").text = _bounded(fault.error_data)
    etree.SubElement(info, f"{{{BUS}}}errorDate").text = now.isoformat(timespec="milliseconds")
    return info


def fault_body(
    fault: SoapFault, *, now: dt.datetime, namespace: str = SYNC_TYPES,
    detail: Callable[[SoapFault, dt.datetime], etree._Element] | None = None,
) -> etree._Element:
    """The soap:Fault element for a Body, its detail in the channel of ``namespace``: a v10
    ``SendMessageFault`` for any namespace but the deprecated ``BUS`` (``bus:ErrorInfo``);
    ``detail``, when given, builds a contract's own element instead (AsyncChannel's)."""
    element = etree.Element(_FAULT, nsmap={"soap": SOAP11})
    # faultcode is a QName; the "soap" prefix is declared on the Fault element itself so the
    # value resolves wherever the element ends up.
    etree.SubElement(element, "faultcode").text = f"soap:{fault.code.value}"
    etree.SubElement(element, "faultstring").text = _bounded(fault.message)
    holder = etree.SubElement(element, "detail")
    if detail is not None:
        holder.append(detail(fault, now))
    elif namespace in (BUS, BUS_ASYNC):
        holder.append(_legacy_error_info(fault, now=now))
    else:
        holder.append(send_message_fault(fault, now=now, namespace=namespace))
    return element


def read_fault(body: etree._Element) -> SoapFault | None:
    """The fault a Body element holds, or None if it is not a fault.

    The ErrorInfo is read from a ``SendMessageFault`` of any channel's namespace, or from the
    deprecated ``bus:ErrorInfo``; a fault without either is read from faultcode and faultstring.
    """
    if body.tag != _FAULT:
        return None
    code = _fault_code((body.findtext("faultcode") or "").strip())
    message = (body.findtext("faultstring") or "").strip()
    detail = body.find("detail")
    entries = [child for child in detail if isinstance(child.tag, str)] if detail is not None else []
    for entry in entries:
        if etree.QName(entry).localname == _SEND_MESSAGE_FAULT and entry.find("ErrorInfo") is not None:
            return read_error_info(entry.find("ErrorInfo"), code=code, fallback=message)
        if entry.tag == _LEGACY_ERROR_INFO:
            return SoapFault(
                code,
                entry.findtext(f"{{{BUS}}}errorCode") or "unspecified",
                entry.findtext(f"{{{BUS}}}errorMessage") or message,
                error_data=entry.findtext(f"{{{BUS}}}errorData"),
            )
    return SoapFault(code, "unspecified", message or "fault without ErrorInfo")


def read_error_info(info: etree._Element, *, code: FaultCode, fallback: str = "") -> SoapFault:
    """The fault an (unqualified) ErrorInfo element describes, its subErrors included."""
    return SoapFault(
        code,
        (info.findtext("errorCode") or "").strip() or "unspecified",
        info.findtext("errorMessage") or fallback,
        error_data=info.findtext("errorData"),
        sub_errors=[read_error_info(sub, code=code) for sub in info.iterfind("subError")],
    )


def _fault_code(text: str) -> FaultCode:
    # SOAP 1.1 codes are extensible with dots ("Client.Authentication"); the class is the first part.
    local = text.rpartition(":")[2]
    return FaultCode.CLIENT if local.split(".")[0] == FaultCode.CLIENT else FaultCode.SERVER


def _bounded(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"
