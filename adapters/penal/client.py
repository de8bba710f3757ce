"""``PenalPort`` over the penal system's SOAP service (schemas/soap/penal.wsdl)."""

from __future__ import annotations

import aiohttp

from adapters.penal import codec
from gateway.domain import IIN, CustodyEpisode
from gateway.security.xmldsig import Signer, Verifier
from gateway.soap.client import ServiceClient, ServiceMessages
from gateway.workflows.ports import SourceUnavailable

__all__ = ["SERVICE_PATH", "PenalClient"]

SOURCE = "penal"
SERVICE_PATH = "/soap/penal"
CUSTODY_HISTORY = "custody-history"


class PenalClient:
    """The penal system at ``base_url`` (its member endpoint), asked as member ``sender_id``.

    ``signer`` signs each request (the gateway's key); ``verifier`` holds the agency's pinned
    certificates for its answers.
    """

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
            ServiceMessages(SOURCE, "penal.wsdl", sender_id=sender_id, signer=signer, verifier=verifier),
            base_url.rstrip("/") + SERVICE_PATH,
            session,
            timeout=timeout,
        )

    async def custody_history(self, iin: IIN) -> list[CustodyEpisode]:
        data = await self._service.call(CUSTODY_HISTORY, codec.encode_custody_history_request(iin))
        about, episodes = self._service.messages.decoded(data, codec.decode_custody_history)
        if about != iin:
            # Joining another person's custody to this one's report would be worse than nothing.
            raise SourceUnavailable(SOURCE, "answered about another person than asked")
        return episodes
