"""Re-socialisation plans end to end: the penal system pushes the plan over signed SOAP before release,
probation changes it over JSON; each version reaches post-release probation in full and the adaptation
partners as the disclosure policy lets their roles see it, audited; the measures addressed to members
become referrals; stale, conflicting and impossible versions are refused with nothing stored or sent."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from adapters.penal.simulator import push_plan
from gateway.domain import ResocialisationPlan
from gateway.security.pseudonyms import Pseudonyms
from gateway.services.plans import KIND
from gateway.workflows.ports import SourceRejected
from support import wait_until
from workflow_steps import TREATED, UNTREATED, notify_release

PARTNERS = ("akimat-social", "adaptation-centre", "ngo-partner")
RECIPIENTS = ["probation", *PARTNERS]
SECRET_WORDS = ("criminal_history", "antisocial_pattern", "score", "band", "instrument", "description")


def plan_body(person, today: dt.date, **changes) -> dict:
    plan = {
        "iin": person.iin, "stage": "CORRECTIONAL",
        "assessment": {"instrument": "LS/CMI", "assessment_date": (today - dt.timedelta(days=20)).isoformat(),
                       "score": 24, "band": "HIGH", "criminal_history": "HIGH", "education_employment": "HIGH",
                       "family_marital": "MEDIUM", "leisure_recreation": "LOW", "companions": "MEDIUM",
                       "alcohol_drug": "HIGH", "procriminal_attitude": "MEDIUM", "antisocial_pattern": "HIGH"},
        "measures": [
            {"category": "PLACE_TO_STAY", "description": "Орын ЦСА-да, босатылғаннан кейін",
             "responsible": {"code": "adaptation-centre", "name": "ЦСА"}, "due": (today + dt.timedelta(days=40)).isoformat()},
            {"category": "DOCUMENT_RESTORATION", "description": "Жеке куәлікті қалпына келтіру",
             "responsible": {"code": "akimat-social", "name": "Әкімдік"}, "due": (today + dt.timedelta(days=60)).isoformat()},
            {"category": "TREATMENT", "description": "Опиоидная заместительная терапия — продолжить",
             "responsible": {"code": "KZ-POLY-7", "name": "Поликлиника №7"}, "due": (today + dt.timedelta(days=30)).isoformat()},
        ],
        "responsible_body": {"code": "PROB-751", "name": "Пробация қызметі"},
        "drawn_up": (today - dt.timedelta(days=10)).isoformat(),
        "review_by": (today + dt.timedelta(days=90)).isoformat(),
    }
    plan.update(changes)
    return plan


async def submit(http, system, plan_id: str, version: int, plan: dict, member: str = "probation",
                 message_id: str | None = None):
    headers = {"X-Member-Id": member, **({"X-Message-Id": message_id} if message_id else {})}
    async with http.post(f"{system.gateway.url}/api/v1/plans", json={"plan_id": plan_id, "version": version,
                                                                        "plan": plan}, headers=headers) as response:
        return response.status, await response.json()


def deliveries(system, member: str):
    simulator = "probation" if member == "probation" else "social"
    return system.simulation.recorder(simulator).of(f"{member}/plans")


async def outbox_size(system) -> int:
    """Every plan notice the gateway has stored for sending, in whatever state."""
    return len([m for m in await system.gateway.store.list_messages(limit=10_000) if m.service == "plans"])


async def test_a_plan_travels_with_the_person_each_recipient_seeing_what_its_role_may(start_system, http):
    async with start_system() as system:
        gateway, keys = system.gateway, system.simulation.keys
        today = gateway.services.outcomes.today()
        await notify_release(http, system, TREATED)
        plan = ResocialisationPlan.model_validate(plan_body(TREATED, today))

        # The penal system, before release: signed SOAP, checked against its pinned certificate.
        receipt = await push_plan(gateway.url, "PLAN-1", 1, plan, http, message_id="penal-plan-1",
                                  signer=keys.signers["penal"], verifier=keys.gateway)
        assert receipt["recipients"] == RECIPIENTS and receipt["duplicate"] is False
        assert receipt["referrals"] == ["PLAN-1:PLACE_TO_STAY:adaptation-centre",
                                        "PLAN-1:DOCUMENT_RESTORATION:akimat-social"]
        await wait_until(lambda: all(deliveries(system, m) for m in RECIPIENTS))

        full = json.loads(deliveries(system, "probation")[0].body)
        assert full["assessment"]["band"] == "HIGH" and full["version"] == 1
        assert [m["description"] for m in full["measures"]][2].startswith("Опиоидная")
        for partner in PARTNERS:
            (delivered,) = deliveries(system, partner)
            body = json.loads(delivered.body)
            assert body["plan_id"] == "PLAN-1" and body["iin"] == TREATED.iin
            assert {n["domain"]: n["level"] for n in body["needs"]}["alcohol_drug"] == "HIGH"
            assert [m["category"] for m in body["measures"]] == ["PLACE_TO_STAY", "DOCUMENT_RESTORATION", "TREATMENT"]
            assert body["measures"][0]["referral_id"] == "PLAN-1:PLACE_TO_STAY:adaptation-centre"
            assert "assessment" not in body and not any(word in delivered.body.decode() for word in SECRET_WORDS)
            assert "терапия" not in delivered.body.decode()

        # Every disclosure is in the audit log, with what was withheld from whom.
        entries = [json.loads(r.entry) for r in await gateway.store.audit_by_subject(
            gateway.services.audit.subject_key(TREATED.iin))]
        disclosed = {e["member"]: e for e in entries if e.get("document_type") == "PlanNotice"}
        assert sorted(disclosed) == sorted(RECIPIENTS)
        assert any(path.startswith("assessment") for path in disclosed["ngo-partner"]["withheld"])
        assert not any(path.startswith("assessment") for path in disclosed["probation"]["withheld"])

        # The same message again: the same answer, nothing sent again. Its id with other content: 422.
        sent = await outbox_size(system)
        again = await push_plan(gateway.url, "PLAN-1", 1, plan, http, message_id="penal-plan-1",
                                signer=keys.signers["penal"], verifier=keys.gateway)
        assert again["duplicate"] is True and again["recipients"] == RECIPIENTS
        changed = plan.model_copy(update={"review_by": plan.review_by + dt.timedelta(days=1)})
        with pytest.raises(SourceRejected, match="idempotency-key-reused|already used"):
            await push_plan(gateway.url, "PLAN-1", 2, changed, http, message_id="penal-plan-1",
                            signer=keys.signers["penal"], verifier=keys.gateway)
        assert await outbox_size(system) == sent

        # Probation changes it: version 2 goes out to everyone; the measures' referrals are the same ones.
        fewer = plan_body(TREATED, today)
        fewer["measures"] = fewer["measures"][:1]
        status, answer = await submit(http, system, "PLAN-1", 2, fewer)
        assert status == 201 and answer["referrals"] == ["PLAN-1:PLACE_TO_STAY:adaptation-centre"]
        await wait_until(lambda: all(len(deliveries(system, m)) == 2 for m in RECIPIENTS))
        assert json.loads(deliveries(system, "ngo-partner")[1].body)["version"] == 2
        assert (await submit(http, system, "PLAN-1", 2, fewer))[0] == 200  # the same version again
        # A stale version, and a used version number with other content: 409, nothing sent.
        sent = await outbox_size(system)
        status, problem = await submit(http, system, "PLAN-1", 1, plan_body(TREATED, today))
        assert status == 409 and "stale" in problem["detail"]
        status, problem = await submit(http, system, "PLAN-1", 2, plan_body(TREATED, today))
        assert status == 409 and "other content" in problem["detail"]
        assert await outbox_size(system) == sent

        async with http.get(f"{gateway.url}/api/v1/plans/PLAN-1", headers={"X-Member-Id": "probation"}) as response:
            versions = (await response.json())["versions"]
        assert [(v["version"], v["sender"]) for v in versions] == [(1, "penal"), (2, "probation")]
        async with http.get(f"{gateway.url}/api/v1/plans/PLAN-1", headers={"X-Member-Id": "social"}) as response:
            assert response.status == 403

        # Released today: probation carries the plan on into the adaptation stage, never dated before it.
        actual = TREATED.release.model_copy(update={"actual_date": today})
        await notify_release(http, system, TREATED, event="ACTUAL", notice=actual)
        adaptation = plan_body(TREATED, today, stage="ADAPTATION")
        status, problem = await submit(http, system, "PLAN-1", 3, adaptation)
        assert status == 422 and "before the release" in problem["detail"]
        adaptation["drawn_up"] = today.isoformat()
        assert (await submit(http, system, "PLAN-1", 3, adaptation))[0] == 201

        # The adaptation centre reports on the referral the plan made: it counts for the indicators.
        async with http.post(f"{gateway.url}/api/v1/referrals/PLAN-1:PLACE_TO_STAY:adaptation-centre/outcomes",
                             json={"state": "accepted", "date": today.isoformat()},
                             headers={"X-Member-Id": "adaptation-centre"}) as response:
            assert response.status == 200, await response.text()
        config = gateway.config
        pseudonym = Pseudonyms.provision(config.base_dir / config.indicators.pseudonym_key_secret).person(TREATED.iin)
        referrals = [r for r in (await gateway.store.indicator_events()).referrals if r.pseudonym == pseudonym]
        assert sorted((r.category, r.recipient, r.state) for r in referrals) == [
            ("DOCUMENT_RESTORATION", "akimat-social", "sent"), ("EMPLOYMENT", "employment", "sent"),
            ("PLACE_TO_STAY", "adaptation-centre", "accepted")]


@pytest.mark.parametrize("change, status, words", [
    ({"iin": None}, 404, "no release of this person"),
    ({"drawn_up": "FUTURE"}, 422, "in the future"),
    ({"assessment": {"score": 44}}, 422, "out of range"),
    ({"assessment": {"instrument": "Gut feeling"}}, 422, "instrument"),
    ({"assessment": {"band": "EXTREME"}}, 422, "band"),
    ({"measure": {"category": "HOLIDAY"}}, 422, "category"),
    ({"stage": "ADAPTATION"}, 422, "release has not happened"),
    ({"review_by": "PAST"}, 422, "review_by"),
], ids=["unknown person", "future", "score", "instrument", "band", "category", "adaptation before release",
        "review before drawn up"])
async def test_a_plan_that_cannot_be_is_refused_and_nothing_is_stored_or_sent(start_system, http, change, status,
                                                                               words):
    async with start_system() as system:
        gateway = system.gateway
        today = gateway.services.outcomes.today()
        await notify_release(http, system, TREATED)
        plan = plan_body(TREATED, today)
        if "iin" in change:
            plan["iin"] = UNTREATED.iin
        if "drawn_up" in change:
            plan["drawn_up"] = (today + dt.timedelta(days=1)).isoformat()
        if "review_by" in change:
            plan["review_by"] = (today - dt.timedelta(days=30)).isoformat()
        if "stage" in change:
            plan["stage"] = change["stage"]
        plan["assessment"].update(change.get("assessment", {}))
        plan["measures"][0].update(change.get("measure", {}))
        sent = await outbox_size(system)
        answer_status, problem = await submit(http, system, f"PLAN-{uuid.uuid4()}", 1, plan)
        assert answer_status == status, problem
        assert problem["type"].startswith("https://") or problem["title"]
        assert words in problem["detail"]
        assert await outbox_size(system) == sent
        assert await gateway.store.list_cases(KIND) == []


async def test_over_soap_an_unknown_person_and_a_stranger_are_client_faults(start_system, http):
    async with start_system() as system:
        gateway, keys = system.gateway, system.simulation.keys
        today = gateway.services.outcomes.today()
        plan = ResocialisationPlan.model_validate(plan_body(UNTREATED, today))
        with pytest.raises(SourceRejected, match="unknown-person|no release of this person"):
            await push_plan(gateway.url, "PLAN-X", 1, plan, http, signer=keys.signers["penal"], verifier=keys.gateway)
        with pytest.raises(SourceRejected, match="may not send re-socialisation plans"):
            await push_plan(gateway.url, "PLAN-X", 1, plan, http, sender_id="interior",
                            signer=keys.signers["interior"], verifier=keys.gateway)
        assert await gateway.store.list_cases(KIND) == []
