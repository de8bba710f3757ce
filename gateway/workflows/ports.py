"""The ports through which workflows ask agency systems for data.

Workflows depend on these protocols only; each adapter's client implements
one (``adapters/interior/client.py`` implements ``InteriorPort``, …) and the
bootstrap injects them. Every method speaks the canonical model.

Failures are of two kinds, and the difference matters to a workflow:
``SourceUnavailable`` — the source is down, slow or answered 5xx: try again
later, and meanwhile mark the section unavailable; ``SourceRejected`` — the
source answered and refused (unknown person, invalid request): trying again
will not help.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from gateway.domain import (
    IIN,
    Address,
    Attachment,
    ContinuityHold,
    Conviction,
    CustodyEpisode,
    HealthSummary,
    Organisation,
    Person,
    PretrialCase,
    SocialStatus,
)


class SourceError(Exception):
    """An agency system did not give what was asked. ``source`` names the member."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class SourceUnavailable(SourceError):
    """Down, timed out, or a server error: worth trying again later."""


class SourceRejected(SourceError):
    """The source answered and refused: trying again will not help."""


class NotFound(SourceRejected):
    """The source does not know this person, case or address."""


class InteriorPort(Protocol):
    """Interior ministry: identity, criminal records ("special records"), pre-trial cases, residence."""

    async def person(self, iin: IIN) -> Person: ...

    async def convictions(self, iin: IIN) -> list[Conviction]:
        """All convictions, each with its ``expunged`` flag: filtering is the gateway's job."""

    async def pretrial_case(self, erdr_number: str) -> PretrialCase: ...

    async def registered_residence(self, iin: IIN) -> Address | None: ...


class PenalPort(Protocol):
    """Penal system: custody history."""

    async def custody_history(self, iin: IIN) -> list[CustodyEpisode]: ...


class HealthPort(Protocol):
    """Ministry of Healthcare: dispensary registers and the attached-population register (РПН)."""

    async def health_summary(self, iin: IIN) -> HealthSummary: ...

    async def attachment(self, iin: IIN) -> Attachment | None:
        """The current РПН attachment, or None if the person is attached nowhere."""

    async def place_hold(self, iin: IIN, until: dt.date, reference: str) -> ContinuityHold:
        """Keep the attachment from lapsing until ``until``. Idempotent by ``reference``
        (the release case id): placing the same hold twice returns the same hold."""

    async def release_hold(self, iin: IIN, hold_id: str) -> None:
        """Lift a hold; lifting one already lifted is not an error."""

    async def clinic_for(self, address: Address) -> Organisation | None:
        """The primary-care clinic serving an address, or None when the register cannot tell."""


class SocialPort(Protocol):
    """Labour and social protection: social situation."""

    async def social_status(self, iin: IIN) -> SocialStatus: ...
