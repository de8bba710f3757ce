"""What a workflow step records for the Strategy's indicators: pseudonymous store commands.

A step that actually releases a person, or sends a referral, returns these with its other
commands, so the indicator event is stored in the same transaction as the case: never one
without the other. They carry a pseudonym, a region, dates and a category — never the IIN,
the name, the address or the case id (see gateway.security.pseudonyms).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from gateway.domain import AssistanceCategory, Quarter, ReleaseNotice
from gateway.domain.outcomes import WATCH_MONTHS, add_months, region_of
from gateway.store import RecordReferral, RecordRelease

__all__ = ["OutcomeTracking", "PseudonymKeys"]


class PseudonymKeys(Protocol):
    def person(self, iin: str) -> str: ...

    def referral(self, referral_id: str) -> str: ...


class OutcomeTracking:
    def __init__(self, pseudonyms: PseudonymKeys) -> None:
        self._pseudonyms = pseudonyms

    def released(self, notice: ReleaseNotice) -> list[RecordRelease]:
        """The release event and its watch, for an actual release; nothing before it happened."""
        if notice.actual_date is None:
            return []
        return [RecordRelease(
            pseudonym=self._pseudonyms.person(notice.iin), release_date=notice.actual_date,
            region=region_of(notice.destination), cohort=str(Quarter.of(notice.actual_date)),
            watch_until=add_months(notice.actual_date, WATCH_MONTHS),
        )]

    def referred(self, referral_id: str, *, iin: str, recipient: str, category: AssistanceCategory, region: str,
                 release_date: dt.date, sent_on: dt.date) -> RecordReferral:
        """A referral sent to ``recipient``, the member that will report its outcomes."""
        return RecordReferral(
            referral_key=self._pseudonyms.referral(referral_id), pseudonym=self._pseudonyms.person(iin),
            recipient=recipient, category=category.value, region=region, release_date=release_date, sent_on=sent_on,
        )

    def referred_on_release(self, referral_id: str, notice: ReleaseNotice, *, recipient: str,
                            category: AssistanceCategory, sent_on: dt.date) -> RecordReferral:
        return self.referred(referral_id, iin=notice.iin, recipient=recipient, category=category,
                             region=region_of(notice.destination), release_date=notice.release_date, sent_on=sent_on)
