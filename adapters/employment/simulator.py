"""A stand-in for the employment centres' reception of release notices.

It refuses (422) any notice with a field beyond the five the Strategy permits, so
a disclosure leak fails loudly in every test and in the demo. Accepted notices are
recorded with their ``X-Message-Id``; a repeated id is answered 200 and counted as
a duplicate. The Ministry of Labour's system hosts this reception beside its own
services, so the social simulator mounts it too (``add_reception``).
"""

from __future__ import annotations

from aiohttp import web

from adapters.employment.codec import employment_notice_from_json
from adapters.population import Population
from adapters.simulation import Behaviour, NoticeRefused, Recorder, decoded, read_json, simulator_app, simulator_of

__all__ = ["PATH", "add_reception", "create_simulator"]

PATH = "/employment/release-notices"
_SERVICE = "employment/release-notices"
_MAX_BODY = 64 * 1024
_MAX_DEPTH = 8


def create_simulator(
    population: Population, behaviour: Behaviour | None = None, recorder: Recorder | None = None
) -> web.Application:
    app = simulator_app("employment", behaviour, recorder)
    add_reception(app, population)
    return app


def add_reception(app: web.Application, population: Population) -> None:
    """Serve ``POST /employment/release-notices`` on ``app`` (a ``simulator_app``), recording with its recorder."""
    centres = {district.kato: district.employment_centre for district in population.districts}

    async def receive(request: web.Request) -> web.Response:
        payload, body = await read_json(request, max_bytes=_MAX_BODY, max_depth=_MAX_DEPTH)
        notice = decoded(employment_notice_from_json, payload, NoticeRefused)
        seen = simulator_of(request).recorder.record(_SERVICE, request, body)
        # The centre serving the residence takes the person on; null where the territory has none.
        centre = centres.get(notice.residence.kato or "")
        answer = {
            "employment_centre": None if centre is None else {"code": centre.code, "name": centre.name},
            "duplicate": seen > 1,
        }
        return web.json_response(answer, status=202 if seen == 1 else 200)

    app.router.add_post(PATH, receive)
