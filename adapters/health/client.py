"""``HealthPort`` over the Ministry of Healthcare's JSON services (``schemas/openapi/health.json``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import quote

import aiohttp

from adapters.health import codec
from gateway.domain import IIN, Address, Attachment, ContinuityHold, HealthSummary, Organisation
from gateway.errors import InvalidJSON
from gateway.web.body import parse_json
from gateway.workflows.ports import NotFound, SourceRejected, SourceUnavailable

__all__ = ["HealthClient"]

SOURCE = "health"
_MAX_DEPTH = 32


class HealthClient:
    """The attached-population register (РПН), dispensary registers and disability.

    One shared ``aiohttp`` session is passed in (the bootstrap owns it); every request
    has its own ``timeout`` in seconds. Failures are classified for the workflows:
    no answer, 5xx or 429 is ``SourceUnavailable`` (try later), 404 ``NotFound``, any
    other refusal ``SourceRejected``. Reasons name the status and the problem title the
    Ministry sent, never its detail, which could quote personal data.
    """

    def __init__(
        self, base_url: str, session: aiohttp.ClientSession, *, timeout: float, sender_id: str = "gateway"
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = {"X-Sender": sender_id, "Accept": "application/json"}

    async def health_summary(self, iin: IIN) -> HealthSummary:
        registrations, disability = await asyncio.gather(
            self._call("POST", "/dispensary/v1/registrations/_search", codec.iin_query(iin)),
            self._call("POST", "/disability/v1/assessments/_search", codec.iin_query(iin)),
        )
        return self._decode(codec.health_summary_from_json, registrations, disability)

    async def attachment(self, iin: IIN) -> Attachment | None:
        answer = await self._call("POST", "/rpn/v1/attachments/_search", codec.iin_query(iin))
        return self._decode(codec.attachment_from_json, answer)

    async def place_hold(self, iin: IIN, until: dt.date, reference: str) -> ContinuityHold:
        answer = await self._call("POST", "/rpn/v1/holds", codec.hold_request(iin, until, reference))
        return self._decode(codec.hold_from_json, answer)

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
        return self._decode(codec.clinic_from_json, answer)

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        try:
            async with self._session.request(
                method, self._base_url + path, json=payload, headers=self._headers, timeout=self._timeout
            ) as response:
                body = await response.read()
                status, reason = response.status, response.reason
        except asyncio.TimeoutError:
            raise SourceUnavailable(SOURCE, f"no answer within {self._timeout.total:g} s") from None
        except aiohttp.ClientError as error:
            raise SourceUnavailable(SOURCE, f"cannot reach the service ({type(error).__name__})") from None
        if status >= 500 or status == 429:
            raise SourceUnavailable(SOURCE, f"HTTP {status} {reason or ''}".strip())
        if status == 404:
            raise NotFound(SOURCE, _refusal(status, body))
        if status >= 400:
            raise SourceRejected(SOURCE, _refusal(status, body))
        try:
            return parse_json(body, _MAX_DEPTH)
        except InvalidJSON as error:
            raise SourceRejected(SOURCE, f"the answer is not acceptable JSON: {error.detail}") from None

    @staticmethod
    def _decode(decode, *answers: Any) -> Any:
        try:
            return decode(*answers)
        except ValueError as error:
            raise SourceRejected(SOURCE, f"the answer does not follow the contract: {error}") from None


def _refusal(status: int, body: bytes) -> str:
    """'HTTP 409: <problem title>': the title is fixed per problem type; the detail may quote data."""
    try:
        title = parse_json(body, _MAX_DEPTH).get("title")
    except (InvalidJSON, AttributeError):
        title = None
    return f"HTTP {status}: {title}" if isinstance(title, str) else f"HTTP {status}"
