"""Release and continuity of care end to end: the penal system notifies, the gateway keeps
the person attached to care, and every recipient learns exactly what its purpose allows."""

from __future__ import annotations

import json

from fhir.resources.R4B.bundle import Bundle

from adapters.health.client import HealthClient
from adapters.penal.simulator import push_release_notices
from gateway.domain import AttachmentState, ReleaseEvent
from gateway.entrypoints.tools.simulate import ClinicBehaviour, SimulatedClock
from support import wait_until
from workflow_steps import (
    FAST,
    HOMELESS,
    NO_CLINIC,
    POPULATION,
    SILENT,
    TREATED,
    UNTREATED,
    case_reaches,
    notify_release,
    release_case,
)

FIVE_FIELDS = {"age", "release_date", "residence", "education", "specialty"}


async def test_a_treated_person_is_handed_to_the_new_clinic_and_the_case_closes(start_system, http):
    async with start_system() as system:
        case_id = await notify_release(http, system, TREATED)
        case = await case_reaches(http, system, case_id, "closed")
        clinic = POPULATION.clinic_for(TREATED.release.destination)
        assert case["clinic"] == clinic.code and case["acknowledgement"]["attached"] is True
        assert case["hold"]["id"] and case["hold"]["released"]
        assert case["notices"] == {"clinic": 1, "employment": 1, "probation": 1}
        health = HealthClient(system.simulation.urls["health"], http, timeout=5)
        attachment = await health.attachment(TREATED.iin)
        assert attachment.clinic.code == clinic.code and attachment.state is AttachmentState.ATTACHED
        assert len(system.simulation.recorder("clinic").unique("clinic/continuity-of-care")) == 1


async def test_every_workflow_disclosure_is_audited_with_its_document_type(start_system, http):
    async with start_system() as system:
        case_id = await notify_release(http, system, TREATED)
        await case_reaches(http, system, case_id, "closed")
        entries = await system.gateway.audit.by_subject(TREATED.iin)
        disclosed = {(e.event.member, e.event.document_type) for e in entries
                     if e.event.kind.value == "disclosure" and e.event.counterpart == system.gateway.config.server.member_id
                     and e.event.document_type != "AuditTrail"}
        assert ("clinic", "ContinuityOfCareNotice") in disclosed
        assert ("employment", "EmploymentNotice") in disclosed
        assert all(document_type for _, document_type in disclosed), disclosed


async def test_the_employment_centre_receives_exactly_five_fields(start_system, http):
    async with start_system() as system:
        await notify_release(http, system, TREATED)
        received = system.simulation.recorder("social")
        await wait_until(lambda: received.of("employment/release-notices"), timeout=20)
        notice = json.loads(received.of("employment/release-notices")[0].body)
        assert set(notice) == FIVE_FIELDS
        text = json.dumps(notice, ensure_ascii=False)
        assert TREATED.iin not in text and TREATED.person.surname not in text
        assert TREATED.person.birth_date.isoformat() not in text


async def test_the_clinic_never_receives_conviction_or_case_data(start_system, http):
    async with start_system() as system:
        await notify_release(http, system, TREATED)
        received = system.simulation.recorder("clinic")
        await wait_until(lambda: received.deliveries, timeout=20)
        bundle = received.deliveries[0].body.decode()
        for conviction in TREATED.convictions:
            assert conviction.court not in bundle
            assert all(f'"{article.article}"' not in bundle for article in conviction.articles)
        assert "conviction" not in bundle.lower() and "erdr" not in bundle.lower()
        assert TREATED.iin in bundle  # the clinic does need to know whose treatment it continues


async def test_a_clinic_that_never_acknowledges_is_escalated_to_the_health_authority(start_system, http):
    silent = POPULATION.clinic_for(SILENT.release.destination).code
    clock = SimulatedClock()
    async with start_system(clinic=ClinicBehaviour(silent_clinics=[silent]), clock=clock) as system:
        case_id = await notify_release(http, system, SILENT)
        await wait_until(lambda: system.simulation.recorder("clinic").of("clinic/continuity-of-care"), timeout=20)
        assert (await release_case(http, system, case_id))["state"] != "escalated"  # not before the deadline
        clock.advance(FAST["workflows.release.acknowledge_within_seconds"] + 1)
        case = await case_reaches(http, system, case_id, "escalated")
        assert case["escalations"][0]["reason"] == "the clinic did not acknowledge in time"
        authority = system.simulation.recorder("health")
        await wait_until(lambda: authority.of("health/escalations"), timeout=20)
        # Addressed to the authority, as an escalation, saying why; valid FHIR R4B.
        bundle = json.loads(authority.of("health/escalations")[0].body)
        Bundle.model_validate(bundle)
        header = bundle["entry"][0]
        assert header["fullUrl"] == f"urn:uuid:{header['resource']['id']}"
        assert header["resource"]["destination"][0]["endpoint"] == "urn:reentry-gateway:member:health-authority"
        assert header["resource"]["eventCoding"]["code"] == "continuity-of-care-escalation"
        assert header["resource"]["reason"]["text"] == "the clinic did not acknowledge in time"
        clinic_bundle = json.loads(system.simulation.recorder("clinic").of("clinic/continuity-of-care")[0].body)
        assert clinic_bundle["entry"][0]["resource"]["destination"][0]["endpoint"] == "urn:reentry-gateway:member:clinic"


async def test_no_clinic_for_the_destination_escalates_at_once(start_system, http):
    async with start_system() as system:
        case_id = await notify_release(http, system, NO_CLINIC)
        case = await case_reaches(http, system, case_id, "escalated")
        assert case["escalations"][0]["reason"] == "no clinic serves the destination address"
        assert "clinic" not in case["notices"]
        assert case["hold"] is not None  # the old attachment is held while the authority finds a clinic


async def test_a_person_with_no_registration_gets_no_clinic_notice_but_is_watched(start_system, http):
    async with start_system() as system:
        case_id = await notify_release(http, system, UNTREATED)
        case = await case_reaches(http, system, case_id, "awaiting_attachment")
        assert "clinic" not in case["notices"] and case["hold"] is not None
        assert not system.simulation.recorder("clinic").deliveries


async def test_no_housing_refers_the_person_to_social_services(start_system, http):
    async with start_system() as system:
        await notify_release(http, system, HOMELESS)
        referrals = system.simulation.recorder("social")
        await wait_until(lambda: referrals.of("social/referrals"), timeout=20)
        referral = json.loads(referrals.of("social/referrals")[0].body)
        assert "no housing" in referral["reason"]


async def test_a_duplicate_notice_is_one_case_and_one_clinic_notice(start_system, http):
    async with start_system() as system:
        first = await notify_release(http, system, TREATED, key="penal-1")
        second = await notify_release(http, system, TREATED, key="penal-1")
        third = await notify_release(http, system, TREATED, key="penal-2")  # same release, another message
        assert first == second == third
        await case_reaches(http, system, first, "closed")
        assert len(system.simulation.recorder("clinic").unique()) == 1
        assert len(await system.gateway.store.list_cases("release_case")) == 1


async def test_a_changed_release_date_updates_the_case_and_renotifies(start_system, http):
    async with start_system() as system:
        case_id = await notify_release(http, system, TREATED)
        await case_reaches(http, system, case_id, "closed")
        moved = TREATED.release.model_copy(update={"planned_date": TREATED.release.planned_date.replace(day=1)
                                                   if TREATED.release.planned_date.day != 1 else
                                                   TREATED.release.planned_date.replace(day=2)})
        await notify_release(http, system, TREATED, event="CHANGED", notice=moved)
        # Recorded on the closed case, which is not reopened: the person is attached already.
        case = await release_case(http, system, case_id)
        assert case["state"] == "closed" and [e["event"] for e in case["events"]] == ["PLANNED", "CHANGED"]
        assert len(system.simulation.recorder("clinic").unique()) == 1


async def test_a_change_before_acknowledgement_sends_the_new_date_to_everyone_told(start_system, http):
    silent = POPULATION.clinic_for(TREATED.release.destination).code
    async with start_system(clinic=ClinicBehaviour(silent_clinics=[silent]),
                            settings={"workflows.release.acknowledge_within_seconds": 60}) as system:
        case_id = await notify_release(http, system, TREATED)
        await case_reaches(http, system, case_id, "awaiting_acknowledgement")
        new_date = TREATED.release.planned_date.replace(day=28 if TREATED.release.planned_date.day != 28 else 27)
        moved = TREATED.release.model_copy(update={"planned_date": new_date})
        await notify_release(http, system, TREATED, event="CHANGED", notice=moved)

        async def renotified():
            return (await release_case(http, system, case_id))["notices"] == {"clinic": 2, "employment": 2,
                                                                             "probation": 2}

        await wait_until(renotified, timeout=20)
        await wait_until(lambda: len(system.simulation.recorder("social").of("employment/release-notices")) == 2)
        employment = system.simulation.recorder("social").of("employment/release-notices")
        assert json.loads(employment[-1].body)["release_date"] == new_date.isoformat()


async def test_a_cancelled_release_lifts_the_hold_and_tells_probation(start_system, http):
    silent = POPULATION.clinic_for(TREATED.release.destination).code
    async with start_system(clinic=ClinicBehaviour(silent_clinics=[silent]),
                            settings={"workflows.release.acknowledge_within_seconds": 60}) as system:
        case_id = await notify_release(http, system, TREATED)
        await case_reaches(http, system, case_id, "awaiting_acknowledgement")
        await notify_release(http, system, TREATED, event="CANCELLED")
        case = await case_reaches(http, system, case_id, "cancelled")

        async def lifted():
            return (await release_case(http, system, case_id))["hold"].get("released")

        await wait_until(lifted, timeout=20)
        await wait_until(lambda: len(system.simulation.recorder("probation").of("probation/release-notices")) == 2)
        events = [json.loads(d.body)["event"] for d in system.simulation.recorder("probation").of(
            "probation/release-notices")]
        assert events == ["PLANNED", "CANCELLED"] and case["state"] == "cancelled"


async def test_the_penal_system_pushes_notices_over_soap(start_system, http):
    async with start_system() as system:
        (case_id,) = await push_release_notices(system.gateway.url, [(ReleaseEvent.PLANNED, TREATED.release)], http)
        await case_reaches(http, system, case_id, "closed")


async def test_a_clinic_cannot_acknowledge_a_notice_sent_to_another_clinic(start_system, http):
    silent = POPULATION.clinic_for(TREATED.release.destination).code
    async with start_system(clinic=ClinicBehaviour(silent_clinics=[silent]),
                            settings={"workflows.release.acknowledge_within_seconds": 60}) as system:
        case_id = await notify_release(http, system, TREATED)
        await case_reaches(http, system, case_id, "awaiting_acknowledgement")
        # The step commits before the outbox delivers: wait for the notice to arrive.
        await wait_until(lambda: system.simulation.recorder("clinic").deliveries, timeout=20)
        (delivery,) = system.simulation.recorder("clinic").deliveries
        notice_id = json.loads(delivery.body)["identifier"]["value"]
        async with http.post(f"{system.gateway.url}/api/v1/continuity-notices/{notice_id}/acknowledgement",
                             json={"clinic": "PMSP-other", "accepted": True, "attached": True,
                                   "attached_since": "2026-01-01"},
                             headers={"X-Member-Id": "clinic"}) as response:
            assert response.status == 404
        async with http.post(f"{system.gateway.url}/api/v1/continuity-notices/{notice_id}/acknowledgement",
                             json={"clinic": silent, "accepted": True, "attached": True,
                                   "attached_since": "2026-01-01"},
                             headers={"X-Member-Id": "clinic"}) as response:
            assert response.status == 200
        await case_reaches(http, system, case_id, "closed")


async def test_a_first_acknowledgement_stands_and_attached_since_comes_exactly_with_attached(start_system, http):
    silent = POPULATION.clinic_for(TREATED.release.destination).code
    async with start_system(clinic=ClinicBehaviour(silent_clinics=[silent]),
                            settings={"workflows.release.acknowledge_within_seconds": 60}) as system:
        case_id = await notify_release(http, system, TREATED)
        await case_reaches(http, system, case_id, "awaiting_acknowledgement")
        await wait_until(lambda: system.simulation.recorder("clinic").deliveries, timeout=20)
        (delivery,) = system.simulation.recorder("clinic").deliveries
        url = (f"{system.gateway.url}/api/v1/continuity-notices/"
               f"{json.loads(delivery.body)['identifier']['value']}/acknowledgement")

        async def acknowledge(**ack) -> tuple[int, dict]:
            async with http.post(url, json={"clinic": silent, "accepted": True, **ack},
                                 headers={"X-Member-Id": "clinic"}) as response:
                return response.status, await response.json(content_type=None)

        for inconsistent in ({"attached": True}, {"attached": False, "attached_since": "2026-01-01"}):
            status, problem = await acknowledge(**inconsistent)
            assert status == 400 and "attached_since" in problem["detail"]
        first = {"attached": True, "attached_since": "2026-01-01"}
        assert (await acknowledge(**first))[0] == 200
        assert (await acknowledge(**first))[0] == 200
        status, problem = await acknowledge(attached=False)
        assert status == 409 and problem["type"] == "urn:reentry-gateway:problem:conflict"
        case = await release_case(http, system, case_id)
        assert case["acknowledgement"]["attached_since"] == "2026-01-01"


async def test_a_member_that_signs_json_must_sign_its_release_notices_too(start_system, http, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def pem(path, key, public=False):
        data = (key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                if public else key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        path.write_bytes(data)
        return str(path)

    penal_key, gateway_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    settings = {"members.penal.sign_json": True, "members.penal.jws_keys.penal-1": pem(tmp_path / "penal.pub", penal_key,
                                                                                       public=True),
                "jws.signing_key": pem(tmp_path / "gateway.pem", gateway_key)}
    async with start_system(settings=settings) as system:
        body = {"event": "PLANNED", "notice": TREATED.release.model_dump(mode="json")}
        async with http.post(f"{system.gateway.url}/api/v1/release-notices", json=body,
                             headers={"X-Member-Id": "penal", "X-Purpose": "continuity_of_care",
                                      "X-Message-Id": "unsigned-1"}) as response:
            problem = await response.json()
        assert response.status == 401 and problem["type"].endswith("invalid-signature")
        assert await system.gateway.store.list_cases("release_case") == []
