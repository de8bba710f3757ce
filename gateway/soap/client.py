"""Calling an agency's SOAP service over ШЭП SyncChannel v10: the envelope built and read where
the gateway's endpoint builds and reads it, aiohttp carrying it.

Requests are put together by ``gateway.soap.envelope.build_request`` (the builder the
endpoint's relay uses) and their SOAPAction comes from the service's WSDL. Replies are read by
the pipeline the gateway's endpoint uses (hardened parse, one compiled XSD validation,
``read_response``): on a custody history of 2,000 episodes it is about three times faster than
zeep's binding (docs/integration-soap.md, "Measurements"), and it keeps every byte from outside
on the one hardened parser. ``zeep_client`` loads a WSDL into zeep from the local files only,
for those who want zeep's model of a contract (the tests call the gateway with it).

``ServiceMessages`` builds and reads messages without I/O (the court's outbox uses it);
``ServiceClient`` adds the aiohttp exchange. With a ``Signer`` every request is signed; with a
``Verifier`` (the agency's pinned certificates) every answer, faults included, is verified
before anything in it is read. Failures are classified for the workflows
(``gateway.workflows.ports``) by the fault code, whatever the HTTP status (every fault travels
with HTTP 500): no answer, a Server fault, a 5xx without a fault, an answer that breaks the
contract or whose signature is refused -> ``SourceUnavailable``; a Client fault ->
``SourceRejected``, or ``NotFound`` when its errorCode is ``not-found``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import zeep
import zeep.transports
from lxml import etree

from gateway.resources import resource_dir
from gateway.security.xmldsig import SECURITY, Signer, Verifier
from gateway.soap.contracts import contract
from gateway.soap.envelope import BusRequest, build_envelope, build_request, parse_envelope, read_response, serialise, verified
from gateway.soap.faults import SoapFault, read_fault
from gateway.workflows.ports import NotFound, SourceRejected, SourceUnavailable

__all__ = ["NOT_FOUND", "ServiceClient", "ServiceMessages", "zeep_client"]

NOT_FOUND = "not-found"
_OPERATION = "SendMessage"
# Far above any honest answer (a long custody history is tens of kilobytes).
_MAX_REPLY_BYTES = 10 * 1024 * 1024
T = TypeVar("T")


class _LocalSchemas(zeep.transports.Transport):
    """A zeep transport that reads WSDL and XSD files from one folder and nothing else."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self._folder = folder.resolve()

    def load(self, url: str) -> bytes:
        location = url.removeprefix("file://")
        path = Path(location).resolve()
        if "://" in location or not path.is_relative_to(self._folder):
            raise ValueError(f"refusing to load {url!r}: schemas are read from {self._folder} only")
        return path.read_bytes()


@functools.cache
def zeep_client(wsdl_name: str) -> zeep.Client:
    """The zeep client for ``schemas/soap/<wsdl_name>``, loaded once per process."""
    folder = resource_dir("schemas") / "soap"
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    return zeep.Client(wsdl=str(folder / wsdl_name), transport=_LocalSchemas(folder), settings=settings)


class ServiceMessages:
    """The messages of one SOAP service, sent as member ``sender_id``, built and read with lxml.

    ``signer`` signs each request; ``verifier`` checks each answer against the certificates
    pinned for the service's member.
    """

    def __init__(
        self, source: str, wsdl_name: str, *, sender_id: str, signer: Signer | None = None, verifier: Verifier | None = None
    ) -> None:
        self.source = source
        self.sender_id = sender_id
        self._signer = signer
        self._verifier = verifier
        self._contract = contract(wsdl_name)
        self.soap_action = self._contract.operations[_OPERATION].soap_action

    def request(
        self,
        service_id: str,
        payload: etree._Element,
        *,
        message_id: str,
        message_date: dt.datetime,
        correlation_id: str | None = None,
        properties: tuple[tuple[str, str], ...] = (),
    ) -> bytes:
        """The whole SOAP request: a v10 SendMessage, signed when there is a signer."""
        envelope = build_envelope(build_request(BusRequest(
            message_id=message_id,
            correlation_id=correlation_id,
            service_id=service_id,
            message_date=message_date,
            sender_id=self.sender_id,
            properties=properties,
            data=payload,
        )))
        return serialise(envelope if self._signer is None else self._signer.sign(envelope))

    def answer(self, service_id: str, message_id: str, *, status: int, media_type: str, content: bytes) -> etree._Element | None:
        """The document in the answer to request ``message_id``, or the classified failure."""
        if media_type != "text/xml" or len(content) > _MAX_REPLY_BYTES:
            problem = f"answered HTTP {status} with {media_type or 'no content type'}"
            raise (SourceRejected if 400 <= status < 500 else SourceUnavailable)(self.source, problem)
        verifier = self._verifier
        understood = (SECURITY,) if verifier is not None else ()
        try:
            envelope = parse_envelope(content, max_bytes=_MAX_REPLY_BYTES, understood=understood)
        except SoapFault as fault:
            raise SourceUnavailable(self.source, f"answered HTTP {status} with a broken message: {fault.message}") from None
        if verifier is not None:
            # A fault is verified too: "not found" decides what a report says.
            try:
                envelope = verified(envelope, verifier, at=dt.datetime.now(dt.UTC))
            except SoapFault as refusal:
                raise SourceUnavailable(
                    self.source, f"answered HTTP {status}, signature refused: {refusal.error_code}: {refusal.message}"
                ) from None
        fault = read_fault(envelope.body)
        if fault is not None:
            reason = f"{service_id}: {fault.error_code}: {fault.message}"
            if not fault.is_client_fault:
                raise SourceUnavailable(self.source, reason)
            raise (NotFound if fault.error_code == NOT_FOUND else SourceRejected)(self.source, reason)
        if status != 200:
            raise SourceUnavailable(self.source, f"answered HTTP {status} without a fault")
        try:
            self._contract.validate(envelope.body)
        except SoapFault as fault:
            raise SourceUnavailable(self.source, f"answer breaks the contract: {fault.message} at {fault.error_data}") from None
        response = read_response(envelope.body, typed=self._contract.document_for_type)
        if response.correlation_id != message_id:
            raise SourceUnavailable(self.source, "answered another request (its correlationId is not our messageId)")
        return response.data

    def decoded(self, data: etree._Element | None, decode: Callable[[etree._Element], T]) -> T:
        """``decode(data)``; an empty answer or one the canonical model refuses is the source's failure."""
        if data is None:
            raise SourceUnavailable(self.source, "answered without a document in data")
        try:
            return decode(data)
        except ValueError as error:
            raise SourceUnavailable(self.source, f"answered with a document the gateway cannot accept: {error}") from None


class ServiceClient:
    """One SOAP service at ``service_url``, over a shared aiohttp session with a per-request timeout."""

    def __init__(
        self,
        messages: ServiceMessages,
        service_url: str,
        session: aiohttp.ClientSession,
        *,
        timeout: float,
    ) -> None:
        self.messages = messages
        self._url = service_url
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(
        self,
        service_id: str,
        payload: etree._Element,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
    ) -> etree._Element | None:
        """Send one request and return the document in the answer's data (None if empty)."""
        messages = self.messages
        message_id = message_id or str(uuid.uuid4())
        body = messages.request(
            service_id,
            payload,
            message_id=message_id,
            message_date=dt.datetime.now(dt.UTC),
            correlation_id=correlation_id,
        )
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{messages.soap_action}"',
            "X-Message-Id": message_id,
            # The development identity mode; mTLS identifies the caller in production.
            "X-Member-Id": messages.sender_id,
        }
        try:
            async with self._session.post(self._url, data=body, headers=headers, timeout=self._timeout) as reply:
                content = await _bounded_read(reply)
                status, media_type = reply.status, reply.content_type
        except asyncio.TimeoutError:
            raise SourceUnavailable(messages.source, f"no answer within {self._timeout.total:g} s") from None
        except aiohttp.ClientConnectorError as error:
            raise SourceUnavailable(messages.source, f"cannot connect: {error.os_error or error}") from None
        except aiohttp.ClientError as error:
            raise SourceUnavailable(messages.source, f"{type(error).__name__}: {error}") from None
        return messages.answer(service_id, message_id, status=status, media_type=media_type, content=content)


async def _bounded_read(reply: aiohttp.ClientResponse) -> bytes:
    """The reply's body, cut one byte past the limit (which ``answer`` then refuses)."""
    chunks, size = [], 0
    async for chunk in reply.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_REPLY_BYTES:
            break
    return b"".join(chunks)[: _MAX_REPLY_BYTES + 1]
