"""Referral histories, re-offence signals and re-socialisation plans refuse what cannot have happened."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from gateway.domain import (
    AccompanimentStage,
    Address,
    AssistanceCategory,
    ImplausibleDate,
    Organisation,
    PlannedMeasure,
    Quarter,
    ReferralConflict,
    ReferralHistory,
    ReferralState,
    ReoffenceKind,
    ReoffenceSignal,
    ResocialisationPlan,
    RiskBand,
    RiskNeeds,
    Sex,
    make_iin,
)
from gateway.domain.outcomes import add_months, region_of

RELEASED = dt.date(2026, 3, 10)
TODAY = dt.date(2026, 6, 1)
IIN = make_iin(dt.date(1990, 4, 2), Sex.MALE, 3)


def history() -> ReferralHistory:
    return ReferralHistory.sent(AssistanceCategory.EMPLOYMENT, on=dt.date(2026, 3, 1), release_date=RELEASED)


def test_a_referral_goes_from_sent_through_accepted_to_provided():
    accepted = history().record(ReferralState.ACCEPTED, dt.date(2026, 3, 12), today=TODAY)
    provided = accepted.record(ReferralState.PROVIDED, dt.date(2026, 4, 1), today=TODAY)
    assert [t.state for t in provided.transitions] == ["sent", "accepted", "provided"]
    assert provided.state is ReferralState.PROVIDED and provided.on(ReferralState.ACCEPTED) == dt.date(2026, 3, 12)


def test_provided_before_accepted_is_a_conflict():
    with pytest.raises(ReferralConflict, match="must be accepted first"):
        history().record(ReferralState.PROVIDED, dt.date(2026, 4, 1), today=TODAY)


def test_a_second_final_outcome_is_a_conflict():
    refused = history().record(ReferralState.REFUSED_BY_PERSON, dt.date(2026, 3, 20), today=TODAY)
    with pytest.raises(ReferralConflict, match="already has its outcome"):
        refused.record(ReferralState.NOT_REACHED, dt.date(2026, 3, 21), today=TODAY)


def test_the_same_outcome_on_the_same_date_again_changes_nothing():
    accepted = history().record(ReferralState.ACCEPTED, dt.date(2026, 3, 12), today=TODAY)
    assert accepted.record(ReferralState.ACCEPTED, dt.date(2026, 3, 12), today=TODAY) is None


def test_the_same_outcome_on_another_date_is_a_conflict():
    accepted = history().record(ReferralState.ACCEPTED, dt.date(2026, 3, 12), today=TODAY)
    with pytest.raises(ReferralConflict, match="already accepted on 2026-03-12"):
        accepted.record(ReferralState.ACCEPTED, dt.date(2026, 3, 13), today=TODAY)


def test_an_outcome_dated_before_the_previous_state_is_a_conflict():
    accepted = history().record(ReferralState.ACCEPTED, dt.date(2026, 4, 12), today=TODAY)
    with pytest.raises(ReferralConflict, match="before accepted on 2026-04-12"):
        accepted.record(ReferralState.PROVIDED, dt.date(2026, 4, 1), today=TODAY)


def test_an_outcome_dated_before_the_release_is_implausible():
    with pytest.raises(ImplausibleDate, match="before the release on 2026-03-10"):
        history().record(ReferralState.ACCEPTED, dt.date(2026, 3, 5), today=TODAY)


def test_an_outcome_dated_in_the_future_is_implausible():
    with pytest.raises(ImplausibleDate, match="in the future"):
        history().record(ReferralState.ACCEPTED, TODAY + dt.timedelta(days=1), today=TODAY)


def test_a_stored_history_that_could_not_have_happened_is_refused():
    with pytest.raises(ValidationError, match="cannot become provided"):
        ReferralHistory.model_validate({
            "category": "EMPLOYMENT", "release_date": "2026-03-10",
            "transitions": [{"state": "sent", "on": "2026-03-01"}, {"state": "provided", "on": "2026-03-11"}],
        })


def test_a_reoffence_signal_names_a_known_region():
    signal = ReoffenceSignal(iin=IIN, kind=ReoffenceKind.NEW_CASE, date=dt.date(2026, 5, 1), region="75")
    assert signal.kind is ReoffenceKind.NEW_CASE
    with pytest.raises(ValidationError, match="КАТО region code"):
        ReoffenceSignal(iin=IIN, kind=ReoffenceKind.NEW_CASE, date=dt.date(2026, 5, 1), region="Almaty")


def test_a_release_region_comes_from_the_kato_code_or_the_region_name():
    assert region_of(Address(kato="751110000", locality="Алматы")) == "75"
    assert region_of(Address(region="Павлодар облысы", locality="Павлодар")) == "55"
    assert region_of(Address(raw="somewhere")) == "00"


def test_thirty_six_months_after_the_last_day_of_february_is_the_last_day_of_february():
    assert add_months(dt.date(2024, 2, 29), 36) == dt.date(2027, 2, 28)
    assert add_months(dt.date(2026, 11, 30), 3) == dt.date(2027, 2, 28)


def test_quarters_parse_order_and_bound_their_days():
    quarter = Quarter.parse("2026q4")
    assert str(quarter) == "2026Q4" and quarter.first_day == dt.date(2026, 10, 1)
    assert quarter.last_day == dt.date(2026, 12, 31) and str(quarter.next()) == "2027Q1"
    assert Quarter.of(dt.date(2026, 5, 3)) < quarter
    with pytest.raises(ValueError, match="write it as 2026Q4"):
        Quarter.parse("2026-13")


def _assessment(**levels) -> RiskNeeds:
    domains = dict.fromkeys(("criminal_history", "education_employment", "family_marital", "leisure_recreation",
                             "companions", "alcohol_drug", "procriminal_attitude", "antisocial_pattern"), "LOW")
    return RiskNeeds(instrument="LS/CMI", assessment_date=dt.date(2026, 1, 10), score=21, band=RiskBand.MEDIUM,
                     **(domains | levels))


def test_a_plan_names_the_need_domains_its_assessment_rates_high():
    office = Organisation(code="PROB-751", name="Пробация қызметі")
    plan = ResocialisationPlan(
        iin=IIN, stage=AccompanimentStage.CORRECTIONAL,
        assessment=_assessment(education_employment="HIGH", alcohol_drug="HIGH"),
        measures=(PlannedMeasure(category=AssistanceCategory.EMPLOYMENT, description="курсы сварщика",
                                 responsible=office, due=dt.date(2026, 4, 1)),),
        responsible_body=office, drawn_up=dt.date(2026, 1, 15), review_by=dt.date(2026, 7, 15),
    )
    assert plan.need_domains == ("education_employment", "alcohol_drug")
    assert len(plan.measures_in(AssistanceCategory.EMPLOYMENT)) == 1
    assert plan.measures_in(AssistanceCategory.TREATMENT) == ()


def test_a_plan_drawn_up_before_its_assessment_is_refused():
    office = Organisation(code="PROB-751", name="Пробация қызметі")
    with pytest.raises(ValidationError, match="drawn up before the assessment"):
        ResocialisationPlan(
            iin=IIN, stage=AccompanimentStage.CORRECTIONAL, assessment=_assessment(),
            measures=(PlannedMeasure(category=AssistanceCategory.OTHER, description="консультация",
                                     responsible=office, due=dt.date(2026, 4, 1)),),
            responsible_body=office, drawn_up=dt.date(2026, 1, 1), review_by=dt.date(2026, 7, 15),
        )


def _plan(**assessment):
    office = Organisation(code="PROB-751", name="Пробация қызметі")
    fields = {"instrument": "LS/CMI", "score": 21} | assessment
    return ResocialisationPlan(
        iin=IIN, stage=AccompanimentStage.CORRECTIONAL,
        assessment=_assessment().model_copy(update=fields),
        measures=(PlannedMeasure(category=AssistanceCategory.EMPLOYMENT, description="курсы сварщика",
                                 responsible=office, due=dt.date(2026, 4, 1)),),
        responsible_body=office, drawn_up=dt.date(2026, 1, 15), review_by=dt.date(2026, 7, 15),
    ).model_dump(mode="json")


@pytest.mark.parametrize("instrument, top", [("LS/CMI", 43), ("LSI-R", 54)])
def test_a_plan_score_is_within_its_instruments_range(instrument, top):
    assert ResocialisationPlan.model_validate(_plan(instrument=instrument, score=top)).assessment.score == top
    with pytest.raises(ValidationError, match="out of range"):
        ResocialisationPlan.model_validate(_plan(instrument=instrument, score=top + 1))


def test_a_plan_rests_on_a_known_instrument():
    with pytest.raises(ValidationError, match="instrument must be one of"):
        ResocialisationPlan.model_validate(_plan(instrument="intuition"))


def test_a_plan_notice_carries_the_dynamic_needs_and_the_referral_of_each_measure_to_a_member():
    from gateway.domain import PlanNotice
    from gateway.domain.outcomes import DYNAMIC_NEEDS

    plan = ResocialisationPlan.model_validate(_plan())
    notice = PlanNotice.of("PLAN-1", 3, plan, release_date=dt.date(2026, 2, 1), referral_ids={0: "PLAN-1:x"})
    assert tuple(n.domain for n in notice.needs) == DYNAMIC_NEEDS
    assert "criminal_history" not in {n.domain for n in notice.needs}
    assert notice.measures[0].referral_id == "PLAN-1:x" and notice.version == 3
    assert notice.assessment == plan.assessment  # whole for probation; the policy cuts it for partners
