"""The append-only audit log: every consent change, send attempt and staff action."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from nurture import clock
from nurture.db.models import AuditEvent

# The table itself: a Core INSERT of plain rows skips the ORM's per-object bookkeeping.
AUDIT_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]

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


class Trail:
    """The audit entries of one unit of work, written together by :meth:`write`.

    A sign-up makes five or more entries; one statement for all of them is one round trip
    instead of one per flush. Entries keep the order they were added in (their ids follow it),
    and each keeps the moment it was added. Nothing is written until :meth:`write`: call it
    before the transaction commits, so the entries still land with the change they describe.
    """

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def add(
        self,
        *,
        actor: str,
        action: str,
        lead_id: uuid.UUID | None = None,
        message_id: int | None = None,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """The same entry as :func:`record`, noted for the next :meth:`write`; it happened
        ``at`` (now, unless the caller knows better: a provider's answer, say)."""
        self._rows.append(
            {
                "occurred_at": at or clock.utcnow(),
                "actor": actor,
                "action": action,
                "lead_id": lead_id,
                "message_id": message_id,
                "details": details or {},
            }
        )

    def write(self, session: Session) -> None:
        """Insert every noted entry in one statement (an executemany: one round trip)."""
        if self._rows:
            session.execute(insert(AUDIT_EVENTS), self._rows)
            self._rows = []
