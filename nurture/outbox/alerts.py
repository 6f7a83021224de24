"""Alerts to the clinic's staff through the normal outbox, at once, day or night: an e-mail to
``clinic.staff_email``, and for a crisis also a text page to ``clinic.on_call_phone``.

An alert is a row of the lead it is about, with ``recipient`` saying where it goes instead of
the lead's own address; the gates let purpose ``alert`` through without consent or pauses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.config.clinic import Clinic
from nurture.db.models import Channel, Lead, Message, Purpose
from nurture.outbox import planner

CRISIS_PAGE = "staff-crisis-page"


def alert_staff(
    session: Session,
    lead: Lead,
    *,
    template: str,
    details: dict[str, Any],
    clinic: Clinic,
    public_url: str,
    now: datetime,
    actor: str,
) -> Message:
    """Plan an alert e-mail to ``clinic.staff_email`` about a lead, due now."""
    return _plan(
        session,
        lead,
        channel=Channel.EMAIL,
        recipient=str(clinic.staff_email),
        template=template,
        context={**details, "lead_url": f"{public_url}/admin/leads/{lead.id}"},
        now=now,
        actor=actor,
    )


def page_on_call(
    session: Session,
    lead: Lead,
    *,
    received: str,
    clinic: Clinic,
    public_url: str,
    now: datetime,
    actor: str,
) -> Message:
    """Plan a text to the on-call clinician: a crisis reply came in, look in the staff inbox.

    A page shows on a lock screen, so its context holds no name, number or message body: only
    when it came and where to look. Everything else is behind the staff login."""
    return _plan(
        session,
        lead,
        channel=Channel.SMS,
        recipient=clinic.on_call_phone,
        template=CRISIS_PAGE,
        context={"received": received, "inbox_url": f"{public_url}/admin/inbox"},
        now=now,
        actor=actor,
    )


def _plan(
    session: Session,
    lead: Lead,
    *,
    channel: Channel,
    recipient: str,
    template: str,
    context: dict[str, Any],
    now: datetime,
    actor: str,
) -> Message:
    return planner.plan_now(
        session,
        lead,
        channel=channel,
        purpose=Purpose.ALERT,
        template=template,
        recipient=recipient,
        context=context,
        now=now,
        actor=actor,
        action="alert.planned",
        key_prefix="alert",
    )
