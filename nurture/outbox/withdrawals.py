"""Withdrawals of consent, and what they stop.

A withdrawal is two things in one unit of work: a revocation in the consent ledger, and the
cancellation of every message not yet sent that the withdrawn consent covered. It lives here,
beside the state machine, because only the outbox may move a message; the ledger below knows
nothing of messages.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from nurture.consent.ledger import LEDGER_PURPOSES, current, record
from nurture.db.models import (
    PENDING_STATUSES,
    Channel,
    ConsentAction,
    ConsentSource,
    Lead,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.outbox import states


def cancel_pending(
    session: Session,
    lead_id: uuid.UUID,
    *,
    channel: Channel,
    purposes: tuple[Purpose, ...],
    reason: str,
    now: datetime,
) -> int:
    """Cancel the lead's rows not yet sent on a channel; they can never go out after this."""
    return states.move(
        session,
        and_(
            Message.lead_id == lead_id,
            Message.channel == channel,
            Message.purpose.in_(purposes),
        ),
        from_=PENDING_STATUSES,
        to=MessageStatus.CANCELLED,
        now=now,
        last_error=reason,
    )


def revoke_sms(
    session: Session,
    lead_id: uuid.UUID,
    *,
    source: ConsentSource,
    evidence: dict[str, Any],
    actor: str,
    now: datetime,
) -> int:
    """Revoke every SMS purpose (an SMS opt-out stops all texts) and cancel pending texts."""
    for purpose in LEDGER_PURPOSES:
        record(
            session,
            lead_id=lead_id,
            channel=Channel.SMS,
            purpose=purpose,
            action=ConsentAction.REVOKED,
            source=source,
            evidence=evidence,
            actor=actor,
        )
    return cancel_pending(
        session,
        lead_id,
        channel=Channel.SMS,
        purposes=(Purpose.CARE, Purpose.MARKETING, Purpose.OPTIN),
        reason=f"opted out of texts ({source.value})",
        now=now,
    )


def set_preference(
    session: Session,
    lead_id: uuid.UUID,
    channel: Channel,
    purpose: Purpose,
    wanted: bool,
    *,
    source: ConsentSource,
    evidence: dict[str, Any],
    actor: str,
    now: datetime,
) -> bool:
    """Make one (channel, purpose) granted or revoked; False when it already was (no new event)."""
    if current(session, lead_id).allows(channel, purpose) == wanted:
        return False
    record(
        session,
        lead_id=lead_id,
        channel=channel,
        purpose=purpose,
        action=ConsentAction.GRANTED if wanted else ConsentAction.REVOKED,
        source=source,
        evidence=evidence,
        actor=actor,
    )
    if not wanted:
        purposes = (purpose, Purpose.OPTIN) if channel is Channel.SMS else (purpose,)
        cancel_pending(
            session,
            lead_id,
            channel=channel,
            purposes=purposes,
            reason=f"{channel.value} {purpose.value} revoked ({source.value})",
            now=now,
        )
    return True


def suppress_email(
    session: Session,
    address: str,
    *,
    source: ConsentSource,
    evidence: dict[str, Any],
    actor: str,
    now: datetime,
) -> list[uuid.UUID]:
    """Stop all e-mail to an address that bounced for good or complained: every lead with that
    address has care and marketing e-mail revoked (with ``source``, bounce or complaint) and its
    pending e-mails cancelled. The ids of the leads that had anything to revoke.

    All e-mail, not only marketing: a dead address only hurts the sender's reputation, and a
    person who marked the clinic's mail as spam must not get more of it, care included (staff
    see the suppression on the lead page and can phone instead)."""
    if source not in (ConsentSource.BOUNCE, ConsentSource.COMPLAINT):
        raise ValueError(f"e-mail is suppressed for a bounce or a complaint, not {source.value}")
    wanted = address.strip().lower()
    leads = session.scalars(select(Lead.id).where(func.lower(Lead.email) == wanted)).all()
    changed: list[uuid.UUID] = []
    for lead_id in leads:
        revoked = [
            set_preference(
                session,
                lead_id,
                Channel.EMAIL,
                purpose,
                False,
                source=source,
                evidence=evidence,
                actor=actor,
                now=now,
            )
            for purpose in LEDGER_PURPOSES
        ]
        if any(revoked):
            changed.append(lead_id)
    return changed
