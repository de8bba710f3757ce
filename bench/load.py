"""Load generation: a small HTTP/1.1 client and a closed loop of workers at fixed concurrency.

The client is deliberately minimal (keep-alive, one request in flight per connection,
requests prepared as bytes in advance, answers read by Content-Length or chunks): on two
cores every microsecond the load generator spends is taken from the system under test, and
aiohttp's client costs several times more per request. Every loop is bounded by a count and
by a deadline.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["Exchange", "LoadResult", "Request", "Latencies", "closed_loop", "request"]


@dataclass(frozen=True, slots=True)
class Request:
    """One request, ready to write: the target port and the whole HTTP/1.1 message."""

    port: int
    data: bytes
    key: str = ""
    """The caller's name for the request (its X-Message-Id), echoed in the exchange."""


def request(port: int, path: str, body: bytes, headers: Mapping[str, str], *, key: str = "") -> Request:
    """A POST of ``body`` to ``path`` on 127.0.0.1:``port`` with ``headers``."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return Request(port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, key)


@dataclass(frozen=True, slots=True)
class Exchange:
    key: str
    sent_at: float
    """Wall-clock time (``time.time()``): comparable with times recorded by other processes."""
    seconds: float
    status: int
    body: bytes


class _Answer(asyncio.Protocol):
    """A keep-alive connection reading one HTTP/1.1 answer at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future | None = None
        self._closed: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = exc or ConnectionResetError("the server closed the connection")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._closed)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None and not self._waiter.done():
            answer = self._complete()
            if answer is not None:
                self._waiter.set_result(answer)

    def _complete(self) -> tuple[int, bytes] | None:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body, position = bytearray(), start
            while True:
                line_end = buffer.find(b"\r\n", position)
                if line_end < 0:
                    return None
                size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
                if len(buffer) < line_end + 2 + size + 2:
                    return None
                body += buffer[line_end + 2:line_end + 2 + size]
                position = line_end + 2 + size + 2
                if size == 0:
                    del buffer[:position]
                    return status, bytes(body)
        length = int(headers.get("content-length", "0"))
        if len(buffer) < start + length:
            return None
        body = bytes(buffer[start:start + length])
        del buffer[:start + length]
        return status, body

    async def exchange(self, data: bytes) -> tuple[int, bytes]:
        if self._closed is not None:
            raise self._closed
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self._waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _connect(port: int) -> _Answer:
    _, protocol = await asyncio.get_running_loop().create_connection(_Answer, "127.0.0.1", port)
    return protocol


@dataclass
class LoadResult:
    exchanges: list[Exchange] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> list[Exchange]:
        return [e for e in self.exchanges if 200 <= e.status < 300]

    @property
    def throughput(self) -> float:
        return len(self.ok) / self.seconds if self.seconds else 0.0

    def latencies(self) -> Latencies:
        return Latencies([e.seconds for e in self.ok])


async def closed_loop(
    requests: Iterable[Request], *, concurrency: int, max_count: int, max_seconds: float,
    timeout: float = 30.0,
) -> LoadResult:
    """Send ``requests`` with ``concurrency`` workers, each waiting for its answer before the
    next request; stop after ``max_count`` requests or ``max_seconds``, whichever comes first."""
    source: Iterator[Request] = iter(requests)
    result = LoadResult()
    deadline = time.monotonic() + max_seconds
    remaining = max_count

    def take() -> Request | None:
        nonlocal remaining
        if remaining <= 0 or time.monotonic() >= deadline:
            return None
        remaining -= 1
        return next(source, None)

    async def worker() -> None:
        own: dict[int, _Answer] = {}
        try:
            while (item := take()) is not None:
                sent_at, started = time.time(), time.perf_counter()
                try:
                    connection = own.get(item.port)
                    if connection is None:
                        connection = own[item.port] = await _connect(item.port)
                    status, body = await asyncio.wait_for(connection.exchange(item.data), timeout)
                except (OSError, asyncio.TimeoutError, ValueError, IndexError):
                    result.errors += 1
                    stale = own.pop(item.port, None)
                    if stale is not None:
                        stale.close()
                    continue
                result.exchanges.append(Exchange(item.key, sent_at, time.perf_counter() - started, status, body))
        finally:
            for connection in own.values():
                connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


class Latencies:
    """Order statistics of a sample of durations in seconds, reported in milliseconds."""

    def __init__(self, seconds: Iterable[float]) -> None:
        self._sorted = sorted(seconds)

    def __len__(self) -> int:
        return len(self._sorted)

    def percentile(self, p: float) -> float | None:
        """The nearest-rank percentile, in milliseconds; None for an empty sample."""
        if not self._sorted:
            return None
        rank = max(1, math.ceil(p / 100 * len(self._sorted)))
        return self._sorted[rank - 1] * 1000

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p99(self) -> float | None:
        return self.percentile(99)
