"""The indicator events in the store (migration 4): each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.store import (
    ConflictError,
    RecordReferral,
    RecordReferralOutcome,
    RecordRelease,
    RecordReoffence,
    SaveCase,
)

T0 = 1_000.0
RELEASED = dt.date(2026, 3, 10)


def release(pseudonym: str = "p-1", on: dt.date = RELEASED) -> RecordRelease:
    return RecordRelease(pseudonym=pseudonym, release_date=on, region="75", cohort="2026Q1",
                         watch_until=dt.date(2029, 3, 10))


def referral(key: str = "r-1", pseudonym: str = "p-1") -> RecordReferral:
    return RecordReferral(referral_key=key, pseudonym=pseudonym, recipient="employment", category="EMPLOYMENT",
                          region="75", release_date=RELEASED, sent_on=dt.date(2026, 3, 1))


async def test_a_release_is_recorded_once_and_found_by_its_pseudonym(store):
    assert await store.apply([release()], T0) == [True]
    assert await store.apply([release()], T0) == [False]
    await store.apply([release(on=dt.date(2028, 1, 5))], T0)
    found = await store.indicator_releases_of("p-1")
    assert [r.release_date for r in found] == [RELEASED, dt.date(2028, 1, 5)]
    assert found[0].watch_until == dt.date(2029, 3, 10) and found[0].cohort == "2026Q1"
    assert await store.indicator_releases_of("p-2") == []


async def test_a_referral_is_sent_once_and_its_outcomes_follow_in_order(store):
    assert await store.apply([referral()], T0) == [True]
    assert await store.apply([referral()], T0) == [False]
    await store.apply([RecordReferralOutcome("r-1", "sent", "accepted", dt.date(2026, 3, 12))], T0)
    await store.apply([RecordReferralOutcome("r-1", "accepted", "provided", dt.date(2026, 3, 12))], T0)
    found = await store.indicator_referral("r-1")
    assert found.state == "provided" and found.recipient == "employment"
    assert found.transitions == (("sent", dt.date(2026, 3, 1)), ("accepted", dt.date(2026, 3, 12)),
                                 ("provided", dt.date(2026, 3, 12)))
    assert await store.indicator_referral("r-2") is None


async def test_an_outcome_checked_against_a_stale_state_is_refused_with_the_whole_transaction(store):
    await store.apply([referral()], T0)
    await store.apply([RecordReferralOutcome("r-1", "sent", "not_reached", dt.date(2026, 3, 12))], T0)
    with pytest.raises(ConflictError):
        await store.apply([SaveCase("k", "c-1", "s", {}, 0),
                           RecordReferralOutcome("r-1", "sent", "accepted", dt.date(2026, 3, 13))], T0)
    assert (await store.indicator_referral("r-1")).state == "not_reached"
    assert await store.get_case("k", "c-1") is None


async def test_a_reoffence_is_recorded_once(store):
    signal = RecordReoffence(pseudonym="p-1", kind="NEW_CASE", on=dt.date(2027, 1, 2), region="75")
    assert await store.apply([signal], T0) == [True]
    assert await store.apply([signal], T0) == [False]


async def test_every_event_is_read_back_for_the_computation(store):
    await store.apply([release(), release("p-2"), referral(), referral("r-2", "p-2"),
                       RecordReoffence(pseudonym="p-2", kind="NEW_CONVICTION", on=dt.date(2027, 1, 2), region="55")],
                      T0)
    await store.apply([RecordReferralOutcome("r-2", "sent", "accepted", dt.date(2026, 3, 20))], T0)
    events = await store.indicator_events()
    assert sorted(r.pseudonym for r in events.releases) == ["p-1", "p-2"]
    assert {r.referral_key: r.state for r in events.referrals} == {"r-1": "sent", "r-2": "accepted"}
    assert [(r.pseudonym, r.kind, r.region) for r in events.reoffences] == [("p-2", "NEW_CONVICTION", "55")]
    (second,) = [r for r in events.referrals if r.referral_key == "r-2"]
    assert second.transitions[-1] == ("accepted", dt.date(2026, 3, 20))


async def test_an_actual_release_moves_the_release_date_of_referrals_not_yet_acted_on(store):
    await store.apply([referral("r-1"), referral("r-2")], T0)
    await store.apply([RecordReferralOutcome("r-2", "sent", "not_reached", dt.date(2026, 3, 12))], T0)
    await store.apply([release(on=dt.date(2026, 2, 20))], T0)
    assert (await store.indicator_referral("r-1")).release_date == dt.date(2026, 2, 20)
    assert (await store.indicator_referral("r-2")).release_date == RELEASED


async def test_the_database_counts_the_persons_as_the_definition_does(store):
    # Several referrals per person, across regions, categories, quarters and states: the set-based
    # counts must be those of counting the events one by one (gateway.services.indicators.counts_of).
    import random

    from gateway.services.indicators import counts_of

    rng = random.Random(9)
    commands = []
    for n in range(60):
        pseudonym, region = f"p-{n % 23}", rng.choice(["75", "55", "71"])
        key = f"r-{n}"
        sent = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(500))
        commands.append(RecordReferral(referral_key=key, pseudonym=pseudonym, recipient="social",
                                       category=rng.choice(["PLACE_TO_STAY", "EMPLOYMENT", "TREATMENT"]),
                                       region=region, release_date=sent, sent_on=sent))
        if rng.random() < 0.8:
            accepted = sent + dt.timedelta(days=rng.randrange(40))
            commands.append(RecordReferralOutcome(key, "sent", "accepted", accepted))
            if rng.random() < 0.7:
                commands.append(RecordReferralOutcome(key, "accepted", rng.choice(["provided", "not_reached"]),
                                                      accepted + dt.timedelta(days=rng.randrange(90))))
    # Releases, some again later, and signals before, between and after them.
    for n in range(30):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(700))
        commands.append(release(f"p-{n % 17}", day))
        for _ in range(rng.randrange(3)):
            commands.append(RecordReoffence(pseudonym=f"p-{n % 17}", kind=rng.choice(["NEW_CASE", "NEW_CONVICTION"]),
                                            on=day + dt.timedelta(days=rng.randrange(-50, 900)), region="75"))
    await store.apply(commands, T0)
    counted = await store.indicator_counts()
    expected = counts_of(await store.indicator_events())
    assert counted.first_day == expected.first_day
    for name in ("released", "signalled", "assisted", "assisted_by_category", "placement"):
        assert sorted(getattr(counted, name)) == sorted(getattr(expected, name)), name
    assert any(row[3] for row in counted.placement) and any(row[4] for row in counted.placement)
    assert len(counted.signalled) > 3


async def test_an_outcome_is_decided_on_the_stored_referral_and_written_in_one_transaction(store):
    from gateway.store import DecideReferralOutcome

    await store.apply([referral()], T0)
    seen = []

    def accept(stored):
        seen.append(stored.state if stored else None)
        return RecordReferralOutcome("r-1", stored.state, "accepted", dt.date(2026, 3, 12))

    def refuse(stored):
        raise LookupError("no such referral for you")

    assert await store.apply([DecideReferralOutcome("r-1", accept)], T0) == [
        RecordReferralOutcome("r-1", "sent", "accepted", dt.date(2026, 3, 12))]
    assert seen[-1] == "sent"
    assert await store.apply([DecideReferralOutcome("r-1", lambda stored: None)], T0) == [None]
    with pytest.raises(LookupError):
        await store.apply([release("p-9"), DecideReferralOutcome("r-1", refuse)], T0)
    assert await store.indicator_releases_of("p-9") == []  # the whole transaction, as with any command
    assert (await store.indicator_referral("r-1")).transitions[-1] == ("accepted", dt.date(2026, 3, 12))
    await store.apply([DecideReferralOutcome("missing", lambda stored: seen.append(stored))], T0)
    assert seen[-1] is None
