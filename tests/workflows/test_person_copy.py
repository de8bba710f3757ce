"""The person's own copy of the pre-trial report: the probation officer records each hand-over, the
copy is what the policy lets the person or the representative see, and every disclosure is audited."""

from __future__ import annotations

import datetime as dt
import json

from gateway.workflows.pretrial import PretrialState
from support import wait_until
from workflow_steps import SUSPECT, report_status, request_report

ADVOCATE = {"name": "Серікбаев Нұрлан", "basis": "Адвокаттың ордері № 0042"}


async def hand_over(http, system, report_id: str, body: dict, member: str = "probation"):
    async with http.post(f"{system.gateway.url}/api/v1/pretrial-reports/{report_id}/person-copies", json=body,
                         headers={"X-Member-Id": member}) as response:
        return response.status, await response.json()


async def test_the_hand_over_is_recorded_and_the_representative_gets_the_filtered_report_audited(start_system, http):
    async with start_system() as system:
        gateway = system.gateway
        report_id = await request_report(http, system, SUSPECT)

        async def complete():
            return (await report_status(http, system, report_id))["status"] == PretrialState.COMPLETE

        await wait_until(complete, timeout=20)
        today = gateway.services.person_copies.today()
        status, to_person = await hand_over(http, system, report_id, {
            "handed_over_on": today.isoformat(), "language": "kk", "form": "paper", "to": "person"})
        assert status == 201, to_person
        assert (to_person["to"], to_person["language"], to_person["report_version"]) == ("person", "kk", 1)
        status, to_advocate = await hand_over(http, system, report_id, {
            "handed_over_on": today.isoformat(), "language": "ru", "form": "electronic", "to": "representative",
            "representative": ADVOCATE})
        assert status == 201 and to_advocate["representative"] == ADVOCATE

        # Refused, and nothing recorded: a future date, a representative without details, twice the same.
        for body, expected in (
            ({"handed_over_on": (today + dt.timedelta(days=1)).isoformat(), "language": "kk", "form": "paper",
              "to": "person"}, 422),
            ({"handed_over_on": today.isoformat(), "language": "ru", "form": "paper", "to": "representative"}, 422),
            ({"handed_over_on": today.isoformat(), "language": "en", "form": "paper", "to": "person"}, 422),
            ({"handed_over_on": today.isoformat(), "language": "kk", "form": "paper", "to": "person"}, 409),
        ):
            status, problem = await hand_over(http, system, report_id, body)
            assert status == expected, problem
        status, _ = await hand_over(http, system, "no-such-report",
                                    {"handed_over_on": today.isoformat(), "language": "kk", "form": "paper",
                                     "to": "person"})
        assert status == 404
        async with http.get(f"{gateway.url}/api/v1/pretrial-reports/{report_id}/person-copies",
                            headers={"X-Member-Id": "probation"}) as response:
            copies = (await response.json())["copies"]
        assert [c["copy_id"] for c in copies] == [to_person["copy_id"], to_advocate["copy_id"]]

        # The representative asks for the document again: the report as the policy lets them see it.
        async with http.get(f"{gateway.url}/api/v1/pretrial-reports/{report_id}/person-copies/"
                            f"{to_advocate['copy_id']}/document", headers={"X-Member-Id": "probation"}) as response:
            assert response.status == 200
            page = await response.text()
        assert SUSPECT.pretrial_case.erdr_number in page
        for registration in SUSPECT.health.registrations:
            assert registration.icd10 not in page  # health as flags only
        async with http.get(f"{gateway.url}/api/v1/pretrial-reports/{report_id}/person-copies/nope/document",
                            headers={"X-Member-Id": "probation"}) as response:
            assert response.status == 404

        entries = [json.loads(r.entry) for r in await gateway.store.audit_by_subject(
            gateway.services.audit.subject_key(SUSPECT.iin))]
        copies_disclosed = [e for e in entries if e.get("purpose") == "person_copy"]
        assert [(e["member_role"], e["message_id"]) for e in copies_disclosed] == [
            ("person", to_person["copy_id"]), ("representative", to_advocate["copy_id"]),
            ("representative", to_advocate["copy_id"])]
        # What was disclosed is named field by field; no diagnosis is among it.
        assert all(e["fields"] and not any("icd10" in path or "registrations" in path for path in e["fields"])
                   for e in copies_disclosed)
