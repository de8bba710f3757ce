"""A stand-in for the Ministry of Labour and Social Protection's system.

It serves social status from the synthetic population, receives referrals to
special social services (answering each with a register number, the same one
again for a repeated ``X-Message-Id``), and hosts the employment centres'
reception, as the Ministry's system does. Everything received is recorded.
"""

from __future__ import annotations

from aiohttp import web

from adapters.adaptation.simulator import add_reception as add_plan_reception
from adapters.employment.simulator import add_reception
from adapters.population import Population
from adapters.simulation import Behaviour, Recorder, decoded, read_json, simulator_app, simulator_of
from adapters.social import codec
from gateway.errors import BadRequest, NotFound

__all__ = ["create_simulator"]

_MAX_BODY = 256 * 1024
_MAX_DEPTH = 16
_REFERRALS = "social/referrals"


_POPULATION = web.AppKey("social_population", Population)
# X-Message-Id -> the register number given to that referral.
_REGISTER_IDS = web.AppKey("social_register_ids", dict)


def create_simulator(
    population: Population, behaviour: Behaviour | None = None, recorder: Recorder | None = None
) -> web.Application:
    """The Ministry's services (``schemas/openapi/social.json``) and the employment centres' reception."""
    app = simulator_app("social", behaviour, recorder)
    app[_POPULATION] = population
    app[_REGISTER_IDS] = {}
    app.router.add_post("/social/v1/status/_search", _social_status)
    app.router.add_post("/referrals", _referral)
    # The adaptation partners' reception of re-socialisation plans (config/members.toml).
    for partner in ("akimat-social", "adaptation-centre", "ngo-partner"):
        add_plan_reception(app, f"/plans/{partner}", partner)
    add_reception(app, population)
    return app


async def _social_status(request: web.Request) -> web.Response:
    payload, _ = await read_json(request, max_bytes=_MAX_BODY, max_depth=_MAX_DEPTH)
    iin = decoded(codec.iin_from_query, payload)
    person = request.app[_POPULATION].by_iin(iin)
    if person is None or person.social is None:
        raise NotFound("no person with this IIN is known to the Ministry")
    return web.json_response(codec.social_status_json(person.social))


async def _referral(request: web.Request) -> web.Response:
    message_id = request.headers.get("X-Message-Id")
    if not message_id:
        raise BadRequest("send X-Message-Id: referrals are deduplicated by it")
    payload, body = await read_json(request, max_bytes=_MAX_BODY, max_depth=_MAX_DEPTH)
    referral = decoded(codec.referral_from_json, payload)
    register_ids = request.app[_REGISTER_IDS]
    seen = simulator_of(request).recorder.record(_REFERRALS, request, body)
    register_id = register_ids.setdefault(message_id, f"SSS-{len(register_ids) + 1:06d}")
    return web.json_response(codec.referral_receipt(register_id, referral), status=201 if seen == 1 else 200)
