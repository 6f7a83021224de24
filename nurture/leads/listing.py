"""The front desk's list of leads: filtered, sorted, paged, and exported as CSV.

Filters: a search (name, e-mail, phone: :mod:`nurture.leads.search`), the stage, a consent
currently granted, an active sequence, the sign-up date (the clinic's days), and "needs a
reply". Every filter is a WHERE clause on `leads`, so the count, the page and the export agree.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import Session

from nurture.consent.export import spreadsheet_safe
from nurture.db import audit
from nurture.db.models import (
    Channel,
    ConsentAction,
    ConsentEvent,
    Enrollment,
    EnrollmentStatus,
    InboundMessage,
    Lead,
    LeadStage,
    Purpose,
)
from nurture.leads.search import MAX_QUERY, matches

PER_PAGE = 50
MAX_EXPORT = 10_000
Sort = Literal["newest", "oldest", "name", "consult"]
SORTS: tuple[Sort, ...] = ("newest", "oldest", "name", "consult")
# A consent to filter on, as the form names it: (channel, purpose).
CONSENTS = {
    "sms_marketing": (Channel.SMS, Purpose.MARKETING),
    "sms_care": (Channel.SMS, Purpose.CARE),
    "email_marketing": (Channel.EMAIL, Purpose.MARKETING),
    "email_care": (Channel.EMAIL, Purpose.CARE),
}
CSV_COLUMNS = [
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "stage",
    "signed_up_utc",
    "consult_utc",
]


class FilterError(ValueError):
    """A filter the list cannot apply; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class LeadFilter:
    query: str = ""
    stage: LeadStage | None = None
    consent: str | None = None  # a key of CONSENTS: currently granted
    sequence: str | None = None  # enrolled and still active
    signed_up_from: date | None = None  # the clinic's days, inclusive
    signed_up_to: date | None = None
    needs_reply: bool = False
    sort: Sort = "newest"

    def as_params(self) -> dict[str, str]:
        """The filter as the query string of the page (for paging links and the export)."""
        values = {
            "q": self.query,
            "stage": self.stage.value if self.stage else "",
            "consent": self.consent or "",
            "sequence": self.sequence or "",
            "from": self.signed_up_from.isoformat() if self.signed_up_from else "",
            "to": self.signed_up_to.isoformat() if self.signed_up_to else "",
            "needs_reply": "1" if self.needs_reply else "",
            "sort": self.sort if self.sort != "newest" else "",
        }
        return {name: value for name, value in values.items() if value}


def parse_filter(params: dict[str, str], *, sequences: list[str]) -> LeadFilter:
    """The filter a query string asks for; :class:`FilterError` naming the bad field."""

    def day(name: str) -> date | None:
        raw = params.get(name, "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise FilterError(name, f"{raw[:20]!r} is not a date like 2026-03-03") from None

    stage_raw = params.get("stage", "").strip()
    try:
        stage = LeadStage(stage_raw) if stage_raw else None
    except ValueError:
        known = ", ".join(s.value for s in LeadStage)
        raise FilterError("stage", f"unknown stage; use one of {known}") from None
    consent = params.get("consent", "").strip() or None
    if consent is not None and consent not in CONSENTS:
        raise FilterError("consent", f"unknown consent; use one of {', '.join(CONSENTS)}")
    sequence = params.get("sequence", "").strip() or None
    if sequence is not None and sequence not in sequences:
        raise FilterError("sequence", "no such sequence")
    sort = params.get("sort", "").strip() or "newest"
    if sort not in SORTS:
        raise FilterError("sort", f"sort by one of {', '.join(SORTS)}")
    start, end = day("from"), day("to")
    if start and end and end < start:
        raise FilterError("to", "the end date is before the start date")
    return LeadFilter(
        query=" ".join(params.get("q", "").split())[:MAX_QUERY],
        stage=stage,
        consent=consent,
        sequence=sequence,
        signed_up_from=start,
        signed_up_to=end,
        needs_reply=params.get("needs_reply", "") in {"1", "on", "yes"},
        sort=sort,  # checked against SORTS above
    )


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(ZoneInfo("UTC"))


def granted_now(channel: Channel, purpose: Purpose) -> ColumnElement[bool]:
    """True for a lead whose latest word on this channel and purpose is a grant."""
    latest = (
        select(ConsentEvent.action)
        .where(
            ConsentEvent.lead_id == Lead.id,
            ConsentEvent.channel == channel,
            ConsentEvent.purpose == purpose,
        )
        .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return latest == ConsentAction.GRANTED


def _conditions(wanted: LeadFilter, zone: ZoneInfo) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if wanted.query:
        where.append(matches(wanted.query))
    if wanted.stage is not None:
        where.append(Lead.stage == wanted.stage)
    if wanted.consent is not None:
        where.append(granted_now(*CONSENTS[wanted.consent]))
    if wanted.sequence is not None:
        where.append(
            exists().where(
                Enrollment.lead_id == Lead.id,
                Enrollment.sequence_key == wanted.sequence,
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
        )
    if wanted.signed_up_from is not None:
        where.append(Lead.created_at >= _midnight(wanted.signed_up_from, zone))
    if wanted.signed_up_to is not None:
        end = wanted.signed_up_to + timedelta(days=1)
        where.append(Lead.created_at < _midnight(end, zone))
    if wanted.needs_reply:
        where.append(
            exists().where(
                InboundMessage.lead_id == Lead.id,
                InboundMessage.needs_attention.is_(True),
                InboundMessage.handled_at.is_(None),
            )
        )
    return where


def _sorted(statement: Select[Any], sort: Sort) -> Select[Any]:
    order = {
        "newest": (Lead.created_at.desc(), Lead.id.desc()),
        "oldest": (Lead.created_at.asc(), Lead.id.asc()),
        "name": (func.lower(Lead.first_name), func.lower(Lead.last_name), Lead.id),
        # Leads with a consult first, soonest first; then the rest, newest first.
        "consult": (Lead.consult_at.is_(None), Lead.consult_at, Lead.created_at.desc()),
    }[sort]
    return statement.order_by(*order)


@dataclass(frozen=True)
class LeadPage:
    leads: list[Lead]
    total: int
    page: int
    pages: int


def find(
    session: Session, wanted: LeadFilter, *, zone: ZoneInfo, page: int = 1, per_page: int = PER_PAGE
) -> LeadPage:
    where = _conditions(wanted, zone)
    total = int(session.scalar(select(func.count()).select_from(Lead).where(*where)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    statement = _sorted(select(Lead).where(*where), wanted.sort)
    leads = list(session.scalars(statement.offset((page - 1) * per_page).limit(per_page)))
    return LeadPage(leads, total, page, pages)


def export_csv(
    session: Session, wanted: LeadFilter, *, zone: ZoneInfo, actor: str
) -> tuple[str, int]:
    """Every matching lead (at most :data:`MAX_EXPORT`) as CSV, and how many; audited with who
    exported and what they asked for, since the file leaves the system with contact details."""
    statement = _sorted(select(Lead).where(*_conditions(wanted, zone)), wanted.sort)
    leads = list(session.scalars(statement.limit(MAX_EXPORT)))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for lead in leads:
        writer.writerow(
            [
                spreadsheet_safe(value)
                for value in (
                    str(lead.id),
                    lead.first_name,
                    lead.last_name,
                    lead.email or "",
                    lead.phone or "",
                    lead.stage.value,
                    lead.created_at.isoformat(),
                    lead.consult_at.isoformat() if lead.consult_at else "",
                )
            ]
        )
    audit.record(
        session,
        actor=actor,
        action="leads.exported",
        details={"filter": wanted.as_params(), "rows": len(leads)},
    )
    return buffer.getvalue(), len(leads)
