"""Booking tools over real HTTP to a real `nurture serve`: deliveries shaped and signed as
Calendly, Cal.com, Acuity and Square send them, through to the reminder rows they plan; a
forged one, a replay, an unknown lead and an out-of-order pair on the way. Acuity's and
Square's APIs are local stand-ins the web process reads over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import select

from nurture.db import make_engine, make_sessionmaker
from nurture.db.models import BookingDelivery, Lead, LeadEvent, Message, MessageStatus
from tests.support import booking_signing as bs
from tests.support.acuity_standin import BookingApiStandIn, square_customer
from tests.support.stack import Stack

INVITEE = "https://api.calendly.com/scheduled_events/LIVE/invitees/ONE"


@pytest.fixture
def apis() -> Iterator[BookingApiStandIn]:
    with BookingApiStandIn() as standin:
        yield standin


def test_signed_bookings_from_each_tool_plan_and_move_reminders(
    pg_url: str, redis_url: str, apis: BookingApiStandIn, log_dir: Path, tmp_path: Path
) -> None:
    stack = Stack(
        pg_url,
        redis_url,
        log_dir,
        tmp_path / "var",
        {
            "NURTURE_CALENDLY_SIGNING_KEY": bs.CALENDLY_KEY,
            "NURTURE_CALCOM_SECRET": bs.CALCOM_SECRET,
            "NURTURE_ACUITY_API_KEY": bs.ACUITY_API_KEY,
            "NURTURE_ACUITY_USER_ID": bs.ACUITY_USER_ID,
            "NURTURE_ACUITY_API_URL": apis.acuity_url,
            "NURTURE_SQUARE_SIGNATURE_KEY": bs.SQUARE_KEY,
            "NURTURE_SQUARE_ACCESS_TOKEN": bs.SQUARE_TOKEN,
            "NURTURE_SQUARE_API_URL": apis.url,
        },
    )
    url = stack.public_url
    now = datetime.now(UTC).replace(microsecond=0)
    consult = (now + timedelta(days=3)).replace(minute=0, second=0)
    moved = consult + timedelta(days=1)
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)

    def reminders(email: str) -> dict[str, datetime]:
        with sessions() as session:
            lead = session.scalars(select(Lead).where(Lead.email == email)).one()
            rows = session.scalars(
                select(Message).where(
                    Message.lead_id == lead.id,
                    Message.sequence_key == "consult-reminders",
                    Message.status == MessageStatus.SCHEDULED,
                )
            )
            return {row.step_key or "": row.due_at for row in rows}

    try:
        stack.web()
        with httpx.Client(base_url=url, timeout=10) as client:
            # Calendly: a forged delivery first (nothing recorded), then the real one, replayed.
            created = bs.calendly_invitee(
                "invitee.created",
                invitee=INVITEE,
                created_at=now,
                start=consult,
                text_reminder_number="+12085550142",
            )
            forged = client.post(
                "/webhooks/calendly",
                content=created,
                headers=bs.calendly_headers(created, key="forged"),
            )
            assert forged.status_code == 403
            for expected in ("applied", "duplicate"):
                answer = client.post(
                    "/webhooks/calendly", content=created, headers=bs.calendly_headers(created)
                )
                assert answer.status_code == 200 and answer.json()["outcome"] == expected
            due = reminders("jo@example.com")
            assert due["reminder-sms-24h"] == consult - timedelta(hours=24)
            assert due["reminder-email-24h"] == consult - timedelta(hours=24)

            # Cal.com: a cancel that overtook its booking; the booking then arrives stale.
            cancel = bs.calcom_booking(
                "BOOKING_CANCELLED",
                uid="live-1",
                created_at=now + timedelta(seconds=30),
                start=consult,
            )
            booking = bs.calcom_booking(
                "BOOKING_CREATED", uid="live-1", created_at=now, start=consult
            )
            outcomes = [
                client.post(
                    "/webhooks/calcom", content=body, headers=bs.calcom_headers(body)
                ).json()["outcome"]
                for body in (cancel, booking)
            ]
            assert outcomes == ["unknown_lead", "stale"]

            # Acuity: only ids on the wire; the appointment is read from the stand-in.
            apis.appointments["9001"] = bs.acuity_appointment(9001, start=consult)
            notice = bs.acuity_notice("scheduled", 9001)
            answer = client.post(
                "/webhooks/acuity", content=notice, headers=bs.acuity_headers(notice)
            )
            assert answer.status_code == 200 and answer.json()["outcome"] == "applied"
            apis.appointments["9001"] = bs.acuity_appointment(9001, start=moved)
            notice = bs.acuity_notice("rescheduled", 9001)
            answer = client.post(
                "/webhooks/acuity", content=notice, headers=bs.acuity_headers(notice)
            )
            assert answer.json()["outcome"] == "applied"
            assert reminders("acu@example.com")["reminder-sms-2h"] == moved - timedelta(hours=2)
            assert "/api/v1/appointments/9001" in apis.requests

            # Square: signed over the public URL it was subscribed with.
            apis.customers["CUST1"] = square_customer()
            body = bs.square_booking(
                "booking.created",
                event_id="live-ev-1",
                booking_id="live-bk",
                updated_at=now,
                start=consult,
            )
            answer = client.post(
                "/webhooks/square",
                content=body,
                headers=bs.square_headers(body, f"{url}/webhooks/square"),
            )
            assert answer.status_code == 200 and answer.json()["outcome"] == "applied"
            assert reminders("sq@example.com")["reminder-email-24h"] == consult - timedelta(
                hours=24
            )

            # Zapier / a clinic's own system: the lead named by e-mail.
            answer = client.post(
                "/api/v1/events",
                json={"type": "consult_cancelled", "email": "sq@example.com"},
                headers={"Authorization": "Bearer integration-api-key"},
            )
            assert answer.status_code == 200 and answer.json()["stage"] == "signed_up"
            assert reminders("sq@example.com") == {}
        with sessions() as session:
            assert len(session.scalars(select(BookingDelivery)).all()) == 6
            kinds = session.scalars(select(LeadEvent.type).order_by(LeadEvent.id)).all()
        assert kinds == [
            "consult_booked",
            "consult_booked",
            "consult_rescheduled",
            "consult_booked",
            "consult_cancelled",
        ]
    finally:
        stack.stop()
        engine.dispose()
