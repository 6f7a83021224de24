"""Speed-to-lead (issue 13 §5): the clinic hears of every new lead while it can still act.

In staffed hours each address and number in clinic.yaml ``new_lead_notices`` gets a notice at
once; a lead who arrives outside them waits for the digest that the beat sends when staffed
hours begin. Notices are staff alerts through the normal outbox (purpose ``alert``: the gates
send them to ``recipient`` without the lead's consent or pauses, which are about the lead).

A notice can be read on a lock screen or in a shared inbox, so it carries nothing about health:
no drug, diagnosis or form answer, only the first name and last initial, how they came, when,
and a link to their page behind the staff login.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.config.clinic import Clinic
from nurture.content.rendering import describe_local_time
from nurture.db import audit
from nurture.db.models import (
    BeatTick,
    Channel,
    ConsentSource,
    Lead,
    LeadArrival,
    Message,
    Purpose,
)
from nurture.leads import staffed_hours
from nurture.outbox import planner

NOTICE = "staff-new-lead"
DIGEST = "staff-new-lead-digest"
DIGEST_TASK = "new-lead-digest"  # its BeatTick name
# A digest lists at most this many by name; the rest are one link away.
DIGEST_NAMES = 50
CAME_BY = {
    ConsentSource.WEB_FORM: "the sign-up form",
    ConsentSource.API: "the API",  # the clinic's own form or system
}
MAX_CAME_BY = 60
MAX_NAME = 40


def came_by(source: ConsentSource) -> str:
    """How a sign-up came, in staff words."""
    return CAME_BY.get(source, source.value.replace("_", " "))


def short_name(lead: Lead) -> str:
    """First name and last initial ("Ana R."): enough to find them, little to a passer-by."""
    first = " ".join(lead.first_name.split())[:MAX_NAME]
    last = lead.last_name.strip()
    if not first:
        return "A new lead" if not last else f"{last[0].upper()}."
    return f"{first} {last[0].upper()}." if last else first


@dataclass(frozen=True)
class Recipient:
    channel: Channel
    address: str


def recipients(clinic: Clinic) -> list[Recipient]:
    notices = clinic.new_lead_notices
    return [Recipient(Channel.EMAIL, str(a)) for a in notices.email] + [
        Recipient(Channel.SMS, n) for n in notices.sms
    ]


def announce_new_lead(
    session: Session,
    lead: Lead,
    *,
    came_by: str,
    clinic: Clinic,
    public_url: str,
    now: datetime,
    actor: str,
    trail: audit.Trail | None = None,
    just_created: bool = False,
) -> LeadArrival:
    """Tell the clinic of a new lead, in the caller's transaction (a failed sign-up or booking
    then tells no one), and start its one-business-day clock. A lead is announced once: a
    second call returns the first arrival and plans nothing.

    ``came_by`` is how they came in staff words ("the sign-up form", "a Calendly booking");
    it is shown to staff as it is, so it must come from code, never from the lead.

    The sign-up passes its ``trail`` (the audit entry joins its one INSERT) and says the lead
    was ``just_created`` in this transaction (no arrival can exist: no look-up)."""
    if not just_created:
        found = session.get(LeadArrival, lead.id)
        if found is not None:
            return found
    staffed = staffed_hours.is_staffed(now, clinic)
    due = staffed_hours.one_business_day_after(now, clinic)
    arrival = LeadArrival(
        lead_id=lead.id,
        arrived_at=now,
        came_by=" ".join(came_by.split())[:MAX_CAME_BY],
        awaiting_digest=not staffed,
        announced_at=now if staffed else None,
        contact_due_at=due,
    )
    session.add(arrival)
    planned: list[Message] = []
    if staffed:
        context = _notice_context(lead, arrival, clinic, public_url)
        planned = [
            _plan(session, lead, to, NOTICE, context, now=now, actor=actor)
            for to in recipients(clinic)
        ]
    action = "lead.announced" if staffed else "lead.announce_waits_for_digest"
    details = {
        "came_by": arrival.came_by,
        "message_ids": [m.id for m in planned],
        "contact_due_at": due.isoformat(),
    }
    if trail is not None:
        trail.add(actor=actor, action=action, lead_id=lead.id, details=details)
    else:
        audit.record(session, actor=actor, action=action, lead_id=lead.id, details=details)
    return arrival


def send_digest(session: Session, *, clinic: Clinic, public_url: str, now: datetime) -> int:
    """In staffed hours, one message to each recipient listing the leads that arrived while
    nobody was there; returns how many leads it listed (0 outside staffed hours).

    The waiting rows are locked (and skipped by a concurrent run), so each lead is in one
    digest. A run with nobody to tell still clears them: the uncontacted list keeps them."""
    if not staffed_hours.is_staffed(now, clinic):
        return 0
    waiting = [
        (arrival, lead)
        for arrival, lead in session.execute(
            select(LeadArrival, Lead)
            .join(Lead, Lead.id == LeadArrival.lead_id)
            .where(LeadArrival.awaiting_digest.is_(True))
            .order_by(LeadArrival.arrived_at, LeadArrival.lead_id)
            .with_for_update(of=LeadArrival, skip_locked=True)
        )
    ]
    if not waiting:
        return 0
    listed = [_notice_context(lead, arrival, clinic, public_url) for arrival, lead in waiting]
    context: dict[str, Any] = {
        "count": len(listed),
        "leads": listed[:DIGEST_NAMES],
        "more": max(0, len(listed) - DIGEST_NAMES),
        "uncontacted_url": f"{public_url}/admin/leads/uncontacted",
        # The row belongs to the first lead; the link of every lead is in the list.
        "lead_url": listed[0]["lead_url"],
    }
    first_lead = waiting[0][1]
    planned = [
        _plan(session, first_lead, to, DIGEST, context, now=now, actor=audit.SYSTEM)
        for to in recipients(clinic)
    ]
    for arrival, lead in waiting:
        arrival.awaiting_digest = False
        arrival.announced_at = now
        audit.record(
            session,
            actor=audit.SYSTEM,
            action="lead.announced",
            lead_id=lead.id,
            details={"came_by": arrival.came_by, "digest_ids": [m.id for m in planned]},
        )
    return len(waiting)


def record_beat_tick(session: Session, name: str, *, now: datetime) -> None:
    """The beat ran this task now (read by `nurture doctor`)."""
    tick = session.get(BeatTick, name)
    if tick is None:
        session.add(BeatTick(name=name, last_run_at=now))
    else:
        tick.last_run_at = now


def _notice_context(
    lead: Lead, arrival: LeadArrival, clinic: Clinic, public_url: str
) -> dict[str, Any]:
    return {
        "lead_name": short_name(lead),
        "came_by": arrival.came_by,
        "received": describe_local_time(arrival.arrived_at, clinic.zone),
        "lead_url": f"{public_url}/admin/leads/{lead.id}",
    }


def _plan(
    session: Session,
    lead: Lead,
    to: Recipient,
    template: str,
    context: dict[str, Any],
    *,
    now: datetime,
    actor: str,
) -> Message:
    return planner.plan_now(
        session,
        lead,
        channel=to.channel,
        purpose=Purpose.ALERT,
        template=template,
        recipient=to.address,
        context=context,
        now=now,
        actor=actor,
        action="alert.planned",
        key_prefix="new-lead",
    )
