"""A stand-in for the reception of re-socialisation plans: probation offices and the adaptation
partners (akimat social services, adaptation centres, NGOs).

Each notice is checked against the contract (``PlanNotice``), recorded with its ``X-Message-Id``
under ``<member>/plans``, and a repeated id is answered with 200. ``add_reception`` mounts it on
the simulator that plays the member (the social simulator plays the partners, as the Ministry's
system hosts the employment centres' reception).
"""

from __future__ import annotations

from aiohttp import web

from adapters.adaptation.client import plan_notice_from_json
from adapters.simulation import NoticeRefused, decoded, read_json, simulator_of

__all__ = ["add_reception"]

_MAX_BODY = 128 * 1024
_MAX_DEPTH = 8


def add_reception(app: web.Application, path: str, member: str) -> None:
    async def receive(request: web.Request) -> web.Response:
        payload, body = await read_json(request, max_bytes=_MAX_BODY, max_depth=_MAX_DEPTH)
        decoded(plan_notice_from_json, payload, NoticeRefused)
        seen = simulator_of(request).recorder.record(f"{member}/plans", request, body)
        return web.json_response({"received": True, "duplicate": seen > 1}, status=202 if seen == 1 else 200)

    app.router.add_post(path, receive)
