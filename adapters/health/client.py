"""``HealthPort`` over the Ministry of Healthcare's JSON services (``schemas/openapi/health.json``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import quote

from adapters import rpn
from adapters.agency_json import JsonAgencyClient
from adapters.health import codec
from gateway.domain import IIN, Address, Attachment, ContinuityHold, HealthSummary, Organisation
from gateway.workflows.ports import NotFound

__all__ = ["HealthClient"]


class HealthClient(JsonAgencyClient):
    """The attached-population register (РПН), dispensary registers and disability.

    Timeouts and the classification of failures are ``JsonAgencyClient``'s.
    """

    SOURCE = "health"

    async def health_summary(self, iin: IIN) -> HealthSummary:
        registrations, disability = await asyncio.gather(
            self._call("POST", "/dispensary/v1/registrations/_search", codec.iin_query(iin)),
            self._call("POST", "/disability/v1/assessments/_search", codec.iin_query(iin)),
        )
        return self._decoded(codec.health_summary_from_json, registrations, disability)

    async def attachment(self, iin: IIN) -> Attachment | None:
        answer = await self._call("POST", "/rpn/v1/attachments/_search", codec.iin_query(iin))
        return self._decoded(rpn.attachment_from_json, answer)

    async def place_hold(self, iin: IIN, until: dt.date, reference: str) -> ContinuityHold:
        answer = await self._call("POST", "/rpn/v1/holds", rpn.hold_request(iin, until, reference))
        return self._decoded(rpn.hold_from_json, answer)

    async def release_hold(self, iin: IIN, hold_id: str) -> None:
        await self._call("POST", f"/rpn/v1/holds/{quote(hold_id, safe='')}/release", codec.iin_query(iin))

    async def clinic_for(self, address: Address) -> Organisation | None:
        # The register assigns clinics by territory; without a КАТО code it cannot tell.
        if address.kato is None:
            return None
        try:
            answer = await self._call("GET", f"/rpn/v1/service-areas/{address.kato}")
        except NotFound:
            return None
        return self._decoded(rpn.clinic_from_json, answer)
