"""The post-release probation notice: what a probation office needs to take over supervision.

When a release comes with post-release probation (parole, УДО), the office at the
destination must expect the person: who they are (to identify them when they
report), when and from where they are released, where they will live, and which
office takes over. Nothing about health, and nothing of the criminal record: the
office receives the judgment through its own channel, and who may see criminal
records is limited (Strategy §3.2).

The body is ``ProbationNotice`` as JSON (``schemas/jsonschema/ProbationNotice.json``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Self

from gateway.domain import Address, Organisation, Person, ReleaseEvent, ReleaseNotice, ReleaseType
from gateway.domain.canonical import CanonicalModel

__all__ = ["ProbationNotice", "probation_notice_from_json", "probation_notice_json"]


class ProbationNotice(CanonicalModel):
    """A release that the probation office at the destination must supervise."""

    event: ReleaseEvent
    """PLANNED weeks ahead, CHANGED or CANCELLED when the penal system says so, ACTUAL on the day."""
    person: Person
    release_type: ReleaseType
    release_date: dt.date
    """The actual date for an ACTUAL release, the planned one otherwise."""
    facility: Organisation
    destination: Address
    probation_office: Organisation

    @classmethod
    def from_release(cls, event: ReleaseEvent, release: ReleaseNotice, person: Person) -> Self:
        if release.iin != person.iin:
            raise ValueError("the release notice and the person have different IINs")
        if release.probation_office is None:
            raise ValueError("the release names no probation office: post-release probation does not apply")
        return cls(
            event=event,
            person=person,
            release_type=release.release_type,
            release_date=release.release_date,
            facility=release.facility,
            destination=release.destination,
            probation_office=release.probation_office,
        )


def probation_notice_json(notice: ProbationNotice) -> dict[str, Any]:
    return notice.model_dump(mode="json")


def probation_notice_from_json(payload: Any) -> ProbationNotice:
    if not isinstance(payload, Mapping):
        raise ValueError("the notice must be a JSON object")
    return ProbationNotice.model_validate(payload)
