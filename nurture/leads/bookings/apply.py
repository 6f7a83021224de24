"""A booking tool's change, applied to its lead once and in order.

- Each delivery is kept by its provider event identity: a second one changes nothing.
- Each booking keeps the timestamp of the last change applied: an older change arriving late
  is stale (a late "created" never undoes a "canceled"), and a booking that was cancelled or
  replaced by a reschedule never books again.
- Only the event types config/integrations.yaml lists count as the consult.
- The change reaches the lead through :func:`nurture.leads.lifecycle.apply_event`, which
  plans, moves or ends the reminders.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from nurture import clock
from nurture.config.clinic import Clinic
from nurture.config.integrations import Integrations
from nurture.db.models import BookingDelivery, BookingState, Lead
from nurture.leads import lifecycle, notices
from nurture.leads.bookings.event import BookingEvent, BookingKind
from nurture.leads.bookings.newcomers import find_lead, lead_from_booking
from nurture.program.sequences import Catalog, LifecycleEvent

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # this delivery was seen before
    STALE = "stale"  # older than what was applied for the booking, or it was cancelled
    REPLACED = "replaced"  # Calendly's cancel half of a reschedule
    IGNORED = "ignored"  # an event nurture has no use for
    NOT_CONSULT = "not_consult"  # an event type config/integrations.yaml does not list
    UNKNOWN_LEAD = "unknown_lead"  # nobody to apply it to (a cancel for a stranger, ...)
    UNCHANGED = "unchanged"  # the booking is already as this says
    NOT_CURRENT = "not_current"  # about a booking that is no longer the lead's consult
    REFUSED = "refused"  # lifecycle refused it (a consult time already past)


@dataclass(frozen=True)
class BookingResult:
    outcome: Outcome
    lead_id: uuid.UUID | None = None
    lead_created: bool = False
    detail: str = ""


# What a booking is after each kind of change.
AFTER = {
    BookingKind.BOOKED: "booked",
    BookingKind.RESCHEDULED: "booked",
    BookingKind.REPLACED: "replaced",
    BookingKind.CANCELLED: "cancelled",
    BookingKind.NO_SHOW: "no_show",
    BookingKind.COMPLETED: "completed",
}
ENDED = frozenset({"cancelled", "replaced"})
BOOKS = frozenset({BookingKind.BOOKED, BookingKind.RESCHEDULED})


@dataclass(frozen=True)
class Program:
    """What applying a change needs besides the database: handed in, not Services."""

    integrations: Integrations
    catalog: Catalog
    clinic: Clinic
    public_url: str  # the lead's admin page in a new-lead notice

    @property
    def clinic_zone(self) -> ZoneInfo:
        return self.clinic.zone


def apply_delivery(
    factory: sessionmaker[Session], event: BookingEvent, *, program: Program
) -> BookingResult:
    """Apply one delivery in its own transaction. Two deliveries racing for one new person
    or one delivery key: the loser hits a unique constraint and, retried, sees the winner."""
    attempts = 3
    for attempt in range(attempts):
        try:
            with factory.begin() as session:
                return record_booking(session, event, program=program, now=clock.utcnow())
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def record_booking(
    session: Session, event: BookingEvent, *, program: Program, now: datetime
) -> BookingResult:
    """Apply ``event`` in the caller's transaction and keep the delivery; see the module."""
    seen = session.scalar(
        select(BookingDelivery.id).where(
            BookingDelivery.provider == event.provider,
            BookingDelivery.delivery_key == event.delivery_key,
        )
    )
    if seen is not None:
        return BookingResult(Outcome.DUPLICATE)
    result = _decide(session, event, program=program, now=now)
    session.add(
        BookingDelivery(
            provider=event.provider,
            delivery_key=event.delivery_key[:400],
            booking_key=event.booking_key[:300],
            kind=event.kind.value,
            outcome=result.outcome.value,
            lead_id=result.lead_id,
            booking_at=event.occurred_at,
            received_at=now,
        )
    )
    session.flush()
    log.info(
        "%s %s for booking %s: %s %s",
        event.provider,
        event.provider_event,
        event.booking_key[-40:],
        result.outcome.value,
        result.detail,
    )
    return result


def _state(session: Session, event: BookingEvent, key: str | None = None) -> BookingState | None:
    return session.get(
        BookingState, (event.provider, (key or event.booking_key)[:300]), populate_existing=True
    )


def _stale(state: BookingState | None, event: BookingEvent) -> bool:
    if state is None:
        return False
    if event.occurred_at < state.last_event_at:
        return True
    return event.kind in BOOKS and state.last_change in ENDED


def _counts(event: BookingEvent, state: BookingState | None, integrations: Integrations) -> bool:
    if event.event_types is None:  # the delivery does not say: a booking already accepted
        return state is not None or integrations.counts_as_consult(event.provider, ())
    return integrations.counts_as_consult(event.provider, event.event_types)


def _decide(
    session: Session, event: BookingEvent, *, program: Program, now: datetime
) -> BookingResult:
    if event.kind is BookingKind.IGNORED:
        return BookingResult(Outcome.IGNORED, detail=event.provider_event[:100])
    state = _state(session, event)
    if not _counts(event, state, program.integrations):
        return BookingResult(Outcome.NOT_CONSULT)
    if _stale(state, event):
        return BookingResult(Outcome.STALE, state.lead_id if state else None)
    lead = session.get(Lead, state.lead_id) if state and state.lead_id else None
    lead = lead or find_lead(session, event.invitee)
    created = False
    if lead is None and event.kind in BOOKS:
        lead = lead_from_booking(session, event, now=now)
        created = lead is not None
        if lead is not None:  # speed-to-lead: the clinic hears of them as of a sign-up
            notices.announce_new_lead(
                session,
                lead,
                came_by=f"a {event.provider} booking",
                clinic=program.clinic,
                public_url=program.public_url,
                now=now,
                actor=f"booking:{event.provider}",
            )
    if lead is None:
        # Still the booking's latest word: a late "created" for it must find it cancelled.
        _remember(session, event, state, None)
        return BookingResult(Outcome.UNKNOWN_LEAD)
    lifecycle.lock_lead(session, lead)  # one change per person at a time, then read again
    state = _state(session, event)
    if _stale(state, event):
        return BookingResult(Outcome.STALE, lead.id)
    result = _apply_to_lead(session, event, state, lead, program=program, now=now)
    if result.outcome in {Outcome.APPLIED, Outcome.UNCHANGED, Outcome.REPLACED}:
        _remember(session, event, state, lead.id)
        if event.replaces and event.kind in BOOKS:
            _mark_replaced(session, event)
    return BookingResult(result.outcome, lead.id, created, result.detail)


def _apply_to_lead(
    session: Session,
    event: BookingEvent,
    state: BookingState | None,
    lead: Lead,
    *,
    program: Program,
    now: datetime,
) -> BookingResult:
    lifecycle_event = _lifecycle_event(event, state, lead)
    if isinstance(lifecycle_event, Outcome):
        return BookingResult(lifecycle_event)
    try:
        applied = lifecycle.apply_event(
            session,
            lead,
            lifecycle_event,
            consult_at=event.consult_at if event.kind in BOOKS else None,
            catalog=program.catalog,
            clinic_zone=program.clinic_zone,
            now=now,
            actor=f"booking:{event.provider}",
            idempotency_key=event.lead_event_key,
        )
    except lifecycle.EventError as error:
        return BookingResult(Outcome.REFUSED, detail=str(error))
    if not applied.changed:
        return BookingResult(Outcome.UNCHANGED)
    return BookingResult(Outcome.APPLIED, detail=lifecycle_event.value)


def _lifecycle_event(
    event: BookingEvent, state: BookingState | None, lead: Lead
) -> LifecycleEvent | Outcome:
    """The lifecycle event this change is for the lead, or why there is none."""
    booked_here = state is not None and state.last_change == "booked"
    if event.kind is BookingKind.REPLACED:
        return Outcome.REPLACED
    if event.kind in BOOKS:
        if booked_here and state is not None and state.consult_at == event.consult_at:
            return Outcome.UNCHANGED  # a detail edited (Acuity "changed", Square update)
        # One consult at a time: a booking while one is booked moves it.
        if lead.consult_at is not None:
            return LifecycleEvent.CONSULT_RESCHEDULED
        return LifecycleEvent.CONSULT_BOOKED
    if (
        state is not None
        and state.consult_at is not None
        and lead.consult_at is not None
        and state.consult_at != lead.consult_at
    ):
        return Outcome.NOT_CURRENT  # the lead's consult is another booking now
    if event.kind is BookingKind.CANCELLED:
        return (
            LifecycleEvent.CONSULT_CANCELLED if lead.consult_at is not None else Outcome.UNCHANGED
        )
    if not booked_here and lead.consult_at is None:
        return Outcome.UNCHANGED  # nothing booked to have missed or attended
    if event.kind is BookingKind.NO_SHOW:
        return LifecycleEvent.NO_SHOW
    return LifecycleEvent.CONSULT_COMPLETED


def _remember(
    session: Session, event: BookingEvent, state: BookingState | None, lead_id: uuid.UUID | None
) -> None:
    change = AFTER.get(event.kind)
    if change is None:
        return
    if state is None:
        state = BookingState(
            provider=event.provider,
            booking_key=event.booking_key[:300],
            lead_id=lead_id,
            last_change=change,
            consult_at=event.consult_at,
            last_event_at=event.occurred_at,
        )
        session.add(state)
        return
    state.last_change = change
    state.lead_id = state.lead_id or lead_id
    if event.kind in BOOKS:
        state.consult_at = event.consult_at
    state.last_event_at = max(state.last_event_at, event.occurred_at)


def _mark_replaced(session: Session, event: BookingEvent) -> None:
    """The booking a reschedule replaced: it never books again, whatever arrives late."""
    assert event.replaces is not None
    old = _state(session, event, event.replaces)
    if old is None:
        session.add(
            BookingState(
                provider=event.provider,
                booking_key=event.replaces[:300],
                last_change="replaced",
                consult_at=None,
                last_event_at=event.occurred_at,
            )
        )
    else:
        old.last_change = "replaced"
        old.last_event_at = max(old.last_event_at, event.occurred_at)
