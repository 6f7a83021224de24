"""Kill switches (everything, a channel, a sequence) and the per-lead marketing pause.

A paused message is never skipped or lost: it stays scheduled and goes when the pause ends.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, not_, or_, select, true
from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import Channel, Lead, Message, Pause, PauseScope, Purpose


def active(session: Session) -> list[Pause]:
    return list(session.scalars(select(Pause).where(Pause.ended_at.is_(None)).order_by(Pause.id)))


def held_out(session: Session) -> list[ColumnElement[bool]]:
    """WHERE clauses that leave out every row an active pause holds (staff alerts never wait)."""
    active_pauses = active(session)
    if not active_pauses:
        return []
    if any(p.scope is PauseScope.ALL for p in active_pauses):
        return [Message.purpose == Purpose.ALERT]
    held = or_(*(held_by(p) for p in active_pauses))
    return [or_(Message.purpose == Purpose.ALERT, not_(held))]


def channel_purpose(value: str | None) -> tuple[Channel, Purpose | None]:
    """A channel pause's value: a channel ("email"), or one purpose on it ("email:marketing",
    which the bounce and complaint rates start: care e-mail still goes)."""
    channel, _, purpose = (value or "").partition(":")
    return Channel(channel), Purpose(purpose) if purpose else None


def held_by(pause: Pause) -> ColumnElement[bool]:
    """The rows this pause holds (before the exception for staff alerts)."""
    if pause.scope is PauseScope.ALL:
        return true()
    if pause.scope is PauseScope.CHANNEL:
        channel, purpose = channel_purpose(pause.value)
        if purpose is None:
            return Message.channel == channel
        return and_(Message.channel == channel, Message.purpose == purpose)
    return and_(Message.sequence_key.is_not(None), Message.sequence_key == pause.value)


def matching(pauses: list[Pause], message: Message) -> Pause | None:
    for pause in pauses:
        if pause.scope is PauseScope.ALL:
            return pause
        if pause.scope is PauseScope.CHANNEL and pause.value in (
            message.channel.value,
            f"{message.channel.value}:{message.purpose.value}",
        ):
            return pause
        if pause.scope is PauseScope.SEQUENCE and pause.value == message.sequence_key:
            return pause
    return None


def pause(
    session: Session,
    scope: PauseScope,
    value: str | None,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> Pause:
    """Start a pause; an identical one already active is returned instead of doubled."""
    for existing in active(session):
        if existing.scope is scope and existing.value == value:
            return existing
    created = Pause(scope=scope, value=value, reason=reason, created_by=actor, created_at=now)
    session.add(created)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="pause.started",
        details={"pause_id": created.id, "scope": scope.value, "value": value, "reason": reason},
    )
    return created


def pause_lead_marketing(
    session: Session, lead: Lead, *, reason: str, actor: str, now: datetime
) -> None:
    """Hold marketing to one lead (crisis words, a reply for staff) until staff resume it."""
    if lead.marketing_paused_at is None:
        lead.marketing_paused_at = now
    lead.marketing_pause_reason = reason
    audit.record(
        session,
        actor=actor,
        action="lead.marketing_paused",
        lead_id=lead.id,
        details={"reason": reason},
    )


def hold_for_crisis(session: Session, lead: Lead, *, actor: str, now: datetime) -> None:
    """Crisis words (compliance rule 26): no nurture send of any purpose goes to this person
    until staff lift the hold; replies and staff alerts still go."""
    if lead.crisis_hold_at is None:
        lead.crisis_hold_at = now
    audit.record(session, actor=actor, action="lead.crisis_hold", lead_id=lead.id)


def resume_lead_marketing(session: Session, lead: Lead, *, actor: str) -> None:
    """Staff have spoken to the person: marketing, and anything a crisis held, may go again."""
    held = lead.crisis_hold_at is not None
    lead.marketing_paused_at = None
    lead.marketing_pause_reason = None
    lead.crisis_hold_at = None
    audit.record(
        session,
        actor=actor,
        action="lead.marketing_resumed",
        lead_id=lead.id,
        details={"crisis_hold_lifted": held},
    )
