"""Compliance rule 25: the disclosure promises "up to 4 msgs/week", so no lead gets a fifth
marketing text within any rolling seven days, and lint refuses a promise the policy breaks."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update

from nurture import clock
from nurture.db.models import Lead, Message, MessageStatus
from nurture.outbox import gates
from nurture.runtime import Services
from tests.support.factories import plan_marketing_texts, sign_up


def sent_days_ago(services: Services, ids: list[int], days: list[float]) -> list[datetime]:
    now = clock.utcnow()
    instants = [now - timedelta(days=d) for d in days]
    with services.sessions.begin() as session:
        for message_id, at in zip(ids, instants, strict=True):
            session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(status=MessageStatus.SENT, sent_at=at, status_at=at)
            )
    return instants


def verdict_for(services: Services, message_id: int) -> gates.Verdict:
    with services.sessions.begin() as session:
        message = session.get_one(Message, message_id)
        lead = session.get_one(Lead, message.lead_id)
        verdict, _ = gates.check_at_claim(
            session, message, lead, policy=services.policy, clinic_zone=services.clinic.zone
        )
    return verdict


def test_rule_25_a_fifth_marketing_text_in_seven_days_waits(services: Services) -> None:
    assert services.policy.caps.sms_marketing_per_7d == 4
    lead_id = sign_up(services)
    *earlier, fifth = plan_marketing_texts(services, lead_id, 5)
    # One a day, so the 24-hour cap (3) never bites: only the weekly one can.
    first, *_ = sent_days_ago(services, earlier, [6, 5, 4, 3])
    verdict = verdict_for(services, fifth)
    assert isinstance(verdict, gates.Defer), verdict
    assert verdict.reason.startswith("at most 4 in any 7 days")
    assert verdict.until >= first + timedelta(days=7)
    assert verdict.until - (first + timedelta(days=7)) < timedelta(hours=14)  # then quiet hours


def test_rule_25_the_week_is_rolling_not_a_calendar_week(services: Services) -> None:
    lead_id = sign_up(services)
    *earlier, fifth = plan_marketing_texts(services, lead_id, 5)
    sent_days_ago(services, earlier, [7.5, 5, 4, 3])  # the oldest has left the window
    assert isinstance(verdict_for(services, fifth), gates.Proceed)
