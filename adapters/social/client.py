"""``SocialPort`` over the Ministry of Labour and Social Protection's JSON service, and the
body the outbox stores for a referral to special social services.

Referrals are not sent synchronously: they are stored in the outbox and delivered to
the member ``social``'s service ``referrals``, which deduplicates by ``X-Message-Id``
and answers with its register number.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp

from adapters.social import codec
from gateway.domain import IIN, AssistanceReferral, SocialStatus
from gateway.errors import InvalidJSON
from gateway.web.body import parse_json
from gateway.workflows.ports import NotFound, SourceRejected, SourceUnavailable
from gateway.workflows.egress import Envelope

__all__ = ["ReferralCodec", "CONTENT_TYPE", "REFERRALS", "SocialClient", "referral_body"]

SOURCE = "social"
REFERRALS = "referrals"
CONTENT_TYPE = "application/json"
_MAX_DEPTH = 32


class SocialClient:
    """A person's social situation, as the Ministry records it.

    The shared ``aiohttp`` session is passed in; each request has its own ``timeout``
    in seconds. No answer, 5xx or 429 is ``SourceUnavailable``, 404 ``NotFound``, any
    other refusal ``SourceRejected``; reasons carry the status and the problem title,
    never the detail, which could quote personal data.
    """

    def __init__(
        self, base_url: str, session: aiohttp.ClientSession, *, timeout: float, sender_id: str = "gateway"
    ) -> None:
        self._url = base_url.rstrip("/") + "/social/v1/status/_search"
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = {"X-Sender": sender_id, "Accept": "application/json"}

    async def social_status(self, iin: IIN) -> SocialStatus:
        try:
            async with self._session.post(
                self._url, json=codec.iin_query(iin), headers=self._headers, timeout=self._timeout
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
            return codec.social_status_from_json(parse_json(body, _MAX_DEPTH))
        except InvalidJSON as error:
            raise SourceRejected(SOURCE, f"the answer is not acceptable JSON: {error.detail}") from None
        except ValueError as error:
            raise SourceRejected(SOURCE, f"the answer does not follow the contract: {error}") from None


def referral_body(referral: AssistanceReferral) -> bytes:
    """The outbox body (``CONTENT_TYPE``) for a referral: the canonical referral as UTF-8 JSON."""
    return json.dumps(codec.referral_json(referral), ensure_ascii=False, separators=(",", ":")).encode()


def _refusal(status: int, body: bytes) -> str:
    """'HTTP 422: <problem title>': the title is fixed per problem type; the detail may quote data."""
    try:
        title = parse_json(body, _MAX_DEPTH).get("title")
    except (InvalidJSON, AttributeError):
        title = None
    return f"HTTP {status}: {title}" if isinstance(title, str) else f"HTTP {status}"


class ReferralCodec:
    """The outbound codec of social-service referrals (``gateway.workflows.egress.OutboundCodec``)."""

    content_type = CONTENT_TYPE

    def encode(self, referral: AssistanceReferral, envelope: Envelope) -> bytes:
        return referral_body(referral)
