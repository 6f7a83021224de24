"""Finding leads for staff: by name, e-mail address or phone number, however it is written."""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from nurture.db.models import Lead
from nurture.leads.intake import normalize_phone

MAX_RESULTS = 50
MAX_QUERY = 200
# Digits, spaces and the punctuation people put in phone numbers: "(208) 555-0123", "+1 208…".
_PHONEISH = re.compile(r"^[\d\s()+.\-]+$")
MIN_PARTIAL_DIGITS = 4


def display_name(lead: Lead) -> str:
    """The lead's name, or what we know them as when they never gave one."""
    return f"{lead.first_name} {lead.last_name}".strip() or "someone who only texted"


def _phone(query: str) -> str | None:
    if not any(c.isdigit() for c in query):
        return None
    try:
        return normalize_phone(query)
    except ValueError:
        return None


def matches(query: str) -> ColumnElement[bool]:
    """A lead matches when every word is in their first or last name, when the query is part of
    their e-mail address, or when it is their phone number (or, all digits, part of it)."""
    words = query.split()
    conditions: list[ColumnElement[bool]] = [
        and_(
            *(
                or_(
                    Lead.first_name.icontains(word, autoescape=True),
                    Lead.last_name.icontains(word, autoescape=True),
                )
                for word in words
            )
        ),
        Lead.email.icontains(query, autoescape=True),
    ]
    phone = _phone(query)
    if phone is not None:
        conditions.append(Lead.phone == phone)
    digits = re.sub(r"\D", "", query)
    if _PHONEISH.match(query) and len(digits) >= MIN_PARTIAL_DIGITS:
        conditions.append(Lead.phone.contains(digits, autoescape=True))
    return or_(*conditions)


def search(session: Session, query: str, *, limit: int = MAX_RESULTS) -> list[Lead]:
    """Newest first; an empty query gives the most recent leads."""
    cleaned = " ".join(query.split())[:MAX_QUERY]
    statement = select(Lead).order_by(Lead.created_at.desc(), Lead.id.desc()).limit(limit)
    if cleaned:
        statement = statement.where(matches(cleaned))
    return list(session.scalars(statement))


def by_contact(session: Session, email: str | None, phone: str | None) -> Lead | None:
    """The lead with this (normalised) e-mail address, else the one with this E.164 phone:
    how a booking tool or another system that does not know nurture's ids names a person."""
    for column, value in ((Lead.email, email), (Lead.phone, phone)):
        if value is not None:
            found = session.scalars(select(Lead).where(column == value)).one_or_none()
            if found is not None:
                return found
    return None
