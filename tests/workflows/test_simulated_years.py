"""Simulated years on the injected clock: releases quarter after quarter, referrals and their outcomes
from the providers, re-offences from the interior ministry. The simulated agencies keep their own
ground truth; the gateway's published indicators must equal it wherever a number is published, and
be hidden only where the truth is small or protects a small cell.

The story, the truth and the comparison are those of ``gateway demo --years`` (gateway.entrypoints.tools.years);
here three and a half years in three regions, so that every 36-month window of the first cohorts closes.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys

from gateway.domain import IIN, Sex, make_iin
from gateway.entrypoints.http.server import build
from gateway.entrypoints.tools.years import (Clock, compare, ground_truth, population_story, replay, run_years,
                                            story)
from gateway.security.pseudonyms import Pseudonyms
from gateway.workflows.outcomes import OutcomeTracking
from support import make_config

PROBATION = '''
[members.probation]
name = "Probation service"
role = "probation"
'''
KATO = ("751110000", "551010000", "711110000")
FIRST_RELEASE, LAST_RELEASE = dt.date(2025, 1, 1), dt.date(2026, 12, 28)
END = dt.date(2029, 7, 1)  # every 36-month window of the 2025-2026Q1 cohorts has closed by then


def _iin(serial: int) -> IIN:
    born = dt.date(1980, 1, 1) + dt.timedelta(days=serial)
    return next(iin for n in range(100) if (iin := make_iin(born, Sex.MALE, n)) is not None)


async def test_the_published_indicators_equal_the_simulators_ground_truth(tmp_path, http):
    rng = random.Random(2026)
    people = story(rng, [(_iin(n), rng.choice(KATO)) for n in range(240)], first=FIRST_RELEASE, last=LAST_RELEASE)
    clock = Clock(FIRST_RELEASE)
    config = make_config(tmp_path / "gw", receiver_url="http://127.0.0.1:9", extra_members=PROBATION)
    gateway = build(config, clock=clock)
    await gateway.start(port=0)
    try:
        tracking = OutcomeTracking(Pseudonyms.provision(config.base_dir / config.indicators.pseudonym_key_secret))

        async def record_release(notice):
            await gateway.store.apply(tracking.released(notice), gateway.clock())

        await replay(people, gateway=gateway, clock=clock, http=http, until=END, record_release=record_release)
        async with http.get(gateway.url + "/api/v1/indicators") as response:
            assert response.status == 200
            report = await response.json()
    finally:
        await gateway.stop()

    compared, problems = compare(report, ground_truth(people, as_of=END))
    assert problems == []
    assert compared > 100, compared  # most of the story is published, not hidden
    final = [c for i in report["indicators"] if i["id"] == "reoffence_36m" for c in i["cells"]
             if c["status"] == "final" and c["value"] is not None]
    assert final  # the first cohorts' 36-month rates are published


def test_gateway_demo_years_prints_the_three_indicators_equal_to_the_ground_truth():
    result = subprocess.run([sys.executable, "-m", "gateway", "demo", "--years", "3", "--people", "600", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    printed = json.loads(result.stdout)
    assert printed["ok"] is True and printed["problems"] == [] and printed["years"] == 3
    assert set(printed["indicators"]) == {"reoffence_36m", "persons_assisted", "placement_share"}
    # The printed national cells, checked again here against the truth of the same story.
    people, end = population_story(years=3, people=600, seed=20261126)
    truth = ground_truth(people, as_of=end)
    shaped = {"indicators": [{"id": key, "cells": [{**cell, "region": "KZ"} for cell in cells]}
                             for key, cells in printed["indicators"].items()]}
    compared, problems = compare(shaped, truth)
    assert problems == [] and compared >= 20, (compared, problems)
    assert printed["computed_on"] == end.isoformat()


async def test_the_years_are_deterministic():
    first, second = await run_years(years=1, people=300), await run_years(years=1, people=300)
    assert first.ok and first.indicators == second.indicators and first.events == second.events
