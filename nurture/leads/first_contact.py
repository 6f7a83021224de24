"""First contact (issue 13 §5): whether someone at the clinic has reached a new lead, and the
leads nobody has reached within one business day of arriving.

Staff press "Contacted" on the lead page; a booking tool's event (someone booked a consult)
calls :func:`record_first_contact` too. Only the first contact is kept; each is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import Lead, LeadArrival

BY_STAFF = "staff marked them contacted"
BY_BOOKING = "they booked a consult"
MAX_HOW = 60
# The uncontacted list shows at most this many, most overdue first.
MAX_LISTED = 200


def arrival_of(session: Session, lead_id: uuid.UUID) -> LeadArrival | None:
    return session.get(LeadArrival, lead_id)


def record_first_contact(
    session: Session, lead: Lead, *, how: str, actor: str, now: datetime
) -> bool:
    """Record that the clinic reached ``lead`` (``how``: :data:`BY_STAFF`, :data:`BY_BOOKING`,
    or another short phrase from code). True when this is the first contact; a later one
    changes nothing and returns False. Call it inside the transaction of what happened."""
    arrival = session.get(LeadArrival, lead.id, with_for_update=True)
    if arrival is None:  # a lead from before notices existed, or one never announced
        arrival = LeadArrival(
            lead_id=lead.id, arrived_at=lead.created_at, came_by="", awaiting_digest=False
        )
        session.add(arrival)
    elif arrival.first_contacted_at is not None:
        return False
    arrival.first_contacted_at = now
    arrival.first_contacted_by = actor[:200]
    arrival.first_contact_how = " ".join(how.split())[:MAX_HOW]
    audit.record(
        session,
        actor=actor,
        action="lead.first_contact",
        lead_id=lead.id,
        details={"how": arrival.first_contact_how},
    )
    return True


@dataclass(frozen=True)
class Overdue:
    lead: Lead
    arrival: LeadArrival


def uncontacted(session: Session, *, now: datetime, limit: int = MAX_LISTED) -> list[Overdue]:
    """Announced leads whose business day has passed with nobody contacting them."""
    rows = session.execute(
        select(Lead, LeadArrival)
        .join(LeadArrival, LeadArrival.lead_id == Lead.id)
        .where(LeadArrival.first_contacted_at.is_(None), LeadArrival.contact_due_at <= now)
        .order_by(LeadArrival.contact_due_at, Lead.id)
        .limit(limit)
    )
    return [Overdue(lead, arrival) for lead, arrival in rows]
