"""Alerts to the clinic's staff: e-mails through the normal outbox, at once, day or night."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from nurture.config.clinic import Clinic
from nurture.db import audit
from nurture.db.models import Channel, Lead, Message, Purpose
from nurture.outbox import states


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
    message = Message(
        lead_id=lead.id,
        step_key=template,
        channel=Channel.EMAIL,
        purpose=Purpose.ALERT,
        template_key=template,
        recipient=str(clinic.staff_email),
        context={**details, "lead_url": f"{public_url}/admin/leads/{lead.id}"},
        due_at=now,
        status=states.PLANNED,
        status_at=now,
        idempotency_key=f"alert:{uuid.uuid4()}",
        created_at=now,
    )
    session.add(message)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="alert.planned",
        lead_id=lead.id,
        message_id=message.id,
        details={"template": template},
    )
    return message
