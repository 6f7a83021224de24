"""The production path end to end, every part real: a sign-up posted over HTTP to `nurture serve`
becomes one e-mail at an SMTP server and one text at the Twilio stand-in (through the official
SDK), sent by a real Celery worker and beat on Redis, with the rows ending `sent`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nurture.db import make_engine, make_sessionmaker
from nurture.db.models import Message, MessageStatus
from tests.support.api import DISCLOSURE_VERSION, INTEGRATION_API_KEY
from tests.support.daytime import zone_where_it_is_daytime
from tests.support.events import LogMark
from tests.support.processes import free_port, wait_until
from tests.support.smtp_server import SmtpServer
from tests.support.stack import Stack
from tests.support.twilio_standin import TwilioStandIn


def rows_by_step(sessions: sessionmaker[Session], lead_id: uuid.UUID) -> dict[str, Message]:
    with sessions() as session:
        return {
            m.step_key: m
            for m in session.scalars(select(Message).where(Message.lead_id == lead_id))
        }


def test_signup_is_delivered_once_by_email_and_sms(
    pg_url: str,
    redis_url: str,
    smtp_server: SmtpServer,
    twilio: TwilioStandIn,
    log_dir: Path,
    tmp_path: Path,
) -> None:
    metrics_port = free_port()
    stack = Stack(
        pg_url,
        redis_url,
        log_dir,
        tmp_path / "var",
        {
            "NURTURE_EMAIL_BACKEND": "smtp",
            "NURTURE_SMTP_URL": smtp_server.url,
            "NURTURE_EMAIL_FROM": "Clinic Care <care@clinic.example>",
            "NURTURE_SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "NURTURE_TWILIO_FROM": "+12085550100",
            "NURTURE_TWILIO_API_URL": twilio.url,
        },
    )
    public_url = stack.public_url
    engine = make_engine(pg_url)
    try:
        web = stack.web()
        worker = stack.worker(NURTURE_WORKER_METRICS_PORT=str(metrics_port))

        response = httpx.post(
            f"{public_url}/api/v1/signups",
            json={
                "first_name": "Dana",
                "last_name": "Lee",
                "email": "Dana.Lee@Example.com",
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

        [mail] = smtp_server.wait_for(1, timeout=30)
        [text] = twilio.wait_for(1, timeout=30)

        sessions = make_sessionmaker(engine)

        def rows_settled() -> bool:
            with sessions() as session:
                statuses = session.scalars(
                    select(Message.status).where(
                        Message.lead_id == lead_id,
                        Message.step_key.in_(("optin-confirmation", "welcome")),
                    )
                ).all()
            return sorted(statuses) == [MessageStatus.SENT, MessageStatus.SENT]

        wait_until(rows_settled, timeout=15, what="both rows to be sent")
        # Several more beat ticks: nothing is sent a second time.
        LogMark(worker).wait_for(r"Task nurture\.dispatch_due\[[^\]]+\] succeeded", times=3)
        assert len(smtp_server.received) == 1
        assert len(twilio.messages) == 1

        # The e-mail: to the normalised address, care purpose (welcome), right headers and body.
        assert mail.rcpt_tos == ["dana.lee@example.com"]
        message = mail.message
        assert message["Subject"] == "We received your consultation request, Dana"
        assert message["From"] == "Clinic Care <care@clinic.example>"
        assert message["Message-ID"]
        assert "List-Unsubscribe" not in message  # care mail is not marketing
        text_part = message.get_body(preferencelist=("plain",))
        html_part = message.get_body(preferencelist=("html",))
        assert text_part is not None and html_part is not None
        assert "Hi Dana," in text_part.get_content()
        assert "988" in text_part.get_content()
        assert "<strong>What happens next</strong>" in html_part.get_content()

        # The text: through the official SDK, from our number, with a status callback and validity.
        assert text.to == "+12085550142"
        assert text.from_ == "+12085550100"
        optin_id = rows_by_step(sessions, lead_id)["optin-confirmation"].id
        assert text.status_callback == (
            f"{public_url}/webhooks/twilio/status?message={optin_id}&attempt=1"
        )
        assert text.validity_period == 3600
        assert text.body.startswith("KI Idaho: ")
        assert "Msg & data rates may apply" in text.body and "STOP to opt out" in text.body
        assert "ketamine" not in text.body.lower()

        rows = rows_by_step(sessions, lead_id)
        assert rows["optin-confirmation"].provider_id == text.sid
        assert rows["welcome"].provider_id == message["Message-ID"]
        later = {
            key: row.status
            for key, row in rows.items()
            if key not in {"optin-confirmation", "welcome"}
        }
        assert later and set(later.values()) == {MessageStatus.SCHEDULED}  # the rest of the program

        # The worker's log never shows the phone number or the e-mail address.
        worker_log = worker.output() + web.output()
        assert "555-0142" not in worker_log and "+12085550142" not in worker_log
        assert "dana.lee@example.com" not in worker_log.lower()

        # Logs are JSON lines (not a terminal), one event each, with the message's context.
        events = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
        sent = [
            e
            for e in events
            if e.get("status") == "sent" and e.get("logger") == "nurture.outbox.settle"
        ]
        assert {e["step"] for e in sent} == {"optin-confirmation", "welcome"}
        assert all(e["lead_id"] == str(lead_id) and e["message_id"] for e in sent)

        # The worker's own Prometheus endpoint adds up its prefork children's counters.
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert 'nurture_sends_total{channel="sms",status="sent"} 1.0' in metrics
        assert 'nurture_sends_total{channel="email",status="sent"} 1.0' in metrics
        assert "nurture_send_latency_seconds_bucket" in metrics
    finally:
        stack.stop()
        engine.dispose()
