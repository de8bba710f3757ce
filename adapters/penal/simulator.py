"""A stand-in for the penal system: its custody-history service, and pushing release notices.

The service answers from the synthetic population over the same WSDL and XSDs the gateway
uses. ``push_release_notices`` plays the penal system's side of the gateway's
``release-notices`` service, each notice a SyncChannel v10 SendMessage.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import aiohttp
from aiohttp import web

from adapters.penal import codec, plans
from adapters.penal.client import CUSTODY_HISTORY
from adapters.population import Population
from adapters.simulation import Behaviour, Recorder, not_found, soap_simulator
from gateway.domain import ReleaseEvent, ReleaseNotice, ResocialisationPlan
from gateway.security.xmldsig import Signer, Verifier
from gateway.soap.client import ServiceClient, ServiceMessages
from gateway.soap.envelope import BusResponse
from gateway.soap.server import SoapCall

__all__ = ["create_simulator", "push_plan", "push_release_notices"]

RELEASE_NOTICES_PATH = "/soap/release-notices"
_MAX_BODY_BYTES = 1024 * 1024


def create_simulator(population: Population, behaviour: Behaviour | None = None, recorder: Recorder | None = None,
                     *, signer: Signer | None = None, verifier: Verifier | None = None) -> web.Application:
    """The penal system's SOAP service at /soap/penal; the keys as in ``soap_simulator``."""

    async def send_message(call: SoapCall) -> BusResponse:
        call.expect_service(CUSTODY_HISTORY)
        iin = call.decode(codec.decode_custody_history_request, codec.CUSTODY_HISTORY_REQUEST)
        held = population.by_iin(iin)
        if held is None:
            raise not_found("the penal system holds no record of this IIN")
        return call.reply(codec.encode_custody_history(iin, held.custody))

    return soap_simulator("penal", "penal.wsdl", send_message, behaviour, recorder,
                          max_bytes=_MAX_BODY_BYTES, signer=signer, verifier=verifier)


async def push_release_notices(
    gateway_url: str,
    notices: Iterable[tuple[ReleaseEvent, ReleaseNotice]],
    session: aiohttp.ClientSession,
    *,
    sender_id: str = "penal",
    message_ids: Iterable[str] | None = None,
    timeout: float = 10.0,
    signer: Signer | None = None,
    verifier: Verifier | None = None,
) -> list[str]:
    """Send each (event, notice) to the gateway's release-notices service; return the case ids.

    ``message_ids`` gives each message its id (resending one gets the original answer); by
    default every message gets a new one. ``signer`` signs each notice with the penal system's
    key; ``verifier`` (pinned to the gateway's certificate) checks each answer. Refusals raise
    ``SourceRejected`` (a Client fault) or ``SourceUnavailable``, with ``source`` "gateway".
    """
    service = ServiceClient(
        ServiceMessages("gateway", "release-notices.wsdl", sender_id=sender_id, signer=signer, verifier=verifier),
        gateway_url.rstrip("/") + RELEASE_NOTICES_PATH,
        session,
        timeout=timeout,
    )
    ids = iter(message_ids) if message_ids is not None else None
    case_ids = []
    for event, notice in notices:
        data = await service.call(
            "release-notices",
            codec.encode_release_notice(event, notice),
            message_id=next(ids) if ids is not None else str(uuid.uuid4()),
        )
        case_ids.append(service.messages.decoded(data, codec.decode_release_notice_receipt))
    return case_ids


PLANS_PATH = "/soap/resocialisation-plans"


async def push_plan(
    gateway_url: str,
    plan_id: str,
    version: int,
    plan: ResocialisationPlan,
    session: aiohttp.ClientSession,
    *,
    message_id: str | None = None,
    sender_id: str = "penal",
    timeout: float = 10.0,
    signer: Signer | None = None,
    verifier: Verifier | None = None,
) -> dict:
    """Send one version of a re-socialisation plan to the gateway's resocialisation-plans service, signed
    with ``signer``; returns the receipt (plan id, version, recipients, referrals, duplicate). The first
    version and each later one carry their number in the plan. Refusals raise ``SourceRejected``."""
    service = ServiceClient(
        ServiceMessages("gateway", "resocialisation-plans.wsdl", sender_id=sender_id, signer=signer,
                        verifier=verifier),
        gateway_url.rstrip("/") + PLANS_PATH, session, timeout=timeout,
    )
    data = await service.call("resocialisation-plans", plans.encode_plan(plan_id, version, plan),
                              message_id=message_id or str(uuid.uuid4()))
    return service.messages.decoded(data, plans.decode_plan_receipt)
