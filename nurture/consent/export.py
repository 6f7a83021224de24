"""The full consent history of one lead, as JSON or CSV, for an audit or a dispute."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.db.models import ConsentEvent, Lead

FIELDS = ["occurred_at", "channel", "purpose", "action", "source", "evidence"]


def export(session: Session, lead: Lead, fmt: str) -> str:
    events = session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.lead_id == lead.id)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
    ).all()
    rows = [
        {
            "occurred_at": event.occurred_at.isoformat(),
            "channel": event.channel.value,
            "purpose": event.purpose.value,
            "action": event.action.value,
            "source": event.source.value,
            "evidence": event.evidence,
        }
        for event in events
    ]
    if fmt == "json":
        return (
            json.dumps({"lead_id": str(lead.id), "events": rows}, indent=2, sort_keys=True) + "\n"
        )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "evidence": json.dumps(row["evidence"], sort_keys=True)})
    return buffer.getvalue()
