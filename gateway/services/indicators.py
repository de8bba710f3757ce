"""The Strategy's three target indicators (§2), computed from the pseudonymous indicator events
and published openly (§4: "open reporting"), with small cells suppressed.

Definitions (also in docs/indicators.md, and published with the numbers):

1. **Re-offence within 12, 24 and 36 months of release** (the Strategy's indicator is 36).
   Denominator: actual releases from prison in a release cohort (the calendar quarter of the
   release date) whose destination is in the region. Numerator: those of them for whom the
   interior ministry signalled a new pre-trial case (ЕРДР) or a new conviction dated after the
   release day and within the window, and before the person's next release (a signal belongs to
   the release it follows). Censoring: a cohort's rate for a window is given only when the window
   has closed for all its members — the day after the last day of the cohort's quarter plus the
   window; until then the count so far is published and marked ``window_open``, with no rate.
2. **Persons who received assistance** (employment, social-legal, medical, psychological).
   Persons (released, or on the probation register) with at least one referral whose provider
   reported it ``provided``, counted in the quarter of that date and the region of the referral;
   a person is counted once per region and quarter however many referrals were provided. Also by
   category, nationally. The current quarter is marked ``partial``.
3. **Share of those who needed a place in a medico-social institution who were placed.**
   Denominator: persons referred for a place to stay (a medico-social institution or a social
   adaptation centre) in the quarter the referral was sent, by its region. Numerator: those of
   them for whom such a referral was ``provided``. A cell where any such referral still awaits
   its outcome is marked ``partial``.

Every published count of people of 1-4 is ``<5``; more cells are ``x`` so that none can be
worked out from the national totals (gateway.services.suppression). Regions are rows, quarters
columns, the national row their total; the tables are suppressed whole, before any filter.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.domain import AssistanceCategory, Quarter, ReferralState
from gateway.domain.outcomes import REGIONS, UNKNOWN_REGION, add_months
from gateway.services.suppression import Cell, suppress
from gateway.store import IndicatorCounts, IndicatorEvents, IndicatorStore

__all__ = ["DEFINITIONS", "IndicatorFilter", "IndicatorReport", "Indicators", "InvalidFilter", "as_csv", "compute",
           "counts_of"]

NATIONAL = "KZ"
WINDOWS = (12, 24, 36)
ALL_REGIONS: dict[str, str] = {**REGIONS, UNKNOWN_REGION: "Регион не указан"}
_ASTANA = dt.timezone(dt.timedelta(hours=5))

Shown = int | Literal["<5", "x"]
Status = Literal["final", "partial", "window_open"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Definition(_Model):
    numerator: str
    denominator: str | None
    window: str
    counted_when: str


class IndicatorCell(_Model):
    region: str = Field(description="КАТО region code, or KZ for the whole country")
    period: str = Field(description="A quarter such as 2026Q4: the release cohort, or when it was counted")
    category: AssistanceCategory | None = None
    numerator: Shown = Field(description="Persons; <5 for 1 to 4, x when hidden so that a small cell "
                                         "cannot be worked out")
    denominator: Shown | None = None
    value: float | None = Field(description="The indicator: a percentage for shares, persons for counts; "
                                            "null when it cannot be published")
    status: Status


class Indicator(_Model):
    id: str
    title: str
    unit: Literal["%", "persons"]
    strategy_indicator: int = Field(description="Which of the Strategy's three target indicators (§2)")
    definition: Definition
    cells: list[IndicatorCell]


class IndicatorReport(_Model):
    computed_on: dt.date = Field(description="The date (Astana time) the numbers were computed for")
    filters: dict[str, str | None]
    regions: dict[str, str]
    suppression: str
    indicators: list[Indicator]


class InvalidFilter(ValueError):
    """A filter the report cannot be given for; the message lists what is valid."""


@dataclass(frozen=True, slots=True)
class IndicatorFilter:
    start: Quarter | None = None
    end: Quarter | None = None
    region: str | None = None

    @classmethod
    def parse(cls, start: str | None, end: str | None, region: str | None, *, today: dt.date) -> IndicatorFilter:
        current = Quarter.of(today)
        quarters = []
        for name, text in (("from", start), ("to", end)):
            if text is None:
                quarters.append(None)
                continue
            try:
                quarter = Quarter.parse(text)
            except ValueError as exc:
                raise InvalidFilter(f"{name}: {exc}") from None
            if current < quarter:
                raise InvalidFilter(f"{name}: {quarter} has not begun; the latest quarter is {current}")
            quarters.append(quarter)
        if quarters[0] is not None and quarters[1] is not None and quarters[1] < quarters[0]:
            raise InvalidFilter(f"from ({quarters[0]}) is after to ({quarters[1]})")
        if region is not None and region not in ALL_REGIONS and region != NATIONAL:
            raise InvalidFilter(f"region {region[:20]!r} is not a КАТО region code; valid: "
                                f"{', '.join([NATIONAL, *sorted(ALL_REGIONS)])}")
        return cls(quarters[0], quarters[1], region)

    def as_dict(self) -> dict[str, str | None]:
        return {"from": str(self.start) if self.start else None, "to": str(self.end) if self.end else None,
                "region": self.region}

    def keeps(self, cell: IndicatorCell) -> bool:
        quarter = Quarter.parse(cell.period)
        return ((self.start is None or self.start <= quarter) and (self.end is None or quarter <= self.end)
                and (self.region is None or cell.region == self.region))


_SUPPRESSION = ("Counts of 1 to 4 persons are shown as <5; cells shown as x are hidden so that no <5 cell can be "
                "worked out from the national totals. Zeros are shown.")

DEFINITIONS: dict[str, Definition] = {
    **{f"reoffence_{months}m": Definition(
        numerator=f"Persons of the cohort with a new pre-trial case (ЕРДР) or a new conviction signalled by the "
                  f"interior ministry, dated after the release day and within {months} months of it, before any "
                  f"later release",
        denominator="Actual releases from prison in the cohort (the quarter of the release date), by the region of "
                    "the destination address",
        window=f"{months} months from each release date",
        counted_when=f"A cohort's rate is published once {months} months have passed since the last day of its "
                     f"quarter; before that the count so far is shown as window_open, without a rate",
    ) for months in WINDOWS},
    "persons_assisted": Definition(
        numerator="Persons released from prison or on the probation register with at least one referral "
                  "(employment, social-legal, medical, psychological) that its provider reported as provided",
        denominator=None,
        window="The calendar quarter of the date the assistance was provided",
        counted_when="When the provider reports the referral provided; a person counts once per region and "
                     "quarter. The current quarter is partial",
    ),
    "placement_share": Definition(
        numerator="Persons placed in a medico-social institution or social adaptation centre: a place-to-stay "
                  "referral reported provided",
        denominator="Persons referred for a place to stay (in need of one), in the quarter the referral was sent, "
                    "by its region",
        window="Referrals sent in the quarter, whenever their outcome comes",
        counted_when="A cell is partial while any of its place-to-stay referrals awaits its outcome",
    ),
}


def compute(data: IndicatorCounts | IndicatorEvents, today: dt.date) -> list[Indicator]:
    """Every indicator for every region and quarter, suppressed; filters select from this. ``data`` is
    what the store counted (``IndicatorStore.indicator_counts``), or events to count here first."""
    counts = data if isinstance(data, IndicatorCounts) else counts_of(data)
    current = Quarter.of(today)
    first = min(Quarter.of(counts.first_day), current) if counts.first_day is not None else current
    quarters = _quarters(first, current)
    return [*_reoffence(counts, today, quarters), _assisted(counts, today, quarters),
            _assisted_by_category(counts, today, quarters), _placement(counts, quarters)]


def counts_of(events: IndicatorEvents) -> IndicatorCounts:
    """What ``IndicatorStore.indicator_counts`` counts in the database, counted from the events one by
    one: the definition the set-based queries are held to (tests/store/test_store_indicators.py)."""
    signals: dict[str, list[dt.date]] = defaultdict(list)
    for signal in events.reoffences:
        signals[signal.pseudonym].append(signal.on)
    releases: dict[str, list[dt.date]] = defaultdict(list)
    for release in events.releases:
        releases[release.pseudonym].append(release.release_date)
    released: dict[tuple[str, str], int] = defaultdict(int)
    signalled = []
    for release in events.releases:
        released[(release.region, release.cohort)] += 1
        day = release.release_date
        later = min((d for d in releases[release.pseudonym] if d > day), default=None)
        first = min((on for on in signals[release.pseudonym] if day < on and (later is None or on < later)),
                    default=None)
        if first is not None:
            signalled.append((release.region, release.cohort, day, first))
    assisted: dict[tuple[str, str], set[str]] = defaultdict(set)
    by_category: dict[tuple[str, str], set[str]] = defaultdict(set)
    needed: dict[tuple[str, str], set[str]] = defaultdict(set)
    placed: dict[tuple[str, str], set[str]] = defaultdict(set)
    open_cells: set[tuple[str, str]] = set()
    for referral in events.referrals:
        provided = dict(referral.transitions).get(ReferralState.PROVIDED.value)
        if provided is not None:
            assisted[(referral.region, str(Quarter.of(provided)))].add(referral.pseudonym)
            by_category[(referral.category, str(Quarter.of(provided)))].add(referral.pseudonym)
        if referral.category != AssistanceCategory.PLACE_TO_STAY.value:
            continue
        key = (referral.region, str(Quarter.of(referral.transitions[0][1])))
        needed[key].add(referral.pseudonym)
        if referral.state == ReferralState.PROVIDED.value:
            placed[key].add(referral.pseudonym)
        elif referral.state in (ReferralState.SENT.value, ReferralState.ACCEPTED.value):
            open_cells.add(key)
    days = [on for referral in events.referrals for _, on in referral.transitions]
    days += [release.release_date for release in events.releases]
    return IndicatorCounts(
        first_day=min(days, default=None),
        released=tuple((*key, n) for key, n in released.items()),
        signalled=tuple(signalled),
        assisted=tuple((*key, len(v)) for key, v in assisted.items()),
        assisted_by_category=tuple((*key, len(v)) for key, v in by_category.items()),
        placement=tuple((*key, len(v), len(placed[key]), key in open_cells) for key, v in needed.items()),
    )


class Indicators:
    """The published indicators, computed from the store on the injected clock.

    The endpoint is public, so one computation serves every request for ``reuse_seconds`` (the
    published Cache-Control max-age: no client expects fresher numbers), and requests arriving
    meanwhile wait for it instead of computing again.
    """

    def __init__(self, store: IndicatorStore, clock: Callable[[], float], *, reuse_seconds: float = 0) -> None:
        self._store = store
        self._clock = clock
        self._reuse_seconds = reuse_seconds
        self._computed: tuple[float, dt.date, list[Indicator]] | None = None
        self._lock = asyncio.Lock()
        # The published bodies of the current computation, by (filter, format): rendered once.
        self._rendered: dict[tuple[float, IndicatorFilter, str], tuple[bytes, str]] = {}

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self._clock(), _ASTANA).date()

    async def _indicators(self, today: dt.date) -> list[Indicator]:
        async with self._lock:
            now = self._clock()
            if self._computed is not None:
                at, day, indicators = self._computed
                if day == today and 0 <= now - at < self._reuse_seconds:
                    return indicators
            counts = await self._store.indicator_counts()
            # Pure computation over the counts and every release: off the event loop, which keeps serving.
            indicators = await asyncio.to_thread(compute, counts, today)
            self._computed = (now, today, indicators)
            return indicators

    async def published(self, wanted: IndicatorFilter, output: Literal["json", "csv"]) -> tuple[bytes, str]:
        """The report as published, JSON or CSV, and its digest (for the ETag): rendered once per
        computation and filter, so a client served from the reused computation costs no rendering."""
        today = self.today()
        indicators = await self._indicators(today)
        key = (self._computed[0] if self._computed else 0.0, wanted, output)
        rendered = self._rendered.get(key)
        if rendered is None:
            report = self._report(today, wanted, indicators)
            body = (as_csv(report) if output == "csv" else report.model_dump_json()).encode("utf-8")
            rendered = (body, hashlib.sha256(body).hexdigest())
            if not any(k[0] == key[0] for k in self._rendered) or len(self._rendered) >= 256:
                self._rendered.clear()  # an older computation's, or too many filters
            self._rendered[key] = rendered
        return rendered

    async def report(self, wanted: IndicatorFilter) -> IndicatorReport:
        today = self.today()
        return self._report(today, wanted, await self._indicators(today))

    def _report(self, today: dt.date, wanted: IndicatorFilter, indicators: list[Indicator]) -> IndicatorReport:
        return IndicatorReport(
            computed_on=today, filters=wanted.as_dict(), regions={NATIONAL: "Казахстан", **ALL_REGIONS},
            suppression=_SUPPRESSION,
            indicators=[indicator.model_copy(update={"cells": [c for c in indicator.cells if wanted.keeps(c)]})
                        for indicator in indicators],
        )


CSV_COLUMNS = ("indicator", "strategy_indicator", "unit", "region", "period", "category", "numerator",
               "denominator", "value", "status", "computed_on")


def as_csv(report: IndicatorReport) -> str:
    """One row per published cell; the definitions are in the JSON and in docs/indicators.md."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for indicator in report.indicators:
        for cell in indicator.cells:
            writer.writerow([indicator.id, indicator.strategy_indicator, indicator.unit, cell.region, cell.period,
                             cell.category.value if cell.category else "", cell.numerator,
                             "" if cell.denominator is None else cell.denominator,
                             "" if cell.value is None else cell.value, cell.status, report.computed_on.isoformat()])
    return out.getvalue()


# ---------------------------------------------------------------- the computations


def _quarters(first: Quarter, last: Quarter) -> list[Quarter]:
    quarters = [first]
    while quarters[-1] < last:
        quarters.append(quarters[-1].next())
    return quarters


_ROWS = sorted(ALL_REGIONS)


def _reoffence(counts: IndicatorCounts, today: dt.date, quarters: list[Quarter]) -> list[Indicator]:
    cohorts = {str(q): q for q in quarters}
    released = {(region, cohorts[cohort]): n for region, cohort, n in counts.released}
    indicators = []
    for months in WINDOWS:
        reoffended: dict[tuple[str, Quarter], int] = defaultdict(int)
        for region, cohort, day, first in counts.signalled:
            if first <= add_months(day, months):
                reoffended[(region, cohorts[cohort])] += 1
        statuses = ["final" if today > add_months(q.last_day, months) else "window_open" for q in quarters]
        indicators.append(Indicator(
            id=f"reoffence_{months}m", unit="%", strategy_indicator=1, definition=DEFINITIONS[f"reoffence_{months}m"],
            title=f"Share of released persons who committed a new crime within {months} months of release",
            cells=_rate_cells(reoffended, released, quarters, statuses, rate_when=lambda s: s == "final"),
        ))
    return indicators


def _by_quarter(rows: Iterable[tuple[str, str, int]], quarters: list[Quarter]) -> dict[tuple[str, Quarter], int]:
    known = {str(q): q for q in quarters}
    return {(key, known[quarter]): n for key, quarter, n in rows if quarter in known}


def _assisted(counts: IndicatorCounts, today: dt.date, quarters: list[Quarter]) -> Indicator:
    persons = _by_quarter(counts.assisted, quarters)
    statuses = ["partial" if q == Quarter.of(today) else "final" for q in quarters]
    table = suppress([[persons.get((region, q), 0) for q in quarters] for region in _ROWS], row_totals=False)
    cells = []
    for row, region in [*enumerate(_ROWS), (None, NATIONAL)]:
        for column, quarter in enumerate(quarters):
            cell = table.column_totals[column] if row is None else table.cells[row][column]
            cells.append(IndicatorCell(region=region, period=str(quarter), numerator=cell.published,
                                       value=cell.value if cell.hidden is None else None, status=statuses[column]))
    return Indicator(id="persons_assisted", unit="persons", strategy_indicator=2,
                     title="Persons who received employment, social-legal, medical or psychological assistance",
                     definition=DEFINITIONS["persons_assisted"], cells=cells)


def _assisted_by_category(counts: IndicatorCounts, today: dt.date, quarters: list[Quarter]) -> Indicator:
    persons = _by_quarter(counts.assisted_by_category, quarters)
    categories = list(AssistanceCategory)
    # Categories do not add up to the persons assisted (one person, several kinds of help): no total
    # relates them, so each cell is suppressed on its own.
    table = suppress([[persons.get((c.value, q), 0) for q in quarters] for c in categories],
                     row_totals=False, column_totals=False)
    cells = [IndicatorCell(region=NATIONAL, period=str(quarter), category=category, numerator=cell.published,
                           value=cell.value if cell.hidden is None else None,
                           status="partial" if quarter == Quarter.of(today) else "final")
             for category, row in zip(categories, table.cells, strict=True)
             for quarter, cell in zip(quarters, row, strict=True)]
    return Indicator(id="persons_assisted_by_category", unit="persons", strategy_indicator=2,
                     title="Persons who received assistance, by category, nationally",
                     definition=DEFINITIONS["persons_assisted"], cells=cells)


def _placement(counts: IndicatorCounts, quarters: list[Quarter]) -> Indicator:
    needed = _by_quarter(((r, q, n) for r, q, n, _, _ in counts.placement), quarters)
    placed = _by_quarter(((r, q, p) for r, q, _, p, _ in counts.placement), quarters)
    open_cells = set(_by_quarter(((r, q, 1) for r, q, _, _, o in counts.placement if o), quarters))
    column_open = [any(key[1] == q for key in open_cells) for q in quarters]
    cells = _rate_cells(placed, needed, quarters, ["final"] * len(quarters), rate_when=lambda s: True,
                        cell_status=lambda region, q: "partial" if (region, q) in open_cells else None,
                        national_status=lambda column: "partial" if column_open[column] else None)
    return Indicator(id="placement_share", unit="%", strategy_indicator=3, definition=DEFINITIONS["placement_share"],
                     title="Share of persons in need of a place in a medico-social institution who were placed",
                     cells=cells)


def _rate_cells(numerators: dict[tuple[str, Quarter], int], denominators: dict[tuple[str, Quarter], int],
                quarters: list[Quarter], statuses: list[Status], *, rate_when: Callable[[str], bool],
                cell_status: Callable[[str, Quarter], Status | None] = lambda region, q: None,
                national_status: Callable[[int], Status | None] = lambda column: None) -> list[IndicatorCell]:
    numerator = [[numerators.get((region, q), 0) for q in quarters] for region in _ROWS]
    denominator = [[denominators.get((region, q), 0) for q in quarters] for region in _ROWS]
    # A numerator a few short of its denominator says what happened to those few: hidden as well.
    near = [[(d - n) in range(1, 5) for n, d in zip(n_row, d_row, strict=True)]
            for n_row, d_row in zip(numerator, denominator, strict=True)]
    national_near = [(sum(col_d) - sum(col_n)) in range(1, 5)
                     for col_n, col_d in zip(zip(*numerator), zip(*denominator), strict=True)] if _ROWS else []
    tops = suppress(numerator, row_totals=False, sensitive=near, sensitive_totals=national_near)
    bottoms = suppress(denominator, row_totals=False)
    cells = []
    for row, region in [*enumerate(_ROWS), (None, NATIONAL)]:
        for column, quarter in enumerate(quarters):
            top: Cell = tops.column_totals[column] if row is None else tops.cells[row][column]
            bottom: Cell = bottoms.column_totals[column] if row is None else bottoms.cells[row][column]
            status = (national_status(column) if row is None else cell_status(region, quarter)) or statuses[column]
            value = None
            if rate_when(status) and top.hidden is None and bottom.hidden is None and bottom.value:
                value = round(100 * top.value / bottom.value, 1)
            cells.append(IndicatorCell(region=region, period=str(quarter), numerator=top.published,
                                       denominator=bottom.published, value=value, status=status))
    return cells
