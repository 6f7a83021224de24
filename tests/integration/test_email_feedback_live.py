"""Amazon SES feedback through SNS over real HTTP to a real `nurture serve` (issue 13 §3): the
subscription is confirmed at the SNS stand-in, a signed bounce suppresses the lead's e-mail, a
redelivery counts once, a forged message is refused and records nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import select

from nurture import consent
from nurture.db import make_engine, make_sessionmaker
from nurture.db.models import Channel, ConsentEvent, EmailFeedback, EmailFeedbackKind, Purpose
from tests.support.api import DISCLOSURE_VERSION, INTEGRATION_API_KEY
from tests.support.sns_standin import TOPIC_ARN, ses_bounce, ses_complaint, sns_standin
from tests.support.stack import Stack


def test_ses_feedback_over_real_http(
    pg_url: str, redis_url: str, log_dir: Path, tmp_path: Path
) -> None:
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    with sns_standin(tmp_path) as sns:
        stack = Stack(
            pg_url,
            redis_url,
            log_dir,
            tmp_path / "var",
            {
                "NURTURE_SES_TOPIC_ARNS": TOPIC_ARN,
                "NURTURE_SNS_HOST_PATTERN": sns.host_pattern,
                # The web process trusts the stand-in's test CA as it would a system bundle.
                "SSL_CERT_FILE": str(sns.ca_file),
            },
        )
        url = f"{stack.public_url}/webhooks/email/ses"

        def post(envelope: dict[str, str]) -> httpx.Response:
            return httpx.post(
                url,
                content=json.dumps(envelope),
                headers={
                    "Content-Type": "text/plain; charset=UTF-8",
                    "x-amz-sns-message-type": envelope["Type"],
                },
                timeout=15,
            )

        try:
            stack.web()
            signup = httpx.post(
                f"{stack.public_url}/api/v1/signups",
                json={
                    "first_name": "Jo",
                    "email": "jo@example.com",
                    "consent": {"email_marketing": True},
                    "consent_text": "I agree.",
                    "consent_version": DISCLOSURE_VERSION,
                },
                headers=INTEGRATION_API_KEY,
                timeout=10,
            )
            assert signup.status_code == 201, signup.text
            lead_id = uuid.UUID(signup.json()["lead_id"])
            now = datetime.now(UTC)

            confirmed = post(sns.sign(sns.confirmation(now=now, token="live-token")))
            assert confirmed.status_code == 200, confirmed.text
            assert sns.subscribed == ["/subscribe?Action=ConfirmSubscription&Token=live-token"]

            forged = sns.sign(sns.envelope(ses_bounce("jo@example.com"), now=now), forged=True)
            refused = post(forged)
            assert refused.status_code == 403, refused.text
            assert "signature" in refused.json()["detail"]
            with sessions() as session:
                assert session.scalars(select(EmailFeedback)).all() == []
                assert consent.current(session, lead_id).allows(Channel.EMAIL, Purpose.MARKETING)

            bounce = sns.sign(sns.envelope(ses_bounce("jo@example.com"), now=now), "1")
            first = post(bounce)
            assert first.status_code == 200, first.text
            assert first.json() == {"recorded": 1, "duplicates": 0, "paused": False}
            again = post(bounce)  # SNS retries with the same MessageId
            assert again.json() == {"recorded": 0, "duplicates": 1, "paused": False}
            stranger = sns.sign(sns.envelope(ses_complaint("nobody@example.net"), now=now))
            assert post(stranger).json()["recorded"] == 1

            with sessions() as session:
                rows = session.scalars(select(EmailFeedback).order_by(EmailFeedback.id)).all()
                assert [(r.address, r.kind) for r in rows] == [
                    ("jo@example.com", EmailFeedbackKind.BOUNCE),
                    ("nobody@example.net", EmailFeedbackKind.COMPLAINT),
                ]
                state = consent.current(session, lead_id)
                assert not state.allows(Channel.EMAIL, Purpose.MARKETING)
                assert not state.allows(Channel.EMAIL, Purpose.CARE)
                sources = session.scalars(
                    select(ConsentEvent.source).where(ConsentEvent.lead_id == lead_id)
                ).all()
                assert sum(1 for s in sources if s.value == "bounce") == 2
            assert sns.certificate_fetches == 1  # cached by the web process
        finally:
            stack.stop()
            engine.dispose()
