"""Lifecycle events from the clinic's systems: booked, rescheduled, cancelled, completed, no-show,
became a patient (the funnel's last stage, issue 15 §2).

Each event updates the lead's stage and consult time, ends the enrolments it exits, re-plans
every reminder anchored on the consult, and starts the sequences it triggers, in one transaction.
The same event delivered twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture import clock
from nurture.db import audit
from nurture.db.models import Lead, LeadEvent, LeadStage
from nurture.leads import first_contact
from nurture.outbox import planner
from nurture.program.sequences import Catalog, LifecycleEvent

API_EVENTS = (
    LifecycleEvent.CONSULT_BOOKED,
    LifecycleEvent.CONSULT_RESCHEDULED,
    LifecycleEvent.CONSULT_CANCELLED,
    LifecycleEvent.CONSULT_COMPLETED,
    LifecycleEvent.NO_SHOW,
    LifecycleEvent.BECAME_PATIENT,
)
NEEDS_CONSULT_AT = (LifecycleEvent.CONSULT_BOOKED, LifecycleEvent.CONSULT_RESCHEDULED)


class EventError(ValueError):
    """The event cannot be applied; ``field`` names the input to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class EventResult:
    lead_id: str
    stage: LeadStage
    consult_at: datetime | None
    changed: bool
    exited: list[str] = field(default_factory=list)
    enrolled: list[str] = field(default_factory=list)


def parse_event_type(value: object) -> LifecycleEvent:
    allowed = ", ".join(event.value for event in API_EVENTS)
    try:
        event = LifecycleEvent(str(value))
    except ValueError:
        raise EventError("type", f"unknown event {value!r}; use one of {allowed}") from None
    if event not in API_EVENTS:
        raise EventError(
            "type", f"{event.value} is not sent to this endpoint; use one of {allowed}"
        )
    return event


def check_consult_at(event: LifecycleEvent, consult_at: datetime | None, now: datetime) -> None:
    if event in NEEDS_CONSULT_AT:
        if consult_at is None:
            raise EventError(
                "consult_at", f"{event.value} needs consult_at (ISO 8601 with an offset)"
            )
        if consult_at.tzinfo is None or consult_at.utcoffset() is None:
            raise EventError("consult_at", "give an offset, e.g. 2026-03-03T14:30:00-07:00")
        if consult_at <= now:
            raise EventError("consult_at", f"{consult_at.isoformat()} is in the past")


def lock_lead(session: Session, lead: Lead) -> None:
    """Hold the lead's row until the transaction ends and read it again as it is now.

    PostgreSQL: SELECT … FOR UPDATE; SQLite: writers are already serialised by BEGIN IMMEDIATE."""
    session.execute(select(Lead.id).where(Lead.id == lead.id).with_for_update())
    session.refresh(lead)


def apply_event(
    session: Session,
    lead: Lead,
    event: LifecycleEvent,
    *,
    consult_at: datetime | None,
    catalog: Catalog,
    clinic_zone: ZoneInfo,
    now: datetime,
    actor: str,
    idempotency_key: str | None = None,
) -> EventResult:
    """Apply one lifecycle event to a lead; raises EventError for input that cannot apply.

    The lead is locked here, whoever calls (API, staff page, CLI, a booking webhook): two
    events for one person, e.g. a reschedule racing a cancel, apply one after the other, each
    seeing what the other did."""
    lock_lead(session, lead)
    check_consult_at(event, consult_at, now)
    consult_at = clock.ensure_utc(consult_at) if consult_at is not None else None
    if _is_repeat(session, lead, event, consult_at, idempotency_key):
        return EventResult(str(lead.id), lead.stage, lead.consult_at, changed=False)

    exited = [
        sequence.key
        for sequence in catalog.exited_by(event)
        if planner.exit_enrollment(
            session, lead, sequence.key, reason=event.value, now=now, actor=actor
        )
    ]
    moved = _update_lead(lead, event, consult_at, now)
    if moved:
        planner.replan_consult(
            session, lead, catalog=catalog, clinic_zone=clinic_zone, now=now, actor=actor
        )
    enrolled = [
        enrollment.sequence_key
        for sequence in catalog.triggered_by(event)
        if (
            enrollment := planner.enroll(
                session, lead, sequence, clinic_zone=clinic_zone, now=now, actor=actor
            )
        )
    ]
    session.add(
        LeadEvent(
            lead_id=lead.id,
            type=event.value,
            consult_at=consult_at,
            idempotency_key=idempotency_key,
            actor=actor,
            occurred_at=now,
        )
    )
    audit.record(
        session,
        actor=actor,
        action=f"lead.{event.value}",
        lead_id=lead.id,
        details={
            "consult_at": consult_at.isoformat() if consult_at else None,
            "exited": exited,
            "enrolled": enrolled,
        },
    )
    if event is LifecycleEvent.CONSULT_BOOKED:
        # A booked consult means the clinic and the lead have found each other: the lead
        # leaves the "nobody contacted them" list, whoever recorded the booking.
        first_contact.record_first_contact(
            session, lead, how=first_contact.BY_BOOKING, actor=actor, now=now
        )
    return EventResult(str(lead.id), lead.stage, lead.consult_at, True, exited, enrolled)


def _is_repeat(
    session: Session,
    lead: Lead,
    event: LifecycleEvent,
    consult_at: datetime | None,
    key: str | None,
) -> bool:
    if key is not None:
        return (
            session.scalar(select(LeadEvent.id).where(LeadEvent.idempotency_key == key)) is not None
        )
    last = session.scalars(
        select(LeadEvent)
        .where(LeadEvent.lead_id == lead.id)
        .order_by(LeadEvent.occurred_at.desc(), LeadEvent.id.desc())
        .limit(1)
    ).one_or_none()
    return last is not None and last.type == event.value and last.consult_at == consult_at


def _update_lead(
    lead: Lead, event: LifecycleEvent, consult_at: datetime | None, now: datetime
) -> bool:
    """Stage and consult time after the event; True when the consult time changed."""
    previous = lead.consult_at
    if event in NEEDS_CONSULT_AT:
        lead.stage = LeadStage.BOOKED
        lead.consult_at = consult_at
    elif event is LifecycleEvent.CONSULT_CANCELLED:
        lead.stage = LeadStage.SIGNED_UP  # back to needing a booking
        lead.consult_at = None
    elif event is LifecycleEvent.CONSULT_COMPLETED:
        lead.stage = LeadStage.CONSULTED
    elif event is LifecycleEvent.NO_SHOW:
        lead.stage = LeadStage.SIGNED_UP  # the missed time stays on record for the follow-up
    elif event is LifecycleEvent.BECAME_PATIENT:
        # Treatment started: the consult time stays on record (the funnel times the path).
        lead.stage = LeadStage.PATIENT
    lead.updated_at = now
    if lead.consult_at != previous:
        lead.consult_version += 1
        lead.consult_confirmed_at = None
        return True
    return False
