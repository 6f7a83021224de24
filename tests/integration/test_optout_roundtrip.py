"""Opt-outs over real HTTP with a real worker: a signed inbound STOP stops every later text, and
a one-click unsubscribe posted as a mail provider sends it stops later marketing e-mail while
care e-mail still arrives (compliance rules 7, 8, 17–19)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import select

from nurture.consent import tokens
from nurture.db import make_engine, make_sessionmaker
from nurture.db.models import Message, MessageStatus, Purpose
from tests.conftest import REPO
from tests.support.api import DISCLOSURE_VERSION, INTEGRATION_API_KEY
from tests.support.daytime import zone_where_it_is_daytime
from tests.support.processes import wait_until
from tests.support.smtp_server import SmtpServer
from tests.support.stack import Stack
from tests.support.twilio_standin import TwilioStandIn

LATER = """\
key: roundtrip
name: Later steps, for the opt-out round trip
version: 1
trigger: signed_up
steps:
  - {key: later-text, channel: sms, purpose: care, template: help-reply, offset: 10s}
  - {key: later-marketing-mail, channel: email, purpose: marketing, template: follow-up,
     offset: 10s}
  - {key: later-care-mail, channel: email, purpose: care, template: welcome, offset: 10s}
"""
SECRET = "integration-secret-key"


def test_stop_and_one_click_stop_everything_after_them(
    pg_url: str,
    redis_url: str,
    smtp_server: SmtpServer,
    twilio: TwilioStandIn,
    log_dir: Path,
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "sequences" / "roundtrip.yaml").write_text(LATER)
    stack = Stack(
        pg_url,
        redis_url,
        log_dir,
        tmp_path / "var",
        {
            "NURTURE_CONFIG_DIR": str(config),
            "NURTURE_EMAIL_BACKEND": "smtp",
            "NURTURE_SMTP_URL": smtp_server.url,
            "NURTURE_SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "NURTURE_TWILIO_FROM": "+12085550100",
            "NURTURE_TWILIO_API_URL": twilio.url,
        },
    )
    public_url = stack.public_url
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    try:
        stack.web()
        stack.worker()
        response = httpx.post(
            f"{public_url}/api/v1/signups",
            json={
                "first_name": "Jo",
                "email": "jo@example.com",
                "phone": "+12085550188",
                "chosen_timezone": zone_where_it_is_daytime(),
                "consent": {"email_marketing": True, "sms_marketing": True, "sms_care": True},
                "consent_text": "I agree.",
                "consent_version": DISCLOSURE_VERSION,
            },
            headers=INTEGRATION_API_KEY,
            timeout=10,
        )
        assert response.status_code == 201, response.text
        lead_id = uuid.UUID(response.json()["lead_id"])
        twilio.wait_for(1, timeout=30)  # the opt-in confirmation
        smtp_server.wait_for(1, timeout=30)  # the welcome

        # The lead texts STOP: Twilio posts it, signed, to our public URL.
        params = {
            "MessageSid": "SM" + "9" * 32,
            "From": "+12085550188",
            "To": "+12085550100",
            "Body": "STOP",
            "AccountSid": twilio.account_sid,
        }
        url = f"{public_url}/webhooks/twilio/sms"
        reply = httpx.post(url, data=params, headers=twilio.signed_inbound(url, params), timeout=10)
        assert reply.status_code == 200
        assert "no further texts" in reply.text

        # The mail provider's one-click POST, exactly as RFC 8058 describes it.
        token = tokens.sign(SECRET.encode(), lead_id, Purpose.MARKETING)
        one_click = httpx.post(
            f"{public_url}/u/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert one_click.status_code == 200

        def later_rows_settled() -> bool:
            with sessions() as session:
                statuses = session.scalars(
                    select(Message.status).where(
                        Message.lead_id == lead_id, Message.sequence_key == "roundtrip"
                    )
                ).all()
            return not {MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING} & set(
                statuses
            )

        wait_until(later_rows_settled, timeout=40, what="the later steps to settle")
        with sessions() as session:
            later = {
                m.step_key: m.status
                for m in session.scalars(
                    select(Message).where(
                        Message.lead_id == lead_id, Message.sequence_key == "roundtrip"
                    )
                )
            }
        assert later == {
            "later-text": MessageStatus.CANCELLED,
            "later-marketing-mail": MessageStatus.CANCELLED,
            "later-care-mail": MessageStatus.SENT,
        }
        received = smtp_server.wait_for(2, timeout=20)
        assert len(twilio.messages) == 1  # nothing was texted after the STOP
        subjects = [r.message["Subject"] for r in received]
        assert subjects == ["We received your consultation request, Jo"] * 2  # care only, twice
        assert all("List-Unsubscribe" not in r.message for r in received)
    finally:
        stack.stop()
        engine.dispose()
