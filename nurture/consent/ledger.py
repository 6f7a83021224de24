"""The consent ledger and the consent gate.

Consent is recorded per (channel, purpose) as append-only events; the current state is the
latest event for each key. A revocation is never deleted or overwritten, only followed by a
newer grant when the person asks for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from nurture import clock
from nurture.db import audit
from nurture.db.models import (
    Channel,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    Purpose,
)

LEDGER_PURPOSES = (Purpose.CARE, Purpose.MARKETING)
# The table itself: a Core INSERT of plain rows skips the ORM's per-object bookkeeping.
CONSENT_EVENTS: Table = ConsentEvent.__table__  # type: ignore[assignment]


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


def current_many(
    session: Session, lead_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, ConsentState]:
    """:func:`current` for many leads in one query (a send batch reads its leads' at once)."""
    latest: dict[uuid.UUID, dict[tuple[Channel, Purpose], ConsentAction]] = {
        lead_id: {} for lead_id in lead_ids
    }
    if lead_ids:
        for lead_id, channel, purpose, action in session.execute(
            select(
                ConsentEvent.lead_id,
                ConsentEvent.channel,
                ConsentEvent.purpose,
                ConsentEvent.action,
            )
            .where(ConsentEvent.lead_id.in_(lead_ids))
            .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
        ):
            latest[lead_id][(channel, purpose)] = action
    return {
        lead_id: ConsentState(
            frozenset(key for key, action in events.items() if action is ConsentAction.GRANTED)
        )
        for lead_id, events in latest.items()
    }


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


@dataclass(frozen=True)
class Change:
    """One consent event to append: what :func:`record` takes, as a value."""

    lead_id: uuid.UUID
    channel: Channel
    purpose: Purpose
    action: ConsentAction
    source: ConsentSource
    evidence: dict[str, Any]


def record_all(session: Session, changes: list[Change], *, actor: str, trail: audit.Trail) -> None:
    """Append several consent events in one statement, their audit entries to ``trail``.

    The same rows and entries as :func:`record` called once per change, in the same order;
    the lead must already be in the database (flushed), since this bypasses the ORM."""
    rows = []
    for change in changes:
        if change.purpose not in LEDGER_PURPOSES:
            raise ValueError(
                f"consent is recorded for care or marketing, not {change.purpose.value}"
            )
        rows.append(
            {
                "lead_id": change.lead_id,
                "channel": change.channel,
                "purpose": change.purpose,
                "action": change.action,
                "source": change.source,
                "evidence": change.evidence,
                "occurred_at": clock.utcnow(),
            }
        )
        trail.add(
            actor=actor,
            action=f"consent.{change.action.value}",
            lead_id=change.lead_id,
            details={
                "channel": change.channel.value,
                "purpose": change.purpose.value,
                "source": change.source.value,
            },
        )
    if rows:
        session.execute(insert(CONSENT_EVENTS), rows)


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
