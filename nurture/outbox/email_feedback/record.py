"""Storing provider feedback: once per event, and what a bounce or complaint stops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nurture.config.policy import EmailFeedback as FeedbackPolicy
from nurture.db import audit
from nurture.db.models import ConsentSource, EmailFeedback, EmailFeedbackKind, EmailWebhookToken
from nurture.outbox.email_feedback import Feedback, FeedbackRefusedError
from nurture.outbox.email_feedback.rates import pause_marketing_if_over
from nurture.outbox.withdrawals import suppress_email

SUPPRESSING = {
    EmailFeedbackKind.BOUNCE: ConsentSource.BOUNCE,
    EmailFeedbackKind.COMPLAINT: ConsentSource.COMPLAINT,
}
# Used signature tokens are kept this long: longer than any timestamp a provider may sign.
TOKENS_KEPT = timedelta(days=2)


@dataclass
class Recorded:
    new: int = 0
    duplicates: int = 0
    suppressed_leads: list[str] = field(default_factory=list)
    paused: bool = False


def use_token(session: Session, provider: str, token: str, *, now: datetime) -> None:
    """Refuse a signature token seen before (a replay); remember it with this delivery."""
    if session.get(EmailWebhookToken, (provider, token)) is not None:
        raise FeedbackRefusedError(f"{provider}: this signature token was already used (a replay)")
    session.execute(
        delete(EmailWebhookToken).where(
            EmailWebhookToken.provider == provider, EmailWebhookToken.seen_at < now - TOKENS_KEPT
        )
    )
    session.add(EmailWebhookToken(provider=provider, token=token, seen_at=now))
    session.flush()


def record(
    session: Session,
    items: Sequence[Feedback],
    *,
    policy: FeedbackPolicy,
    now: datetime,
) -> Recorded:
    """Store each item not stored before; a permanent bounce or a complaint suppresses e-mail
    to the address (nurture.outbox.withdrawals.suppress_email); then the rates may pause
    marketing e-mail. An event already recorded (a redelivery) changes nothing."""
    result = Recorded()
    for item in items:
        known = session.scalar(
            select(EmailFeedback.id).where(
                EmailFeedback.provider == item.provider,
                EmailFeedback.event_id == item.event_id,
                EmailFeedback.address == item.address,
            )
        )
        if known is not None:
            result.duplicates += 1
            continue
        session.add(
            EmailFeedback(
                provider=item.provider,
                event_id=item.event_id,
                address=item.address,
                kind=item.kind,
                detail=item.detail,
                occurred_at=item.occurred_at or now,
                received_at=now,
            )
        )
        session.flush()
        result.new += 1
        source = SUPPRESSING.get(item.kind)
        if source is None:
            continue  # a transient bounce only counts
        actor = f"{item.provider}-webhook"
        evidence = {"provider": item.provider, "event_id": item.event_id, "detail": item.detail}
        for lead_id in suppress_email(
            session, item.address, source=source, evidence=evidence, actor=actor, now=now
        ):
            result.suppressed_leads.append(str(lead_id))
            audit.record(
                session,
                actor=actor,
                action=f"email.suppressed_{source.value}",
                lead_id=lead_id,
                details=evidence,
            )
    if result.new:
        result.paused = pause_marketing_if_over(session, policy, now=now) is not None
    return result
