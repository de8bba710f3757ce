"""A stand-in for the interior ministry's SOAP service, answering from the synthetic population.

Convictions are answered in full, expunged ones included: filtering them is the gateway's job.

It also takes release notices relayed to it (serviceId ``release-notices``): a canonical
``ReleaseNotice`` written as XML in the canonical namespace, recorded and acknowledged, not
acted on — what the benchmarks relay over signed SOAP (``bench/overhead.py``).
"""

from __future__ import annotations

from aiohttp import web

from adapters.interior import codec
from adapters.interior.client import PERSON, PRETRIAL_CASE, REGISTERED_RESIDENCE, SPECIAL_RECORDS
from adapters.population import Population, SyntheticPerson
from adapters.simulation import Behaviour, Recorder, not_found, simulator_of, soap_simulator
from gateway.security.xmldsig import Signer, Verifier
from gateway.soap.envelope import BusResponse
from gateway.soap.server import SoapCall

__all__ = ["RELEASE_NOTICE", "RELEASE_NOTICES", "create_simulator"]

RELEASE_NOTICES = "release-notices"
RELEASE_NOTICE = "{urn:reentry-gateway:canonical:v1}ReleaseNotice"

_MAX_BODY_BYTES = 1024 * 1024
_REQUESTS = {
    PERSON: codec.PERSON_REQUEST,
    SPECIAL_RECORDS: codec.SPECIAL_RECORDS_REQUEST,
    REGISTERED_RESIDENCE: codec.RESIDENCE_REQUEST,
}


def create_simulator(population: Population, behaviour: Behaviour | None = None, recorder: Recorder | None = None,
                     *, signer: Signer | None = None, verifier: Verifier | None = None) -> web.Application:
    """The interior ministry's SOAP service at /soap/interior; the keys as in ``soap_simulator``."""

    def known(iin: str) -> SyntheticPerson:
        person = population.by_iin(iin)
        if person is None:
            raise not_found("no person with this IIN in the population register")
        return person

    async def send_message(call: SoapCall) -> BusResponse:
        service_id = call.expect_service(PERSON, SPECIAL_RECORDS, PRETRIAL_CASE, REGISTERED_RESIDENCE, RELEASE_NOTICES)
        if service_id == RELEASE_NOTICES:
            call.expect_data(RELEASE_NOTICE)
            seen = simulator_of(call.http).recorder.record(f"interior/{RELEASE_NOTICES}", call.http, call.raw)
            return call.reply(message="received" if seen == 1 else "received before")
        if service_id == PRETRIAL_CASE:
            erdr_number = call.decode(codec.decode_pretrial_case_request, codec.PRETRIAL_CASE_REQUEST)
            suspect = population.by_erdr(erdr_number)
            if suspect is None or suspect.pretrial_case is None:
                raise not_found("no pre-trial case with this ЕРДР number")
            return call.reply(codec.encode_pretrial_case(suspect.pretrial_case))
        person = known(call.decode(codec.decode_person_query, _REQUESTS[service_id]))
        if service_id == PERSON:
            return call.reply(codec.encode_person(person.person))
        if service_id == SPECIAL_RECORDS:
            return call.reply(codec.encode_special_records(person.iin, person.convictions))
        return call.reply(codec.encode_registered_residence(person.iin, person.residence))

    return soap_simulator("interior", "interior.wsdl", send_message, behaviour, recorder,
                          max_bytes=_MAX_BODY_BYTES, signer=signer, verifier=verifier)
