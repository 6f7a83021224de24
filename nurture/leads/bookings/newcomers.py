"""Finding the lead a booking is for, and making one for a person nurture has not met.

A booking is for the lead with its e-mail address, else for the one with its phone number
(both normalised as intake normalises them). A person nobody knows becomes a lead with only
the consent the booking itself carries: e-mail about the appointment (care), and texts about
it (care) only when the booking form collected a number for text reminders. Never marketing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from sqlalchemy.orm import Session

from nurture.consent import ledger
from nurture.db import audit
from nurture.db.models import Channel, ConsentAction, ConsentSource, Lead, Purpose
from nurture.leads import search
from nurture.leads.bookings.event import BookingEvent, Invitee
from nurture.leads.intake import Signup, normalize_email, normalize_phone
from nurture.outbox import confirmations

log = logging.getLogger(__name__)


def _or_none(normalize: Any, value: str | None) -> str | None:
    if not value:
        return None
    try:
        result: str = normalize(value)
    except ValueError:
        return None
    return result


def contact_of(invitee: Invitee) -> tuple[str | None, str | None]:
    """(e-mail, phone) normalised; what cannot be normalised counts as not given."""
    return _or_none(normalize_email, invitee.email), _or_none(normalize_phone, invitee.phone)


def find_lead(session: Session, invitee: Invitee) -> Lead | None:
    """The lead with the invitee's e-mail address, else the one with their phone number."""
    email, phone = contact_of(invitee)
    return search.by_contact(session, email, phone)


def _names(invitee: Invitee) -> tuple[str, str]:
    """The invitee's names if they pass intake's rules for a name (no links, markup or
    invisible characters); otherwise none is kept rather than something hostile."""
    try:
        signup = Signup.model_validate(
            {"first_name": invitee.first_name[:100], "last_name": invitee.last_name[:100]}
        )
    except ValidationError:
        return "", ""
    return signup.first_name, signup.last_name


def _zone(name: str | None) -> str | None:
    """A zone the booking page reported, if it is a real IANA zone. Kept as the browser's:
    it may narrow the hours texts go in, never widen them."""
    if not name or len(name) > 64:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def lead_from_booking(session: Session, event: BookingEvent, *, now: datetime) -> Lead | None:
    """A new lead for the person who booked, with the consent the booking carries; None when
    the booking gives neither a usable e-mail address nor a phone number.

    Flushes the lead (a booking racing another for the same new person fails on the unique
    address; the caller's retry then finds the lead)."""
    email, phone = contact_of(event.invitee)
    reminders = _or_none(normalize_phone, event.invitee.text_reminder_number)
    phone = reminders or phone
    if email is None and phone is None:
        return None
    first, last = _names(event.invitee)
    lead = Lead(
        id=uuid.uuid4(),
        first_name=first,
        last_name=last,
        email=email,
        phone=phone,
        browser_timezone=_zone(event.invitee.timezone),
        created_at=now,
        updated_at=now,
    )
    session.add(lead)
    session.flush()
    trail = audit.Trail()
    changes = []
    evidence = _evidence(event, lead, now=now)
    if email is not None:
        changes.append(_grant(lead, Channel.EMAIL, {**evidence, "contact": email}))
    if reminders is not None:
        changes.append(
            _grant(
                lead,
                Channel.SMS,
                {
                    **evidence,
                    "contact": reminders,
                    "phone": reminders,
                    "checkbox": event.invitee.text_reminder_field,
                },
            )
        )
    ledger.record_all(session, changes, actor=_actor(event), trail=trail)
    trail.add(
        actor=_actor(event),
        action="lead.created_from_booking",
        lead_id=lead.id,
        details={
            "provider": event.provider,
            "booking": event.booking_key[:300],
            "texts": reminders is not None,
        },
    )
    trail.write(session)
    if reminders is not None:
        # CTIA: the first text a number receives says what it signed up for, HELP and STOP.
        confirmations.plan_optin_confirmation(session, lead, now=now, actor=_actor(event))
    log.info("a %s booking made a new lead %s", event.provider, lead.id)
    return lead


def _actor(event: BookingEvent) -> str:
    return f"booking:{event.provider}"


def _grant(lead: Lead, channel: Channel, evidence: dict[str, Any]) -> ledger.Change:
    return ledger.Change(
        lead_id=lead.id,
        channel=channel,
        purpose=Purpose.CARE,
        action=ConsentAction.GRANTED,
        source=ConsentSource.BOOKING,
        evidence=evidence,
    )


def _evidence(event: BookingEvent, lead: Lead, *, now: datetime) -> dict[str, Any]:
    """The booking as the record of consent: which tool, which booking and change, when."""
    return {
        "name": f"{lead.first_name} {lead.last_name}".strip(),
        "via": "booking",
        "booking_provider": event.provider,
        "booking": event.booking_key[:300],
        "booking_event": event.provider_event[:100],
        "event_types": list(event.event_types or ())[:5],
        "consult_at": event.consult_at.isoformat() if event.consult_at else None,
        "booked_at": event.occurred_at.isoformat(),
        "received_at": now.isoformat(),
        "checkbox": None,
        "scope": "care messages about this appointment; never marketing",
    }
