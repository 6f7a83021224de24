"""Enrolment and planning: lifecycle events become rows in the messages outbox.

Planning writes every step's row with its ``due_at`` at once, in the transaction that enrols
the lead; the database is the schedule and Celery only ever carries work that is due now.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, insert, select, update
from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import (
    PENDING_STATUSES,
    Channel,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.outbox import promotions, states, variants
from nurture.program import windows
from nurture.program.sequences import Anchor, Catalog, LifecycleEvent, Sequence, Step

# The table itself: a Core INSERT of plain rows skips the ORM's per-object bookkeeping.
MESSAGES: Table = Message.__table__  # type: ignore[assignment]


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
    trail: audit.Trail | None = None,
    new_lead: bool = False,
) -> list[Enrollment]:
    """Apply a lifecycle event: end the enrolments it exits, start the ones it triggers
    (``trail`` and ``new_lead``: see :func:`enroll`)."""
    for sequence in catalog.exited_by(event):
        exit_enrollment(session, lead, sequence.key, reason=event.value, now=now, actor=actor)
    started = []
    for sequence in catalog.triggered_by(event):
        enrollment = enroll(
            session,
            lead,
            sequence,
            clinic_zone=clinic_zone,
            now=now,
            actor=actor,
            trail=trail,
            new_lead=new_lead,
        )
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
    trail: audit.Trail | None = None,
    new_lead: bool = False,
) -> Enrollment | None:
    """Enrol the lead and plan its rows; None if it is enrolled already, or was and may not
    enter again (``reenter``), or its cool-down has not passed.

    The rows go in as one statement; the audit entry goes to ``trail`` when one is given
    (the caller writes it before committing), else straight to the session. ``new_lead``:
    the lead was created in this transaction, so it has no enrolments to look up."""
    if not new_lead and not _may_enter(session, lead, sequence, now):
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
    promoted = promotions_of(session, sequence)
    planned = (
        step_values(
            lead,
            enrollment,
            sequence,
            step,
            clinic_zone=clinic_zone,
            now=now,
            promoted=promoted,
        )
        for step in sequence.steps
    )
    rows = [values for values in planned if values is not None]
    if rows:
        # Plain rows through Core: an executemany, one round trip, no ORM bookkeeping; the
        # ORM's multi-row INSERT ... RETURNING had too many parameters for the driver to cache
        # its parsing of the statement, and re-parsed it on every sign-up.
        session.execute(insert(MESSAGES), rows)
    details = {"sequence": sequence.key, "version": sequence.version}
    if trail is not None:
        trail.add(actor=actor, action="enrollment.started", lead_id=lead.id, details=details)
    else:
        audit.record(
            session, actor=actor, action="enrollment.started", lead_id=lead.id, details=details
        )
    return enrollment


def _may_enter(session: Session, lead: Lead, sequence: Sequence, now: datetime) -> bool:
    """Not enrolled now, and either never enrolled or allowed back in after the cool-down
    (one query for both: the lead's enrolments in this sequence are few)."""
    history = session.execute(
        select(Enrollment.status, Enrollment.ended_at).where(
            Enrollment.lead_id == lead.id, Enrollment.sequence_key == sequence.key
        )
    ).all()
    if any(status is EnrollmentStatus.ACTIVE for status, _ in history):
        return False
    ended = [ended_at for _, ended_at in history if ended_at is not None]
    if not ended:
        return True
    return sequence.reenter and now >= max(ended) + sequence.cooldown


@dataclass(frozen=True)
class PlannedRow:
    """When a step is due for a lead, or why it will not be sent (pure; no database)."""

    due_at: datetime
    not_after: datetime | None
    anchor_version: int
    skipped_reason: str | None


def plan_row(
    lead: Lead, step: Step, *, enrolled_at: datetime, clinic_zone: ZoneInfo, now: datetime
) -> PlannedRow | None:
    """The plan for one step; None while its anchor is unknown (planned when it appears).

    The simulator calls this same function, so what marketing previews is what is planned.
    """
    if step.anchor is Anchor.CONSULT_AT:
        anchor_at, anchor_version = lead.consult_at, lead.consult_version
    else:
        anchor_at, anchor_version = enrolled_at, 0
    if anchor_at is None:
        return None
    zone = windows.zones_of(lead, clinic_zone).shown
    due_at = due_instant(anchor_at, step, zone)
    not_after = lead.consult_at if step.not_after == "consult_at" else None
    reason = None
    # A step whose moment has passed is recorded as skipped, never sent late in a burst.
    # A minute of grace keeps "send now" steps (offset 0s) from tripping over the clock.
    if due_at < now - timedelta(minutes=1):
        reason = "its time had passed when it was planned"
    elif not_after is not None and due_at >= not_after:
        reason = "it would arrive after the consult"
    return PlannedRow(due_at, not_after, anchor_version, reason)


def promotions_of(session: Session, sequence: Sequence) -> Mapping[str, promotions.Promotion]:
    # Only a sequence with an A/B test can have a promotion: the others skip the query.
    return (
        promotions.promotions(session, sequence.key) if promotions.has_experiments(sequence) else {}
    )


def template_for(
    lead: Lead,
    sequence_key: str,
    step: Step,
    promoted: Mapping[str, promotions.Promotion] | None = None,
) -> tuple[str, str | None]:
    """The template a step sends this lead, and the A/B variant it was assigned (or None).

    A promoted winner ends the test: every lead gets its template, and the row records no
    variant, so the test's arms hold only leads assigned at random."""
    promotion = (promoted or {}).get(step.key)
    winner = promotion.applies_to(step) if promotion is not None else None
    if winner is not None:
        return winner.template, None
    variant = variants.assign(lead.id, sequence_key, step)
    if variant is not None:
        return variant.template, variant.name
    assert step.template is not None  # a step has a template or variants (Step validates it)
    return step.template, None


def step_values(
    lead: Lead,
    enrollment: Enrollment,
    sequence: Sequence,
    step: Step,
    *,
    clinic_zone: ZoneInfo,
    now: datetime,
    promoted: Mapping[str, promotions.Promotion] | None = None,
) -> dict[str, Any] | None:
    """The column values of one step's row, or None while its anchor is unknown."""
    planned = plan_row(
        lead, step, enrolled_at=enrollment.enrolled_at, clinic_zone=clinic_zone, now=now
    )
    if planned is None:
        return None
    template, variant = template_for(lead, sequence.key, step, promoted)
    return {
        "enrollment_id": enrollment.id,
        "lead_id": lead.id,
        "sequence_key": sequence.key,
        "step_key": step.key,
        "channel": step.channel,
        "purpose": step.purpose,
        "template_key": template,
        "variant": variant,
        "anchor": step.anchor.value,
        "anchor_version": planned.anchor_version,
        "due_at": planned.due_at,
        "not_after": planned.not_after,
        "status": states.planned(planned.skipped_reason),
        "last_error": planned.skipped_reason,
        "status_at": now,
        "idempotency_key": idempotency_key(enrollment.id, step.key, planned.anchor_version),
        "created_at": now,
    }


def plan_step(
    session: Session,
    lead: Lead,
    enrollment: Enrollment,
    sequence: Sequence,
    step: Step,
    *,
    clinic_zone: ZoneInfo,
    now: datetime,
    promoted: Mapping[str, promotions.Promotion] | None = None,
) -> Message | None:
    """Write the row for one step, or nothing while its anchor is unknown."""
    values = step_values(
        lead, enrollment, sequence, step, clinic_zone=clinic_zone, now=now, promoted=promoted
    )
    if values is None:
        return None
    message = Message(**values)
    session.add(message)
    return message


def replan_consult(
    session: Session,
    lead: Lead,
    *,
    catalog: Catalog,
    clinic_zone: ZoneInfo,
    now: datetime,
    actor: str,
) -> None:
    """The consult moved (or appeared, or was cancelled): in this one transaction, cancel every
    pending row planned from an older consult time and plan the steps anchored on the new one.

    Rows are never edited in place: the old row is cancelled and a new one, whose idempotency key
    carries the new anchor version, takes its place, so an old reminder can never go out."""
    replanned = 0
    for enrollment in session.scalars(
        select(Enrollment).where(
            Enrollment.lead_id == lead.id, Enrollment.status == EnrollmentStatus.ACTIVE
        )
    ):
        sequence = catalog.version(enrollment.sequence_key, enrollment.sequence_version)
        if sequence is None:
            continue
        states.move(
            session,
            and_(
                Message.enrollment_id == enrollment.id,
                Message.anchor == Anchor.CONSULT_AT.value,
                Message.anchor_version != lead.consult_version,
            ),
            from_=PENDING_STATUSES,
            to=MessageStatus.CANCELLED,
            now=now,
            last_error="the consult moved; re-planned",
        )
        # Rows anchored on the enrolment that must not outlive the consult follow it too.
        session.execute(
            update(Message)
            .where(
                Message.enrollment_id == enrollment.id,
                Message.anchor != Anchor.CONSULT_AT.value,
                Message.not_after.is_not(None),
                Message.status == MessageStatus.SCHEDULED,
            )
            .values(not_after=lead.consult_at)
            .execution_options(synchronize_session=False)
        )
        promoted: Mapping[str, promotions.Promotion] | None = None
        for step in sequence.steps:
            if step.anchor is not Anchor.CONSULT_AT or lead.consult_at is None:
                continue
            planned_already = select(Message.id).where(
                Message.enrollment_id == enrollment.id,
                Message.step_key == step.key,
                Message.anchor == Anchor.CONSULT_AT.value,
                Message.anchor_version == lead.consult_version,
            )
            # By its columns, not its idempotency key: a row a version move planned has a key
            # of its own (nurture.outbox.version_moves), and must count as planned too.
            if session.scalar(planned_already.limit(1)) is not None:
                continue  # already planned for this consult time
            if promoted is None:
                promoted = promotions_of(session, sequence)
            if plan_step(
                session,
                lead,
                enrollment,
                sequence,
                step,
                clinic_zone=clinic_zone,
                now=now,
                promoted=promoted,
            ):
                replanned += 1
    if replanned:
        audit.record(
            session,
            actor=actor,
            action="enrollment.replanned",
            lead_id=lead.id,
            details={"consult_version": lead.consult_version, "rows": replanned},
        )


def retime_local_steps(
    session: Session,
    lead: Lead,
    zone_before: ZoneInfo,
    *,
    catalog: Catalog,
    clinic_zone: ZoneInfo,
    now: datetime,
) -> int:
    """The zone a lead's times are read in changed (staff corrected it, or the person chose
    one): each still-scheduled row of a step sent at a local hour (``at:``) moves to that hour
    in the new zone, so a 10 a.m. text stays 10 a.m. where the person is. Returns how many
    moved.

    Only rows still where planning put them move: one a rule has moved since (a quiet-hours
    deferral, a cap) is left, and the gates time it in the new zone when it comes due, as
    they time every row. A new time already past becomes now; one at or after the consult a
    step must precede is left as it was. The row keeps its status and key: only ``due_at``
    changes, on a row no worker has claimed (``scheduled``, checked in the same UPDATE)."""
    zone_after = windows.zones_of(lead, clinic_zone).shown
    if zone_after.key == zone_before.key:
        return 0
    rows = session.execute(
        select(
            Message.id,
            Message.step_key,
            Message.due_at,
            Message.not_after,
            Message.anchor,
            Message.anchor_version,
            Enrollment.sequence_key,
            Enrollment.sequence_version,
            Enrollment.enrolled_at,
        )
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
        .where(Message.lead_id == lead.id, Message.status == MessageStatus.SCHEDULED)
    ).all()
    moved = 0
    for row in rows:
        step = catalog.step(row.sequence_key, row.step_key, row.sequence_version)
        if step is None or step.at is None:
            continue
        if row.anchor == Anchor.CONSULT_AT.value:
            if lead.consult_at is None or row.anchor_version != lead.consult_version:
                continue
            anchor_at = lead.consult_at
        else:
            anchor_at = row.enrolled_at
        if due_instant(anchor_at, step, zone_before) != row.due_at:
            continue  # moved by a rule since it was planned
        due_at = max(due_instant(anchor_at, step, zone_after), now)
        if due_at == row.due_at or (row.not_after is not None and due_at >= row.not_after):
            continue
        result = session.execute(
            update(Message)
            .where(
                Message.id == row.id,
                Message.status == MessageStatus.SCHEDULED,
                Message.due_at == row.due_at,
            )
            .values(due_at=due_at)
            .execution_options(synchronize_session=False)
        )
        moved += int(result.rowcount)  # type: ignore[attr-defined]
    return moved


def skip_confirm_requests(session: Session, lead: Lead, *, catalog: Catalog, now: datetime) -> int:
    """The lead confirmed: the steps that would ask them to confirm are no longer needed."""
    steps = {
        (sequence.key, step.key)
        for sequence in catalog.every_version()
        for step in sequence.steps
        if step.confirm_request
    }
    skipped = 0
    for sequence_key, step_key in sorted(steps):
        skipped += states.move(
            session,
            and_(
                Message.lead_id == lead.id,
                Message.sequence_key == sequence_key,
                Message.step_key == step_key,
            ),
            from_=PENDING_STATUSES,
            to=MessageStatus.SKIPPED,
            now=now,
            last_error="the consult is already confirmed",
        )
    return skipped


def complete_finished(session: Session, *, catalog: Catalog, now: datetime) -> int:
    """Mark enrolments with nothing left to send as completed.

    Sequences anchored on the consult stay active until an exit event: a reschedule after the
    last reminder must still find them."""
    # A key counts only if every version of it is anchored on the enrolment alone.
    consult_anchored = {
        sequence.key
        for sequence in catalog.every_version()
        if any(step.anchor is not Anchor.ENROLLED_AT for step in sequence.steps)
    }
    keys = sorted(set(catalog.by_key) - consult_anchored)
    if not keys:
        return 0
    pending = select(Message.id).where(
        Message.enrollment_id == Enrollment.id,
        Message.status.in_((*PENDING_STATUSES, MessageStatus.SENDING)),
    )
    result = session.execute(
        update(Enrollment)
        .where(
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.sequence_key.in_(keys),
            ~pending.exists(),
        )
        .values(status=EnrollmentStatus.COMPLETED, ended_at=now, exit_reason="all steps done")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


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
    states.move(
        session,
        Message.enrollment_id == enrollment.id,
        from_=PENDING_STATUSES,
        to=MessageStatus.CANCELLED,
        now=now,
        last_error=f"exited: {reason}",
    )
    audit.record(
        session,
        actor=actor,
        action="enrollment.exited",
        lead_id=lead.id,
        details={"sequence": sequence_key, "reason": reason},
    )
    return True


def plan_now(
    session: Session,
    lead: Lead,
    *,
    channel: Channel,
    purpose: Purpose,
    template: str,
    now: datetime,
    actor: str,
    action: str,
    key_prefix: str,
    recipient: str | None = None,
    context: dict[str, Any] | None = None,
) -> Message:
    """A message outside any sequence, due now (a staff alert, an opt-in confirmation owed by
    a grant made elsewhere), with its audit entry: born planned like every other row."""
    message = Message(
        lead_id=lead.id,
        step_key=template,
        channel=channel,
        purpose=purpose,
        template_key=template,
        recipient=recipient,
        context=context or {},
        due_at=now,
        status=states.PLANNED,
        status_at=now,
        idempotency_key=f"{key_prefix}:{uuid.uuid4()}",
        created_at=now,
    )
    session.add(message)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        lead_id=lead.id,
        message_id=message.id,
        details={"template": template, "channel": channel.value},
    )
    return message
