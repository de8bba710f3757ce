"""SOAP 1.1 Faults with the bus's ErrorInfo: what goes wrong, said so the caller can act on it.

A fault is ``soap:Client`` when the request is at fault (resending it unchanged will fail
again) and ``soap:Server`` only when the gateway or the service itself failed. SOAP 1.1 (§6.2)
returns every fault with HTTP 500; this project's rule is that a client's mistake is never a
5xx, so Client faults carry a 4xx (400 unless a more precise one applies: 401, 403, 404, 413,
415, 422) and Server faults a 5xx. docs/integration-soap.md says the same to integrators.

Messages never carry personal data: validation messages name the element and the rule, not
the value that broke it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum

from lxml import etree

from gateway.errors import GatewayError

__all__ = ["FaultCode", "SoapFault", "fault_body", "read_fault"]

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
BUS = "urn:reentry-gateway:bus:v1"

_FAULT = f"{{{SOAP11}}}Fault"
_ERROR_INFO = f"{{{BUS}}}ErrorInfo"
# ErrorInfo's text fields are bounded by bus.xsd (bus:Message).
_MESSAGE_LIMIT = 2000


class FaultCode(StrEnum):
    CLIENT = "Client"
    SERVER = "Server"


class SoapFault(Exception):
    """A fault to answer with, or one an endpoint answered with.

    ``error_code`` is stable and machine-readable (``schema-violation``, ``invalid-iin``,
    ``not-found`` …); ``message`` is for a person; ``error_data`` says where, when the problem
    has a place (the path of the offending element).
    """

    def __init__(
        self,
        code: FaultCode,
        error_code: str,
        message: str,
        *,
        error_data: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.error_code = error_code
        self.message = message
        self.error_data = error_data
        self.http_status = http_status or (400 if code is FaultCode.CLIENT else 500)

    @classmethod
    def client(cls, error_code: str, message: str, *, error_data: str | None = None, http_status: int = 400) -> SoapFault:
        return cls(FaultCode.CLIENT, error_code, message, error_data=error_data, http_status=http_status)

    @classmethod
    def server(cls, error_code: str, message: str, *, http_status: int = 500) -> SoapFault:
        return cls(FaultCode.SERVER, error_code, message, http_status=http_status)

    @classmethod
    def of(cls, error: GatewayError) -> SoapFault:
        """The fault for an error of the gateway's one hierarchy, keeping its status and slug."""
        code = FaultCode.CLIENT if error.is_client_error else FaultCode.SERVER
        return cls(code, error.slug, error.detail, http_status=error.status)

    @property
    def is_client_fault(self) -> bool:
        return self.code is FaultCode.CLIENT


def fault_body(
    fault: SoapFault, *, now: dt.datetime, detail: Callable[[SoapFault, dt.datetime], etree._Element] | None = None
) -> etree._Element:
    """The soap:Fault element for a Body, with ErrorInfo in its detail (``detail`` builds a
    contract's own element for it)."""
    element = etree.Element(_FAULT, nsmap={"soap": SOAP11})
    # faultcode is a QName; the "soap" prefix is declared on the Fault element itself so the
    # value resolves wherever the element ends up.
    etree.SubElement(element, "faultcode").text = f"soap:{fault.code.value}"
    etree.SubElement(element, "faultstring").text = _bounded(fault.message)
    if detail is not None:
        etree.SubElement(element, "detail").append(detail(fault, now))
        return element
    info = etree.SubElement(etree.SubElement(element, "detail"), _ERROR_INFO, nsmap={"bus": BUS})
    etree.SubElement(info, f"{{{BUS}}}errorCode").text = fault.error_code
    etree.SubElement(info, f"{{{BUS}}}errorMessage").text = _bounded(fault.message)
    if fault.error_data:
        etree.SubElement(info, f"{{{BUS}}}errorData").text = _bounded(fault.error_data)
    etree.SubElement(info, f"{{{BUS}}}errorDate").text = now.isoformat(timespec="milliseconds")
    return element


def read_fault(body: etree._Element, *, http_status: int) -> SoapFault | None:
    """The fault a Body element holds, or None if it is not a fault."""
    if body.tag != _FAULT:
        return None
    code_text = (body.findtext("faultcode") or "").strip()
    local = code_text.rpartition(":")[2]
    # SOAP 1.1 codes are extensible with dots ("Client.Authentication"); the class is the first part.
    code = FaultCode.CLIENT if local.split(".")[0] == FaultCode.CLIENT else FaultCode.SERVER
    info = body.find(f"detail/{_ERROR_INFO}")
    message = (body.findtext("faultstring") or "").strip()
    if info is None:
        return SoapFault(code, "unspecified", message or "fault without ErrorInfo", http_status=http_status)
    return SoapFault(
        code,
        info.findtext(f"{{{BUS}}}errorCode") or "unspecified",
        info.findtext(f"{{{BUS}}}errorMessage") or message,
        error_data=info.findtext(f"{{{BUS}}}errorData"),
        http_status=http_status,
    )


def _bounded(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"
