"""The leads as marketing may see them: how many, where they stand, and nobody's contact details.

Marketing plans sequences and needs to know whom they reach (counts by stage, consent and
sequence, and the leads one by one), not who the people are. Each lead is shown under a
pseudonym (a keyed hash of their id: stable, so a row can be followed from week to week, but
neither their id nor anything that leads to their record), with their stage, consent, active
sequences and sign-up week. The queries read only those columns: no name, e-mail, phone, ZIP
code, note or message body is ever loaded for this view.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture import consent
from nurture.db.models import Enrollment, EnrollmentStatus, Lead, LeadStage
from nurture.leads.listing import CONSENTS, granted_now

PER_PAGE = 50


def pseudonym(lead_id: uuid.UUID, secret: bytes) -> str:
    """A stable reference for the lead that cannot be turned back into their id."""
    digest = hmac.new(secret, b"reach:" + lead_id.bytes, hashlib.sha256).digest()
    code = base64.b32encode(digest[:5]).decode()
    return f"R-{code[:4]}-{code[4:]}"


def week_of(instant: datetime, zone: ZoneInfo) -> date:
    """The Monday of the clinic's week the instant falls in."""
    day = instant.astimezone(zone).date()
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Counts:
    total: int
    by_stage: dict[str, int]
    by_consent: dict[str, int]  # a key of listing.CONSENTS: granted now
    by_sequence: dict[str, int]  # leads actively enrolled


def counts(session: Session, *, sequences: list[str]) -> Counts:
    total = int(session.scalar(select(func.count()).select_from(Lead)) or 0)
    staged = dict(session.execute(select(Lead.stage, func.count()).group_by(Lead.stage)).all())
    by_stage = {stage.value: int(staged.get(stage, 0)) for stage in LeadStage}
    by_consent = {
        key: int(
            session.scalar(
                select(func.count()).select_from(Lead).where(granted_now(channel, purpose))
            )
            or 0
        )
        for key, (channel, purpose) in CONSENTS.items()
    }
    enrolled = dict(
        session.execute(
            select(Enrollment.sequence_key, func.count(func.distinct(Enrollment.lead_id)))
            .where(Enrollment.status == EnrollmentStatus.ACTIVE)
            .group_by(Enrollment.sequence_key)
        ).all()
    )
    by_sequence = {key: int(enrolled.get(key, 0)) for key in sorted({*sequences, *enrolled})}
    return Counts(total, by_stage, by_consent, by_sequence)


@dataclass(frozen=True)
class ReachRow:
    reference: str
    stage: str
    consents: list[str]  # keys of listing.CONSENTS granted now
    sequences: list[str]  # active enrolments
    signed_up_week: date


@dataclass(frozen=True)
class ReachPage:
    rows: list[ReachRow]
    total: int
    page: int
    pages: int


def page_of_leads(
    session: Session, *, secret: bytes, zone: ZoneInfo, page: int = 1, per_page: int = PER_PAGE
) -> ReachPage:
    """The leads newest first, one page, contact-free."""
    total = int(session.scalar(select(func.count()).select_from(Lead)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    found = session.execute(
        select(Lead.id, Lead.stage, Lead.created_at)
        .order_by(Lead.created_at.desc(), Lead.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    ids = [row.id for row in found]
    granted = consent.current_many(session, ids)
    active: dict[uuid.UUID, list[str]] = {lead_id: [] for lead_id in ids}
    for lead_id, key in session.execute(
        select(Enrollment.lead_id, Enrollment.sequence_key)
        .where(Enrollment.lead_id.in_(ids), Enrollment.status == EnrollmentStatus.ACTIVE)
        .order_by(Enrollment.sequence_key)
    ):
        active[lead_id].append(key)
    rows = [
        ReachRow(
            reference=pseudonym(row.id, secret),
            stage=row.stage.value,
            consents=[
                key
                for key, (channel, purpose) in CONSENTS.items()
                if (channel, purpose) in granted[row.id].granted
            ],
            sequences=active[row.id],
            signed_up_week=week_of(row.created_at, zone),
        )
        for row in found
    ]
    return ReachPage(rows, total, page, pages)
