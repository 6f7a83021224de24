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

from sqlalchemy import and_
from sqlalchemy.orm import Session

from nurture.consent.ledger import LEDGER_PURPOSES, current, record
from nurture.db.models import (
    PENDING_STATUSES,
    Channel,
    ConsentAction,
    ConsentSource,
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
