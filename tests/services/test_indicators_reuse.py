"""One computation of the public indicators serves every request for the published max-age."""

from __future__ import annotations

import datetime as dt

from gateway.domain import Quarter
from gateway.services.indicators import IndicatorFilter, Indicators
from gateway.store import RecordRelease

DAY = dt.date(2026, 5, 4)


def releases(count: int, first: int = 0) -> list[RecordRelease]:
    return [RecordRelease(f"p{n}", DAY, "75", str(Quarter.of(DAY)), dt.date(2029, 5, 4))
            for n in range(first, first + count)]


def released(report) -> object:
    rate = next(i for i in report.indicators if i.id == "reoffence_12m")
    return next(c.denominator for c in rate.cells if c.region == "KZ" and c.period == "2026Q2")


async def test_the_indicators_are_computed_again_only_after_the_reuse_period(store):
    now = [dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC).timestamp()]
    indicators = Indicators(store, lambda: now[0], reuse_seconds=60)
    await store.apply(releases(10), now[0])
    assert released(await indicators.report(IndicatorFilter())) == 10
    await store.apply(releases(10, first=10), now[0])
    now[0] += 59
    assert released(await indicators.report(IndicatorFilter())) == 10
    now[0] += 2
    assert released(await indicators.report(IndicatorFilter())) == 20
