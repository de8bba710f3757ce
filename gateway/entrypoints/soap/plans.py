"""The ``resocialisation-plans`` SOAP service: the penal system pushes a person's re-socialisation
plan (and each later version) to the gateway before release.

Thin, like ``release-notices``: the plan is decoded with the penal codec and handed to the plan
intake (``gateway.services.plans``), the same use case as ``POST /api/v1/plans``; its receipt is
the answer. Refusals are the use case's (404 unknown person, 409 stale or conflicting version,
422 a message id reused or a date that cannot be), answered as soap:Client Faults.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.penal import plans as codec
from gateway.services.plans import PlanIntake, PlanSubmission
from gateway.soap.contracts import contract
from gateway.soap.envelope import BusResponse
from gateway.soap.server import SoapCall, SoapService

__all__ = ["SERVICE_ID", "plan_service"]

SERVICE_ID = "resocialisation-plans"


def plan_service(intake: PlanIntake, *, caller: Callable[[SoapCall], str]) -> SoapService:
    """The service; ``caller`` names the authenticated member of a call."""

    async def send_message(call: SoapCall) -> BusResponse:
        sender = caller(call)
        intake.authorise(sender)
        call.expect_service(SERVICE_ID)
        message = call.message
        plan_id, version, plan = call.decode(codec.decode_plan, codec.PLAN)
        receipt = await intake.receive(PlanSubmission(plan_id=plan_id, version=version, plan=plan), sender=sender,
                                       message_id=message.message_id)
        return call.reply(
            codec.encode_plan_receipt(receipt.plan_id, receipt.version, receipt.recipients, receipt.referrals,
                                      receipt.duplicate),
            code="ACCEPTED",
            message="the plan version is stored and sent" if not receipt.duplicate else "received before",
        )

    return SoapService(contract("resocialisation-plans.wsdl"), {"SendMessage": send_message})
