"""``InteriorPort`` over the interior ministry's SOAP service (schemas/soap/interior.wsdl)."""

from __future__ import annotations

from adapters.agency_soap import SoapAgencyClient
from adapters.interior import codec
from gateway.domain import IIN, Address, Conviction, Person, PretrialCase
from gateway.workflows.ports import SourceUnavailable

__all__ = ["SERVICE_PATH", "InteriorClient"]

SERVICE_PATH = "/soap/interior"
PERSON = "person"
SPECIAL_RECORDS = "special-records"
PRETRIAL_CASE = "pretrial-case"
REGISTERED_RESIDENCE = "registered-residence"


class InteriorClient(SoapAgencyClient):
    """The interior ministry's identity, special records, cases and residence registration
    (``SoapAgencyClient`` for the exchange)."""

    SOURCE, WSDL, SERVICE_PATH = "interior", "interior.wsdl", SERVICE_PATH

    async def person(self, iin: IIN) -> Person:
        person = await self._ask(PERSON, codec.encode_person_query(codec.PERSON_REQUEST, iin), codec.decode_person)
        self._about(iin, person.iin)
        return person

    async def convictions(self, iin: IIN) -> list[Conviction]:
        """Every conviction, expunged ones included: withholding them is the gateway's job."""
        about, convictions = await self._ask(
            SPECIAL_RECORDS, codec.encode_person_query(codec.SPECIAL_RECORDS_REQUEST, iin), codec.decode_special_records
        )
        self._about(iin, about)
        return convictions

    async def pretrial_case(self, erdr_number: str) -> PretrialCase:
        case = await self._ask(PRETRIAL_CASE, codec.encode_pretrial_case_request(erdr_number), codec.decode_pretrial_case)
        if case.erdr_number != erdr_number:
            raise SourceUnavailable(self.SOURCE, "answered about another case than asked")
        return case

    async def registered_residence(self, iin: IIN) -> Address | None:
        about, address = await self._ask(
            REGISTERED_RESIDENCE, codec.encode_person_query(codec.RESIDENCE_REQUEST, iin), codec.decode_registered_residence
        )
        self._about(iin, about)
        return address
