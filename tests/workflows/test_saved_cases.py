"""Cases saved by an earlier layout of the workflow state load and run on to their end (SQLite and PostgreSQL).

``fixtures/cases_v1.json`` holds the ``cases`` and ``timers`` rows of version 1 — the JSON
the gateway saved before its state had a declared shape and a version — exported by
``fixtures/export_cases.py`` from workflows stopped half-way. Each test puts those rows in a
fresh store, starts the whole exchange on it with a clock that carries on from the moment of
the export, and drives the cases to their final states; each is saved back as version 2.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from adapters.health import codec as health_codec
from adapters.health.client import HealthClient
from gateway.store import SaveCase, ScheduleTimer, Timer, create_store
from gateway.entrypoints.tools.simulate import ClinicBehaviour, running_system
from gateway.workflows import pretrial, release
from gateway.workflows.state import SCHEMA_VERSION, ReleaseCaseState, UnknownVersion, upgrade
from support import wait_until
from workflow_steps import FAST, POPULATION, case_reaches, release_case, report_status

ROWS = json.loads((Path(__file__).parent / "fixtures" / "cases_v1.json").read_text(encoding="utf-8"))
CASES = {row["label"]: row for row in ROWS["cases"]}
_ASTANA = dt.timezone(dt.timedelta(hours=5))


class Clock:
    """The gateway's clock: from the moment the rows were exported, running; ``jump`` moves it on."""

    def __init__(self, start: float) -> None:
        self._offset = start - time.time()

    def __call__(self) -> float:
        return time.time() + self._offset

    def jump_to(self, moment: float) -> None:
        self._offset += moment - self()


async def _load_rows(store_url: str) -> None:
    store = create_store(store_url)
    await store.open()
    try:
        for row in ROWS["cases"]:
            await store.apply([SaveCase(row["kind"], row["id"], row["state"], row["data"], 0, row["subject_key"])],
                              row["created_at"])
        await store.apply([ScheduleTimer(Timer(t["id"], t["case_kind"], t["case_id"], t["name"], t["fire_at"],
                                               t["payload"])) for t in ROWS["timers"]], ROWS["exported_at"])
    finally:
        await store.close()


async def _restore_holds(http, system) -> None:
    """The register of this run is new: give it back the holds the cases placed, with their ids."""
    health = HealthClient(system.simulation.urls["health"], http, timeout=5)
    held = sorted((row for row in ROWS["cases"] if row["data"].get("hold")), key=lambda r: r["data"]["hold"]["id"])
    for row in held:
        state = ReleaseCaseState.load(row["data"])
        hold = await health.place_hold(state.notice.iin, state.hold.until, reference=row["id"])
        assert hold.id == state.hold.id


async def _attach_at_destination(http, system, label: str) -> None:
    """The person attaches at the clinic of the new address, as a clinic records in РПН."""
    state = ReleaseCaseState.load(CASES[label]["data"])
    request = health_codec.attach_request(state.notice.iin, state.clinic.code, state.notice.release_date)
    async with http.post(f"{system.simulation.urls['health']}/rpn/v1/attachments", json=request,
                         headers={"X-Sender": "clinic"}) as response:
        assert response.status in (200, 201), await response.text()


def _after_every_watch() -> float:
    """A moment past the end of every case's attachment watch (60 days after its release)."""
    last = max(ReleaseCaseState.load(row["data"]).notice.release_date for row in ROWS["cases"]
               if row["kind"] == release.KIND)
    return dt.datetime.combine(last + dt.timedelta(days=61), dt.time(), _ASTANA).timestamp()


def test_the_fixture_holds_version_1_cases_in_the_intermediate_states_it_names():
    states = {label: row["state"] for label, row in CASES.items()}
    assert states == {"awaiting_ack": "awaiting_acknowledgement", "escalated": "escalated",
                      "watching": "awaiting_attachment", "partial": "partial"}
    assert all("v" not in row["data"] for row in ROWS["cases"])
    assert CASES["awaiting_ack"]["data"]["hold"] and "acknowledgement" not in CASES["awaiting_ack"]["data"]
    pending = {(t["case_id"], t["name"]) for t in ROWS["timers"]}
    assert (CASES["awaiting_ack"]["id"], "ack_deadline") in pending  # the escalation timer
    assert (CASES["partial"]["id"], "gather") in pending


def test_a_version_1_case_upgrades_to_the_current_version_and_nothing_else_changes():
    for row in ROWS["cases"]:
        upgraded = upgrade(row["kind"], row["data"])
        assert upgraded.pop("v") == SCHEMA_VERSION and upgraded == row["data"]


def test_a_version_1_case_is_saved_back_as_the_same_json_with_its_version():
    for row in ROWS["cases"]:
        model = ReleaseCaseState if row["kind"] == release.KIND else pretrial.PretrialCaseState
        saved = model.load(row["data"]).dump()
        assert saved.pop("v") == SCHEMA_VERSION
        # Version 1 wrote an unknown clinic as null; version 2 leaves it out. Both read as None.
        assert saved == {k: v for k, v in row["data"].items() if v is not None}


def test_a_case_saved_by_a_newer_gateway_is_refused_by_name_not_misread():
    row = CASES["awaiting_ack"]
    with pytest.raises(UnknownVersion, match=f"release_case saved at version {SCHEMA_VERSION + 1}"):
        ReleaseCaseState.load(row["data"] | {"v": SCHEMA_VERSION + 1})


async def test_cases_saved_by_the_previous_layout_run_to_their_final_states(store_url, http, tmp_path):
    await _load_rows(store_url)
    clock = Clock(ROWS["exported_at"])
    settings = {**FAST, "workflows.release.acknowledge_within_seconds": 3600,
                "workflows.pretrial.regather_interval_seconds": 0.4}
    silent = [CASES["awaiting_ack"]["data"]["clinic"]["code"]]
    async with running_system(tmp_path / "system", population=POPULATION, store_url=store_url, settings=settings,
                              clinic=ClinicBehaviour(silent_clinics=silent), clock=clock) as system:
        await _restore_holds(http, system)

        # The partial report: the missing source answers now, and version 2 reaches the court.
        report_id = CASES["partial"]["id"]

        async def complete():
            return (await report_status(http, system, report_id))["status"] == pretrial.PretrialState.COMPLETE

        await wait_until(complete, timeout=30)
        report = await report_status(http, system, report_id)
        assert [v["version"] for v in report["versions"]] == [1, 2] and report["gaps"] == []
        assert all(v["registration_number"] for v in report["versions"])

        # The release cases: the clinics attach two of the people; the clock runs past every
        # deadline and every watch.
        await _attach_at_destination(http, system, "awaiting_ack")
        await _attach_at_destination(http, system, "watching")
        clock.jump_to(_after_every_watch())
        awaiting = await case_reaches(http, system, CASES["awaiting_ack"]["id"], "closed", timeout=30)
        escalated = await case_reaches(http, system, CASES["escalated"]["id"], "unresolved", timeout=30)
        watching = await case_reaches(http, system, CASES["watching"]["id"], "closed", timeout=30)
        assert watching["notices"] == {"employment": 1} and not watching["escalations"]
        assert [e["reason"] for e in awaiting["escalations"]] == ["the clinic did not acknowledge in time"]
        assert awaiting["notices"] == {"clinic": 1, "employment": 1, "probation": 1, "escalation": 1}
        assert escalated["problem"] == "no attachment at the new clinic within the watch period"

        async def holds_lifted():
            cases = [await release_case(http, system, CASES[label]["id"])
                     for label in ("awaiting_ack", "escalated", "watching")]
            return all(case["hold"].get("released") for case in cases)

        await wait_until(holds_lifted, timeout=30)
        await wait_until(lambda: system.simulation.recorder("health").of("health/escalations"), timeout=30)
        for row in ROWS["cases"]:
            saved = await system.gateway.store.get_case(row["kind"], row["id"])
            assert saved.data["v"] == SCHEMA_VERSION
