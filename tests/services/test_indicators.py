"""The Strategy's indicators as defined: cohorts, windows, censoring, placement share, small cells."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import Quarter
from gateway.domain.outcomes import add_months
from gateway.services.indicators import (
    NATIONAL,
    IndicatorFilter,
    IndicatorReport,
    InvalidFilter,
    as_csv,
    compute,
)
from gateway.store import IndicatorEvents, IndicatorReferral, IndicatorRelease, IndicatorReoffence


def release(n: int, on: dt.date, region: str = "75") -> IndicatorRelease:
    return IndicatorRelease(f"p{n}", on, region, str(Quarter.of(on)), add_months(on, 36))


def cells(indicators, indicator_id: str, region: str = NATIONAL) -> dict[str, object]:
    (indicator,) = [i for i in indicators if i.id == indicator_id]
    return {c.period: c for c in indicator.cells if c.region == region and c.category is None}


COHORT = dt.date(2024, 2, 10)  # 2024Q1


def cohort(size: int, reoffending: int, *, after_days: int = 100, region: str = "75"):
    releases = [release(n, COHORT, region) for n in range(size)]
    signals = [IndicatorReoffence(f"p{n}", "NEW_CASE", COHORT + dt.timedelta(days=after_days), region)
               for n in range(reoffending)]
    return releases, signals


def test_the_reoffence_rate_is_given_once_the_window_has_closed_for_the_whole_cohort():
    releases, signals = cohort(40, 10)
    events = IndicatorEvents(tuple(releases), (), tuple(signals))
    # 2024Q1 ends 31 March; its 12-month window closes after 31 March 2025.
    open_ = cells(compute(events, dt.date(2025, 3, 31)), "reoffence_12m")["2024Q1"]
    closed = cells(compute(events, dt.date(2025, 4, 1)), "reoffence_12m")["2024Q1"]
    assert (open_.status, open_.value, open_.numerator) == ("window_open", None, 10)
    assert (closed.status, closed.value, closed.numerator, closed.denominator) == ("final", 25.0, 10, 40)
    assert cells(compute(events, dt.date(2025, 4, 1)), "reoffence_36m")["2024Q1"].status == "window_open"


def test_a_signal_after_the_window_is_not_counted_in_it():
    releases, signals = cohort(40, 10, after_days=400)
    report = compute(IndicatorEvents(tuple(releases), (), tuple(signals)), dt.date(2027, 6, 1))
    assert cells(report, "reoffence_12m")["2024Q1"].numerator == 0
    assert cells(report, "reoffence_24m")["2024Q1"].value == 25.0


def test_a_signal_after_a_later_release_belongs_to_that_release():
    first, later = dt.date(2024, 1, 10), dt.date(2024, 6, 1)
    releases = [release(n, first) for n in range(10)] + [release(0, later)]
    signals = [IndicatorReoffence("p0", "NEW_CONVICTION", dt.date(2024, 9, 1), "75")]
    report = compute(IndicatorEvents(tuple(releases), (), tuple(signals)), dt.date(2026, 1, 1))
    assert cells(report, "reoffence_12m")["2024Q1"].numerator == 0


def test_a_cohort_of_fewer_than_five_is_never_published():
    releases, signals = cohort(3, 1)
    cell = cells(compute(IndicatorEvents(tuple(releases), (), tuple(signals)), dt.date(2028, 1, 1)),
                 "reoffence_36m")["2024Q1"]
    assert (cell.numerator, cell.denominator, cell.value) == ("<5", "<5", None)


def test_a_numerator_a_few_short_of_its_cohort_is_hidden_too():
    releases, signals = cohort(12, 10)
    cell = cells(compute(IndicatorEvents(tuple(releases), (), tuple(signals)), dt.date(2028, 1, 1)),
                 "reoffence_36m")["2024Q1"]
    assert cell.numerator == "x" and cell.value is None and cell.denominator == 12


def test_a_small_region_is_hidden_with_another_so_the_national_total_gives_nothing_away():
    big, big_signals = cohort(30, 8, region="75")
    small = [release(100 + n, COHORT, "55") for n in range(3)]
    other = [release(200 + n, COHORT, "71") for n in range(20)]
    report = compute(IndicatorEvents(tuple(big + small + other), (), tuple(big_signals)), dt.date(2028, 1, 1))
    denominators = {region: cells(report, "reoffence_36m", region)["2024Q1"].denominator
                    for region in ("75", "55", "71", NATIONAL)}
    assert denominators["55"] == "<5"
    assert sum(1 for value in denominators.values() if not isinstance(value, int)) >= 2


def referral(n: int, category: str, state: str, transitions, region: str = "75") -> IndicatorReferral:
    return IndicatorReferral(f"r{n}", f"p{n}", "social", category, region, dt.date(2025, 1, 1), state,
                             tuple(transitions))


def provided(n: int, category: str, on: dt.date, region: str = "75") -> IndicatorReferral:
    return referral(n, category, "provided", [("sent", dt.date(2025, 1, 2)), ("accepted", on), ("provided", on)],
                    region)


def test_persons_assisted_count_each_person_once_in_the_quarter_help_was_provided():
    referrals = [provided(n, "EMPLOYMENT", dt.date(2025, 2, 1)) for n in range(6)]
    # Person 0 got a second kind of help in the same quarter: still one person.
    referrals.append(IndicatorReferral("r-extra", "p0", "clinic", "TREATMENT", "75", dt.date(2025, 1, 1),
                                       "provided", (("sent", dt.date(2025, 1, 2)), ("accepted", dt.date(2025, 3, 1)),
                                                    ("provided", dt.date(2025, 3, 1)))))
    referrals.append(referral(50, "EMPLOYMENT", "refused_by_person",
                              [("sent", dt.date(2025, 1, 2)), ("refused_by_person", dt.date(2025, 2, 1))]))
    report = compute(IndicatorEvents((), tuple(referrals), ()), dt.date(2025, 7, 1))
    assert cells(report, "persons_assisted")["2025Q1"].value == 6
    assert cells(report, "persons_assisted")["2025Q1"].status == "final"
    by_category = {c.category: c.numerator for c in
                   next(i for i in report if i.id == "persons_assisted_by_category").cells if c.period == "2025Q1"}
    assert by_category["EMPLOYMENT"] == 6 and by_category["TREATMENT"] == "<5"


def test_the_placement_share_is_of_those_referred_for_a_place_to_stay_and_partial_while_any_is_open():
    sent = dt.date(2025, 1, 10)
    referrals = [provided(n, "PLACE_TO_STAY", dt.date(2025, 1, 20)) for n in range(6)]
    referrals += [referral(10 + n, "PLACE_TO_STAY", "not_eligible", [("sent", sent), ("not_eligible", sent)])
                  for n in range(6)]
    final = cells(compute(IndicatorEvents((), tuple(referrals), ()), dt.date(2025, 7, 1)), "placement_share")
    assert (final["2025Q1"].value, final["2025Q1"].status) == (50.0, "final")
    pending = referrals + [referral(99, "PLACE_TO_STAY", "sent", [("sent", sent)])]
    partial = cells(compute(IndicatorEvents((), tuple(pending), ()), dt.date(2025, 7, 1)), "placement_share")
    assert partial["2025Q1"].status == "partial"


def test_filters_refuse_an_unknown_region_and_a_quarter_that_has_not_begun():
    with pytest.raises(InvalidFilter, match="valid: KZ, 00, 10"):
        IndicatorFilter.parse(None, None, "99", today=dt.date(2026, 12, 3))
    with pytest.raises(InvalidFilter, match="has not begun"):
        IndicatorFilter.parse(None, "2027Q1", None, today=dt.date(2026, 12, 3))
    with pytest.raises(InvalidFilter, match="after to"):
        IndicatorFilter.parse("2026Q3", "2026Q1", None, today=dt.date(2026, 12, 3))


def test_every_indicator_carries_its_definition_and_the_csv_one_row_per_cell():
    releases, signals = cohort(10, 5)
    indicators = compute(IndicatorEvents(tuple(releases), (), tuple(signals)), dt.date(2025, 1, 1))
    report = IndicatorReport(computed_on=dt.date(2025, 1, 1), filters={}, regions={}, suppression="",
                             indicators=indicators)
    assert all(i.definition.numerator and i.definition.counted_when for i in indicators)
    lines = as_csv(report).splitlines()
    assert lines[0].startswith("indicator,strategy_indicator") and len(lines) == 1 + sum(len(i.cells)
                                                                                       for i in indicators)


regions = st.sampled_from(["75", "55", "71", "11"])
days = st.dates(dt.date(2023, 1, 1), dt.date(2026, 11, 30))


@st.composite
def event_sets(draw) -> IndicatorEvents:
    people = draw(st.integers(0, 60))
    releases = [release(n, draw(days), draw(regions)) for n in range(people)]
    signals = [IndicatorReoffence(f"p{n}", "NEW_CASE", r.release_date + dt.timedelta(days=draw(st.integers(1, 900))),
                                  r.region) for n, r in enumerate(releases) if draw(st.booleans())]
    referrals = []
    for n in range(draw(st.integers(0, 40))):
        sent = draw(days)
        state = draw(st.sampled_from(["sent", "provided", "not_reached"]))
        transitions = [("sent", sent)] + ([("accepted", sent), ("provided", sent)] if state == "provided" else
                                          [("not_reached", sent)] if state == "not_reached" else [])
        referrals.append(IndicatorReferral(f"r{n}", f"p{draw(st.integers(0, 80))}", "social",
                                           draw(st.sampled_from(["PLACE_TO_STAY", "EMPLOYMENT", "TREATMENT"])),
                                           draw(regions), sent, state, tuple(transitions)))
    return IndicatorEvents(tuple(releases), tuple(referrals), tuple(signals))


quarters = st.builds(lambda y, q: f"{y}Q{q}", st.integers(2023, 2026), st.integers(1, 4))


@settings(max_examples=60, deadline=None)
@given(event_sets(), st.one_of(st.none(), quarters), st.one_of(st.none(), quarters),
       st.one_of(st.none(), st.sampled_from(["75", "55", "71", "11", "KZ", "00"])))
def test_no_filter_ever_shows_a_count_under_five(events, start, end, region):
    today = dt.date(2026, 12, 3)
    try:
        wanted = IndicatorFilter.parse(start, end, region, today=today)
    except InvalidFilter:
        return
    for indicator in compute(events, today):
        for cell in indicator.cells:
            if not wanted.keeps(cell):
                continue
            for shown in (cell.numerator, cell.denominator):
                assert not isinstance(shown, int) or shown == 0 or shown >= 5, (indicator.id, cell)
