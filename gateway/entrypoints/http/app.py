"""The aiohttp application: middlewares (correlation id, metrics, refusal audit, problem details,
caller identity, body deadline) and routes."""

from __future__ import annotations

import datetime
import time
import uuid

import structlog
from aiohttp import web

from gateway.bootstrap import Services
from gateway.entrypoints.http.context import SERVICES, services_of
from gateway.errors import BadRequest, GatewayError, MethodNotAllowed, NotFound, PayloadTooLarge, Unavailable
from gateway.entrypoints.http import api, console, ops, oversight, workflows
from gateway.logs import get_logger
from gateway.web.problems import problem_response
from gateway.web.identity import caller_identification
from gateway.web.intake import body_deadline, refusal_audit
from gateway.entrypoints.soap import relay as soap_endpoint
from gateway.soap.envelope import build_envelope, serialise
from gateway.soap.faults import SoapFault, fault_body
from gateway.store import StoreError

CORRELATION_HEADER = "X-Correlation-Id"
log = get_logger("gateway.http")


def create_app(services: Services) -> web.Application:
    server = services.config.server
    app = web.Application(
        middlewares=[
            _correlation,
            _metrics,
            # Outside _problems, so it sees every refusal as the answer the caller gets.
            refusal_audit(services.audit, services.config.members, server.member_id),
            _problems,
            caller_identification(server.identity, services.config.members),
            body_deadline(server.receive_timeout_seconds),
        ],
        client_max_size=server.max_body_bytes,
    )
    app[SERVICES] = services
    api.add_routes(app)
    ops.add_routes(app)
    oversight.add_routes(app)
    workflows.add_routes(app)
    soap_endpoint.add_routes(app, services)
    console.add_routes(app)
    return app


@web.middleware
async def _correlation(request: web.Request, handler):
    correlation_id = request.headers.get(CORRELATION_HEADER) or str(uuid.uuid4())
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id[:128])
    try:
        response = await handler(request)
    finally:
        structlog.contextvars.clear_contextvars()
    response.headers.setdefault(CORRELATION_HEADER, correlation_id[:128])
    return response


@web.middleware
async def _metrics(request: web.Request, handler):
    started = time.perf_counter()
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        metrics = services_of(request).metrics
        metrics.http_requests.labels(route, request.method, str(status)).inc()
        metrics.http_latency.labels(route).observe(time.perf_counter() - started)


@web.middleware
async def _problems(request: web.Request, handler):
    """Every error leaves as RFC 9457 problem+json; a client's mistake is never a 5xx."""
    try:
        return await handler(request)
    except GatewayError as error:
        if not error.is_client_error:
            log.error("request failed", route=request.path, status=error.status, error=error.detail)
        if request.method == "POST" and request.path.startswith("/soap/"):
            # Refused before the SOAP endpoint ran (the caller's identity): still a SOAP answer.
            now = datetime.datetime.fromtimestamp(services_of(request).clock(), datetime.UTC)
            fault = fault_body(SoapFault.of(error), now=now)
            return web.Response(body=serialise(build_envelope(fault)), status=error.status, content_type="text/xml",
                                charset="utf-8")
        return problem_response(error, request)
    except StoreError as exc:
        log.error("store unavailable", route=request.path, error=str(exc))
        return problem_response(Unavailable("the store is unavailable; nothing was accepted, try again later"), request)
    except web.HTTPRequestEntityTooLarge as exc:
        return problem_response(PayloadTooLarge(f"the body is larger than the limit of {exc.max_size} bytes"), request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            error: GatewayError = NotFound(f"no resource at {request.path}: see /openapi.json")
        elif exc.status == 405:
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
        else:
            error = BadRequest(exc.text or exc.reason)
        return problem_response(error, request)
    except Exception:
        log.exception("unexpected error", route=request.path)
        return problem_response(Unavailable("the gateway hit an internal error; the request was not accepted"), request)
