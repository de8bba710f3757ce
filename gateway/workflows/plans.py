"""Routing a re-socialisation plan's version to those who carry it out (Strategy §3.3).

Each version goes, through the egress (the disclosure policy, the outbox, the audit log), to
post-release probation and to every adaptation-stage partner the configuration names; each
recipient sees what its role may (config/policy.toml). A planned measure whose responsible body
is a member of the exchange is also a referral to that member: it is registered for the
indicators once, under an id derived from the plan, the category and the member, so that the
same measure in a later version is the same referral, and the member reports its outcome on
``POST /api/v1/referrals/{referral_id}/outcomes`` like any other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from gateway.config import PlansConfig, Route
from gateway.domain import PlanNotice, ReleaseNotice, ResocialisationPlan
from gateway.domain.outcomes import region_of
from gateway.store import Command
from gateway.workflows.egress import Egress
from gateway.workflows.outcomes import OutcomeTracking

__all__ = ["PURPOSE", "PlanRouting", "Routed", "plan_referral_id"]

PURPOSE = "resocialisation"


def plan_referral_id(plan_id: str, category: str, member: str) -> str:
    """The referral a planned measure makes: the same in every version of the plan."""
    return f"{plan_id}:{category}:{member}"


@dataclass(frozen=True, slots=True)
class Routed:
    commands: list[Command]
    recipients: tuple[str, ...]
    referrals: tuple[str, ...]
    """The referral ids of the measures addressed to members of the exchange."""


class PlanRouting:
    def __init__(self, settings: PlansConfig, egress: Egress, *, members: Collection[str],
                 tracking: OutcomeTracking | None) -> None:
        self._routes: tuple[Route, ...] = (settings.probation, *settings.partners)
        self._egress = egress
        self._members = frozenset(members)
        self._tracking = tracking

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(route.member for route in self._routes)

    def route(self, plan_id: str, version: int, plan: ResocialisationPlan, release: ReleaseNotice, *,
              today: dt.date, now: float) -> Routed:
        """The commands that send version ``version`` of the plan to every recipient, and register
        the referrals its measures make. The message ids derive from (plan, version, recipient):
        the same version routed again is the same messages."""
        referral_ids = {n: plan_referral_id(plan_id, m.category.value, m.responsible.code)
                        for n, m in enumerate(plan.measures) if m.responsible.code in self._members}
        notice = PlanNotice.of(plan_id, version, plan, release_date=release.release_date, referral_ids=referral_ids)
        commands: list[Command] = []
        for route in self._routes:
            _, sent = self._egress.send(route=route, purpose=PURPOSE, document=notice, subject_iin=plan.iin,
                                        correlation_id=plan_id, key=f"plan:{plan_id}:{version}:{route.member}",
                                        now=now, ordering_key=plan_id)
            commands += sent
        if self._tracking is not None:
            region = region_of(release.destination)
            for n, referral_id in referral_ids.items():
                measure = plan.measures[n]
                # A referral already registered by an earlier version is left as it is (the store
                # keeps the first), and so is its history of outcomes.
                commands.append(self._tracking.referred(
                    referral_id, iin=plan.iin, recipient=measure.responsible.code, category=measure.category,
                    region=region, release_date=release.release_date, sent_on=today))
        return Routed(commands, self.recipients, tuple(referral_ids[n] for n in sorted(referral_ids)))
