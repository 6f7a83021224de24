"""The consent ledger and the consent gate.

Consent is recorded per (channel, purpose) as append-only events; the current state is the
latest event for each key. A revocation is never deleted or overwritten, only followed by a
newer grant when the person asks for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from nurture import audit, clock, message_states
from nurture.models import (
    PENDING_STATUSES,
    Channel,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    Message,
    MessageStatus,
    Purpose,
)

LEDGER_PURPOSES = (Purpose.CARE, Purpose.MARKETING)


@dataclass(frozen=True)
class ConsentState:
    granted: frozenset[tuple[Channel, Purpose]]

    def allows(self, channel: Channel, purpose: Purpose) -> bool:
        """May a message of this channel and purpose go out now?

        The opt-in confirmation confirms an SMS grant of either purpose, so it is allowed
        whenever one is granted.
        """
        if purpose is Purpose.OPTIN:
            return any((channel, p) in self.granted for p in LEDGER_PURPOSES)
        return (channel, purpose) in self.granted

    def as_dict(self) -> dict[str, dict[str, bool]]:
        return {
            channel.value: {p.value: (channel, p) in self.granted for p in LEDGER_PURPOSES}
            for channel in Channel
        }


def current(session: Session, lead_id: uuid.UUID) -> ConsentState:
    """The lead's consent now: the latest event per (channel, purpose) wins."""
    events = session.execute(
        select(ConsentEvent.channel, ConsentEvent.purpose, ConsentEvent.action)
        .where(ConsentEvent.lead_id == lead_id)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
    ).all()
    latest: dict[tuple[Channel, Purpose], ConsentAction] = {}
    for channel, purpose, action in events:
        latest[(channel, purpose)] = action
    return ConsentState(
        frozenset(key for key, action in latest.items() if action is ConsentAction.GRANTED)
    )


def record(
    session: Session,
    *,
    lead_id: uuid.UUID,
    channel: Channel,
    purpose: Purpose,
    action: ConsentAction,
    source: ConsentSource,
    evidence: dict[str, Any],
    actor: str,
) -> ConsentEvent:
    """Append one consent event and its audit entry to the current transaction."""
    if purpose not in LEDGER_PURPOSES:
        raise ValueError(f"consent is recorded for care or marketing, not {purpose.value}")
    event = ConsentEvent(
        lead_id=lead_id,
        channel=channel,
        purpose=purpose,
        action=action,
        source=source,
        evidence=evidence,
        occurred_at=clock.utcnow(),
    )
    session.add(event)
    audit.record(
        session,
        actor=actor,
        action=f"consent.{action.value}",
        lead_id=lead_id,
        details={"channel": channel.value, "purpose": purpose.value, "source": source.value},
    )
    return event


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
    return message_states.move(
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


def restorable_sms_purposes(session: Session, lead_id: uuid.UUID) -> list[Purpose]:
    """The SMS purposes the person had granted before their latest opt-out."""
    events = session.execute(
        select(ConsentEvent.purpose, ConsentEvent.action)
        .where(ConsentEvent.lead_id == lead_id, ConsentEvent.channel == Channel.SMS)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
    ).all()
    ever_granted = {purpose for purpose, action in events if action is ConsentAction.GRANTED}
    latest: dict[Purpose, ConsentAction] = {}
    for purpose, action in events:
        latest[purpose] = action
    return [
        p for p in LEDGER_PURPOSES if p in ever_granted and latest.get(p) is ConsentAction.REVOKED
    ]


def restore_sms(
    session: Session,
    lead_id: uuid.UUID,
    *,
    evidence: dict[str, Any],
    actor: str,
) -> list[Purpose]:
    """START / UNSTOP / YES: grant again what the person had granted before opting out."""
    purposes = restorable_sms_purposes(session, lead_id)
    for purpose in purposes:
        record(
            session,
            lead_id=lead_id,
            channel=Channel.SMS,
            purpose=purpose,
            action=ConsentAction.GRANTED,
            source=ConsentSource.SMS_KEYWORD,
            evidence=evidence,
            actor=actor,
        )
    return purposes


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
