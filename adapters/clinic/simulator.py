"""A stand-in for the primary-care clinics' systems (ПМСП) receiving continuity-of-care notices.

It validates each FHIR message Bundle (400 when it is not valid FHIR R4B, 422 when
it does not follow the profile), records it, answers 202, and later acknowledges it
the way a clinic does: after ``ack_delay`` seconds it attaches the person at the
receiving clinic in the health simulator (``health_url``) when it decides to, then
calls the gateway back:

    POST {gateway_url}/api/v1/continuity-notices/{notice_id}/acknowledgement
    X-Member-Id: clinic
    {"clinic": "<code>", "accepted": true, "attached": true, "attached_since": "YYYY-MM-DD"}

``notice_id`` is ``Bundle.identifier.value``. A notice addressed to a clinic the population
does not know is acknowledged with ``accepted: false``. Clinics in ``silent_clinics``
never call back, so that escalation can be exercised. A repeated notice id is
acknowledged once. With ``client_ssl`` (the exchange in mTLS mode) the clinics call the
gateway, and the health simulator, presenting the clinic member's certificate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from adapters import rpn
from adapters.clinic.client import Acknowledgement
from adapters.continuity_fhir import InvalidBundle, ProfileViolation, notice_from_bundle, notice_id_of
from adapters.population import Population
from adapters.simulation import Behaviour, Recorder, Refused, read_json, simulator_app, simulator_of
from gateway.domain import ContinuityOfCareNotice
from gateway.errors import BadRequest

__all__ = ["PATH", "create_simulator"]

PATH = "/continuity-of-care"
_SERVICE = "clinic/continuity-of-care"
_MAX_BODY = 1024 * 1024
_MAX_DEPTH = 32
# A clinic system keeps its acknowledgement until the gateway takes it: a gateway restarting on a
# busy machine may be away for several seconds, so ~1 minute of attempts, not a few.
_CALLBACK_ATTEMPTS = 60
_CALLBACK_BACKOFF = 0.1  # seconds, doubled after each failed attempt up to _CALLBACK_BACKOFF_MAX
_CALLBACK_BACKOFF_MAX = 1.0
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=5)


class _Refused(Refused):
    slug, title = "profile-violation", "The bundle does not follow the continuity-of-care profile"


class _Clinics:
    """What the clinics' systems remember and are set to do."""

    def __init__(
        self,
        population: Population,
        *,
        gateway_url: str,
        health_url: str | None,
        ack_delay: float,
        silent_clinics: Iterable[str],
        attach: bool | float,
        seed: int,
        client_ssl: ssl.SSLContext | None,
    ) -> None:
        if attach is not False and not health_url:
            raise ValueError("attaching people needs health_url, the health simulator's address")
        self.known = frozenset(district.clinic.code for district in population.districts)
        self.gateway_url = gateway_url.rstrip("/")
        self.health_url = (health_url or "").rstrip("/")
        self.ack_delay = ack_delay
        self.silent = frozenset(silent_clinics)
        self.attach = attach
        self.seed = seed
        self.client_ssl = client_ssl
        self.notices: set[str] = set()
        self.pending: set[asyncio.Task] = set()
        self.session: aiohttp.ClientSession | None = None

    def attaches(self, notice_id: str) -> bool:
        # Decided per notice from the seed, so the same run makes the same decisions.
        if isinstance(self.attach, bool):
            return self.attach
        return random.Random(f"{self.seed}:{notice_id}").random() < self.attach


_CLINICS = web.AppKey("clinics", _Clinics)


def create_simulator(
    population: Population,
    behaviour: Behaviour | None = None,
    recorder: Recorder | None = None,
    *,
    gateway_url: str,
    health_url: str | None = None,
    ack_delay: float = 0.0,
    silent_clinics: Iterable[str] = (),
    attach: bool | float = True,
    seed: int = 1,
    client_ssl: ssl.SSLContext | None = None,
) -> web.Application:
    """The clinics' reception. ``attach`` is a switch or the probability that a clinic attaches
    the person before acknowledging; ``silent_clinics`` are clinic codes that never acknowledge."""
    app = simulator_app("clinic", behaviour, recorder)
    app[_CLINICS] = _Clinics(
        population, gateway_url=gateway_url, health_url=health_url, ack_delay=ack_delay,
        silent_clinics=silent_clinics, attach=attach, seed=seed, client_ssl=client_ssl,
    )
    app.cleanup_ctx.append(_client_session)
    app.router.add_post(PATH, _receive)
    return app


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    clinics = app[_CLINICS]
    clinics.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=clinics.client_ssl or True))
    yield
    for task in clinics.pending:
        task.cancel()
    await asyncio.gather(*clinics.pending, return_exceptions=True)
    await clinics.session.close()


async def _receive(request: web.Request) -> web.Response:
    bundle, body = await read_json(request, max_bytes=_MAX_BODY, max_depth=_MAX_DEPTH)
    try:
        notice = notice_from_bundle(bundle)
    except InvalidBundle as error:
        raise BadRequest(f"not a valid FHIR R4B Bundle: {error}") from None
    except ProfileViolation as error:
        raise _Refused(str(error)) from None
    notice_id = notice_id_of(bundle)
    simulator_of(request).recorder.record(_SERVICE, request, body)
    clinics = request.app[_CLINICS]
    duplicate = notice_id in clinics.notices
    clinics.notices.add(notice_id)
    if not duplicate and notice.receiving_clinic.code not in clinics.silent:
        task = asyncio.create_task(_acknowledge(clinics, notice_id, notice))
        clinics.pending.add(task)
        task.add_done_callback(clinics.pending.discard)
    return web.json_response({"notice_id": notice_id, "duplicate": duplicate}, status=200 if duplicate else 202)


async def _acknowledge(clinics: _Clinics, notice_id: str, notice: ContinuityOfCareNotice) -> None:
    await asyncio.sleep(clinics.ack_delay)
    clinic = notice.receiving_clinic.code
    accepted = clinic in clinics.known
    attached_since = None
    if accepted and clinics.attaches(notice_id):
        attached_since = await _attach(clinics, notice, clinic)
    acknowledgement = Acknowledgement(
        clinic=clinic, accepted=accepted, attached=attached_since is not None, attached_since=attached_since
    ).json_body()
    url = f"{clinics.gateway_url}/api/v1/continuity-notices/{quote(notice_id, safe='')}/acknowledgement"
    headers = {"X-Member-Id": "clinic", "X-Message-Id": f"ack-{notice_id}"}
    for attempt in range(_CALLBACK_ATTEMPTS):
        status, _ = await _post(clinics, url, acknowledgement, headers)
        # Delivered, or refused for good: a clinic system retries only what may succeed later.
        if status is not None and status < 500 and status != 429:
            return
        await asyncio.sleep(min(_CALLBACK_BACKOFF * 2**attempt, _CALLBACK_BACKOFF_MAX))


async def _attach(clinics: _Clinics, notice: ContinuityOfCareNotice, clinic: str) -> dt.date | None:
    """Attach the person from the release date; the date the register recorded, or None if it refused."""
    request = rpn.attach_request(notice.person.iin, clinic, notice.release_date)
    status, answer = await _post(clinics, f"{clinics.health_url}/rpn/v1/attachments", request, {"X-Sender": "clinic"})
    if status not in (200, 201):
        return None
    try:
        attachment = rpn.attachment_from_json(answer)
    except ValueError:
        return None
    return None if attachment is None else attachment.since


async def _post(
    clinics: _Clinics, url: str, payload: dict[str, Any], headers: dict[str, str]
) -> tuple[int | None, Any]:
    """The status and JSON answer of a POST; (None, None) when no answer came."""
    try:
        async with clinics.session.post(url, json=payload, headers=headers, timeout=_REQUEST_TIMEOUT) as response:
            body = await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return None, None
    try:
        return response.status, json.loads(body) if body else None
    except ValueError:
        return response.status, None
