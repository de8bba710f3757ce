"""What every route handler reads its services from: the application's typed ``Services``."""

from __future__ import annotations

from aiohttp import web

from gateway.bootstrap import Services

SERVICES = web.AppKey("services", Services)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]
