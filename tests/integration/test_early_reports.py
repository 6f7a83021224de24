"""A delivery report that beats the send's answer, on real processes: the Twilio stand-in calls
the StatusCallback (signed as Twilio signs) before its Messages create call answers the worker,
which sends through the official SDK. The report must land on its row when the send settles,
not be dropped because the row did not know its sid yet."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nurture import clock
from nurture.db import make_engine, make_sessionmaker
from nurture.db.models import Channel, Lead, Message, MessageStatus, Purpose
from tests.support.api import DISCLOSURE_VERSION, INTEGRATION_API_KEY
from tests.support.daytime import zone_where_it_is_daytime
from tests.support.processes import wait_until
from tests.support.stack import Stack
from tests.support.twilio_standin import TwilioStandIn

PHONE = "+12085550142"


def the_row(sessions: sessionmaker[Session], message_id: int) -> Message:
    with sessions() as session:
        return session.get_one(Message, message_id)


@pytest.mark.parametrize("code", [30005, 30006])  # 30003 is retried first (rule 14)
def test_an_undelivered_report_before_the_create_answer_marks_the_number_unreachable(
    pg_url: str,
    redis_url: str,
    twilio: TwilioStandIn,
    log_dir: Path,
    tmp_path: Path,
    code: int,
) -> None:
    stack = Stack(
        pg_url,
        redis_url,
        log_dir,
        tmp_path / "var",
        {
            "NURTURE_SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "NURTURE_TWILIO_FROM": "+12085550100",
            "NURTURE_TWILIO_API_URL": twilio.url,
        },
    )
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    twilio.report_before_answer("undelivered", code)
    try:
        stack.web()
        stack.worker()
        response = httpx.post(
            f"{stack.public_url}/api/v1/signups",
            json={
                "first_name": "Dana",
                "last_name": "Lee",
                "email": "dana.lee@example.com",
                "phone": "(208) 555-0142",
                "chosen_timezone": zone_where_it_is_daytime(),
                "consent": {"email_marketing": True, "sms_marketing": True, "sms_care": True},
                "consent_text": "I agree to texts and e-mail.",
                "consent_version": DISCLOSURE_VERSION,
                "source": {"page_url": "https://clinic.example/"},
            },
            headers=INTEGRATION_API_KEY,
            timeout=10,
        )
        assert response.status_code == 201, response.text
        lead_id = uuid.UUID(response.json()["lead_id"])

        [text] = twilio.wait_for(1, timeout=30)
        wait_until(lambda: twilio.early_reports, timeout=15, what="the early report to be sent")
        [early] = twilio.early_reports
        # The web process took the report while the worker still waited for the create answer.
        assert (early.sid, early.http_status, early.problem) == (text.sid, 204, None)
        with sessions() as session:
            optin = session.scalars(
                select(Message).where(
                    Message.lead_id == lead_id,
                    Message.channel == Channel.SMS,
                    Message.step_key == "optin-confirmation",
                )
            ).one()
        assert text.status_callback == (
            f"{stack.public_url}/webhooks/twilio/status?message={optin.id}&attempt=1"
        )

        wait_until(
            lambda: (
                the_row(sessions, optin.id).status
                not in (MessageStatus.QUEUED, MessageStatus.SENDING)
            ),
            timeout=15,
            what="the text's send to settle",
        )
        row = the_row(sessions, optin.id)
        assert row.status is MessageStatus.UNDELIVERED  # not `sent`: the report landed
        assert (row.error_code, row.provider_id) == (str(code), text.sid)
        with sessions() as session:
            lead = session.get_one(Lead, lead_id)
            assert lead.sms_unreachable_at is not None
            planned = session.scalars(
                select(Message.status).where(
                    Message.lead_id == lead_id,
                    Message.channel == Channel.SMS,
                    Message.id != optin.id,
                )
            ).all()
        assert MessageStatus.SCHEDULED not in planned  # the program's later texts are off

        # A text that becomes due now is never sent to that number.
        now = clock.utcnow()
        with sessions.begin() as session:
            later = Message(
                lead_id=lead_id,
                step_key="nudge-after-report",
                channel=Channel.SMS,
                purpose=Purpose.MARKETING,
                template_key="optin-confirmation",
                due_at=now,
                status=MessageStatus.SCHEDULED,
                status_at=now,
                idempotency_key=f"test:{lead_id}:after-report",
                created_at=now,
            )
            session.add(later)
            session.flush()
            later_id = later.id
        wait_until(
            lambda: the_row(sessions, later_id).status is MessageStatus.SKIPPED,
            timeout=15,
            what="the later text to be skipped",
        )
        assert "cannot receive texts" in (the_row(sessions, later_id).last_error or "")
        assert twilio.messages_to(PHONE) == [text]
    finally:
        stack.stop()
        engine.dispose()
