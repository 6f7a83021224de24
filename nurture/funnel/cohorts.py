"""Cohorts by sign-up week: how far the people who signed up in one week have got.

The week is the ISO week (Monday to Sunday) of the sign-up in the clinic's zone, so a Sunday
evening sign-up in Boise belongs to that Sunday's week even though it is Monday in UTC.

=============  ==================================================================
number         definition, for the leads who signed up in the week
=============  ==================================================================
signed_up      the leads
booked         those who reached booked or further (:mod:`nurture.funnel.stages`)
consulted      those who reached consulted or further
patient        those who became patients
lost           those whose stage is lost now
=============  ==================================================================
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nurture.db.models import LeadStage
from nurture.funnel.stages import Stage, furthest, is_lost

COUNTS = ("signed_up", "booked", "consulted", "patient", "lost")


@dataclass(frozen=True)
class LeadFact:
    lead_id: uuid.UUID
    signed_up_at: datetime
    stage: LeadStage
    event_types: frozenset[str]


@dataclass(frozen=True)
class Cohort:
    week: str  # ISO week, e.g. 2026-W10
    starts: date  # its Monday, in the clinic's zone
    signed_up: int
    booked: int
    consulted: int
    patient: int
    lost: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "week": self.week,
            "starts": self.starts.isoformat(),
            **{name: getattr(self, name) for name in COUNTS},
        }


def week_of(moment: datetime, zone: ZoneInfo) -> tuple[str, date]:
    local = moment.astimezone(zone).date()
    year, week, weekday = local.isocalendar()
    return f"{year}-W{week:02d}", local - timedelta(days=weekday - 1)


def cohorts(leads: Iterable[LeadFact], zone: ZoneInfo) -> list[Cohort]:
    """One cohort per week with a sign-up, oldest first."""
    weeks: dict[tuple[str, date], list[LeadFact]] = defaultdict(list)
    for lead in leads:
        weeks[week_of(lead.signed_up_at, zone)].append(lead)
    return [_cohort(week, starts, members) for (week, starts), members in sorted(weeks.items())]


def _cohort(week: str, starts: date, members: Sequence[LeadFact]) -> Cohort:
    reached = [furthest(lead.stage, lead.event_types) for lead in members]
    return Cohort(
        week=week,
        starts=starts,
        signed_up=len(members),
        booked=sum(1 for stage in reached if stage >= Stage.BOOKED),
        consulted=sum(1 for stage in reached if stage >= Stage.CONSULTED),
        patient=sum(1 for stage in reached if stage >= Stage.PATIENT),
        lost=sum(1 for lead in members if is_lost(lead.stage)),
    )
