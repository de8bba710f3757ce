"""Calling an agency's SOAP service synchronously over the bus's envelope (``gateway.soap.client``).

``SoapAgencyClient`` is the base of every client that asks an agency's SOAP service and waits
for the answer (penal, interior). It wires ``ServiceMessages`` and ``ServiceClient`` for the
agency's WSDL at its member endpoint; building, signing, verifying and classifying the
messages stays in the SOAP toolkit, so a change to the envelope changes nothing here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

import aiohttp
from lxml import etree

from gateway.domain import IIN
from gateway.security.xmldsig import Signer, Verifier
from gateway.soap.client import ServiceClient, ServiceMessages
from gateway.workflows.ports import SourceUnavailable

__all__ = ["SoapAgencyClient"]

T = TypeVar("T")


class SoapAgencyClient:
    """An agency's SOAP service at ``base_url`` (its member endpoint) + ``SERVICE_PATH``, asked as
    member ``sender_id``.

    ``signer`` signs each request (the gateway's key); ``verifier`` holds the agency's pinned
    certificates for its answers. A subclass names its ``SOURCE``, ``WSDL`` (in
    ``schemas/soap/``) and ``SERVICE_PATH``, and asks with ``_ask``.
    """

    SOURCE: ClassVar[str]
    WSDL: ClassVar[str]
    SERVICE_PATH: ClassVar[str]

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        timeout: float,
        sender_id: str = "gateway",
        signer: Signer | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self._service = ServiceClient(
            ServiceMessages(self.SOURCE, self.WSDL, sender_id=sender_id, signer=signer, verifier=verifier),
            base_url.rstrip("/") + self.SERVICE_PATH,
            session,
            timeout=timeout,
        )

    async def _ask(self, service_id: str, payload: etree._Element, decode: Callable[[etree._Element], T]) -> T:
        """The answer of service ``service_id`` to ``payload``, decoded; failures classified by the toolkit."""
        data = await self._service.call(service_id, payload)
        return self._service.messages.decoded(data, decode)

    def _about(self, asked: IIN, answered: IIN) -> None:
        """Refuse an answer about another person than the one asked about."""
        if answered != asked:
            # Another person's record joined to this one's would be worse than none.
            raise SourceUnavailable(self.SOURCE, "answered about another person than asked")
