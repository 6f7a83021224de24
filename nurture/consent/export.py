"""The full consent history of one lead, as JSON or CSV, for an audit or a dispute.

It names the person (name, e-mail, phone) and shows, for each event, the disclosure version and
the exact wording the person agreed to beside it: the wording stored with the event, or for an
event that stored only its version and box, that version's wording on record.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.db.models import ConsentEvent, DisclosureVersion, Lead

PERSON = ["lead_id", "name", "email", "phone"]
FIELDS = [
    *PERSON,
    "occurred_at",
    "channel",
    "purpose",
    "action",
    "source",
    "disclosure_version",
    "disclosure_text",
    "unencrypted_ack_at",
    "evidence",
]


# A cell a spreadsheet would run as a formula: a lead's name is text to show, never a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+\d{8,15}")


def spreadsheet_safe(value: object) -> object:
    """``value`` as a CSV cell no spreadsheet runs as a formula (a phone number stays as it is)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _E164.fullmatch(value):
        return "'" + value
    return value


_cell = spreadsheet_safe


class _Wording:
    """The wording on record of a version's box, each version read once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.versions: dict[str, DisclosureVersion | None] = {}

    def of(self, version: object, box: object) -> str | None:
        if not isinstance(version, str) or not isinstance(box, str):
            return None
        if version not in self.versions:
            self.versions[version] = self.session.get(DisclosureVersion, version)
        row = self.versions[version]
        wording = getattr(row, box, None) if row is not None else None
        return wording if isinstance(wording, str) else None


def _person(lead: Lead) -> dict[str, Any]:
    return {
        "lead_id": str(lead.id),
        "name": f"{lead.first_name} {lead.last_name}".strip(),
        "email": lead.email,
        "phone": lead.phone,
    }


def _event(event: ConsentEvent, wording: _Wording) -> dict[str, Any]:
    evidence = event.evidence or {}
    version = evidence.get("disclosure_version")
    text = evidence.get("disclosure_text") or wording.of(version, evidence.get("checkbox"))
    return {
        "occurred_at": event.occurred_at.isoformat(),
        "channel": event.channel.value,
        "purpose": event.purpose.value,
        "action": event.action.value,
        "source": event.source.value,
        "disclosure_version": version,
        "disclosure_text": text,
        "unencrypted_ack": evidence.get("unencrypted_ack"),
        "evidence": evidence,
    }


def export(session: Session, lead: Lead, fmt: str) -> str:
    events = session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.lead_id == lead.id)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
    ).all()
    wording = _Wording(session)
    rows = [_event(event, wording) for event in events]
    person = _person(lead)
    if fmt == "json":
        return json.dumps({**person, "events": rows}, indent=2, sort_keys=True) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    for row in rows:
        ack = row.pop("unencrypted_ack")
        cells = {
            **person,
            **row,
            "unencrypted_ack_at": ack.get("acknowledged_at") if isinstance(ack, dict) else "",
            "evidence": json.dumps(row["evidence"], sort_keys=True),
        }
        writer.writerow({name: _cell(value) for name, value in cells.items()})
    return buffer.getvalue()
