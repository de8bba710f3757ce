"""Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.entrypoints.http.openapi import openapi_document
from gateway.entrypoints.http.context import services_of
from gateway.store import MessageState, StoreError

_READINESS_TIMEOUT = 2.0


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)


def _gateway(request: web.Request):
    return services_of(request)


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok", "checks": {}})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store can commit (what a 202 needs) and the delivery workers run."""
    gateway = _gateway(request)
    checks = {}
    try:
        await asyncio.wait_for(gateway.store.probe_write(), _READINESS_TIMEOUT)
        checks["store"] = "ok"
    except TimeoutError:
        checks["store"] = "unreachable: no answer within the readiness timeout"
    except StoreError as exc:
        checks["store"] = f"unreachable: {str(exc)[:200]}"
    except Exception as exc:
        checks["store"] = f"unreachable: {type(exc).__name__}"
    checks["delivery"] = "ok" if gateway.engine.running else "stopped"
    ready = all(value == "ok" for value in checks.values())
    return web.json_response({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    gateway = _gateway(request)
    registry = gateway.metrics
    try:
        counts = await asyncio.wait_for(gateway.store.counts(), _READINESS_TIMEOUT)
    except Exception:
        counts = None  # the other figures are still worth serving
    if counts is not None:
        destinations = {recipient for recipient, _ in counts} | set(gateway.engine.breaker_states())
        for destination in destinations:
            for state in (MessageState.ACCEPTED, MessageState.IN_FLIGHT):
                registry.queue_depth.labels(destination, state.value).set(counts.get((destination, state), 0))
            registry.dead_letters.labels(destination).set(counts.get((destination, MessageState.DEAD), 0))
    for destination, state in gateway.engine.breaker_states().items():
        registry.breaker_state.labels(destination).set(state)
    for destination, limit in gateway.engine.concurrency_limits().items():
        registry.concurrency_limit.labels(destination).set(limit)
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
