"""The funnel report: one short read of the rows (bounded by ``since``), then the numbers of
:mod:`nurture.funnel.numbers` and :mod:`nurture.funnel.cohorts`. The admin page, its CSV files
and ``nurture report funnel`` all show :func:`build`'s result, through :meth:`Report.as_dict`
or :func:`csv_rows`, so they cannot disagree.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session, sessionmaker

from nurture.config.policy import Attribution
from nurture.consent.export import spreadsheet_safe
from nurture.db import audit
from nurture.db.models import (
    Channel,
    ConsentAction,
    ConsentEvent,
    Enrollment,
    Lead,
    LeadEvent,
    LinkClick,
    Message,
)
from nurture.funnel import cohorts, numbers, stages
from nurture.funnel.filters import Filters

COHORTS = "cohorts"  # the name of the cohort table beside the views'
COLUMN_TITLES = {
    "sequence": "Sequence",
    "version": "Version",
    "step": "Step",
    "channel": "Channel",
    "template": "Template",
    "template_version": "Template version",
    "variant": "Variant",
    "utm_source": "Source",
    "utm_campaign": "Campaign",
    "reached": "Reached",
    "booked": "Booked",
    "booking_rate": "Booked %",
    "median_hours": "Median hours to book",
    "clicked": "Clicked",
    "opted_out": "Opted out",
    "opt_out_rate": "Opt-out %",
    "attempted": "Attempted",
    "failed": "Failed",
    "failure_rate": "Failure %",
    "week": "Sign-up week",
    "starts": "Week starts",
    "signed_up": "Signed up",
    "consulted": "Consulted",
    "patient": "Patient",
    "lost": "Lost",
}


@dataclass(frozen=True)
class Report:
    filters: Filters
    windows: dict[Channel, timedelta]
    views: dict[str, list[numbers.Row]]
    cohorts: list[cohorts.Cohort]

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.filters.since.date().isoformat() if self.filters.since else None,
            "sequence": self.filters.sequence,
            "windows_hours": {
                channel.value: numbers.hours(window) for channel, window in self.windows.items()
            },
            "views": {
                view.name: [_row_dict(view, row) for row in self.views[view.name]]
                for view in numbers.VIEWS
            },
            COHORTS: [cohort.as_dict() for cohort in self.cohorts],
        }


def _row_dict(view: numbers.View, row: numbers.Row) -> dict[str, Any]:
    key = {column: _plain(part) for column, part in zip(view.columns, row.key, strict=True)}
    return {**key, **row.numbers.as_dict()}


def _plain(part: object) -> object:
    return part.value if isinstance(part, Channel) else part


def windows_of(attribution: Attribution) -> dict[Channel, timedelta]:
    return {Channel.EMAIL: attribution.email, Channel.SMS: attribution.sms}


def build(
    sessions: sessionmaker[Session], filters: Filters, *, attribution: Attribution, zone: ZoneInfo
) -> Report:
    """Read (one short read transaction), then compute with no transaction open."""
    with sessions() as session, session.begin():
        facts = read_facts(session, filters)
        leads = read_leads(session, filters)
    return compute(facts, leads, filters, windows=windows_of(attribution), zone=zone)


def compute(
    facts: numbers.Facts,
    leads: list[cohorts.LeadFact],
    filters: Filters,
    *,
    windows: dict[Channel, timedelta],
    zone: ZoneInfo,
) -> Report:
    views = {
        view.name: numbers.rows_of(view, facts, windows, sequence=filters.sequence)
        for view in numbers.VIEWS
    }
    return Report(filters, windows, views, cohorts.cohorts(leads, zone))


def _since(column: Any, since: datetime | None) -> ColumnElement[bool]:
    return column >= since if since is not None else true()


def read_facts(session: Session, filters: Filters) -> numbers.Facts:
    since = filters.since
    attempted = [status.value for status in numbers.ATTEMPTED]
    messages = (
        select(
            Message.id,
            Message.lead_id,
            Message.sequence_key,
            Enrollment.sequence_version,
            Message.step_key,
            Message.template_key,
            Message.template_version,
            Message.channel,
            Message.variant,
            Message.status,
            Message.sent_at,
            Lead.utm_source,
            Lead.utm_campaign,
        )
        .join(Lead, Lead.id == Message.lead_id)
        .outerjoin(Enrollment, Enrollment.id == Message.enrollment_id)
        .where(
            Message.sequence_key.is_not(None),
            Message.status.in_(attempted),
            # A failed message has no sent_at: it counts from when it failed.
            _since(func.coalesce(Message.sent_at, Message.status_at), since),
        )
    )
    # Every sequence's messages, even when one is asked for: the last touch before a booking
    # may be another sequence's (numbers.rows_of keeps only the asked-for one's rows).
    message_facts = [numbers.MessageFact(*tuple(row)) for row in session.execute(messages)]
    bookings = select(LeadEvent.lead_id, LeadEvent.occurred_at).where(
        LeadEvent.type == stages.BOOKING_EVENT, _since(LeadEvent.occurred_at, since)
    )
    clicks = select(LinkClick.message_id, LinkClick.lead_id).where(
        _since(LinkClick.clicked_at, since)
    )
    revocations = select(
        ConsentEvent.lead_id, ConsentEvent.channel, ConsentEvent.occurred_at
    ).where(ConsentEvent.action == ConsentAction.REVOKED, _since(ConsentEvent.occurred_at, since))
    known = {fact.message_id for fact in message_facts}
    return numbers.Facts(
        messages=message_facts,
        bookings=[(lead_id, at) for lead_id, at in session.execute(bookings)],
        clicks=[numbers.Click(m, lead) for m, lead in session.execute(clicks) if m in known],
        revocations=[numbers.Revocation(*row) for row in session.execute(revocations)],
    )


def read_leads(session: Session, filters: Filters) -> list[cohorts.LeadFact]:
    """The leads who signed up since ``since`` (in the sequence, when one is named)."""
    leads = select(Lead.id, Lead.created_at, Lead.stage).where(
        _since(Lead.created_at, filters.since)
    )
    if filters.sequence is not None:
        leads = leads.where(
            Lead.id.in_(
                select(Enrollment.lead_id).where(Enrollment.sequence_key == filters.sequence)
            )
        )
    found = session.execute(leads).all()
    events: dict[uuid.UUID, set[str]] = defaultdict(set)
    wanted = select(LeadEvent.lead_id, LeadEvent.type).where(
        LeadEvent.type.in_(list(stages.EVENT_STAGE)), _since(LeadEvent.occurred_at, filters.since)
    )
    for lead_id, kind in session.execute(wanted):
        events[lead_id].add(kind)
    return [
        cohorts.LeadFact(lead_id, created_at, stage, frozenset(events.get(lead_id, set())))
        for lead_id, created_at, stage in found
    ]


def record_export(session: Session, *, actor: str, name: str, filters: Filters, rows: int) -> None:
    """A table left the system as a file: who took which, asked for what."""
    audit.record(
        session,
        actor=actor,
        action="funnel.exported",
        details={"table": name, **filters.as_params(), "rows": rows},
    )


def table_names() -> tuple[str, ...]:
    return (*numbers.VIEW_NAMES, COHORTS)


TABLE_TITLES = {
    **{view.name: view.title for view in numbers.VIEWS},
    COHORTS: "Cohorts by sign-up week",
}


def table(report: Report, name: str) -> tuple[list[str], list[list[Any]]]:
    """A view's (or the cohorts') column names and rows of plain values, as in ``as_dict``."""
    shown = report.as_dict()
    if name == COHORTS:
        columns = ["week", "starts", *cohorts.COUNTS]
        rows = shown[COHORTS]
    else:
        view = next(view for view in numbers.VIEWS if view.name == name)
        columns = [*view.columns, *numbers.NUMBERS]
        rows = shown["views"][name]
    return columns, [[row[column] for column in columns] for row in rows]


def csv_rows(report: Report, name: str) -> Iterator[list[Any]]:
    """The CSV of one table: a header of titles, then cells no spreadsheet runs as formulas
    (a sequence key or a UTM tag someone typed could start with ``=``)."""
    columns, rows = table(report, name)
    yield [COLUMN_TITLES[column] for column in columns]
    for row in rows:
        yield [spreadsheet_safe("" if cell is None else cell) for cell in row]


def cell_text(value: object) -> str:
    """How a value reads in the page and the CLI's table: a missing key or rate is "none"."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def text_table(report: Report, name: str) -> str:
    columns, rows = table(report, name)
    cells = [[COLUMN_TITLES[column] for column in columns]]
    cells += [[cell_text(value) for value in row] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
