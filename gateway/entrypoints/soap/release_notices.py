"""The ``release-notices`` SOAP service: the penal system pushes release notices to the gateway.

Thin: the notice is decoded with the penal codec and handed to the release intake
(``gateway.services.release_intake``), whose receipt is the answer. On SyncChannel v10 the
notice's own ``event`` says whether it is new or news about one already sent; the deprecated
asynchronous envelope also says so in ``messageType``, which must then agree.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.penal import codec
from gateway.entrypoints.soap import DEPRECATED_SCHEMAS
from gateway.services.release_intake import ReleaseIntake
from gateway.soap.contracts import contract
from gateway.soap.envelope import BUS_ASYNC, BusResponse, MessageType
from gateway.soap.faults import SoapFault
from gateway.soap.server import SoapCall, SoapService

__all__ = ["release_notice_service"]

SERVICE_ID = "release-notices"


def release_notice_service(intake: ReleaseIntake, *, caller: Callable[[SoapCall], str]) -> SoapService:
    """The service; ``caller`` names the authenticated member of a call."""

    async def send_message(call: SoapCall) -> BusResponse:
        sender = caller(call)
        intake.authorise(sender)
        call.expect_service(SERVICE_ID)
        message = call.message
        if message.channel.deprecated and message.message_type not in (MessageType.NOTIFICATION, MessageType.UPDATE):
            raise SoapFault.client(
                "unexpected-message-type",
                f"a release notice is sent as NOTIFICATION (planned or actual) or UPDATE (changed or cancelled), "
                f"not {message.message_type}",
                error_data=call.path("Info/messageType"),
            )
        event, notice = call.decode(codec.decode_release_notice, codec.RELEASE_NOTICE)
        receipt = await intake.receive(event, notice, sender=sender, message_id=message.message_id,
                                       correlation_id=message.correlation_id, received_at=call.received_at)
        return BusResponse(
            message_id=receipt.response_message_id,
            correlation_id=message.message_id,
            response_date=receipt.response_date,
            status_code="ACCEPTED",
            status_message="the release notice is received",
            data=codec.encode_release_notice_receipt(receipt.case_id),
            session_id=message.session_id,
        )

    service = contract("release-notices.wsdl", also_validates=DEPRECATED_SCHEMAS,
                       deprecated=(f"{{{BUS_ASYNC}}}SendMessage",))
    return SoapService(service, {"SendMessage": send_message})
