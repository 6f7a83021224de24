"""Issue 10 §1, end to end on real parts: a name built to smuggle a header (a q-encoded Bcc, a
b-encoded Reply-To, a blank line that takes over the body) never becomes a header line.

Two layers, each tested through a real `nurture serve`, a real Celery worker on Redis, PostgreSQL
and an aiosmtpd server, reading the raw bytes that arrived:
- intake refuses such a name with a 422 that names the field, and stores nothing;
- and if such text reaches the database some other way (a booking tool, a staff edit, data from
  before the rule), the e-mail built from it — the lead's welcome and the staff alert that quotes
  the lead — still carries exactly the headers we set.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import func, select

from nurture import clock
from nurture.config.settings import Settings
from nurture.db import session_scope
from nurture.db.models import ConsentSource, Lead
from nurture.leads.intake import RequestEvidence, Signup, submit_signup
from nurture.outbox import alerts
from nurture.runtime import build_services
from tests.conftest import REPO
from tests.support.api import INTEGRATION_API_KEY
from tests.support.smtp_server import Received, SmtpServer
from tests.support.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SHAPES = {
    "q-encoded Bcc": "=?utf-8?q?Ann=0D=0ABcc:_someone@example.org?=",
    "b-encoded Reply-To": "=?utf-8?b?QW5uDQpSZXBseS1UbzogZXZpbEBleGFtcGxlLm9yZw==?=",
    "body takeover": "=?utf-8?q?Ann=0D=0A=0D=0AYour_account_is_locked=2E_Call_us?=",
}
SENDER = "KI Idaho Care <care@kiidaho.example>"
CLINIC_REPLY_TO = "care@kiidaho.example"  # config/clinic.yaml


def header_names(received: Received) -> list[str]:
    head = received.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0] for line in head.split("\r\n") if line[:1] not in (" ", "\t")]


def assert_only_our_headers(received: Received) -> None:
    names = header_names(received)
    assert "Bcc" not in names and "Cc" not in names
    assert names.count("Subject") == 1 and names.count("To") == 1
    parsed = email.message_from_bytes(received.raw, policy=email.policy.default)
    assert parsed.get_all("Reply-To") == [CLINIC_REPLY_TO]  # the clinic's own, never the lead's
    assert len(received.rcpt_tos) == 1 and "someone@example.org" not in received.rcpt_tos[0]
    assert b"Your account is locked" not in received.raw.split(b"\r\n\r\n", 1)[1][:200]


@pytest.fixture
def stack(
    pg_url: str, redis_url: str, smtp_server: SmtpServer, log_dir: Path, tmp_path: Path
) -> Iterator[Stack]:
    running = Stack(
        pg_url,
        redis_url,
        log_dir,
        tmp_path / "var",
        {
            "NURTURE_EMAIL_BACKEND": "smtp",
            "NURTURE_SMTP_URL": smtp_server.url,
            "NURTURE_EMAIL_FROM": SENDER,
        },
    )
    yield running
    running.stop()


def test_intake_refuses_a_name_that_carries_an_encoded_word(stack: Stack, pg_url: str) -> None:
    stack.web()
    for shape in SHAPES.values():
        response = httpx.post(
            f"{stack.public_url}/api/v1/signups",
            json={"first_name": shape, "email": "ann@example.com"},
            headers=INTEGRATION_API_KEY,
            timeout=10,
        )
        assert response.status_code == 422, response.text
        assert [error["field"] for error in response.json()["errors"]] == ["first_name"]
    services = build_services(Settings(database_url=pg_url, config_dir=REPO / "config"))
    try:
        with services.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Lead)) == 0
    finally:
        services.close()


def test_lead_text_that_got_in_another_way_never_becomes_a_header(
    stack: Stack, pg_url: str, smtp_server: SmtpServer
) -> None:
    settings = Settings(
        database_url=pg_url,
        config_dir=REPO / "config",
        templates_dir=REPO / "templates",
        secret_key="integration-secret-key",
        public_url=stack.public_url,
    )
    services = build_services(settings)
    try:
        lead_ids = []
        for index, shape in enumerate(SHAPES.values()):
            # model_construct skips intake's validation, as text from elsewhere would.
            signup = Signup.model_construct(
                first_name=shape,
                last_name="",
                email=f"lead{index}@example.com",
                phone=None,
                timezone="America/Boise",
                postal_code=None,
                consent_text=None,
                consent_version=None,
                source={},
                **{
                    "consent": Signup.model_fields["consent"].get_default(call_default_factory=True)
                },
            )
            evidence = RequestEvidence(
                ip="127.0.0.1", user_agent="test", page_url=None, source=ConsentSource.WEB_FORM
            )
            result = submit_signup(
                services.sessions,
                signup,
                evidence,
                catalog=services.catalog,
                clinic_zone=services.clinic.zone,
            )
            lead_ids.append(result.lead_id)
        with session_scope(services.sessions) as session:
            for lead_id, shape in zip(lead_ids, SHAPES.values(), strict=True):
                lead = session.get_one(Lead, lead_id)
                alerts.alert_staff(
                    session,
                    lead,
                    template="staff-reply-alert",
                    details={
                        "lead_name": shape,
                        "phone": "+12085550142",
                        "body": f"{shape}\r\nBcc: someone@example.org",
                        "reason": "a reply",
                        "received": "Tue, Mar 3 at 10:00 AM MST",
                    },
                    clinic=services.clinic,
                    public_url=settings.public_url,
                    now=clock.utcnow(),
                    actor="test",
                )
    finally:
        services.close()

    stack.worker()
    # Three welcome e-mails (care mail goes at any hour) and three staff alerts.
    arrived = smtp_server.wait_for(6, timeout=60)
    assert len(arrived) == 6
    for received in arrived:
        assert_only_our_headers(received)
    welcomes = [r for r in arrived if r.rcpt_tos[0].startswith("lead")]
    alerts_sent = [r for r in arrived if r.rcpt_tos[0] == "oncall@kiidaho.example"]
    assert len(welcomes) == 3 and len(alerts_sent) == 3
    for received in welcomes:
        parsed = email.message_from_bytes(received.raw, policy=email.policy.default)
        subject = str(parsed["Subject"])
        # The encoded-word is shown as the literal text the lead typed, on one line.
        assert any(shape in subject for shape in SHAPES.values()), subject
        text = parsed.get_body(preferencelist=("plain",))
        assert text is not None and text.get_content().lstrip().startswith("Hi ")
