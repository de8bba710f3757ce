"""Calling an agency's JSON services synchronously: the exchange and how its failures are classified.

``JsonAgencyClient`` is the base of every client that asks an agency's JSON API and waits for
the answer (health, social). One shared ``aiohttp`` session is passed in (the bootstrap owns
it); every request has its own ``timeout`` in seconds. Failures are classified for the
workflows (``gateway.workflows.ports``): no answer, 5xx or 429 is ``SourceUnavailable`` (try
later), 404 ``NotFound``, any other refusal, an answer that is not acceptable JSON or breaks
the contract ``SourceRejected``. Reasons name the status and the problem title the agency sent,
never its detail, which could quote personal data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import aiohttp

from gateway.errors import InvalidJSON
from gateway.web.body import parse_json
from gateway.workflows.ports import NotFound, SourceRejected, SourceUnavailable

__all__ = ["JsonAgencyClient"]

# Far deeper than any agency answer nests; deeper is refused rather than walked.
_MAX_DEPTH = 32
T = TypeVar("T")


class JsonAgencyClient:
    """One agency's JSON services at ``base_url``, asked as member ``sender_id``.

    A subclass names its ``SOURCE`` (the name the workflows record in provenance and in
    ``SourceError``) and calls ``_call`` and ``_decoded``.
    """

    SOURCE: ClassVar[str]

    def __init__(
        self, base_url: str, session: aiohttp.ClientSession, *, timeout: float, sender_id: str = "gateway"
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = {"X-Sender": sender_id, "Accept": "application/json"}

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """The JSON answer to one request to ``path``, or the classified failure."""
        source = self.SOURCE
        try:
            async with self._session.request(
                method, self._base_url + path, json=payload, headers=self._headers, timeout=self._timeout
            ) as response:
                body = await response.read()
                status, reason = response.status, response.reason
        except asyncio.TimeoutError:
            raise SourceUnavailable(source, f"no answer within {self._timeout.total:g} s") from None
        except aiohttp.ClientError as error:
            raise SourceUnavailable(source, f"cannot reach the service ({type(error).__name__})") from None
        if status >= 500 or status == 429:
            raise SourceUnavailable(source, f"HTTP {status} {reason or ''}".strip())
        if status == 404:
            raise NotFound(source, _refusal(status, body))
        if status >= 400:
            raise SourceRejected(source, _refusal(status, body))
        try:
            return parse_json(body, _MAX_DEPTH)
        except InvalidJSON as error:
            raise SourceRejected(source, f"the answer is not acceptable JSON: {error.detail}") from None

    def _decoded(self, decode: Callable[..., T], *answers: Any) -> T:
        """``decode(*answers)``; an answer the codec refuses is the source's refusal."""
        try:
            return decode(*answers)
        except ValueError as error:
            raise SourceRejected(self.SOURCE, f"the answer does not follow the contract: {error}") from None


def _refusal(status: int, body: bytes) -> str:
    """'HTTP 409: <problem title>': the title is fixed per problem type; the detail may quote data."""
    try:
        title = parse_json(body, _MAX_DEPTH).get("title")
    except (InvalidJSON, AttributeError):
        title = None
    return f"HTTP {status}: {title}" if isinstance(title, str) else f"HTTP {status}"
