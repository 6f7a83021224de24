"""Sequences as staff see them: how many leads are in each, the send window each step obeys,
and sample leads to simulate a sequence for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture.config.durations import format_duration
from nurture.config.policy import Policy
from nurture.db.models import (
    PENDING_STATUSES,
    Channel,
    Enrollment,
    EnrollmentStatus,
    LeadStage,
    Message,
    Purpose,
)
from nurture.outbox import promotions, variants
from nurture.preview.simulation import ConsentChoice, SampleLead
from nurture.program import windows
from nurture.program.sequences import Anchor, Catalog, LifecycleEvent, Sequence, Step, Variant

DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DASH = "\u2013"  # an en dash: "Mon–Sat 09:00–20:00"
WHOLE_DAY = (0, 1440)


@dataclass(frozen=True)
class SequenceRow:
    sequence: Sequence
    active: int
    pending: int


def overview(session: Session, catalog: Catalog) -> list[SequenceRow]:
    """Every sequence by key, with its active enrolments and rows not yet sent."""
    active: dict[str, int] = dict(
        session.execute(
            select(Enrollment.sequence_key, func.count())
            .where(Enrollment.status == EnrollmentStatus.ACTIVE)
            .group_by(Enrollment.sequence_key)
        ).all()
    )
    pending: dict[str, int] = {
        key: count
        for key, count in session.execute(
            select(Message.sequence_key, func.count())
            .where(Message.status.in_(PENDING_STATUSES), Message.sequence_key.is_not(None))
            .group_by(Message.sequence_key)
        )
        if key is not None
    }
    return [
        SequenceRow(sequence, int(active.get(key, 0)), int(pending.get(key, 0)))
        for key, sequence in sorted(catalog.by_key.items())
    ]


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_schedule(schedule: windows.Schedule) -> str:
    """``Mon–Sat 09:00–20:00, not on federal holidays; at most 3 per 24 h``."""
    groups: list[tuple[int, int, tuple[int, int]]] = []
    for day, hours in enumerate(schedule.days):
        if hours is None:
            continue
        if groups and groups[-1][1] == day - 1 and groups[-1][2] == hours:
            groups[-1] = (groups[-1][0], day, hours)
        else:
            groups.append((day, day, hours))
    if not groups:
        text = "never"
    elif len(groups) == 1 and groups[0][:2] == (0, 6) and groups[0][2] == WHOLE_DAY:
        text = "any time"
    else:
        parts = []
        for first, last, (start, end) in groups:
            if (first, last) == (0, 6):
                days = "every day"
            elif first == last:
                days = DAY_LABELS[first]
            else:
                days = f"{DAY_LABELS[first]}{DASH}{DAY_LABELS[last]}"
            parts.append(f"{days} {_clock(start)}{DASH}{_clock(end)}")
        text = ", ".join(parts)
    if schedule.skip_holidays:
        text += ", not on federal holidays"
    caps = [
        f"{cap} per {span}"
        for cap, span in ((schedule.cap_per_24h, "24 h"), (schedule.cap_per_7d, "7 days"))
        if cap is not None
    ]
    if caps:
        text += "; at most " + " and ".join(caps)
    return text[:1].upper() + text[1:]


def step_window(policy: Policy, step: Step) -> str:
    """The send window a step obeys in the lead's own time (before any state's rules)."""
    text = format_schedule(windows.schedule_for(policy, step.channel.value, step.purpose.value))
    if step.channel is Channel.SMS and step.purpose is Purpose.MARKETING and policy.states:
        text += " (stricter in some states)"
    return text


def describe_offset(step: Step) -> str:
    """``1d before the consult``, ``2d after enrolment``, ``at enrolment``."""
    anchor = "the consult" if step.anchor is Anchor.CONSULT_AT else "enrolment"
    seconds = step.offset.total_seconds()
    if seconds == 0:
        return f"at {anchor}"
    amount = format_duration(abs(step.offset))
    return f"{amount} {'before' if seconds < 0 else 'after'} {anchor}"


SAMPLES: dict[str, SampleLead] = {
    "Boise lead, all consent": SampleLead(
        first_name="Sam",
        last_name="Sample",
        email="sam.sample@example.com",
        phone="+12085550100",
        timezone="America/Boise",
        postal_code="83702",
        state="ID",
    ),
    "Pacific lead, texts for appointments only": SampleLead(
        first_name="Pat",
        last_name="Pacific",
        email="pat.pacific@example.com",
        phone="+15035550100",
        timezone="America/Los_Angeles",
        postal_code="97201",
        state="OR",
        consent={
            Channel.EMAIL: ConsentChoice(),
            Channel.SMS: ConsentChoice(care=True, marketing=False),
        },
    ),
    "Lead in Florida (state rules)": SampleLead(
        first_name="Flora",
        last_name="Keys",
        email="flora.keys@example.com",
        phone="+13055550100",
        timezone="America/New_York",
        postal_code="33101",
        state="FL",
    ),
}

# Where a lead stands when each trigger starts a sequence: the stage its conditions will see.
STAGE_AT_TRIGGER = {
    LifecycleEvent.SIGNED_UP: LeadStage.SIGNED_UP,
    LifecycleEvent.CONSULT_BOOKED: LeadStage.BOOKED,
    LifecycleEvent.CONSULT_RESCHEDULED: LeadStage.BOOKED,
    LifecycleEvent.CONSULT_CANCELLED: LeadStage.SIGNED_UP,
    LifecycleEvent.CONSULT_COMPLETED: LeadStage.CONSULTED,
    LifecycleEvent.NO_SHOW: LeadStage.SIGNED_UP,
}


def sample_for(label: str | None, sequence: Sequence) -> tuple[str, SampleLead]:
    """A preset by label (the first for an unknown one), at the stage the sequence starts in."""
    chosen = label if label is not None and label in SAMPLES else next(iter(SAMPLES))
    sample = SAMPLES[chosen]
    return chosen, sample.model_copy(update={"stage": STAGE_AT_TRIGGER[sequence.trigger]})


@dataclass(frozen=True)
class VariantRow:
    variant: Variant
    share: float  # of the leads, from the weights
    for_sample: bool  # the sample lead on the page gets this one


def variant_rows(
    step: Step, lead_id: uuid.UUID, sequence_key: str, promotion: promotions.Promotion | None
) -> list[VariantRow]:
    """A step's A/B variants with their shares, marking the one the sample lead gets (the
    promoted winner, once there is one, as the planner does)."""
    if step.variants is None:
        return []
    total = sum(variant.weight for variant in step.variants)
    winner = promotion.applies_to(step) if promotion is not None else None
    chosen = winner or variants.assign(lead_id, sequence_key, step)
    return [
        VariantRow(variant, variant.weight / total, variant == chosen) for variant in step.variants
    ]
