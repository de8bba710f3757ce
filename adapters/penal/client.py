"""``PenalPort`` over the penal system's SOAP service (schemas/soap/penal.wsdl)."""

from __future__ import annotations

from adapters.agency_soap import SoapAgencyClient
from adapters.penal import codec
from gateway.domain import IIN, CustodyEpisode

__all__ = ["SERVICE_PATH", "PenalClient"]

SERVICE_PATH = "/soap/penal"
CUSTODY_HISTORY = "custody-history"


class PenalClient(SoapAgencyClient):
    """The penal system's custody histories (``SoapAgencyClient`` for the exchange)."""

    SOURCE, WSDL, SERVICE_PATH = "penal", "penal.wsdl", SERVICE_PATH

    async def custody_history(self, iin: IIN) -> list[CustodyEpisode]:
        about, episodes = await self._ask(
            CUSTODY_HISTORY, codec.encode_custody_history_request(iin), codec.decode_custody_history
        )
        self._about(iin, about)
        return episodes
