"""Accompaniment and its outcomes: referrals that carry an outcome back, re-offence signals,
the individual re-socialisation plan (Strategy §2, §3.3, §4).

The Strategy's target indicators are counted from these records, so each is strict about
what may follow what: an outcome a provider reports must fit the referral's history, or it is
refused and the history stays as it was.
"""

from __future__ import annotations

import calendar
import datetime as dt
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from gateway.domain.canonical import CanonicalModel, Organisation, Text
from gateway.domain.iin import IIN
from gateway.domain.person import Address
from gateway.domain.reports import NeedLevel, RiskNeeds
from gateway.domain.social import AssistanceCategory

__all__ = [
    "REGIONS",
    "WATCH_MONTHS",
    "AccompanimentStage",
    "DYNAMIC_NEEDS",
    "ImplausibleDate",
    "NeedRating",
    "PlanNotice",
    "PlanNoticeMeasure",
    "RISK_INSTRUMENTS",
    "OutcomeRefused",
    "PlannedMeasure",
    "Quarter",
    "ReferralConflict",
    "ReferralHistory",
    "ReferralState",
    "ReferralTransition",
    "ReoffenceKind",
    "ReoffenceSignal",
    "ResocialisationPlan",
    "add_months",
    "region_of",
]

WATCH_MONTHS = 36
"""Indicator 1 counts a new crime within three years of release (Strategy §2)."""

# КАТО region prefix -> region. The classifier's first two digits name the region; the three
# cities of republican significance are regions of their own.
REGIONS: dict[str, str] = {
    "71": "Астана", "75": "Алматы", "79": "Шымкент", "10": "Абай облысы", "11": "Ақмола облысы",
    "15": "Ақтөбе облысы", "19": "Алматы облысы", "23": "Атырау облысы", "27": "Батыс Қазақстан облысы",
    "31": "Жамбыл облысы", "33": "Жетісу облысы", "35": "Қарағанды облысы", "39": "Қостанай облысы",
    "43": "Қызылорда облысы", "47": "Маңғыстау облысы", "55": "Павлодар облысы",
    "59": "Солтүстік Қазақстан облысы", "61": "Түркістан облысы", "62": "Ұлытау облысы",
    "63": "Шығыс Қазақстан облысы",
}
UNKNOWN_REGION = "00"
"""Where an address names no region the classifier knows; counted nationally, never dropped."""


def region_of(address: Address) -> str:
    """The КАТО region code of ``address``: from its КАТО code, else from its region's name."""
    if address.kato is not None and address.kato[:2] in REGIONS:
        return address.kato[:2]
    by_name = {name.casefold(): code for code, name in REGIONS.items()}
    if address.region is not None:
        return by_name.get(address.region.casefold(), UNKNOWN_REGION)
    return UNKNOWN_REGION


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months; the 31st (or 29 February) becomes the month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Quarter(CanonicalModel):
    """A calendar quarter, written ``2026Q4``: the release cohorts and reporting periods."""

    year: int = Field(ge=2000, le=2200)
    number: int = Field(ge=1, le=4)

    @classmethod
    def of(cls, day: dt.date) -> Quarter:
        return cls(year=day.year, number=(day.month - 1) // 3 + 1)

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """``2026Q4`` (or ``2026-Q4``); ValueError with what is expected otherwise."""
        cleaned = text.strip().upper().replace("-", "")
        year, sep, number = cleaned.partition("Q")
        if not sep or not year.isdigit() or number not in {"1", "2", "3", "4"}:
            raise ValueError(f"{text[:20]!r} is not a quarter: write it as 2026Q4")
        return cls(year=int(year), number=int(number))

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, 3 * self.number - 2, 1)

    @property
    def last_day(self) -> dt.date:
        return add_months(self.first_day, 3) - dt.timedelta(days=1)

    def next(self) -> Quarter:
        return Quarter.of(add_months(self.first_day, 3))

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    def __lt__(self, other: Quarter) -> bool:
        return (self.year, self.number) < (other.year, other.number)

    def __le__(self, other: Quarter) -> bool:
        return (self.year, self.number) <= (other.year, other.number)


# ---------------------------------------------------------------- referrals


class OutcomeRefused(ValueError):
    """An outcome or a signal that cannot be recorded as it stands; nothing was changed."""


class ReferralConflict(OutcomeRefused):
    """The outcome contradicts what the referral's history already says (HTTP 409)."""


class ImplausibleDate(OutcomeRefused):
    """A date that cannot be right on its own: in the future, or before the release (HTTP 422)."""


class ReferralState(StrEnum):
    """Where a referral stands. ``sent`` first; a provider ``accepted`` it; then one final outcome."""

    SENT = "sent"
    ACCEPTED = "accepted"
    PROVIDED = "provided"
    """The assistance was given: the only outcome indicator 2 and 3 count as help."""
    REFUSED_BY_PERSON = "refused_by_person"
    NOT_REACHED = "not_reached"
    """The provider could not reach the person."""
    NOT_ELIGIBLE = "not_eligible"
    """The person is not entitled to this assistance."""

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({ReferralState.PROVIDED, ReferralState.REFUSED_BY_PERSON, ReferralState.NOT_REACHED,
                    ReferralState.NOT_ELIGIBLE})
# What may follow each state. Assistance is provided only after a provider accepted the
# referral; refusing, not reaching and ineligibility can end it before that.
_NEXT: dict[ReferralState, frozenset[ReferralState]] = {
    ReferralState.SENT: frozenset({ReferralState.ACCEPTED, ReferralState.REFUSED_BY_PERSON,
                                   ReferralState.NOT_REACHED, ReferralState.NOT_ELIGIBLE}),
    ReferralState.ACCEPTED: _FINAL,
    **{state: frozenset() for state in _FINAL},
}


class ReferralTransition(CanonicalModel):
    state: ReferralState
    on: dt.date


class ReferralHistory(CanonicalModel):
    """One referral's states, each with its date, oldest first.

    The canonical ``AssistanceReferral`` is what a provider is sent; this is what the gateway
    learns back. ``release_date`` is the release the referral accompanies: assistance before
    it is not post-release assistance, so no outcome may be dated earlier.
    """

    category: AssistanceCategory
    release_date: dt.date
    transitions: tuple[ReferralTransition, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _a_history_that_could_have_happened(self) -> Self:
        first, *rest = self.transitions
        if first.state is not ReferralState.SENT:
            raise ValueError("a referral's history starts with sent")
        previous = first
        for transition in rest:
            _check_follows(previous, transition)
            previous = transition
        return self

    @classmethod
    def sent(cls, category: AssistanceCategory, on: dt.date, release_date: dt.date) -> Self:
        return cls(category=category, release_date=release_date,
                   transitions=(ReferralTransition(state=ReferralState.SENT, on=on),))

    @property
    def state(self) -> ReferralState:
        return self.transitions[-1].state

    def on(self, state: ReferralState) -> dt.date | None:
        """The date the referral reached ``state``, None if it has not."""
        return next((t.on for t in self.transitions if t.state is state), None)

    def record(self, state: ReferralState, on: dt.date, *, today: dt.date) -> Self | None:
        """The history with ``state`` reached ``on``; None if exactly that is recorded already.

        Raises ``ImplausibleDate`` for a date after ``today`` or before the release, and
        ``ReferralConflict`` for an outcome the history contradicts.
        """
        if on > today:
            raise ImplausibleDate(f"the date {on.isoformat()} is in the future (today is {today.isoformat()})")
        if state is not ReferralState.SENT and on < self.release_date:
            raise ImplausibleDate(f"the date {on.isoformat()} is before the release on "
                                  f"{self.release_date.isoformat()}")
        reached = self.on(state)
        if reached == on:
            return None  # the same outcome again: recorded once
        if reached is not None:
            raise ReferralConflict(f"the referral was already {state.value} on {reached.isoformat()}")
        transition = ReferralTransition(state=state, on=on)
        try:
            _check_follows(self.transitions[-1], transition)
        except ValueError as exc:
            raise ReferralConflict(str(exc)) from None
        return self.model_copy(update={"transitions": (*self.transitions, transition)})


def _check_follows(previous: ReferralTransition, transition: ReferralTransition) -> None:
    if previous.state.final:
        raise ValueError(f"the referral already has its outcome ({previous.state.value}); "
                         f"it cannot also be {transition.state.value}")
    if transition.state not in _NEXT[previous.state]:
        raise ValueError(f"a referral that is {previous.state.value} cannot become {transition.state.value}"
                         + (": it must be accepted first" if transition.state is ReferralState.PROVIDED else ""))
    if transition.on < previous.on:
        raise ValueError(f"{transition.state.value} on {transition.on.isoformat()} is before "
                         f"{previous.state.value} on {previous.on.isoformat()}")


# ---------------------------------------------------------------- re-offence


class ReoffenceKind(StrEnum):
    NEW_CASE = "NEW_CASE"
    """A new pre-trial case in the unified register (ЕРДР) names the person as a suspect."""
    NEW_CONVICTION = "NEW_CONVICTION"


class ReoffenceSignal(CanonicalModel):
    """The interior ministry's notice of a new case or conviction for a person released in the last
    36 months. The gateway keeps only a pseudonymous event of it and relays it nowhere."""

    iin: IIN
    kind: ReoffenceKind
    date: dt.date
    """When the case was registered, or the conviction pronounced."""
    region: Text
    """The КАТО region code where the case was registered."""

    @model_validator(mode="after")
    def _known_region(self) -> Self:
        if self.region not in REGIONS:
            raise ValueError(f"region must be a КАТО region code: {', '.join(sorted(REGIONS))}")
        return self


# ---------------------------------------------------------------- the plan


class AccompanimentStage(StrEnum):
    """The three stages of accompaniment (Strategy §3.3)."""

    PREPARATORY = "PREPARATORY"
    """Pre-trial probation: social-legal help to the suspect, the pre-trial report."""
    CORRECTIONAL = "CORRECTIONAL"
    """Penitentiary probation: preparing for release in the facility."""
    ADAPTATION = "ADAPTATION"
    """After release: post-penitentiary probation, then the local medico-social services and NGOs."""


class PlannedMeasure(CanonicalModel):
    category: AssistanceCategory
    description: Text
    responsible: Organisation
    due: dt.date


RISK_INSTRUMENTS: dict[str, int] = {"LS/CMI": 43, "LSI-R": 54}
"""The RNR instruments a plan's assessment may be made with, and each one's highest total score."""

DYNAMIC_NEEDS = ("education_employment", "family_marital", "leisure_recreation", "companions", "alcohol_drug",
                 "procriminal_attitude")
"""The need domains measures can change: what partners are told. The criminal history (static) and
the antisocial pattern are the assessment's, and stay with probation."""


class ResocialisationPlan(CanonicalModel):
    """The individual re-socialisation programme drawn up before release by the probation service
    with the facility, carried on after release (§3.3). The assessment is the officer's RNR
    assessment as made; the gateway does not compute risk."""

    iin: IIN
    stage: AccompanimentStage
    assessment: RiskNeeds
    measures: tuple[PlannedMeasure, ...] = Field(min_length=1)
    responsible_body: Organisation
    drawn_up: dt.date
    review_by: dt.date

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        top = RISK_INSTRUMENTS.get(self.assessment.instrument)
        if top is None:
            raise ValueError(f"assessment.instrument must be one of {', '.join(RISK_INSTRUMENTS)}")
        if self.assessment.score > top:
            raise ValueError(f"assessment.score {self.assessment.score} is out of range: "
                             f"{self.assessment.instrument} scores 0 to {top}")
        if self.assessment.assessment_date > self.drawn_up:
            raise ValueError("the plan is drawn up before the assessment it rests on")
        if self.review_by < self.drawn_up:
            raise ValueError("review_by is before the plan was drawn up")
        late = [m.category.value for m in self.measures if m.due < self.drawn_up]
        if late:
            raise ValueError(f"measures due before the plan was drawn up: {', '.join(late)}")
        return self

    @property
    def need_domains(self) -> tuple[str, ...]:
        """The RNR need domains the assessment rates HIGH: what the measures should address."""
        levels = self.assessment.model_dump(exclude={"instrument", "assessment_date", "score", "band"})
        return tuple(name for name, level in levels.items() if level == NeedLevel.HIGH)

    def measures_in(self, category: AssistanceCategory) -> tuple[PlannedMeasure, ...]:
        return tuple(m for m in self.measures if m.category is category)


class NeedRating(CanonicalModel):
    domain: Text
    level: NeedLevel


class PlanNoticeMeasure(CanonicalModel):
    category: AssistanceCategory
    responsible: Organisation
    due: dt.date
    description: Text | None = None
    """The officer's own words: free text may say anything (the offence, a diagnosis), so only
    probation receives it."""
    referral_id: Text | None = None
    """When the responsible body is a member of the exchange: the referral it reports the outcome on."""


class PlanNotice(CanonicalModel):
    """One version of a re-socialisation plan as it is sent to those who carry it out: post-release
    probation and the adaptation-stage partners. Each recipient gets what the disclosure policy lets
    its role see: partners the needs and the planned measures, never the assessment (the score, the
    band, the criminal history) nor the officer's free text."""

    plan_id: Text
    version: int = Field(ge=1)
    iin: IIN
    stage: AccompanimentStage
    needs: tuple[NeedRating, ...]
    measures: tuple[PlanNoticeMeasure, ...] = Field(min_length=1)
    responsible_body: Organisation
    drawn_up: dt.date
    review_by: dt.date
    release_date: dt.date | None = None
    assessment: RiskNeeds | None = None

    @classmethod
    def of(cls, plan_id: str, version: int, plan: ResocialisationPlan, *, release_date: dt.date | None,
           referral_ids: dict[int, str] | None = None) -> PlanNotice:
        levels = plan.assessment.model_dump()
        return cls(
            plan_id=plan_id, version=version, iin=plan.iin, stage=plan.stage,
            needs=tuple(NeedRating(domain=name, level=levels[name]) for name in DYNAMIC_NEEDS),
            measures=tuple(PlanNoticeMeasure(category=m.category, responsible=m.responsible, due=m.due,
                                             description=m.description,
                                             referral_id=(referral_ids or {}).get(n))
                           for n, m in enumerate(plan.measures)),
            responsible_body=plan.responsible_body, drawn_up=plan.drawn_up, review_by=plan.review_by,
            release_date=release_date, assessment=plan.assessment,
        )
