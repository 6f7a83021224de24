"""The day at a glance, for the admin home page: new leads, consults booked, messages sent and
failed, replies waiting for a person, and what goes next.

Days and weeks are the clinic's (its time zone; a week starts on Monday), as the front desk
counts them. Nothing here names a lead: the page is open to every role, marketing included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from nurture.db.models import (
    InboundMessage,
    Lead,
    LeadEvent,
    Message,
    MessageStatus,
)
from nurture.program.sequences import LifecycleEvent

NEXT_SENDS = 5
FAILED = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)


@dataclass(frozen=True)
class NextSend:
    due_at: datetime
    channel: str
    purpose: str
    step: str


@dataclass(frozen=True)
class Glance:
    today_from: datetime  # UTC: the clinic's midnight
    week_from: datetime  # UTC: the clinic's Monday midnight
    new_today: int
    new_week: int
    booked_today: int
    booked_week: int
    consults_next_7_days: int
    sent_today: int
    failed_today: int
    replies_waiting: int
    next_sends: list[NextSend]


def day_starts(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The clinic's midnight today and on this week's Monday, in UTC (DST-safe: each is the
    local midnight of its own date)."""
    local = now.astimezone(zone).date()
    today = datetime.combine(local, time(0), zone)
    monday = datetime.combine(local - timedelta(days=local.weekday()), time(0), zone)
    return today.astimezone(ZoneInfo("UTC")), monday.astimezone(ZoneInfo("UTC"))


def at_a_glance(session: Session, *, clinic_zone: ZoneInfo, now: datetime) -> Glance:
    today, week = day_starts(now, clinic_zone)

    def count(*where: ColumnElement[bool], of: type = Lead) -> int:
        return int(session.scalar(select(func.count()).select_from(of).where(*where)) or 0)

    booked = LeadEvent.type == LifecycleEvent.CONSULT_BOOKED.value
    upcoming = session.scalars(
        select(Message)
        .where(Message.status == MessageStatus.SCHEDULED, Message.due_at >= now)
        .order_by(Message.due_at, Message.id)
        .limit(NEXT_SENDS)
    ).all()
    return Glance(
        today_from=today,
        week_from=week,
        new_today=count(Lead.created_at >= today),
        new_week=count(Lead.created_at >= week),
        booked_today=count(booked, LeadEvent.occurred_at >= today, of=LeadEvent),
        booked_week=count(booked, LeadEvent.occurred_at >= week, of=LeadEvent),
        consults_next_7_days=count(
            Lead.consult_at >= now, Lead.consult_at < now + timedelta(days=7)
        ),
        sent_today=count(Message.sent_at >= today, of=Message),
        failed_today=count(Message.status.in_(FAILED), Message.status_at >= today, of=Message),
        replies_waiting=count(
            InboundMessage.needs_attention.is_(True),
            InboundMessage.handled_at.is_(None),
            of=InboundMessage,
        ),
        next_sends=[
            NextSend(m.due_at, m.channel.value, m.purpose.value, m.step_key) for m in upcoming
        ],
    )
