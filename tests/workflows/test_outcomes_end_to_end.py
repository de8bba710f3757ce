"""Outcomes end to end: an actual release starts the watch, the referrals the release workflow sends
come back with outcomes, and the interior ministry's signal counts — all without an IIN in the
indicator tables."""

from __future__ import annotations

import json
import uuid

from gateway.security.pseudonyms import Pseudonyms
from support import wait_until
from workflow_steps import HOMELESS, notify_release


def pseudonyms(system) -> Pseudonyms:
    config = system.gateway.config
    return Pseudonyms.provision(config.base_dir / config.indicators.pseudonym_key_secret)


async def test_an_actual_release_is_watched_and_its_referrals_are_recorded_as_sent(start_system, http):
    async with start_system() as system:
        today = system.gateway.services.outcomes.today()
        case_id = await notify_release(http, system, HOMELESS)
        received = system.simulation.recorder("social")
        await wait_until(lambda: received.of("social/referrals") and received.of("employment/release-notices"))
        assert await system.gateway.store.indicator_releases_of(pseudonyms(system).person(HOMELESS.iin)) == []
        actual = HOMELESS.release.model_copy(update={"actual_date": today})
        assert await notify_release(http, system, HOMELESS, event="ACTUAL", notice=actual) == case_id
        (release,) = await system.gateway.store.indicator_releases_of(pseudonyms(system).person(HOMELESS.iin))
        assert release.release_date == today and release.watch_until.year == today.year + 3

        events = await system.gateway.store.indicator_events()
        assert sorted((r.category, r.recipient, r.state) for r in events.referrals) == [
            ("EMPLOYMENT", "employment", "sent"), ("PLACE_TO_STAY", "social", "sent")]
        stored = json.dumps([[str(value) for value in (r.referral_key, r.pseudonym, r.region)]
                             for r in events.referrals])
        assert HOMELESS.iin not in stored and case_id not in stored

        # The employment centre reports on the notice it received, by its X-Message-Id.
        notice_id = received.of("employment/release-notices")[0].message_id
        for state in ("accepted", "provided"):
            async with http.post(f"{system.gateway.url}/api/v1/referrals/{notice_id}/outcomes",
                                 json={"state": state, "date": today.isoformat()},
                                 headers={"X-Member-Id": "employment", "X-Message-Id": str(uuid.uuid4())}) as response:
                assert response.status == 200, await response.text()
        referral_id = json.loads(received.of("social/referrals")[0].body)["referral_id"]
        async with http.post(f"{system.gateway.url}/api/v1/referrals/{referral_id}/outcomes",
                             json={"state": "not_reached", "date": today.isoformat()},
                             headers={"X-Member-Id": "social"}) as response:
            assert response.status == 200

        async with http.get(f"{system.gateway.url}/api/v1/indicators") as response:
            report = await response.json()
        assisted = next(i for i in report["indicators"] if i["id"] == "persons_assisted")
        national = [c for c in assisted["cells"] if c["region"] == "KZ"]
        assert {c["numerator"] for c in national} <= {0, "<5"} and "<5" in {c["numerator"] for c in national}


async def test_a_release_that_is_only_planned_is_not_watched(start_system, http):
    async with start_system() as system:
        await notify_release(http, system, HOMELESS)
        received = system.simulation.recorder("social")
        await wait_until(lambda: received.of("social/referrals"))
        async with http.post(f"{system.gateway.url}/api/v1/reoffence-signals",
                             json={"iin": HOMELESS.iin, "kind": "NEW_CASE", "region": "75",
                                   "date": system.gateway.services.outcomes.today().isoformat()},
                             headers={"X-Member-Id": "interior"}) as response:
            assert response.status == 404
