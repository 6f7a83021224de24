"""Staff notes on a lead: short free text with its author and time, newest first.

Append-only: there is no edit and no delete (the table refuses both, migration 0017), so what
staff knew and when stays on record; a correction is a new note. A note is a person's health
and contact story in staff words: it is never logged, and its audit entry names only its id
and length.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import Lead, LeadNote

log = logging.getLogger(__name__)

MAX_NOTE = 2000


class NoteError(ValueError):
    pass


def clean_note(text: str) -> str:
    """The note as it is kept: line breaks kept, other control characters refused."""
    cleaned = text.replace("\r\n", "\n").strip()
    if not cleaned:
        raise NoteError("note: write something first")
    if len(cleaned) > MAX_NOTE:
        raise NoteError(f"note: keep it to {MAX_NOTE:,} characters (this one has {len(cleaned):,})")
    if any(not (char.isprintable() or char in "\n\t") for char in cleaned):
        raise NoteError("note: must not contain invisible or control characters")
    return cleaned


def add_note(session: Session, lead: Lead, text: str, *, actor: str, now: datetime) -> LeadNote:
    """Add a note to the lead, audited; raises :class:`NoteError` for text that cannot be kept."""
    note = LeadNote(lead_id=lead.id, text=clean_note(text), author=actor, created_at=now)
    session.add(note)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="lead.note_added",
        lead_id=lead.id,
        details={"note_id": note.id, "length": len(note.text)},
    )
    log.info("note %s added to lead %s (%d characters)", note.id, lead.id, len(note.text))
    return note


def notes_of(session: Session, lead_id: uuid.UUID) -> list[LeadNote]:
    return list(
        session.scalars(
            select(LeadNote)
            .where(LeadNote.lead_id == lead_id)
            .order_by(LeadNote.created_at.desc(), LeadNote.id.desc())
        )
    )
