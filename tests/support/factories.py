"""Building test data through the real intake path (no hand-made rows that skip validation)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture import clock
from nurture.db.models import Channel, ConsentSource, Message, MessageStatus, Purpose
from nurture.leads.intake import RequestEvidence, parse_signup, submit_signup
from nurture.outbox import dispatch, send
from nurture.runtime import Services

EVIDENCE = RequestEvidence(
    ip="203.0.113.7",
    user_agent="pytest",
    page_url="https://clinic.example/consult",
    source=ConsentSource.API,
)


def signup_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "first_name": "Ana",
        "last_name": "Rivera",
        "email": "ana.rivera@example.com",
        "phone": "+12085550123",
        # Idaho Falls: the ZIP code fixes the zone (Mountain); the browser's only narrows it.
        "postal_code": "83402",
        "timezone": "America/Boise",
        "consent": {"email_marketing": True, "sms_marketing": True, "sms_care": True},
        "consent_text": "I agree to texts and e-mail from the clinic.",
        "consent_version": "test-1",
    }
    data.update(overrides)
    return data


def sign_up(services: Services, **overrides: Any) -> uuid.UUID:
    result = submit_signup(
        services.sessions,
        parse_signup(signup_data(**overrides)),
        EVIDENCE,
        catalog=services.catalog,
        clinic_zone=services.clinic.zone,
    )
    return result.lead_id


def messages_of(session: Session, lead_id: uuid.UUID) -> list[Message]:
    return list(
        session.scalars(select(Message).where(Message.lead_id == lead_id).order_by(Message.id))
    )


def claim_and_send_all(services: Services) -> list[dispatch.Claimed]:
    """What beat + worker do, in-process: claim everything due now and send it in batches."""
    with services.sessions() as session:
        claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=1000)
        session.commit()
    for _channel, ids in dispatch.batches(claimed, send.BATCH_SIZE):
        with services.sessions() as session:
            send.send_batch(session, ids, services.send_path)
    return claimed


def plan_marketing_texts(
    services: Services, lead_id: uuid.UUID, count: int, *, prefix: str = "nudge"
) -> list[int]:
    """``count`` marketing texts for the lead, due now (as a sequence step would plan them)."""
    now = clock.utcnow()
    with services.sessions.begin() as session:
        rows = [
            Message(
                lead_id=lead_id,
                step_key=f"{prefix}-{n}",
                channel=Channel.SMS,
                purpose=Purpose.MARKETING,
                template_key="optin-confirmation",
                due_at=now,
                status=MessageStatus.SCHEDULED,
                status_at=now,
                idempotency_key=f"test:{lead_id}:{prefix}:{n}",
                created_at=now,
            )
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]
