"""The disclosure policy: each processor on its own, the shipped policy's promises, and its validation."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from adapters.population import Population
from gateway.config import DisclosureRule, LegalBasisEscalation, load_config
from gateway.domain import (
    ContinuityOfCareNotice,
    EmploymentNotice,
    HealthFlags,
    Organisation,
    PreTrialReport,
    ReportSection,
    ReportSections,
    SectionProvenance,
    SourceStatus,
)
from gateway.errors import ConfigError
from gateway.resources import resource_dir
from gateway.security.disclosure import (
    DisclosureDenied,
    DisclosureLeak,
    DisclosurePolicy,
    Draft,
    Rule,
    grant_legal_basis,
    keep_allowed_fields,
    keep_model_fields,
    refuse_leaks,
    withhold_expunged_convictions,
)
from support import write_config

POPULATION = Population(size=300)
TODAY = dt.date(2026, 11, 26)
NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
IIN_SHAPED = re.compile(r"(?<!\d)\d{12}(?!\d)")


@pytest.fixture(scope="module")
def policy() -> DisclosurePolicy:
    return DisclosurePolicy(load_config(resource_dir("config"), environ={}).policy)


def draft(payload: dict, allow: list[str], *, document_type: str = "ReleaseNotice", legal_basis: str | None = None,
          bases: list[str] | None = None, allow_with_basis: list[str] | None = None) -> Draft:
    escalation = LegalBasisEscalation(legal_bases=bases, allow=allow_with_basis) if bases else None
    rule = Rule.of(DisclosureRule(allow=allow, with_legal_basis=escalation))
    return Draft(document_type, payload, rule, legal_basis, allowed=rule.allow)


def conviction(expunged: bool, court: str = "Аудандық сот №1") -> dict:
    return {
        "articles": [{"article": "188", "part": 2, "paragraph": None}],
        "court": court,
        "judgment_date": "2015-03-01",
        "sentence": {"kind": "IMPRISONMENT", "term_months": 24, "suspended": False},
        "expunged": expunged,
    }


# ---------------------------------------------------------------- the processors, one by one


def test_expunged_convictions_are_removed_at_any_depth():
    payload = {
        "sections": {"criminal_history": [conviction(True), conviction(False, "kept"), conviction(True)]},
        "elsewhere": {"deep": [{"inner": [conviction(True)]}]},
        "single": conviction(True),
    }
    result = withhold_expunged_convictions(draft(payload, ["**"]))
    assert result.payload == {
        "sections": {"criminal_history": [conviction(False, "kept")]},
        "elsewhere": {"deep": [{"inner": []}]},
    }
    assert "sections.criminal_history[].court" in result.withheld
    assert "single.expunged" in result.withheld


def test_only_a_true_expunged_flag_removes_an_object():
    payload = {"items": [conviction(False), {**conviction(False), "expunged": "true"}]}
    assert withhold_expunged_convictions(draft(payload, ["**"])).payload == payload


def test_fields_outside_the_canonical_model_are_removed_even_under_an_allowed_subtree():
    notice = next(p.release for p in POPULATION if p.release)
    payload = notice.model_dump(mode="json")
    payload["destination"]["iin"] = "leaked"
    payload["diagnosis"] = "B20"
    result = keep_model_fields(draft(payload, ["**"]))
    assert result.payload == notice.model_dump(mode="json")
    assert {"destination.iin", "diagnosis"} <= result.withheld


def test_a_legal_basis_named_by_the_rule_adds_its_fields():
    base = draft({}, ["a"], legal_basis="  cpc ART. 73 ", bases=["CPC art. 73"], allow_with_basis=["b"])
    assert grant_legal_basis(base).allowed == Rule.of(DisclosureRule(allow=["a", "b"])).allow


@pytest.mark.parametrize("legal_basis", [None, "CPC art. 74", "CPC art. 73 and more"])
def test_another_or_no_legal_basis_adds_nothing(legal_basis):
    base = draft({}, ["a"], legal_basis=legal_basis, bases=["CPC art. 73"], allow_with_basis=["b"])
    assert grant_legal_basis(base).allowed == base.allowed


def test_the_allow_list_keeps_named_fields_in_nested_objects_and_every_list_item():
    payload = {
        "keep": 1,
        "drop": 2,
        "nested": {"keep": {"deep": True, "other": False}, "drop": "x"},
        "items": [{"keep": 1, "drop": 2}, {"keep": 3, "drop": 4}],
        "tree": {"a": {"b": [1, 2]}},
        "map": {"first": {"status": "OK", "reason": None}, "second": {"status": "OK", "reason": "r"}},
    }
    allow = ["keep", "nested.keep.deep", "items[].keep", "tree.**", "map.*.status"]
    result = keep_allowed_fields(draft(payload, allow))
    assert result.payload == {
        "keep": 1,
        "nested": {"keep": {"deep": True}},
        "items": [{"keep": 1}, {"keep": 3}],
        "tree": {"a": {"b": [1, 2]}},
        "map": {"first": {"status": "OK"}, "second": {"status": "OK"}},
    }
    assert result.withheld == {
        "drop", "nested.keep.other", "nested.drop", "items[].drop", "map.first.reason", "map.second.reason",
    }


def test_an_empty_value_stays_where_fields_below_it_are_allowed_but_content_does_not():
    payload = {"absent": None, "none": [], "shaped_wrong": "a string where an object was expected"}
    result = keep_allowed_fields(draft(payload, ["absent.code", "none[].code", "shaped_wrong.code"]))
    assert result.payload == {"absent": None, "none": []}
    assert result.withheld == {"shaped_wrong"}


def test_keys_that_are_not_field_names_never_pass_even_a_wildcard():
    result = keep_allowed_fields(draft({"[]": 1, "a.b": 2, "ok": 3}, ["*", "**"]))
    assert result.payload == {"ok": 3}


def _release_payload() -> dict:
    notice = next(p.release for p in POPULATION if p.release and p.release.probation_office is None)
    return notice.model_dump(mode="json")


def test_the_final_check_passes_what_the_allow_list_allows():
    payload = _release_payload()
    allowed = draft({"iin": payload["iin"], "identity_documents": payload["identity_documents"],
                     "probation_office": None}, ["iin", "identity_documents[]", "probation_office.code"])
    assert refuse_leaks(allowed) is allowed


def test_the_final_check_stops_a_field_outside_the_allow_list():
    payload = _release_payload()
    with pytest.raises(DisclosureLeak, match=r"ReleaseNotice: facility\.code survived filtering"):
        refuse_leaks(draft({"iin": payload["iin"], "facility": payload["facility"]}, ["iin", "facility.name"]))


def test_the_final_check_stops_a_field_outside_the_model():
    notice = next(p.release for p in POPULATION if p.release).model_dump(mode="json")
    with pytest.raises(DisclosureLeak, match=r"destination\.iin survived"):
        refuse_leaks(draft({**notice, "destination": {**notice["destination"], "iin": "x"}}, ["**"]))


def test_the_final_check_stops_an_expunged_conviction():
    with pytest.raises(DisclosureLeak, match="expunged conviction"):
        refuse_leaks(draft({"history": [conviction(True)]}, ["**"]))


# ---------------------------------------------------------------- the shipped policy


def _report(person, *, health) -> PreTrialReport:
    sections = ReportSections(
        identity=person.person,
        criminal_history=tuple(c for c in person.convictions if not c.expunged),
        custody_history=person.custody,
        social_situation=person.social,
        health_summary=health,
        risk_needs=None,
        officer_conclusion="Рекомендуется наказание, не связанное с лишением свободы.",
    )
    provenance = {
        section: SectionProvenance(source="interior", fetched_at=NOW, status=SourceStatus.OK)
        if getattr(sections, section.value) is not None
        else SectionProvenance(source="probation", fetched_at=NOW, status=SourceStatus.UNAVAILABLE, reason="not asked")
        for section in ReportSection
    }
    return PreTrialReport(
        report_id="R-1", version=1, case=person.pretrial_case or {"erdr_number": "261234000000001"},
        subject=person.person, requesting_body=Organisation(code="PROB-1", name="Пробация"),
        court=Organisation(code="COURT-1", name="Сот"), due_date=TODAY, sections=sections, provenance=provenance,
    )


def _treated_person():
    return next(p for p in POPULATION if p.convictions and p.health and p.health.registrations)


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()


def test_employment_centre_never_receives_convictions_or_health(policy):
    person = next(p for p in POPULATION if p.release and p.convictions and p.health.registrations)
    notice = EmploymentNotice.from_release(person.release, person.person, as_of=TODAY)
    payload = notice.model_dump(mode="json")
    # What a defective codec might add: none of it may reach the centre (Strategy §1.1).
    smuggled = {**payload, "iin": person.iin, "criminal_history": [conviction(False)],
                "health": person.health.model_dump(mode="json"),
                "residence": {**payload["residence"], "convictions": [conviction(False)]}}
    disclosure = policy.apply(document_type="EmploymentNotice", payload=smuggled,
                              recipient_role="employment_centre", purpose="employment_assistance")
    assert set(disclosure.payload) == {"age", "release_date", "residence", "education", "specialty"}
    assert disclosure.payload == payload
    assert not IIN_SHAPED.search(json.dumps(disclosure.payload))
    for other in ("ReleaseNotice", "PreTrialReport", "ContinuityOfCareNotice"):
        with pytest.raises(DisclosureDenied):
            policy.apply(document_type=other, payload=payload, recipient_role="employment_centre",
                         purpose="employment_assistance")


def test_clinic_never_sees_conviction_or_case_data(policy):
    person = _treated_person()
    notice = ContinuityOfCareNotice(
        person=person.person, release_date=TODAY, residence=person.residence, health=person.health,
        attachment=person.attachment, receiving_clinic=person.district.clinic, acknowledge_by=NOW,
    )
    payload = notice.model_dump(mode="json") | {
        "criminal_history": [conviction(False)],
        "custody_history": [c.model_dump(mode="json") for c in person.custody],
        "case": {"erdr_number": "261234000000001"},
    }
    disclosure = policy.apply(document_type="ContinuityOfCareNotice", payload=payload, recipient_role="clinic",
                              purpose="continuity_of_care")
    # The escalation's reason is the health authority's; a clinic's notice has none to withhold but the null.
    assert disclosure.payload == notice.model_dump(mode="json", exclude={"escalation_reason"})
    assert not _keys(disclosure.payload) & {"criminal_history", "custody_history", "case", "articles", "sentence"}
    assert {"criminal_history[].court", "case.erdr_number"} <= set(disclosure.withheld)
    with pytest.raises(DisclosureDenied):
        policy.apply(document_type="PreTrialReport", payload=_report(person, health=None).model_dump(mode="json"),
                     recipient_role="clinic", purpose="continuity_of_care")


def test_court_gets_health_only_as_summary_without_legal_basis(policy):
    person = _treated_person()
    flags = _report(person, health=HealthFlags.of(person.health)).model_dump(mode="json")
    summary = _report(person, health=person.health).model_dump(mode="json")

    def health(payload: dict, legal_basis: str | None) -> dict:
        disclosure = policy.apply(document_type="PreTrialReport", payload=payload, recipient_role="court",
                                  purpose="pretrial_report", legal_basis=legal_basis)
        return disclosure.payload["sections"]["health_summary"]

    assert health(flags, None) == flags["sections"]["health_summary"]
    # A full summary sent by mistake loses its diagnoses on the way out.
    assert "registrations" not in health(summary, None)
    assert "registrations" not in health(summary, "Civil Code art. 1")
    cited = health(summary, "CPC art. 73")
    assert cited["registrations"] == summary["sections"]["health_summary"]["registrations"]
    assert all(r["icd10"] for r in cited["registrations"])


def test_court_never_gets_an_expunged_conviction(policy):
    person = next(p for p in POPULATION if any(c.expunged for c in p.convictions))
    payload = _report(person, health=None).model_dump(mode="json")
    expunged = [c.model_dump(mode="json") for c in person.convictions if c.expunged]
    payload["sections"]["criminal_history"] += expunged
    disclosure = policy.apply(document_type="PreTrialReport", payload=payload, recipient_role="court",
                              purpose="pretrial_report")
    assert all(not c["expunged"] for c in disclosure.payload["sections"]["criminal_history"])
    assert len(disclosure.payload["sections"]["criminal_history"]) == sum(not c.expunged for c in person.convictions)


@pytest.mark.parametrize(
    ("role", "purpose", "document_type"),
    [
        ("oversight", "pretrial_report", "PreTrialReport"),
        ("operations", "relay_test", "ReleaseNotice"),
        ("court", "continuity_of_care", "PreTrialReport"),
        ("court", "curiosity", "PreTrialReport"),
        ("journalist", "pretrial_report", "PreTrialReport"),
        ("court", "pretrial_report", "Person"),
    ],
)
def test_unknown_role_or_purpose_is_denied(policy, role, purpose, document_type):
    payload = _report(_treated_person(), health=None).model_dump(mode="json")
    with pytest.raises(DisclosureDenied) as denied:
        policy.apply(document_type=document_type, payload=payload, recipient_role=role, purpose=purpose)
    assert denied.value.status == 403


def test_disclosed_and_withheld_name_the_paths_that_went_and_stayed(policy):
    person = next(p for p in POPULATION if p.release and p.release.identity_documents)
    disclosure = policy.apply(document_type="ReleaseNotice", payload=person.release.model_dump(mode="json"),
                              recipient_role="health", purpose="continuity_of_care")
    assert "destination.kato" in disclosure.disclosed and "facility.code" in disclosure.disclosed
    assert "identity_documents[]" in disclosure.withheld
    assert not set(disclosure.disclosed) & set(disclosure.withheld)


# ---------------------------------------------------------------- validation at start-up


def _config_with_policy(tmp_path, policy_toml: str):
    directory = write_config(tmp_path, receiver_url="http://127.0.0.1:1")
    (directory / "policy.toml").write_text(policy_toml, encoding="utf-8")
    return directory


@pytest.mark.parametrize(
    ("policy_toml", "problem"),
    [
        ('[policy.court.pretrial_report.PreTrialReport]\nallow = ["sections.health"]\n',
         r"policy\.court\.pretrial_report\.PreTrialReport\.allow\.0: "
         r"'sections\.health' matches no field of PreTrialReport"),
        ('[policy.court.pretrial_report.PreTrialReport]\nallow = ["subject"]\n',
         r"allow\.0: 'subject' names a part of PreTrialReport that holds other fields.*subject\.\*\*"),
        ('[policy.court.pretrial_report.PreTrialReport]\nallow = ["subject.iin"]\n'
         'with_legal_basis = { legal_bases = ["CPC art. 73"], allow = ["sections..x"] }\n',
         r"with_legal_basis\.allow\.0: 'sections\.\.x': segment '' is not a field name"),
        ('[policy.court.pretrial_report.PreTrialRepor]\nallow = ["subject.iin"]\n',
         r"policy\.court\.pretrial_report\.PreTrialRepor: unknown document type \(known: AssistanceReferral"),
        ('[policy.judge.pretrial_report.PreTrialReport]\nallow = ["subject.iin"]\n',
         r"policy\.judge\.\[key\]: Input should be 'penal'"),
        ('[policy.court.gossip.PreTrialReport]\nallow = ["subject.iin"]\n',
         r"policy\.court\.gossip\.\[key\]: Input should be 'pretrial_report'"),
        ('[policy.court.pretrial_report.PreTrialReport]\nallow = []\n',
         r"allow: List should have at least 1 item"),
    ],
)
def test_a_policy_mistake_is_a_configuration_error_naming_file_key_and_problem(tmp_path, policy_toml, problem):
    directory = _config_with_policy(tmp_path, policy_toml)
    with pytest.raises(ConfigError) as error:
        load_config(directory, environ={})
    assert f"{directory / 'policy.toml'}: policy." in str(error.value)
    assert re.search(problem, str(error.value)), str(error.value)


def test_every_policy_mistake_is_reported_at_once(tmp_path):
    directory = _config_with_policy(tmp_path, '[policy.court.pretrial_report.PreTrialReport]\n'
                                              'allow = ["nothing", "subject.iin", "nothing.either"]\n')
    with pytest.raises(ConfigError) as error:
        load_config(directory, environ={})
    assert "allow.0: 'nothing'" in str(error.value) and "allow.2: 'nothing.either'" in str(error.value)


def test_without_a_policy_file_everything_is_denied(tmp_path):
    config = load_config(write_config(tmp_path, receiver_url="http://127.0.0.1:1"), environ={})
    with pytest.raises(DisclosureDenied):
        DisclosurePolicy(config.policy).apply(document_type="EmploymentNotice", payload={"age": 30},
                                              recipient_role="employment_centre", purpose="employment_assistance")
