"""The message broker the gateway's durable acceptance is held against: RabbitMQ on the same
machine, persistent messages into a durable queue with publisher confirms, each publisher
waiting for its confirm before it sends the next — what a sender waiting for the gateway's
202 does. The broker's confirm, like the 202, means the message is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass

__all__ = ["BrokerRun", "RABBITMQ_URL", "rabbitmq_confirmed_per_second"]

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass(frozen=True)
class BrokerRun:
    """Messages confirmed per second, and the broker that confirmed them."""

    per_second: float
    confirmed: int
    version: str


async def rabbitmq_confirmed_per_second(
    body: bytes, *, publishers: int, seconds: float, url: str = RABBITMQ_URL
) -> BrokerRun | None:
    """Persistent messages confirmed per second by ``publishers`` connections, each waiting for
    its confirm; None when aio-pika is not installed or no broker answers at ``url``."""
    try:
        import aio_pika
    except ImportError:
        return None
    queue_name = f"bench-{uuid.uuid4().hex[:12]}"
    try:
        connections = [await aio_pika.connect(url, timeout=5) for _ in range(publishers)]
    except (OSError, aio_pika.exceptions.AMQPError, asyncio.TimeoutError):
        return None
    try:
        channels = [await connection.channel(publisher_confirms=True) for connection in connections]
        queue = await channels[0].declare_queue(queue_name, durable=True)
        version = connections[0].transport.connection.server_properties.get("version", b"?")
        confirmed = 0
        deadline = time.perf_counter() + seconds

        async def publish(channel: aio_pika.abc.AbstractChannel) -> None:
            nonlocal confirmed
            while time.perf_counter() < deadline:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                     message_id=uuid.uuid4().hex),
                    routing_key=queue_name)
                confirmed += 1

        started = time.perf_counter()
        await asyncio.gather(*(publish(channel) for channel in channels))
        elapsed = time.perf_counter() - started
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await queue.delete(if_unused=False, if_empty=False)
        return BrokerRun(confirmed / elapsed, confirmed,
                         version.decode() if isinstance(version, bytes) else str(version))
    finally:
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.close()
