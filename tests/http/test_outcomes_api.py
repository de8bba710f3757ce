"""Outcome intake over JSON against a live gateway and the real store: referrals registered by probation,
outcomes reported by their providers, re-offence signals from the interior ministry."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gateway.domain import Quarter, Sex, make_iin
from gateway.domain.outcomes import add_months
from gateway.security.pseudonyms import Pseudonyms
from gateway.store import RecordRelease

PROBATION = '''
[members.probation]
name = "Probation service"
role = "probation"
'''
PERSON = make_iin(dt.date(1988, 5, 14), Sex.MALE, 41)
OTHER = make_iin(dt.date(1991, 2, 3), Sex.FEMALE, 12)


@pytest.fixture
async def gateway(start_gateway, receiver):
    return await start_gateway(receiver.url, extra_members=PROBATION)


def today(gateway) -> dt.date:
    return gateway.services.outcomes.today()


async def post(http, gateway, path: str, body, member: str):
    async with http.post(gateway.url + path, json=body, headers={"X-Member-Id": member}) as response:
        return response.status, await response.json(content_type=None)


async def register(http, gateway, referral_id="ref-1", *, category="PSYCHOLOGICAL_SUPPORT", on=None, iin=PERSON):
    body = {"referral_id": referral_id, "iin": iin, "category": category, "provider": "social", "region": "75",
            "referral_date": (on or today(gateway) - dt.timedelta(days=20)).isoformat()}
    return await post(http, gateway, "/api/v1/referrals", body, "probation")


async def outcome(http, gateway, state: str, days_ago: int, referral_id="ref-1", member="social"):
    body = {"state": state, "date": (today(gateway) - dt.timedelta(days=days_ago)).isoformat()}
    return await post(http, gateway, f"/api/v1/referrals/{referral_id}/outcomes", body, member)


async def test_a_registered_referral_is_accepted_then_provided(gateway, http):
    assert (await register(http, gateway))[0] == 201
    status, answer = await outcome(http, gateway, "accepted", 10)
    assert (status, answer["state"], answer["duplicate"]) == (200, "accepted", False)
    status, answer = await outcome(http, gateway, "provided", 5)
    assert (status, answer["state"]) == (200, "provided")


async def test_the_same_outcome_again_is_a_duplicate_and_changes_nothing(gateway, http):
    await register(http, gateway)
    await outcome(http, gateway, "accepted", 10)
    status, answer = await outcome(http, gateway, "accepted", 10)
    assert (status, answer["duplicate"]) == (200, True)


async def test_provided_before_accepted_is_409_and_nothing_changes(gateway, http):
    await register(http, gateway)
    status, problem = await outcome(http, gateway, "provided", 5)
    assert status == 409 and "accepted first" in problem["detail"]
    key = Pseudonyms.provision(gateway.config.base_dir / gateway.config.indicators.pseudonym_key_secret).referral("ref-1")
    assert (await gateway.store.indicator_referral(key)).state == "sent"


async def test_a_second_final_outcome_is_409(gateway, http):
    await register(http, gateway)
    await outcome(http, gateway, "not_reached", 5)
    status, problem = await outcome(http, gateway, "refused_by_person", 4)
    assert status == 409 and "already has its outcome" in problem["detail"]


async def test_an_outcome_for_an_unknown_referral_is_404(gateway, http):
    status, _ = await outcome(http, gateway, "accepted", 1, referral_id="nobody-sent-this")
    assert status == 404


async def test_an_outcome_from_a_member_the_referral_was_not_sent_to_is_404(gateway, http):
    await register(http, gateway)
    status, _ = await outcome(http, gateway, "accepted", 1, member="health")
    assert status == 404


async def test_an_outcome_dated_in_the_future_is_422(gateway, http):
    await register(http, gateway)
    status, problem = await outcome(http, gateway, "accepted", -2)
    assert status == 422 and "in the future" in problem["detail"]


async def test_an_outcome_dated_before_the_release_is_422(gateway, http):
    key_file = gateway.config.base_dir / gateway.config.indicators.pseudonym_key_secret
    released = today(gateway) - dt.timedelta(days=30)
    await gateway.store.apply([RecordRelease(Pseudonyms.provision(key_file).person(PERSON), released, "75",
                                             str(Quarter.of(released)), add_months(released, 36))], 0)
    await register(http, gateway, on=released + dt.timedelta(days=1))
    status, problem = await outcome(http, gateway, "accepted", 40)
    assert status == 422 and "before the release" in problem["detail"]


async def test_an_unknown_category_is_422(gateway, http):
    status, problem = await register(http, gateway, category="HAIRCUT")
    assert status == 422 and problem["detail"].startswith("category")


async def test_an_unknown_state_is_422(gateway, http):
    await register(http, gateway)
    status, _ = await outcome(http, gateway, "delighted", 1)
    assert status == 422


async def test_only_probation_registers_referrals(gateway, http):
    body = {"referral_id": "r", "iin": PERSON, "category": "OTHER", "provider": "social", "region": "75",
            "referral_date": today(gateway).isoformat()}
    status, _ = await post(http, gateway, "/api/v1/referrals", body, "social")
    assert status == 403


async def _watched(gateway, iin=PERSON, days_ago=100) -> dt.date:
    key_file = gateway.config.base_dir / gateway.config.indicators.pseudonym_key_secret
    released = today(gateway) - dt.timedelta(days=days_ago)
    await gateway.store.apply([RecordRelease(Pseudonyms.provision(key_file).person(iin), released, "75",
                                             str(Quarter.of(released)), add_months(released, 36))], 0)
    return released


def signal(gateway, iin=PERSON, days_ago=10, kind="NEW_CASE") -> dict:
    return {"iin": iin, "kind": kind, "date": (today(gateway) - dt.timedelta(days=days_ago)).isoformat(),
            "region": "75"}


async def test_a_new_case_of_a_watched_person_is_recorded_once(gateway, http):
    await _watched(gateway)
    status, answer = await post(http, gateway, "/api/v1/reoffence-signals", signal(gateway), "interior")
    assert (status, answer["duplicate"]) == (200, False)
    status, answer = await post(http, gateway, "/api/v1/reoffence-signals", signal(gateway), "interior")
    assert (status, answer["duplicate"]) == (200, True)
    events = await gateway.store.indicator_events()
    assert len(events.reoffences) == 1 and PERSON not in json.dumps([str(e) for e in events.reoffences])


async def test_a_signal_for_a_person_who_is_not_watched_is_404(gateway, http):
    status, _ = await post(http, gateway, "/api/v1/reoffence-signals", signal(gateway, iin=OTHER), "interior")
    assert status == 404
    assert (await gateway.store.indicator_events()).reoffences == ()


async def test_a_signal_dated_before_the_release_is_422(gateway, http):
    await _watched(gateway, days_ago=5)
    status, _ = await post(http, gateway, "/api/v1/reoffence-signals", signal(gateway, days_ago=10), "interior")
    assert status == 422


async def test_a_signal_with_an_invalid_iin_is_422_and_only_interior_may_send_one(gateway, http):
    status, problem = await post(http, gateway, "/api/v1/reoffence-signals",
                                 signal(gateway, iin="123456789012"), "interior")
    assert status == 422 and "123456789012" not in json.dumps(problem)
    status, _ = await post(http, gateway, "/api/v1/reoffence-signals", signal(gateway), "penal")
    assert status == 403


async def test_a_signal_is_relayed_to_nobody(gateway, http, receiver):
    await _watched(gateway)
    await post(http, gateway, "/api/v1/reoffence-signals", signal(gateway), "interior")
    assert await gateway.store.list_messages() == [] and receiver.received == []
