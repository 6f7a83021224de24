"""Issue 14: /admin/ shows the day at a glance, in the clinic's days, naming no one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from nurture import clock
from nurture.db.models import Lead, LeadEvent, Message, MessageStatus
from nurture.leads.today import day_starts
from nurture.runtime import Services
from tests.db.test_admin_pages import add_reply, app, sign_in
from tests.support.factories import claim_and_send_all, sign_up

BOISE = ZoneInfo("America/Boise")
__all__ = ["app"]  # the admin pages' app fixture


def glance(html: str) -> dict[str, str]:
    found = re.findall(r'data-glance="([a-z0-9-]+)">(?:<a [^>]*>)?(\d+)', html)
    return dict(found)


def test_the_home_page_counts_the_clinics_day_and_week(app: FastAPI, services: Services) -> None:
    # The clock is Tue 2026-03-03 18:00 UTC: 11:00 in Boise, the clinic's zone.
    now = clock.utcnow()
    today_lead = sign_up(services, first_name="Ana", email="ana@example.com")
    monday = sign_up(services, first_name="Bo", email="bo@example.com", phone="+12085550177")
    last_week = sign_up(services, first_name="Cy", email="cy@example.com", phone="+12085550178")
    with services.sessions.begin() as session:
        # Monday 00:30 in Boise is this week; Sunday 23:30 in Boise is last week.
        session.execute(
            update(Lead)
            .where(Lead.id == monday)
            .values(created_at=datetime(2026, 3, 2, 7, 30, tzinfo=UTC))
        )
        session.execute(
            update(Lead)
            .where(Lead.id == last_week)
            .values(created_at=datetime(2026, 3, 2, 6, 30, tzinfo=UTC))
        )
        session.add(
            LeadEvent(
                lead_id=today_lead,
                type="consult_booked",
                consult_at=now + timedelta(days=2),
                actor="test",
                occurred_at=now,
            )
        )
        session.execute(
            update(Lead).where(Lead.id == today_lead).values(consult_at=now + timedelta(days=2))
        )
    claim_and_send_all(services)
    with services.sessions.begin() as session:
        one = session.query(Message).filter(Message.status == MessageStatus.SENT).first()
        assert one is not None
        session.execute(
            update(Message).where(Message.id == one.id).values(status=MessageStatus.FAILED)
        )
    add_reply(services, monday, "Can I come on Friday?")

    marketing = sign_in(app, services, "marketing")
    page = marketing.get("/admin/")
    assert page.status_code == 200
    numbers = glance(page.text)
    assert numbers["new-today"] == "1"
    assert numbers["new-week"] == "2"
    assert numbers["booked-today"] == numbers["booked-week"] == "1"
    assert int(numbers["sent-today"]) >= 1
    assert numbers["failed-today"] == "1"
    assert numbers["replies"] == "1"
    assert numbers["consults-7d"] == "1"
    assert "<li data-next>" in page.text or "Nothing scheduled" in page.text
    # Marketing sees how many, never who.
    for name in ("Ana", "Bo ", "Cy", "ana@example.com", "555-0177", "+12085550177"):
        assert name not in page.text
    assert "open the inbox" not in page.text  # not an area marketing opens


@pytest.mark.parametrize(
    ("now", "today", "monday"),
    [
        # Tuesday 11:00 MST.
        ("2026-03-03T18:00:00+00:00", "2026-03-03T07:00:00+00:00", "2026-03-02T07:00:00+00:00"),
        # Sunday 03:00 MDT, an hour after the spring-forward: midnight was still MST.
        ("2026-03-08T09:00:00+00:00", "2026-03-08T07:00:00+00:00", "2026-03-02T07:00:00+00:00"),
        # Monday 00:30 MDT: the new week's midnight is in MDT.
        ("2026-03-09T06:30:00+00:00", "2026-03-09T06:00:00+00:00", "2026-03-09T06:00:00+00:00"),
        # Sunday after the fall-back (01:00 happens twice): midnight was MDT.
        ("2026-11-01T12:00:00+00:00", "2026-11-01T06:00:00+00:00", "2026-10-26T06:00:00+00:00"),
    ],
)
def test_the_clinics_day_and_week_start_at_its_own_midnight_across_dst(
    now: str, today: str, monday: str
) -> None:
    assert day_starts(datetime.fromisoformat(now), BOISE) == (
        datetime.fromisoformat(today),
        datetime.fromisoformat(monday),
    )
