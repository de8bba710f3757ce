"""Taking in outcomes: referrals registered by probation, their outcomes reported by the providers,
re-offence signals from the interior ministry. Every one becomes a pseudonymous indicator event
and nothing else: it is relayed nowhere and leaves no IIN behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from gateway.domain import (
    IIN,
    AssistanceCategory,
    ImplausibleDate,
    ReferralConflict,
    ReferralHistory,
    ReferralState,
    ReoffenceSignal,
)
from gateway.domain.canonical import Text
from gateway.domain.outcomes import REGIONS
from gateway.store import (
    ConflictError,
    DecideReferralOutcome,
    IndicatorReferral,
    IndicatorStore,
    RecordReferralOutcome,
    RecordReoffence,
)
from gateway.workflows.outcomes import OutcomeTracking, PseudonymKeys

__all__ = ["NotWatched", "OutcomeIntake", "OutcomeReport", "ReferralRegistration", "UnknownReferral"]

_ASTANA = dt.timezone(dt.timedelta(hours=5))
_ATTEMPTS = 3


class UnknownReferral(LookupError):
    """No referral with this id was sent to the caller."""


class NotWatched(LookupError):
    """No release of this person is recorded: nobody is watching them."""


class OutcomeReport(BaseModel):
    """A provider's report of where a referral stands: accepted, or its outcome, and the date."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    state: ReferralState
    date: dt.date


class ReferralRegistration(BaseModel):
    """A referral a probation office made in one of the Strategy's categories, to a member that will
    report its outcome. The referral itself reaches the provider through the relay; this records it
    for the indicators."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    referral_id: Text
    iin: IIN
    category: AssistanceCategory
    provider: Text
    """The member id of the provider: only it may report the outcome."""
    region: Text = Field(json_schema_extra={"enum": sorted(REGIONS)})
    """The КАТО region code of the person's residence."""
    referral_date: dt.date


@dataclass(frozen=True, slots=True)
class Recorded:
    state: str
    duplicate: bool


class OutcomeIntake:
    def __init__(self, store: IndicatorStore, pseudonyms: PseudonymKeys, clock: Callable[[], float],
                 providers: Callable[[str], bool]) -> None:
        self._store = store
        self._pseudonyms = pseudonyms
        self._tracking = OutcomeTracking(pseudonyms)
        self._clock = clock
        self._providers = providers

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self._clock(), _ASTANA).date()

    async def register(self, registration: ReferralRegistration) -> Recorded:
        """Record a referral as sent. Raises ``ImplausibleDate`` for a date in the future, ValueError
        for an unknown provider or region, ``ReferralConflict`` for the id used for another referral."""
        if registration.referral_date > self.today():
            raise ImplausibleDate(f"referral_date {registration.referral_date.isoformat()} is in the future")
        if registration.region not in REGIONS:
            raise ValueError(f"region must be a КАТО region code: {', '.join(sorted(REGIONS))}")
        if not self._providers(registration.provider):
            raise ValueError(f"provider {registration.provider[:64]!r} is not a member of the exchange")
        pseudonym = self._pseudonyms.person(registration.iin)
        releases = [r for r in await self._store.indicator_releases_of(pseudonym)
                    if r.release_date <= registration.referral_date]
        # On the probation register without a prison term, the referral starts the accompaniment.
        release_date = releases[-1].release_date if releases else registration.referral_date
        command = self._tracking.referred(
            registration.referral_id, iin=registration.iin, recipient=registration.provider,
            category=registration.category, region=registration.region, release_date=release_date,
            sent_on=registration.referral_date)
        (created,) = await self._store.apply([command], self._clock())
        if not created:
            stored = await self._store.indicator_referral(command.referral_key)
            if stored is None or (stored.pseudonym, stored.category, stored.recipient, stored.transitions[0][1]) != (
                    pseudonym, command.category, command.recipient, registration.referral_date):
                raise ReferralConflict("this referral id is registered for another referral")
            return Recorded(stored.state, duplicate=True)
        return Recorded(ReferralState.SENT.value, duplicate=False)

    async def report(self, caller: str, referral_id: str, outcome: OutcomeReport) -> Recorded:
        """Record ``outcome`` of a referral sent to ``caller``. Raises ``UnknownReferral``,
        ``ImplausibleDate`` or ``ReferralConflict``; on any of them nothing is written."""
        key = self._pseudonyms.referral(referral_id)
        today = self.today()

        def decide(stored: IndicatorReferral | None) -> RecordReferralOutcome | None:
            if stored is None or stored.recipient != caller:
                raise UnknownReferral("no referral with this id was sent to you")
            history = ReferralHistory.model_validate({
                "category": stored.category, "release_date": stored.release_date,
                "transitions": [{"state": state, "on": on} for state, on in stored.transitions]})
            if history.record(outcome.state, outcome.date, today=today) is None:
                return None  # exactly this is recorded already
            return RecordReferralOutcome(key, stored.state, outcome.state.value, outcome.date)

        for _ in range(_ATTEMPTS):
            try:
                # Checked and written in one transaction of the store, in one round trip.
                (written,) = await self._store.apply([DecideReferralOutcome(key, decide)], self._clock())
            except ConflictError:
                continue  # another outcome came first (a concurrent writer): check this one against it
            return Recorded(outcome.state.value, duplicate=written is None)
        raise ReferralConflict("the referral kept changing while this outcome was checked; send it again")

    async def reoffence(self, signal: ReoffenceSignal) -> Recorded:
        """Record a new case or conviction of a watched person. Raises ``NotWatched`` when no release of
        the person is recorded, ``ImplausibleDate`` when the date is in the future or outside every
        watch."""
        if signal.date > self.today():
            raise ImplausibleDate(f"the date {signal.date.isoformat()} is in the future")
        pseudonym = self._pseudonyms.person(signal.iin)
        releases = await self._store.indicator_releases_of(pseudonym)
        if not releases:
            raise NotWatched("no release of this person is recorded: the person is not watched")
        if not any(r.release_date < signal.date <= r.watch_until for r in releases):
            raise ImplausibleDate("the date is outside the 36 months after every recorded release of this person")
        (created,) = await self._store.apply(
            [RecordReoffence(pseudonym=pseudonym, kind=signal.kind.value, on=signal.date, region=signal.region)],
            self._clock())
        return Recorded("recorded", duplicate=not created)
