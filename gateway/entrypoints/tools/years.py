"""``gateway demo --years N``: the synthetic population through N simulated years on the injected clock.

The people the synthetic population holds in custody are released quarter after quarter; probation
registers referrals for some of them, the providers report their outcomes, and the interior
ministry signals some re-offences. The simulated agencies keep their own story of each person
(``story``), from which the ground truth of the three indicators is computed directly
(``ground_truth``); the gateway only sees the events as they happen, day by day on its clock, and
the indicators it publishes must equal that truth wherever a number is published (``compare``).

Releases are recorded with the commands the release workflow's step emits
(``gateway.workflows.outcomes``; the workflow itself is shown by ``gateway demo``); referrals,
outcomes and re-offence signals arrive over HTTP, as in production. Deterministic: the same seed
tells the same story, and the clock is the simulated day, never the wall clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from gateway.domain import IIN, Quarter, ReleaseNotice
from gateway.entrypoints.http.server import build
from gateway.entrypoints.tools.simulate import SYSTEMS, system_config
from gateway.security.pseudonyms import Pseudonyms
from gateway.workflows.outcomes import OutcomeTracking
from gateway.domain.outcomes import WATCH_MONTHS, add_months, region_of

__all__ = ["Clock", "Person", "compare", "ground_truth", "population_story", "replay", "run_years", "story"]

_ASTANA = dt.timezone(dt.timedelta(hours=5))
FIRST_DAY = dt.date(2025, 1, 1)
CATEGORIES = ("EMPLOYMENT", "PLACE_TO_STAY", "TREATMENT")
INDICATORS = ("reoffence_36m", "persons_assisted", "placement_share")
"""The Strategy's three target indicators (§2), as the open API names them."""


@dataclass
class Clock:
    """The gateway's injected clock: noon, Astana time, of the simulated day."""

    day: dt.date = FIRST_DAY

    def __call__(self) -> float:
        return dt.datetime.combine(self.day, dt.time(12), _ASTANA).timestamp()


@dataclass
class Person:
    iin: IIN
    region: str
    """The КАТО region code of the destination."""
    kato: str
    released: dt.date
    reoffence: dt.date | None
    referrals: list[tuple[str, str, list[tuple[str, dt.date]]]] = field(default_factory=list)
    """(referral id, category, [(state, date), ...]) as the provider will report them."""


def story(rng: random.Random, people: Iterable[tuple[IIN, str]], *, first: dt.date, last: dt.date) -> list[Person]:
    """The agencies' own story of each of ``people`` ((IIN, destination КАТО)): a release between
    ``first`` and ``last``, spread evenly over the quarters, perhaps a re-offence, referrals and
    their outcomes."""
    people = list(people)
    span = (last - first).days
    told = []
    for serial, (iin, kato) in enumerate(people):
        day = first + dt.timedelta(days=span * serial // max(len(people), 1))
        # Some re-offend within the watch, some later (not counted), most never.
        after = rng.choice((None, None, None, rng.randint(1, 1095), rng.randint(1100, 1300)))
        person = Person(iin, kato[:2], kato, day, day + dt.timedelta(days=after) if after else None)
        for n, category in enumerate(rng.sample(CATEGORIES, rng.randint(0, 2))):
            accepted = day + dt.timedelta(days=rng.randint(0, 40))
            ending = rng.choice(("provided", "provided", "refused_by_person", "not_reached", None))
            states = [("accepted", accepted)]
            if ending is not None:
                states.append((ending, accepted + dt.timedelta(days=rng.randint(0, 60))))
            person.referrals.append((f"sim-{serial}-{n}", category, states))
        told.append(person)
    return told


def watch_end(released: dt.date) -> dt.date:
    return add_months(released, WATCH_MONTHS)


def ground_truth(people: list[Person], *, as_of: dt.date) -> dict[str, dict[tuple[str, str], Any]]:
    """What the indicators must say on ``as_of``, computed from the story alone: per (region,
    quarter), (numerator, denominator) of the shares and the count of persons assisted. What
    happens on ``as_of`` itself has not happened yet (``replay`` stops the day before)."""
    released: dict[tuple[str, str], int] = defaultdict(int)
    reoffended: dict[tuple[str, str], int] = defaultdict(int)
    assisted: dict[tuple[str, str], set] = defaultdict(set)
    needed: dict[tuple[str, str], set] = defaultdict(set)
    placed: dict[tuple[str, str], set] = defaultdict(set)
    for p in people:
        if p.released >= as_of:
            continue
        key = (p.region, str(Quarter.of(p.released)))
        released[key] += 1
        if p.reoffence is not None and p.reoffence <= watch_end(p.released) and p.reoffence < as_of:
            reoffended[key] += 1
        for _, category, states in p.referrals:
            final = {state: on for state, on in states if on < as_of}
            if "provided" in final:
                assisted[(p.region, str(Quarter.of(final["provided"])))].add(p.iin)
            if category == "PLACE_TO_STAY":
                needed[key].add(p.iin)
                if "provided" in final:
                    placed[key].add(p.iin)
    return {
        "reoffence_36m": {k: (reoffended[k], released[k]) for k in released},
        "persons_assisted": {k: len(v) for k, v in assisted.items()},
        "placement_share": {k: (len(placed[k]), len(needed[k])) for k in needed},
    }


def national(truth: dict[str, dict[tuple[str, str], Any]]) -> dict[str, dict[tuple[str, str], Any]]:
    """The truth with the national row (KZ) added: each quarter's sum over the regions."""
    out = {}
    for indicator, cells in truth.items():
        total: dict[tuple[str, str], Any] = {}
        for (_, period), value in cells.items():
            key = ("KZ", period)
            if isinstance(value, tuple):
                n, d = total.get(key, (0, 0))
                total[key] = (n + value[0], d + value[1])
            else:
                total[key] = total.get(key, 0) + value
        out[indicator] = {**cells, **total}
    return out


def compare(report: dict, truth: dict[str, dict[tuple[str, str], Any]]) -> tuple[int, list[str]]:
    """How many published numbers were compared with the truth, and every disagreement.

    A published number must equal the truth; a hidden one (``<5`` or ``x``) must be either small
    in truth or hidden to protect another cell (``x``). Rates are checked against the true counts.
    """
    truth = national(truth)
    compared, problems = 0, []
    for indicator in report["indicators"]:
        expected = truth.get(indicator["id"])
        if expected is None:
            continue
        for cell in indicator["cells"]:
            share = cell["denominator"] is not None
            true = expected.get((cell["region"], cell["period"]), (0, 0) if share else 0)
            counts = true if share else (true,)
            shown = (cell["numerator"], cell["denominator"]) if share else (cell["numerator"],)
            for value, published in zip(counts, shown, strict=True):
                if isinstance(published, int):
                    compared += 1
                    if published != value:
                        problems.append(f"{indicator['id']} {cell['region']} {cell['period']}: published "
                                        f"{published}, the agencies counted {value}")
                elif not (published == "x" or value in range(1, 5)):
                    problems.append(f"{indicator['id']} {cell['region']} {cell['period']}: {published} hides {value}")
            if share and cell["value"] is not None and cell["value"] != round(100 * true[0] / true[1], 1):
                problems.append(f"{indicator['id']} {cell['region']} {cell['period']}: rate {cell['value']} "
                                f"is not {round(100 * true[0] / true[1], 1)}")
    return compared, problems


async def replay(people: list[Person], *, gateway: Any, clock: Clock, http: aiohttp.ClientSession,
                 until: dt.date, record_release: Callable[[ReleaseNotice], Any]) -> int:
    """Let the story happen to the gateway, day by day up to (not including) ``until``; returns how
    many events it took in. ``record_release`` stores an actual release as the workflow's step does."""
    agenda: dict[dt.date, list] = defaultdict(list)
    for p in people:
        agenda[p.released].append(("release", p))
        if p.reoffence is not None:
            agenda[p.reoffence].append(("reoffence", p))
        for referral_id, category, states in p.referrals:
            agenda[p.released].append(("referral", p, referral_id, category))
            for state, on in states:
                agenda[on].append(("outcome", referral_id, state, on))
    order = {"release": 0, "referral": 1, "outcome": 2, "reoffence": 3}
    events = 0
    for day in sorted(d for d in agenda if d < until):
        clock.day = day
        for event in sorted(agenda[day], key=lambda e: order[e[0]]):
            await _happen(event, gateway, http, record_release)
            events += 1
    clock.day = until
    return events


async def _post(http: aiohttp.ClientSession, url: str, body: dict, member: str, expected: int) -> None:
    async with http.post(url, json=body, headers={"X-Member-Id": member}) as response:
        if response.status != expected:
            raise AssertionError(f"{url}: {response.status}, expected {expected}: {(await response.text())[:300]}")


async def _happen(event: tuple, gateway: Any, http: aiohttp.ClientSession,
                  record_release: Callable[[ReleaseNotice], Any]) -> None:
    kind, api = event[0], gateway.url + "/api/v1"
    if kind == "release":
        person: Person = event[1]
        notice = ReleaseNotice.model_validate({
            "iin": str(person.iin), "facility": {"code": "UG-157/1", "name": "ИК-1"}, "release_type": "END_OF_TERM",
            "planned_date": person.released.isoformat(), "actual_date": person.released.isoformat(),
            "destination": {"kato": person.kato, "locality": "—"}, "housing": {"available": True}})
        await record_release(notice)
    elif kind == "referral":
        _, person, referral_id, category = event
        await _post(http, api + "/referrals", {
            "referral_id": referral_id, "iin": str(person.iin), "category": category, "provider": "social",
            "region": person.region, "referral_date": person.released.isoformat()}, "probation", 201)
    elif kind == "outcome":
        _, referral_id, state, on = event
        await _post(http, f"{api}/referrals/{referral_id}/outcomes", {"state": state, "date": on.isoformat()},
                    "social", 200)
    else:
        person = event[1]
        # A case after the watch has ended is refused: the gateway follows no one for longer.
        await _post(http, api + "/reoffence-signals", {
            "iin": str(person.iin), "kind": "NEW_CASE", "date": person.reoffence.isoformat(),
            "region": person.region}, "interior", 200 if person.reoffence <= watch_end(person.released) else 422)


@dataclass
class YearsReport:
    ok: bool = False
    years: int = 0
    people: int = 0
    released: int = 0
    events: int = 0
    computed_on: str = ""
    compared: int = 0
    seconds: float = 0.0
    indicators: dict[str, list[dict]] = field(default_factory=dict)
    """The three indicators' national cells as published: {id: [{period, numerator, denominator, value, status}]}."""
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"reentry-gateway demo — {self.years} simulated years, {self.released} releases of "
                 f"{self.people} synthetic people, {self.events} events; indicators as on {self.computed_on}", ""]
        titles = {"reoffence_36m": "1. Re-offence within 36 months of release (cohort: quarter of release)",
                  "persons_assisted": "2. Persons who received assistance (quarter it was provided)",
                  "placement_share": "3. Placed / in need of a place to stay (quarter referred)"}
        for indicator in INDICATORS:
            lines.append(titles[indicator] + ", Kazakhstan")
            for cell in self.indicators.get(indicator, []):
                denominator = "" if cell["denominator"] is None else f" / {cell['denominator']}"
                value = "" if cell["value"] is None or cell["denominator"] is None else f"  = {cell['value']} %"
                lines.append(f"  {cell['period']}  {cell['numerator']}{denominator}{value}  ({cell['status']})")
            lines.append("")
        verdict = (f"ok: all {self.compared} published numbers equal the agencies' own count" if self.ok
                   else "FAILED: " + "; ".join(self.problems[:10]))
        return "\n".join([*lines, f"time {self.seconds:.1f} s", verdict])


def population_story(*, years: int, people: int, seed: int) -> tuple[list[Person], dt.date]:
    """The story of the synthetic population's people in custody (those with a destination in a
    known region) over ``years`` years from 2025, and the day the indicators are computed on: the
    last day of the last quarter, which is still the current (partial) one."""
    from adapters.population import Population

    released = [(p.iin, p.release.destination.kato) for p in Population(seed=seed, size=people).in_custody()
                if p.release.destination.kato and region_of(p.release.destination) != "00"]
    end = add_months(FIRST_DAY, 12 * years) - dt.timedelta(days=1)
    return story(random.Random(seed), released, first=FIRST_DAY, last=end - dt.timedelta(days=1)), end


async def run_years(*, years: int = 3, people: int = 1500, seed: int = 20261126, store_url: str | None = None,
                    directory: Path | None = None) -> YearsReport:
    """Build a gateway on the shipped configuration (its store in ``directory``, a temporary folder
    unless given), run ``years`` simulated years through it, and compare what it publishes."""
    started = time.monotonic()
    report = YearsReport(years=years, people=people)
    told, end = population_story(years=years, people=people, seed=seed)
    report.released = len(told)
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="gateway-years-") as scratch:
        root = directory or Path(scratch)
        # Nothing is delivered: agency endpoints point nowhere; the story arrives over the API.
        config = system_config(root / "config", urls={s: "http://127.0.0.1:9" for s in SYSTEMS}, gateway_port=0,
                               store_url=store_url or "sqlite:///gateway.db")
        gateway = build(config, clock=clock)
        await gateway.start()
        try:
            tracking = OutcomeTracking(Pseudonyms.provision(config.base_dir / config.indicators.pseudonym_key_secret))

            async def record_release(notice: ReleaseNotice) -> None:
                await gateway.services.store.apply(tracking.released(notice), clock())

            async with aiohttp.ClientSession() as http:
                report.events = await replay(told, gateway=gateway, clock=clock, http=http, until=end,
                                             record_release=record_release)
                async with http.get(gateway.url + "/api/v1/indicators") as response:
                    published = await response.json()
        finally:
            await gateway.stop()
    report.computed_on = published["computed_on"]
    report.indicators = {
        indicator["id"]: [{k: cell[k] for k in ("period", "numerator", "denominator", "value", "status")}
                          for cell in indicator["cells"] if cell["region"] == "KZ"]
        for indicator in published["indicators"] if indicator["id"] in INDICATORS}
    report.compared, report.problems = compare(published, ground_truth(told, as_of=end))
    report.ok = not report.problems and report.compared > 0
    report.seconds = time.monotonic() - started
    return report


def main(*, years: int, people: int, as_json: bool, store_url: str | None, seed: int = 20261126) -> int:
    if not 1 <= years <= 10:
        print("--years: from 1 to 10")
        return 2
    report = asyncio.run(run_years(years=years, people=people, store_url=store_url, seed=seed))
    print(json.dumps(report.__dict__, indent=2, ensure_ascii=False) if as_json else report.text())
    return 0 if report.ok else 1
