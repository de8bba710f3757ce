"""A stand-in for the probation offices' reception of post-release probation notices.

It checks each notice against the contract and against the offices that exist
(a notice for an unknown office is refused, as the real register would), records
it with its ``X-Message-Id``, and answers a repeated id with 200.
"""

from __future__ import annotations

from aiohttp import web

from adapters.adaptation.simulator import add_reception
from adapters.population import Population
from adapters.probation.codec import probation_notice_from_json
from adapters.simulation import Behaviour, NoticeRefused, Recorder, decoded, read_json, simulator_app, simulator_of

__all__ = ["PATH", "create_simulator"]

PATH = "/release-notices"
_SERVICE = "probation/release-notices"
_MAX_BODY = 64 * 1024
_MAX_DEPTH = 8


def create_simulator(
    population: Population, behaviour: Behaviour | None = None, recorder: Recorder | None = None
) -> web.Application:
    app = simulator_app("probation", behaviour, recorder)
    offices = frozenset(district.probation_office.code for district in population.districts)

    async def receive(request: web.Request) -> web.Response:
        payload, body = await read_json(request, max_bytes=_MAX_BODY, max_depth=_MAX_DEPTH)
        notice = decoded(probation_notice_from_json, payload, NoticeRefused)
        if notice.probation_office.code not in offices:
            raise NoticeRefused("probation_office.code names no probation office in the register")
        seen = simulator_of(request).recorder.record(_SERVICE, request, body)
        return web.json_response({"received": True, "duplicate": seen > 1}, status=202 if seen == 1 else 200)

    app.router.add_post(PATH, receive)
    add_reception(app, "/plans", "probation")
    return app
