"""Pre-trial reports end to end: a probation officer asks, agencies answer, the court receives."""

from __future__ import annotations

from lxml import etree

from gateway.workflows.pretrial import PretrialState
from support import wait_until
from workflow_steps import SUSPECT, report_request, report_status, request_report

async def test_a_report_reaches_the_court_complete_and_receipted(start_system, http):
    async with start_system() as system:
        report_id = await request_report(http, system, SUSPECT)

        async def complete():
            return (await report_status(http, system, report_id))["status"] == PretrialState.COMPLETE

        await wait_until(complete, timeout=20)
        status = await report_status(http, system, report_id)
        assert status["gaps"] == [] and status["version"] == 1
        assert status["versions"][0]["registration_number"]
        assert len(system.simulation.recorder("court").unique()) == 1


async def test_the_court_never_sees_an_expunged_conviction_or_a_diagnosis(start_system, http):
    async with start_system() as system:
        await request_report(http, system, SUSPECT)
        await wait_until(lambda: system.simulation.recorder("court").deliveries, timeout=20)
        xml = system.simulation.recorder("court").deliveries[0].body
        convictions = etree.fromstring(xml).xpath("//*[local-name()='conviction']")
        assert len(convictions) == sum(1 for c in SUSPECT.convictions if not c.expunged)
        assert all(c.xpath("string(*[local-name()='expunged'])") == "false" for c in convictions)
        codes = {r.icd10 for r in SUSPECT.health.registrations}
        assert not any(code.encode() in xml for code in codes), "a diagnosis reached the court"
        assert b"continuous" in xml.lower() or b"Continuous" in xml


async def test_a_source_down_gives_a_partial_report_then_a_complete_version(start_system, http):
    async with start_system() as system:
        system.simulation.behaviour("social").down = True
        report_id = await request_report(http, system, SUSPECT)

        async def partial_delivered():
            status = await report_status(http, system, report_id)
            return status["status"] == PretrialState.PARTIAL and status["versions"] and \
                status["versions"][0]["status"] == "delivered"

        await wait_until(partial_delivered, timeout=20)
        status = await report_status(http, system, report_id)
        assert status["gaps"] == ["social_situation"]
        assert "social" in status["sections"]["social_situation"]["reason"]
        system.simulation.behaviour("social").down = False

        async def complete():
            return (await report_status(http, system, report_id))["status"] == PretrialState.COMPLETE

        await wait_until(complete, timeout=20)
        status = await report_status(http, system, report_id)
        assert [v["version"] for v in status["versions"]] == [1, 2]
        assert all(v["registration_number"] for v in status["versions"])
        assert status["gaps"] == []


async def test_the_same_request_twice_is_one_report(start_system, http):
    async with start_system() as system:
        first = await request_report(http, system, SUSPECT, key="req-1")
        second = await request_report(http, system, SUSPECT, key="req-1")
        assert first == second


async def test_the_report_renders_in_russian_and_kazakh(start_system, http):
    async with start_system() as system:
        report_id = await request_report(http, system, SUSPECT)

        async def assembled():
            return (await report_status(http, system, report_id))["version"] >= 1

        await wait_until(assembled, timeout=20)
        for language, title in (("ru", "Досудебный доклад"), ("kk", "Сотқа дейінгі баяндама")):
            async with http.get(f"{system.gateway.url}/api/v1/pretrial-reports/{report_id}/document?lang={language}",
                                headers={"X-Member-Id": "probation"}) as response:
                page = await response.text()
                assert response.status == 200 and response.content_type == "text/html"
                assert title in page and SUSPECT.person.surname in page


async def test_an_invalid_request_is_refused_with_a_problem(start_system, http):
    async with start_system() as system:
        bad = report_request(SUSPECT) | {"subject_iin": "123456789012", "due_date": "tomorrow"}
        async with http.post(f"{system.gateway.url}/api/v1/pretrial-reports", json=bad,
                             headers={"X-Member-Id": "probation", "X-Purpose": "pretrial_report",
                                      "X-Message-Id": "bad-1"}) as response:
            problem = await response.json()
            assert response.status == 400 and response.content_type == "application/problem+json"
            assert "subject_iin" in problem["detail"] and "due_date" in problem["detail"]
        for due, defect in (("2000-01-01", "past"), ("2099-12-31", "too_far")):
            async with http.post(f"{system.gateway.url}/api/v1/pretrial-reports",
                                 json=report_request(SUSPECT) | {"due_date": due},
                                 headers={"X-Member-Id": "probation", "X-Purpose": "pretrial_report",
                                          "X-Message-Id": f"bad-{defect}"}) as response:
                problem = await response.json()
                assert response.status == 400, problem
                assert (problem["field"], problem["defect"]) == ("due_date", defect)
        assert await system.gateway.store.list_cases("pretrial_report") == []


async def test_only_probation_may_request_a_report(start_system, http):
    async with start_system() as system:
        async with http.post(f"{system.gateway.url}/api/v1/pretrial-reports", json=report_request(SUSPECT),
                             headers={"X-Member-Id": "clinic", "X-Purpose": "pretrial_report",
                                      "X-Message-Id": "x-1"}) as response:
            assert response.status == 403


async def _assembled(http, system, report_id: str) -> None:
    async def assembled():
        return (await report_status(http, system, report_id))["version"] >= 1

    await wait_until(assembled, timeout=20)


async def _document(http, system, report_id: str, member: str):
    async with http.get(f"{system.gateway.url}/api/v1/pretrial-reports/{report_id}/document",
                        headers={"X-Member-Id": member}) as response:
        return response.status, await response.text()


async def test_the_document_is_filtered_for_its_reader_and_every_read_is_audited_for_the_subject(start_system, http):
    async with start_system() as system:
        report_id = await request_report(http, system, SUSPECT)
        await _assembled(http, system, report_id)
        for member in ("probation", "court"):
            status, page = await _document(http, system, report_id, member)
            assert status == 200 and SUSPECT.person.surname in page
            # Health as flags for both: no diagnosis, no expunged conviction.
            assert not any(r.icd10 in page for r in SUSPECT.health.registrations), member
            expunged = [c for c in SUSPECT.convictions if c.expunged]
            assert not any(c.judgment_date.isoformat() in page for c in expunged), member
        reads = [e.event for e in await system.gateway.audit.by_subject(SUSPECT.person.iin)
                 if e.event.service == "pretrial-reports/document"]
        assert [(r.member, r.member_role, r.outcome.value, r.document_type, r.correlation_id) for r in reads] == [
            ("probation", "probation", "disclosed", "PreTrialReport", report_id),
            ("court", "court", "disclosed", "PreTrialReport", report_id),
        ]
        assert all("sections.identity.surname" in r.fields for r in reads)


async def test_operators_and_oversight_do_not_read_the_document(start_system, http):
    async with start_system() as system:
        report_id = await request_report(http, system, SUSPECT)
        await _assembled(http, system, report_id)
        status, page = await _document(http, system, report_id, "operations")
        assert status == 403 and SUSPECT.person.surname not in page
        reads = [e for e in await system.gateway.audit.by_subject(SUSPECT.person.iin)
                 if e.event.service == "pretrial-reports/document"]
        assert reads == []
