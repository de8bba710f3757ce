"""Serving SOAP services over aiohttp: the one request pipeline every SOAP endpoint shares.

``POST /soap/{service}``: media type, size, the hardened parse, the envelope, the sender's
signature, the operation (by Body element and SOAPAction), one schema validation, then the
service's handler; every failure becomes a SOAP Fault, sent with HTTP 500 (WS-I BP R1126) and
its fault code (``soap:Client`` or ``soap:Server``) in the response's ``FAULT_CODE`` item, for
metrics. A request is answered in its own envelope: ШЭП SyncChannel v10, or the deprecated
``bus:v1`` one for a service whose contract still accepts it. The pipeline parses once and
validates once; no WSDL machinery runs per request. With a ``Signer`` every answer, faults
included, is signed. ``GET /soap/{service}?wsdl`` and ``?xsd=NAME`` publish the contract.

The gateway's own endpoint (``gateway.entrypoints.soap.relay``) and the agency simulators both use it.
"""

from __future__ import annotations

import codecs
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from cryptography import x509
from lxml import etree
from pydantic import ValidationError

from gateway.errors import GatewayError, NotFound
from gateway.web.body import read_body
from gateway.web.intake import CLIENT_CLOSED, FAULT_CODE, UnreadableBody
from gateway.security.replay import Freshness
from gateway.logs import get_logger
from gateway.security.xmldsig import SECURITY, Signer, Verifier
from gateway.soap.contracts import Contract, Operation
from gateway.soap.envelope import (
    BusRequest,
    BusResponse,
    Channel,
    Envelope,
    build_envelope,
    build_response,
    parse_envelope,
    read_request,
    serialise,
    verified,
)
from gateway.soap.faults import FAULT_STATUS, SoapFault, fault_body
from gateway.store import StoreError

__all__ = ["FAULT_CODE", "Handler", "SignerCheck", "fault_response", "SoapCall", "SoapEndpoint", "SoapService",
           "VerifierFor"]

T = TypeVar("T")

log = get_logger("gateway.soap")

PREFIX = "/soap"
_MEDIA_TYPE = "text/xml"
_CHANNEL = web.RequestKey("soap_channel", Channel)


@dataclass(frozen=True, slots=True)
class SoapCall:
    """A request that passed the pipeline: schema-valid, its bus content read."""

    http: web.Request
    raw: bytes
    """The request's bytes as received."""
    envelope: Envelope
    """Its Body is the verified one when the sender signed."""
    operation: Operation
    message: BusRequest | None
    """None for an operation of a contract that carries no bus message (``SoapService.read``)."""
    received_at: dt.datetime

    def expect_service(self, *service_ids: str) -> str:
        """The request's serviceId if it is one of ``service_ids``; else a Client fault."""
        service_id = self.message.service_id
        if service_id not in service_ids:
            raise SoapFault.client(
                "unknown-service",
                f"serviceId {service_id!r} is not offered here (offered: {', '.join(service_ids)})",
                error_data=self.path("Info/serviceId"),
            )
        return service_id

    def expect_data(self, *tags: str) -> etree._Element:
        """The document in data if it is one of ``tags`` (Clark names); else a Client fault."""
        data = self.message.data
        if data is None or data.tag not in tags:
            found = "nothing" if data is None else data.tag
            raise SoapFault.client(
                "unexpected-data",
                f"data must hold {' or '.join(tags)} for serviceId {self.message.service_id!r}, but holds {found}",
                error_data=self.path("Data/data"),
            )
        return data

    def decode(self, decode: Callable[[etree._Element], T], *tags: str) -> T:
        """``decode`` the document in data, which must be one of ``tags``; what the canonical model
        refuses (an IIN's check digit, a date before another) is the caller's mistake."""
        data = self.expect_data(*tags)
        try:
            return decode(data)
        except ValidationError as error:
            problems = "; ".join(
                ": ".join(filter(None, (".".join(map(str, problem["loc"])), problem["msg"].removeprefix("Value error, "))))
                for problem in error.errors()
            )
            raise SoapFault.client("invalid-content", f"{etree.QName(data).localname}: {problems}", error_data=self.path("Data/data")) from None
        except ValueError as error:
            raise SoapFault.client("invalid-content", f"{etree.QName(data).localname}: {error}", error_data=self.path("Data/data")) from None

    def path(self, rest: str) -> str:
        """The errorData path of a part of the request: ``path("Info/serviceId")`` is
        ``/Envelope/Body/v10:SendMessage/request/requestInfo/serviceId`` on v10."""
        channel = self.message.channel
        if channel is Channel.SYNC:
            return f"/Envelope/Body/v10:SendMessage/request/request{rest}"
        steps = f"{'request' if channel is Channel.LEGACY_SYNC else 'message'}{rest}".split("/")
        root = "bus" if channel is Channel.LEGACY_SYNC else "async"
        return f"/Envelope/Body/{root}:SendMessage/bus:request/" + "/".join(f"bus:{step}" for step in steps)

    def reply(self, data: etree._Element | None = None, *, code: str = "OK", message: str = "") -> BusResponse:
        """A response to this request, dated when it was received."""
        return BusResponse(
            message_id=str(uuid.uuid4()),
            correlation_id=self.message.message_id,
            response_date=self.received_at,
            status_code=code,
            status_message=message,
            data=data,
            session_id=self.message.session_id,
        )


Handler = Callable[[SoapCall], Awaitable[BusResponse | etree._Element]]
"""A handler answers with a bus response, or with the Body element of its contract's answer."""

SignerCheck = Callable[[str, x509.Certificate], Awaitable[None]]
"""An asynchronous check of the certificate that verified a sender's signature (its revocation,
say), given the sender the verifier is pinned for; raises a ``GatewayError`` to refuse."""

VerifierFor = Callable[[web.Request], Verifier | None]
"""The verifier for a request's sender (told by the transport), or None to leave signatures
unchecked: an endpoint that does not know the sender leaves refusing it to the handler."""


def _no_verifier(request: web.Request) -> None:
    return None


@dataclass(frozen=True)
class SoapService:
    """A service: its contract and a handler for each of its operations."""

    contract: Contract
    handlers: Mapping[str, Handler]
    read: Callable[[etree._Element], BusRequest | None] | None = None
    """Reads the bus message of a schema-valid Body: a contract other than the bus's channels
    brings its own reader, which answers None for an operation that carries no message; None:
    the SyncChannel (or deprecated bus) request."""
    fault_detail: Callable[[SoapFault, dt.datetime], etree._Element] | None = None
    """The element in each fault's detail; None: the request's channel's (SendMessageFault)."""

    def __post_init__(self) -> None:
        if set(self.handlers) != set(self.contract.operations):
            raise ValueError(
                f"service {self.contract.name}: handlers {sorted(self.handlers)} do not match "
                f"the WSDL's operations {sorted(self.contract.operations)}"
            )

    @property
    def name(self) -> str:
        return self.contract.name


class SoapEndpoint:
    """The SOAP services of one application, served under ``/soap/{service}``."""

    def __init__(
        self,
        services: Iterable[SoapService],
        *,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
        signer: Signer | None = None,
        verifier_for: VerifierFor = _no_verifier,
        signer_check: SignerCheck | None = None,
        freshness: Freshness | None = None,
        public_url: str | None = None,
        public_host: str | None = None,
    ) -> None:
        self._services = {service.name: service for service in services}
        self._public_url = public_url.rstrip("/") if public_url else None
        self._public_host = public_host
        self._freshness = freshness
        self._max_bytes = max_bytes
        self._clock = clock
        self._signer = signer
        self._verifier_for = verifier_for
        self._signer_check = signer_check

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PREFIX + "/{service}", self._post)
        app.router.add_get(PREFIX + "/{service}", self._get)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    async def _post(self, request: web.Request) -> web.Response:
        received_at = self._now()
        name = request.match_info["service"]
        try:
            service = self._services.get(name)
            if service is None:
                raise SoapFault.client("unknown-service", self._unknown(name))
            call = await self._admit(request, service, received_at)
            response = await service.handlers[call.operation.name](call)
            if isinstance(response, etree._Element):
                document = build_envelope(response)
            else:
                document = build_envelope(build_response(response, channel=call.message.channel))
            return _xml(self._serialise(document), 200)
        except SoapFault as fault:
            return self._fault(fault, request)
        except RequestPayloadError:
            # The body is not the encoding it claims (a broken gzip, say): the sender's mistake.
            return self._fault(SoapFault.of(UnreadableBody(
                "the body cannot be decoded as its Content-Encoding says; send it as declared")), request)
        except GatewayError as error:
            return self._fault(SoapFault.of(error), request, headers=error.headers)
        except StoreError as error:
            log.error("store unavailable", service=self._logged(name), error=str(error))
            return self._fault(
                SoapFault.server("unavailable", "the store is unavailable; nothing was accepted, try again later"),
                request,
            )
        except ConnectionResetError:
            # The caller went away (mid-body, say): not an internal error, and nobody to answer.
            log.info("SOAP caller went away before the answer", service=self._logged(name))
            return web.Response(status=CLIENT_CLOSED)
        except Exception:
            log.exception("SOAP request failed", service=self._logged(name))
            return self._fault(
                SoapFault.server("internal-error", "the service hit an internal error; the request was not accepted"), request
            )

    async def _admit(self, request: web.Request, service: SoapService, received_at: dt.datetime) -> SoapCall:
        if request.content_type != _MEDIA_TYPE:
            raise SoapFault.client(
                "unsupported-media-type",
                f"send SOAP 1.1 as {_MEDIA_TYPE} (Content-Type was {request.content_type or 'missing'!r})",
            )
        raw = await read_body(request, self._max_bytes)
        verifier = self._verifier_for(request)
        understood = (SECURITY,) if verifier is not None else ()
        envelope = parse_envelope(raw, max_bytes=self._max_bytes, understood=understood)
        channel = _channel_of(envelope.body)
        if channel is not None:
            # Faults from here on are answered in the request's own envelope.
            request[_CHANNEL] = channel
        _check_charset(request.charset, envelope)
        if verifier is not None:
            # Before anything reads the Body: from here on only what the signature covers is used.
            envelope = verified(envelope, verifier, at=received_at)
            if self._signer_check is not None and envelope.signed_by is not None:
                await self._signer_check(verifier.sender, envelope.signed_by)
        operation = _operation(service.contract, envelope.body)
        service.contract.validate(envelope.body)
        if service.read is not None:
            message = service.read(envelope.body)
        else:
            message = read_request(envelope.body, typed=service.contract.document_for_type)
            request[_CHANNEL] = message.channel
            if message.channel.deprecated:
                log.info("SOAP request in the deprecated envelope", service=service.name, channel=message.channel.name)
        if self._freshness is not None and message is not None:
            # After the signature check: a date the signature does not cover proves nothing.
            self._freshness.check(message.message_date, what="messageDate")
        _check_soap_action(request.headers.get("SOAPAction"), operation, message, service.contract)
        return SoapCall(request, raw, envelope, operation, message, received_at)

    async def _get(self, request: web.Request) -> web.Response:
        service = self._services.get(request.match_info["service"])
        if service is None:
            return _problem(NotFound(self._unknown(request.match_info["service"])), request)
        service_url = f"{self._base_url(request)}{PREFIX}/{service.name}"
        if "wsdl" in request.query:
            return _xml(service.contract.publish_wsdl(service_url), 200)
        if "xsd" in request.query:
            document = service.contract.publish_xsd(request.query["xsd"], service_url)
            if document is None:
                offered = ", ".join(service.contract.published)
                return _problem(NotFound(f"service {service.name} has no schema by that name (it has: {offered})"), request)
            return _xml(document, 200)
        return _problem(NotFound(f"GET {service_url}?wsdl for the WSDL; send requests with POST"), request)

    def _base_url(self, request: web.Request) -> str:
        """Where callers reach this endpoint: the configured public URL, else the scheme, the
        configured host (or the address the connection arrived at) and the listener's port —
        never the request's Host header, which the caller writes."""
        if self._public_url is not None:
            return self._public_url
        transport = request.transport
        address = transport.get_extra_info("sockname") if transport is not None else None
        host, port = (address[0], address[1]) if address else ("127.0.0.1", 80)
        if self._public_host not in (None, "", "0.0.0.0", "::"):  # a listener on every address names none
            host = self._public_host
        scheme = "https" if transport is not None and transport.get_extra_info("sslcontext") else "http"
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"

    def _unknown(self, name: str) -> str:
        return f"no SOAP service {name[:64]!r} here (services: {', '.join(sorted(self._services)) or 'none'})"

    def _logged(self, service: str) -> str:
        # A path the caller chose can hold anything, a name included: only services offered here are named.
        return service if service in self._services else "[unknown]"

    def _fault(self, fault: SoapFault, request: web.Request, *, headers: Mapping[str, str] | None = None) -> web.Response:
        service = request.match_info["service"]
        # The error code, never the message: it is for the caller, not the log.
        if fault.is_client_fault:
            log.info("SOAP client fault", service=self._logged(service), error_code=fault.error_code)
        else:
            log.error("SOAP server fault", service=self._logged(service), error_code=fault.error_code)
        service_of = self._services.get(service)
        if service_of is not None and service_of.fault_detail is not None:
            document = build_envelope(fault_body(fault, now=self._now(), detail=service_of.fault_detail))
        else:
            channel = request.get(_CHANNEL, Channel.SYNC)
            document = build_envelope(fault_body(fault, now=self._now(), namespace=channel.value))
        return fault_response(self._serialise(document), fault, headers=headers)

    def _serialise(self, document: etree._Element) -> bytes:
        return serialise(document if self._signer is None else self._signer.sign(document))


def _channel_of(body: etree._Element) -> Channel | None:
    try:
        return Channel(etree.QName(body).namespace)
    except ValueError:
        return None


def _operation(contract: Contract, body: etree._Element) -> Operation:
    operation = contract.operation_for(body)
    if operation is None:
        expected = " or ".join(op.request for op in contract.operations.values())
        raise SoapFault.client(
            "unknown-operation",
            f"service {contract.name} expects {expected} in the Body, but found {body.tag}",
            error_data="/Envelope/Body",
        )
    return operation


def fault_response(body: bytes, fault: SoapFault, *, headers: Mapping[str, str] | None = None) -> web.Response:
    """The HTTP answer carrying a (serialised) fault: HTTP 500 whatever its code, the code kept
    in ``FAULT_CODE`` for those who count faults."""
    response = web.Response(body=body, status=FAULT_STATUS, content_type=_MEDIA_TYPE, charset="utf-8",
                            headers=headers or None)
    response[FAULT_CODE] = fault.code.value
    return response


def _check_soap_action(soap_action: str | None, operation: Operation, message: BusRequest | None,
                       contract: Contract) -> None:
    """SOAP 1.1 §6.1.1: the header states the intent; an empty or absent one leaves it to the Body.

    Besides the WSDL's soapAction, the bus's own routing name — the request's serviceId, which
    the gateway's outbox sends — is accepted: both say the same thing about the request; and
    with the deprecated envelope, its WSDL's soapAction.
    """
    action = (soap_action or "").strip().strip('"')
    if message is None:
        accepted: tuple[str, ...] = (operation.soap_action,)
    else:
        accepted = (operation.soap_action, message.service_id,
                    *((contract.deprecated_soap_action,) if message.channel.deprecated else ()))
    if action and action not in accepted:
        also = f" or the serviceId {message.service_id!r}" if message is not None else ""
        raise SoapFault.client(
            "unknown-operation",
            f"SOAPAction {action[:200]!r} does not match the request: send {operation.soap_action!r} "
            f"({operation.name}){also}",
        )


def _check_charset(charset: str | None, envelope: Envelope) -> None:
    """Refuse a Content-Type charset that contradicts the document's own encoding.

    The parser reads the bytes by the XML declaration; a different charset in the header means
    one of the two is wrong, and guessing which could change every Cyrillic letter.
    """
    if not charset:
        return
    declared = envelope.document.getroottree().docinfo.encoding or "UTF-8"
    if _codec(charset) != _codec(declared):
        raise SoapFault.client(
            "encoding-mismatch",
            f"Content-Type says charset={charset[:40]} but the document is encoded as {declared}; make them agree",
        )


def _codec(name: str) -> str:
    try:
        normal = codecs.lookup(name).name
    except LookupError:
        return name.lower()
    # A byte order mark decides the byte order of UTF-16; the family is what must agree.
    return "utf-16" if normal.startswith("utf-16") else normal


def _xml(body: bytes, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type=_MEDIA_TYPE, charset="utf-8")


def _problem(error: GatewayError, request: web.Request) -> web.Response:
    return web.json_response(error.problem(instance=request.path), status=error.status, content_type="application/problem+json")
