"""RFC 9457 problem responses, for the gateway and the agency simulators alike."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import GatewayError

__all__ = ["problem_response"]


def problem_response(error: GatewayError, request: web.Request) -> web.Response:
    return web.json_response(
        error.problem(instance=request.path),
        status=error.status,
        content_type="application/problem+json",
        headers=error.headers or None,
    )
