"""The relay's outbound transport: one HTTP POST per attempt, over a shared pool.

It knows bytes and status codes and nothing of the domain; it only tells the engine whether an
attempt was delivered, failed for good, or may be retried. For SOAP it also reads the fault
code: every SOAP 1.1 fault comes with HTTP 500 (WS-I BP R1126), and only the code tells the
receiver's refusal (``soap:Client``: permanent, dead-lettered) from its failure
(``soap:Server``: retried).
"""

from __future__ import annotations

import asyncio
import re
import ssl as _ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from gateway.delivery.policy import is_retryable_status, parse_retry_after
from gateway.soap.envelope import fault_code_of
from gateway.store import Message

# Headers every outbound delivery carries (DESIGN.md "Contracts").
MESSAGE_ID = "X-Message-Id"
CORRELATION_ID = "X-Correlation-Id"
PURPOSE = "X-Purpose"
SENDER = "X-Sender"


_ERROR_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")

# A receiver's answer is kept (a court's receipt, say) up to this size.
MAX_ANSWER_BYTES = 1_048_576


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    status: int | None = None
    retryable: bool = False
    # False when the request never reached the receiver (no connection): such an
    # attempt says nothing about the message, so it does not use up its budget.
    reached: bool = True
    error: str | None = None
    retry_after: float | None = None
    answer: bytes = b""


class HttpTransport:
    """POSTs a message's body to ``endpoint + path`` with the relay headers.

    ``ssl`` is what https endpoints are called with (the gateway's client certificate and the
    exchange's CA in mtls mode; the system's trust when None). ``seal`` gives, at each attempt,
    the body and extra headers to send a message with: its signatures (``gateway.delivery.seal``).
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        limit_per_host: int = 0,
        ssl: _ssl.SSLContext | None = None,
        seal: Callable[[Message], tuple[bytes, Mapping[str, str]]] | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._limit_per_host = limit_per_host
        self._ssl = ssl
        self._seal = seal
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=self._limit_per_host, enable_cleanup_closed=True,
                                         ssl=self._ssl or True)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True, raise_for_status=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, url: str, message: Message, *, timeout: float, now: float) -> Outcome:
        assert self._session is not None, "transport not started"
        headers = {
            "Content-Type": message.content_type,
            **({"SOAPAction": f'"{message.service}"'} if message.content_type.startswith("text/xml") else {}),
            MESSAGE_ID: message.id,
            CORRELATION_ID: message.correlation_id,
            SENDER: message.sender,
        }
        if message.purpose:
            headers[PURPOSE] = message.purpose
        body = message.body
        if self._seal is not None:
            body, extra = self._seal(message)
            headers.update(extra)
        client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=self._connect_timeout)
        try:
            async with self._session.post(url, data=body, headers=headers, timeout=client_timeout) as response:
                # Read the answer in full, so the connection returns to the pool.
                answer = await response.content.read(MAX_ANSWER_BYTES + 1)
                if 200 <= response.status < 300:
                    if len(answer) > MAX_ANSWER_BYTES:
                        return Outcome(False, response.status, retryable=False,
                                       error=f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
                    return Outcome(True, response.status, answer=answer)
                retryable = is_retryable_status(response.status)
                error = f"HTTP {response.status} {response.reason or ''}".strip()
                fault = (fault_code_of(answer, max_bytes=MAX_ANSWER_BYTES)
                         if response.content_type == "text/xml" and len(answer) <= MAX_ANSWER_BYTES else None)
                if fault is not None:
                    retryable = not fault.is_client_fault
                    # The receiver's errorCode is kept only in the shape the bus gives it: it is logged.
                    code = fault.error_code if _ERROR_CODE.fullmatch(fault.error_code) else "with an unreadable errorCode"
                    error = f"{error}, soap:{fault.code.value} fault {code}"
                return Outcome(
                    False,
                    response.status,
                    retryable=retryable,
                    error=error,
                    retry_after=parse_retry_after(response.headers.get("Retry-After"), now),
                )
        except asyncio.TimeoutError:
            return Outcome(False, retryable=True, error=f"no answer within {timeout:g} s")
        except aiohttp.ClientConnectorError as exc:
            return Outcome(False, retryable=True, reached=False, error=f"cannot connect: {exc.os_error or exc}")
        except aiohttp.ClientError as exc:
            return Outcome(False, retryable=True, error=f"{type(exc).__name__}: {exc}")
