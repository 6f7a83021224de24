"""The stages of the funnel, signed up → booked → consulted → patient, and lost.

A lead has reached a stage when a lifecycle event of that stage or a later one is on record, or
when its current stage is that one or a later one (staff may set the stage by hand on the lead
page; that edit is audited but records no lifecycle event). A cancelled or missed consult sends
the lead's *current* stage back to signed up, but the booking still happened: the funnel counts
what was reached, not where the lead stands now.

**Lost** is never the result of a lifecycle event: it is set by staff on the lead page (the
stage field, audited as ``lead.edited``) when the clinic gives up on someone. So a lead is lost
when its current stage is ``lost``, whatever it reached before.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import IntEnum

from nurture.db.models import LeadStage
from nurture.program.sequences import LifecycleEvent


class Stage(IntEnum):
    """The funnel's stages in order; each includes the ones after it."""

    SIGNED_UP = 0
    BOOKED = 1
    CONSULTED = 2
    PATIENT = 3


# What each lifecycle event shows the lead reached.
EVENT_STAGE = {
    LifecycleEvent.SIGNED_UP.value: Stage.SIGNED_UP,
    LifecycleEvent.CONSULT_BOOKED.value: Stage.BOOKED,
    LifecycleEvent.CONSULT_RESCHEDULED.value: Stage.BOOKED,
    LifecycleEvent.CONSULT_COMPLETED.value: Stage.CONSULTED,
    LifecycleEvent.BECAME_PATIENT.value: Stage.PATIENT,
}
CURRENT_STAGE = {
    LeadStage.SIGNED_UP: Stage.SIGNED_UP,
    LeadStage.BOOKED: Stage.BOOKED,
    LeadStage.CONSULTED: Stage.CONSULTED,
    LeadStage.PATIENT: Stage.PATIENT,
}
BOOKING_EVENT = LifecycleEvent.CONSULT_BOOKED.value  # what attribution credits a message with


def furthest(current: LeadStage, event_types: Collection[str]) -> Stage:
    """The furthest stage a lead reached: from its events, or its current stage if further.
    A lost lead's current stage says nothing about how far it got: its events do."""
    reached = [EVENT_STAGE[kind] for kind in event_types if kind in EVENT_STAGE]
    reached.append(CURRENT_STAGE.get(current, Stage.SIGNED_UP))
    return max(reached)


def is_lost(current: LeadStage) -> bool:
    return current is LeadStage.LOST
