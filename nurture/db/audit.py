"""The append-only audit log: every consent change, send attempt and staff action."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from nurture import clock
from nurture.db.models import AuditEvent

SYSTEM = "system"
WORKER = "worker"


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    lead_id: uuid.UUID | None = None,
    message_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the session's transaction (it lands with the change it describes)."""
    event = AuditEvent(
        occurred_at=clock.utcnow(),
        actor=actor,
        action=action,
        lead_id=lead_id,
        message_id=message_id,
        details=details or {},
    )
    session.add(event)
    return event


def record_fast(
    session: Session,
    *,
    actor: str,
    action: str,
    now: datetime,
    lead_id: uuid.UUID | None = None,
    message_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """The same record as :func:`record`, as one INSERT: the worker writes one per send, and
    the ORM's unit of work costs more than the statement itself."""
    session.execute(
        insert(AuditEvent).values(
            occurred_at=now,
            actor=actor,
            action=action,
            lead_id=lead_id,
            message_id=message_id,
            details=details or {},
        )
    )
