"""``InteriorPort`` over the interior ministry's SOAP service (schemas/soap/interior.wsdl)."""

from __future__ import annotations

import aiohttp

from adapters.interior import codec
from gateway.domain import IIN, Address, Conviction, Person, PretrialCase
from gateway.security.xmldsig import Signer, Verifier
from gateway.soap.client import ServiceClient, ServiceMessages
from gateway.workflows.ports import SourceUnavailable

__all__ = ["SERVICE_PATH", "InteriorClient"]

SOURCE = "interior"
SERVICE_PATH = "/soap/interior"
PERSON = "person"
SPECIAL_RECORDS = "special-records"
PRETRIAL_CASE = "pretrial-case"
REGISTERED_RESIDENCE = "registered-residence"


class InteriorClient:
    """The interior ministry at ``base_url`` (its member endpoint), asked as member ``sender_id``.

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
            ServiceMessages(SOURCE, "interior.wsdl", sender_id=sender_id, signer=signer, verifier=verifier),
            base_url.rstrip("/") + SERVICE_PATH,
            session,
            timeout=timeout,
        )

    async def person(self, iin: IIN) -> Person:
        data = await self._service.call(PERSON, codec.encode_person_query(codec.PERSON_REQUEST, iin))
        return _about(iin, self._service.messages.decoded(data, codec.decode_person))

    async def convictions(self, iin: IIN) -> list[Conviction]:
        """Every conviction, expunged ones included: withholding them is the gateway's job."""
        data = await self._service.call(SPECIAL_RECORDS, codec.encode_person_query(codec.SPECIAL_RECORDS_REQUEST, iin))
        about, convictions = self._service.messages.decoded(data, codec.decode_special_records)
        _about(iin, about)
        return convictions

    async def pretrial_case(self, erdr_number: str) -> PretrialCase:
        data = await self._service.call(PRETRIAL_CASE, codec.encode_pretrial_case_request(erdr_number))
        case = self._service.messages.decoded(data, codec.decode_pretrial_case)
        if case.erdr_number != erdr_number:
            raise SourceUnavailable(SOURCE, "answered about another case than asked")
        return case

    async def registered_residence(self, iin: IIN) -> Address | None:
        data = await self._service.call(REGISTERED_RESIDENCE, codec.encode_person_query(codec.RESIDENCE_REQUEST, iin))
        about, address = self._service.messages.decoded(data, codec.decode_registered_residence)
        _about(iin, about)
        return address


def _about(asked: IIN, answer):
    """The answer, if it is about the person asked about."""
    about = answer.iin if isinstance(answer, Person) else answer
    if about != asked:
        # Another person's record joined to this one's would be worse than none.
        raise SourceUnavailable(SOURCE, "answered about another person than asked")
    return answer
