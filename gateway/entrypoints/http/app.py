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
from gateway.errors import (
    BadRequest,
    GatewayError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from gateway.entrypoints.http import api, console, ops, outcomes, oversight, person_copies, workflows
from gateway.logs import get_logger
from gateway.web.problems import problem_response
from gateway.web.identity import caller_identification
from gateway.web.headers import well_formed
from gateway.web.intake import CLIENT_CLOSED, FAULT_CODE, body_deadline, refusal_audit
from gateway.web.ratelimit import rate_limits
from gateway.entrypoints.soap import async_channel, relay as soap_endpoint
from gateway.soap.envelope import build_envelope, serialise
from gateway.soap.faults import FaultCode, SoapFault, fault_body
from gateway.soap.server import fault_response
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
            *filter(None, [rate_limits(server.rate_limit, services.config.members, services.clock,
                                       services.metrics)]),
            body_deadline(server.receive_timeout_seconds),
        ],
        client_max_size=server.max_body_bytes,
    )
    app[SERVICES] = services
    api.add_routes(app)
    ops.add_routes(app)
    oversight.add_routes(app)
    workflows.add_routes(app)
    outcomes.add_routes(app)
    person_copies.add_routes(app)
    soap_endpoint.add_routes(app, services, also=[async_channel.async_channel_service(services)])
    console.add_routes(app)
    return app


@web.middleware
async def _correlation(request: web.Request, handler):
    correlation_id = request.headers.get(CORRELATION_HEADER, "")
    if not well_formed(correlation_id):
        # Absent, or free text the header check refuses: never bound to log lines or echoed.
        correlation_id = str(uuid.uuid4())
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    try:
        response = await handler(request)
    finally:
        structlog.contextvars.clear_contextvars()
    response.headers.setdefault(CORRELATION_HEADER, correlation_id)
    return response


def _route(request: web.Request) -> str:
    """The route's pattern (``/api/v1/release-cases/{case_id}``), never the path: it may hold a name."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def _metrics(request: web.Request, handler):
    started = time.perf_counter()
    route = _route(request)
    status, fault, response_headers = 500, None, {}
    try:
        response = await handler(request)
        status, response_headers = response.status, response.headers
        fault = response.get(FAULT_CODE)
        return response
    finally:
        metrics = services_of(request).metrics
        metrics.http_requests.labels(route, request.method, str(status)).inc()
        if fault is not None:
            # Every SOAP fault is a 500 on the wire; only a Server fault is the gateway's own.
            metrics.soap_faults.labels(route, fault).inc()
        # A Server fault that says when to come back (throttling) is no internal error either.
        if status == 500 and (fault is None or fault == FaultCode.SERVER and "Retry-After" not in response_headers):
            metrics.internal_errors.labels(route).inc()
        elif status == CLIENT_CLOSED:
            metrics.disconnects.labels(route).inc()
        metrics.http_latency.labels(route).observe(time.perf_counter() - started)


@web.middleware
async def _problems(request: web.Request, handler):
    """Every error leaves as RFC 9457 problem+json; a client's mistake is never a 5xx."""
    try:
        return await handler(request)
    except GatewayError as error:
        if not error.is_client_error:
            log.error("request failed", route=_route(request), status=error.status, error=error.detail)
        if request.method == "POST" and request.path.startswith("/soap/"):
            # Refused before the SOAP endpoint ran (the caller's identity): still a SOAP answer.
            now = datetime.datetime.fromtimestamp(services_of(request).clock(), datetime.UTC)
            # AsyncChannel's faults carry its own ErrorInfo (gateway.entrypoints.soap.async_channel).
            fault = SoapFault.of(error)
            detail = async_channel.error_detail if request.path == async_channel.PATH else None
            return fault_response(serialise(build_envelope(fault_body(fault, now=now, detail=detail))), fault,
                                  headers=error.headers)
        return problem_response(error, request)
    except StoreError as exc:
        log.error("store unavailable", route=_route(request), error=str(exc))
        return problem_response(Unavailable("the store is unavailable; nothing was accepted, try again later"), request)
    except ConnectionResetError:
        # The caller went away mid-request: not the gateway's fault, and nobody to answer.
        log.info("caller went away before the answer", route=_route(request))
        return web.Response(status=CLIENT_CLOSED)
    except web.HTTPRequestEntityTooLarge as exc:
        return problem_response(PayloadTooLarge(f"the body is larger than the limit of {exc.max_size} bytes"), request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            error: GatewayError = NotFound(f"no resource at {request.path}: see /openapi.json")
        elif isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            response = problem_response(MethodNotAllowed(f"{request.method} is not allowed here; allowed: {allowed}"),
                                        request)
            # RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
            response.headers["Allow"] = allowed
            return response
        else:
            error = BadRequest(exc.text or exc.reason)
        return problem_response(error, request)
    except Exception:
        # The gateway's own fault, not a store that cannot commit (503 above): retrying the same
        # request will not help, so it is not "unavailable". Counted by route in /metrics.
        log.exception("unexpected error", route=_route(request))
        return problem_response(InternalError(
            "the gateway failed on this request through its own fault, not yours; nothing was accepted. "
            "Operators can find it in the log by the X-Correlation-Id of this answer"), request)
