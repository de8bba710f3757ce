"""``SocialPort`` over the Ministry of Labour and Social Protection's JSON service, and the
body the outbox stores for a referral to special social services.

Referrals are not sent synchronously: they are stored in the outbox and delivered to
the member ``social``'s service ``referrals``, which deduplicates by ``X-Message-Id``
and answers with its register number.
"""

from __future__ import annotations

from adapters.agency_json import JsonAgencyClient
from adapters.outbox_json import JsonOutboundCodec
from adapters.social import codec
from gateway.domain import IIN, AssistanceReferral, SocialStatus

__all__ = ["ReferralCodec", "CONTENT_TYPE", "REFERRALS", "SocialClient", "referral_body"]

REFERRALS = "referrals"
CONTENT_TYPE = JsonOutboundCodec.content_type


class SocialClient(JsonAgencyClient):
    """A person's social situation, as the Ministry records it.

    Timeouts and the classification of failures are ``JsonAgencyClient``'s.
    """

    SOURCE = "social"

    async def social_status(self, iin: IIN) -> SocialStatus:
        answer = await self._call("POST", "/social/v1/status/_search", codec.iin_query(iin))
        return self._decoded(codec.social_status_from_json, answer)


class ReferralCodec(JsonOutboundCodec):
    """The outbound codec of social-service referrals: the canonical referral."""

    document = staticmethod(codec.referral_json)


def referral_body(referral: AssistanceReferral) -> bytes:
    """The outbox body (``CONTENT_TYPE``) for a referral: the canonical referral as UTF-8 JSON."""
    return ReferralCodec().body(referral)
