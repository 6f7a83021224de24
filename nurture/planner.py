"""Enrolment and planning: lifecycle events become rows in the messages outbox.

Planning writes every step's row with its ``due_at`` at once, in the transaction that enrols
the lead; the database is the schedule and Celery only ever carries work that is due now.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nurture import audit, windows
from nurture.models import (
    PENDING_STATUSES,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Message,
    MessageStatus,
)
from nurture.sequences import Anchor, Catalog, LifecycleEvent, Sequence, Step


def due_instant(anchor_at: datetime, step: Step, zone: ZoneInfo) -> datetime:
    """When a step is due: the anchor plus the offset, moved to ``at`` local time if given."""
    due = anchor_at + step.offset
    if step.at is None:
        return due
    local_day = due.astimezone(zone).date()
    return datetime.combine(local_day, step.at, tzinfo=zone).astimezone(due.tzinfo)


def idempotency_key(enrollment_id: int, step_key: str, anchor_version: int) -> str:
    # The anchor version is part of the key: a reminder planned for an old consult time can
    # never collide with, or be mistaken for, the one planned for the new time.
    return f"{enrollment_id}:{step_key}:{anchor_version}"


def handle_event(
    session: Session,
    lead: Lead,
    event: LifecycleEvent,
    *,
    catalog: Catalog,
    clinic_zone: ZoneInfo,
    now: datetime,
    actor: str,
) -> list[Enrollment]:
    """Apply a lifecycle event: end the enrolments it exits, start the ones it triggers."""
    for sequence in catalog.exited_by(event):
        exit_enrollment(session, lead, sequence.key, reason=event.value, now=now, actor=actor)
    started = []
    for sequence in catalog.triggered_by(event):
        enrollment = enroll(session, lead, sequence, clinic_zone=clinic_zone, now=now, actor=actor)
        if enrollment is not None:
            started.append(enrollment)
    return started


def active_enrollment(session: Session, lead: Lead, sequence_key: str) -> Enrollment | None:
    return session.scalars(
        select(Enrollment).where(
            Enrollment.lead_id == lead.id,
            Enrollment.sequence_key == sequence_key,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
    ).one_or_none()


def enroll(
    session: Session,
    lead: Lead,
    sequence: Sequence,
    *,
    clinic_zone: ZoneInfo,
    now: datetime,
    actor: str,
) -> Enrollment | None:
    """Enrol the lead and plan its rows; None if it is already enrolled (never twice)."""
    if active_enrollment(session, lead, sequence.key) is not None:
        return None
    enrollment = Enrollment(
        lead_id=lead.id,
        sequence_key=sequence.key,
        sequence_version=sequence.version,
        status=EnrollmentStatus.ACTIVE,
        enrolled_at=now,
    )
    session.add(enrollment)
    session.flush()  # the id is part of every row's idempotency key
    for step in sequence.steps:
        plan_step(session, lead, enrollment, sequence, step, clinic_zone=clinic_zone, now=now)
    audit.record(
        session,
        actor=actor,
        action="enrollment.started",
        lead_id=lead.id,
        details={"sequence": sequence.key, "version": sequence.version},
    )
    return enrollment


def plan_step(
    session: Session,
    lead: Lead,
    enrollment: Enrollment,
    sequence: Sequence,
    step: Step,
    *,
    clinic_zone: ZoneInfo,
    now: datetime,
) -> Message | None:
    """Write the row for one step, or nothing while its anchor is unknown."""
    if step.anchor is Anchor.CONSULT_AT:
        anchor_at, anchor_version = lead.consult_at, lead.consult_version
    else:
        anchor_at, anchor_version = enrollment.enrolled_at, 0
    if anchor_at is None:
        return None  # planned when the anchor appears
    zone = windows.lead_zone(lead.timezone, clinic_zone, lead.postal_code, lead.phone)
    due_at = due_instant(anchor_at, step, zone)
    not_after = lead.consult_at if step.not_after == "consult_at" else None
    message = Message(
        enrollment_id=enrollment.id,
        lead_id=lead.id,
        sequence_key=sequence.key,
        step_key=step.key,
        channel=step.channel,
        purpose=step.purpose,
        template_key=step.template,
        anchor=step.anchor.value,
        anchor_version=anchor_version,
        due_at=due_at,
        not_after=not_after,
        status=MessageStatus.SCHEDULED,
        status_at=now,
        idempotency_key=idempotency_key(enrollment.id, step.key, anchor_version),
        created_at=now,
    )
    # A step whose moment has passed is recorded as skipped, never sent late in a burst.
    # A minute of grace keeps "send now" steps (offset 0s) from tripping over the clock.
    if due_at < now - timedelta(minutes=1):
        message.status = MessageStatus.SKIPPED
        message.last_error = "its time had passed when it was planned"
    session.add(message)
    return message


def exit_enrollment(
    session: Session, lead: Lead, sequence_key: str, *, reason: str, now: datetime, actor: str
) -> bool:
    """End the lead's active enrolment in a sequence and cancel its pending rows."""
    enrollment = active_enrollment(session, lead, sequence_key)
    if enrollment is None:
        return False
    enrollment.status = EnrollmentStatus.EXITED
    enrollment.exit_reason = reason
    enrollment.ended_at = now
    session.execute(
        update(Message)
        .where(Message.enrollment_id == enrollment.id, Message.status.in_(PENDING_STATUSES))
        .values(status=MessageStatus.CANCELLED, status_at=now, last_error=f"exited: {reason}")
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=actor,
        action="enrollment.exited",
        lead_id=lead.id,
        details={"sequence": sequence_key, "reason": reason},
    )
    return True
