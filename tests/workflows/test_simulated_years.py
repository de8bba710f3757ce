"""Three and a half simulated years on the injected clock: releases quarter after quarter, referrals
and their outcomes from the providers, re-offences from the interior ministry. The simulated agencies
keep their own ground truth; the gateway's published indicators must equal it wherever a number is
published, and be hidden only where the truth is small or protects a small cell.

Releases are recorded with the commands the release workflow's step emits (gateway.workflows.outcomes;
the workflow itself is covered end to end elsewhere); everything else arrives over HTTP.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field

from gateway.domain import IIN, ReleaseNotice, Sex, make_iin
from gateway.entrypoints.http.server import build
from gateway.security.pseudonyms import Pseudonyms
from gateway.workflows.outcomes import OutcomeTracking
from support import make_config

PROBATION = '''
[members.probation]
name = "Probation service"
role = "probation"
'''
REGIONS = {"75": "751110000", "55": "551010000", "71": "711110000"}
FIRST_RELEASE, LAST_RELEASE = dt.date(2025, 1, 1), dt.date(2026, 12, 28)
END = dt.date(2029, 7, 1)  # every 36-month window of the 2025-2026Q1 cohorts has closed by then
_ASTANA = dt.timezone(dt.timedelta(hours=5))


def quarter(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


@dataclass
class Clock:
    day: dt.date = FIRST_RELEASE

    def __call__(self) -> float:
        return dt.datetime.combine(self.day, dt.time(12), _ASTANA).timestamp()


@dataclass
class Person:
    iin: IIN
    region: str
    released: dt.date
    reoffence: dt.date | None
    referrals: list[tuple[str, str, list[tuple[str, dt.date]]]] = field(default_factory=list)


def simulate(rng: random.Random) -> list[Person]:
    """The agencies' own story of each person: release, re-offence, referrals and outcomes."""
    people = []
    day = FIRST_RELEASE
    serial = 0
    while day <= LAST_RELEASE:
        for _ in range(rng.choice((0, 1, 1, 2))):
            serial += 1
            region = rng.choice(list(REGIONS))
            # Some re-offend within the watch, some later (not counted), most never.
            after = rng.choice((None, None, None, rng.randint(1, 1095), rng.randint(1100, 1300)))
            person = Person(_iin(serial), region, day, day + dt.timedelta(days=after) if after else None)
            for n, category in enumerate(rng.sample(["EMPLOYMENT", "PLACE_TO_STAY", "TREATMENT"], rng.randint(0, 2))):
                accepted = day + dt.timedelta(days=rng.randint(0, 40))
                ending = rng.choice(("provided", "provided", "refused_by_person", "not_reached", None))
                states = [("accepted", accepted)]
                if ending is not None:
                    states.append((ending, accepted + dt.timedelta(days=rng.randint(0, 60))))
                person.referrals.append((f"sim-{serial}-{n}", category, states))
            people.append(person)
        day += dt.timedelta(days=3)
    return people


def _iin(serial: int) -> IIN:
    born = dt.date(1980, 1, 1) + dt.timedelta(days=serial)
    return next(iin for n in range(100) if (iin := make_iin(born, Sex.MALE, n)) is not None)


def _watch_end(released: dt.date) -> dt.date:
    try:
        return released.replace(year=released.year + 3)
    except ValueError:  # 29 February
        return dt.date(released.year + 3, 2, 28)


def truth(people: list[Person]) -> dict[str, dict[tuple[str, str], tuple[int, int] | int]]:
    """What the indicators must say, computed from the story alone."""
    released: dict[tuple[str, str], int] = defaultdict(int)
    reoffended: dict[tuple[str, str], int] = defaultdict(int)
    assisted: dict[tuple[str, str], set] = defaultdict(set)
    needed: dict[tuple[str, str], set] = defaultdict(set)
    placed: dict[tuple[str, str], set] = defaultdict(set)
    for p in people:
        key = (p.region, quarter(p.released))
        released[key] += 1
        if p.reoffence is not None and p.reoffence <= _watch_end(p.released):
            reoffended[key] += 1
        for _, category, states in p.referrals:
            final = dict(states)
            if "provided" in final:
                assisted[(p.region, quarter(final["provided"]))].add(p.iin)
            if category == "PLACE_TO_STAY":
                needed[key].add(p.iin)
                if "provided" in final:
                    placed[key].add(p.iin)
    return {
        "reoffence_36m": {k: (reoffended[k], released[k]) for k in released},
        "persons_assisted": {k: len(v) for k, v in assisted.items()},
        "placement_share": {k: (len(placed[k]), len(needed[k])) for k in needed},
    }


async def test_the_published_indicators_equal_the_simulators_ground_truth(tmp_path, http):
    rng = random.Random(2026)
    people = simulate(rng)
    clock = Clock()
    config = make_config(tmp_path / "gw", receiver_url="http://127.0.0.1:9", extra_members=PROBATION)
    gateway = build(config, clock=clock)
    await gateway.start(port=0)
    try:
        tracking = OutcomeTracking(Pseudonyms.provision(config.base_dir / config.indicators.pseudonym_key_secret))
        # Everything that happens, by the day it happens on.
        agenda: dict[dt.date, list] = defaultdict(list)
        for p in people:
            agenda[p.released].append(("release", p))
            if p.reoffence is not None and p.reoffence < END:
                agenda[p.reoffence].append(("reoffence", p))
            for referral_id, category, states in p.referrals:
                agenda[p.released].append(("referral", p, referral_id, category))
                for state, on in states:
                    agenda[on].append(("outcome", referral_id, state, on))
        order = {"release": 0, "referral": 1, "outcome": 2, "reoffence": 3}
        for day in sorted(d for d in agenda if d < END):
            clock.day = day
            for event in sorted(agenda[day], key=lambda e: order[e[0]]):
                await _happen(event, gateway, tracking, http)
        clock.day = END
        async with http.get(gateway.url + "/api/v1/indicators") as response:
            assert response.status == 200
            report = await response.json()
    finally:
        await gateway.stop()

    expected = truth(people)
    compared = 0
    for indicator in report["indicators"]:
        if indicator["id"] not in expected:
            continue
        for cell in indicator["cells"]:
            if cell["region"] == "KZ" or (indicator["id"] == "reoffence_36m" and cell["status"] != "final"):
                continue
            true = expected[indicator["id"]].get((cell["region"], cell["period"]), (0, 0) if cell["denominator"]
                                                 is not None else 0)
            counts = true if isinstance(true, tuple) else (true,)
            shown = (cell["numerator"], cell["denominator"]) if isinstance(true, tuple) else (cell["numerator"],)
            for value, published in zip(counts, shown, strict=True):
                if isinstance(published, int):
                    assert published == value, (indicator["id"], cell, true)
                    compared += 1
                else:
                    assert published == "x" or value in range(1, 5), (indicator["id"], cell, true)
            if isinstance(true, tuple) and cell["value"] is not None:
                assert cell["value"] == round(100 * true[0] / true[1], 1)
    assert compared > 100, compared  # most of the story is published, not hidden


async def _happen(event, gateway, tracking: OutcomeTracking, http) -> None:
    kind = event[0]
    if kind == "release":
        person: Person = event[1]
        notice = ReleaseNotice.model_validate({
            "iin": str(person.iin), "facility": {"code": "UG-157/1", "name": "ИК-1"}, "release_type": "END_OF_TERM",
            "planned_date": person.released.isoformat(), "actual_date": person.released.isoformat(),
            "destination": {"kato": REGIONS[person.region], "locality": "—"}, "housing": {"available": True}})
        await gateway.store.apply(tracking.released(notice), gateway.clock())
        return
    if kind == "referral":
        _, person, referral_id, category = event
        body = {"referral_id": referral_id, "iin": str(person.iin), "category": category, "provider": "social",
                "region": person.region, "referral_date": person.released.isoformat()}
        async with http.post(gateway.url + "/api/v1/referrals", json=body,
                             headers={"X-Member-Id": "probation"}) as response:
            assert response.status == 201, await response.text()
        return
    if kind == "outcome":
        _, referral_id, state, on = event
        async with http.post(f"{gateway.url}/api/v1/referrals/{referral_id}/outcomes",
                             json={"state": state, "date": on.isoformat()},
                             headers={"X-Member-Id": "social"}) as response:
            assert response.status == 200, await response.text()
        return
    person = event[1]
    body = {"iin": str(person.iin), "kind": "NEW_CASE", "date": person.reoffence.isoformat(), "region": person.region}
    # A case after the watch has ended is refused: the gateway follows no one for longer.
    watched = person.reoffence <= _watch_end(person.released)
    async with http.post(gateway.url + "/api/v1/reoffence-signals", json=body,
                         headers={"X-Member-Id": "interior"}) as response:
        assert response.status == (200 if watched else 422), await response.text()
