"""What a provider's error code does beyond failing one message (one table for the sender and
the status webhook): an opt-out held by the carrier revokes consent, an unreachable number is
not texted again, a filtered or unregistered sender halts all texting and alerts staff.

A handset that is off or out of coverage (Twilio 30003) is not a dead number: the text is tried
again later (:func:`retry_handset`), and only the third 30003 in a row to the same number, with
no delivery between, makes it unreachable (compliance rule 14). The count comes from the
delivery reports of the texts to that number.

A staff alert goes to a staff number, not the lead's: its errors never revoke the lead's consent
or mark the lead's number (a halt still halts).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from nurture.config.clinic import Clinic
from nurture.db import audit
from nurture.db.models import (
    Channel,
    ConsentSource,
    DeliveryEvent,
    Lead,
    Message,
    PauseScope,
    Purpose,
)
from nurture.outbox import alerts, pauses, withdrawals
from nurture.transports.twilio_errors import ErrorClass, classify

REASONS = {30007: "the carrier filtered a message", 30034: "the sender is not registered (10DLC)"}

# Compliance rule 14: a 30003 is tried two more times; the third in a row marks the number.
UNREACHABLE_AFTER = 3
# A phone that is off stays off for a while: minutes rarely help. 15-30 min, then 30-60 min.
HANDSET_RETRY_BASE = timedelta(minutes=30)
HANDSET_OFF = "30003"
# Reports that say how a text ended; a delivered one ends a run of 30003s.
_ENDED = ("delivered", "read", "undelivered", "failed")


def handset_off_streak(session: Session, message: Message) -> int:
    """How many of the latest texts to this message's number ended in a 30003, in a row (the
    report being weighed included, once it is flushed); each attempt counts once."""
    same_number: ColumnElement[bool] = (
        Message.recipient == message.recipient
        if message.recipient is not None
        else and_(Message.lead_id == message.lead_id, Message.recipient.is_(None))
    )
    reports = session.execute(
        select(DeliveryEvent.message_id, DeliveryEvent.attempt, DeliveryEvent.error_code)
        .join(Message, Message.id == DeliveryEvent.message_id)
        .where(same_number, Message.channel == Channel.SMS, DeliveryEvent.status.in_(_ENDED))
        .order_by(DeliveryEvent.received_at.desc(), DeliveryEvent.id.desc())
        .limit(4 * UNREACHABLE_AFTER)
    ).all()
    seen: set[tuple[int | None, int | None]] = set()
    streak = 0
    for message_id, attempt, code in reports:
        if (message_id, attempt) in seen:
            continue  # a second report about the same attempt
        seen.add((message_id, attempt))
        if code != HANDSET_OFF:
            break
        streak += 1
    return streak


def retry_handset(session: Session, message: Message, code: int | None) -> bool:
    """Whether a text that ended with this code goes back to the schedule because the handset
    may be back later: a 30003 short of the third in a row."""
    if classify(code) is not ErrorClass.HANDSET_OFF:
        return False
    return handset_off_streak(session, message) < UNREACHABLE_AFTER


def apply_sms_error(
    session: Session,
    message: Message,
    code: int | None,
    *,
    clinic: Clinic,
    public_url: str,
    now: datetime,
    actor: str,
) -> ErrorClass:
    kind = classify(code)
    lead = session.get_one(Lead, message.lead_id)
    evidence = {"error_code": code, "message_id": message.id, "provider_id": message.provider_id}
    if kind is ErrorClass.HANDSET_OFF:
        streak = handset_off_streak(session, message)
        evidence["in_a_row"] = streak
        kind = ErrorClass.UNREACHABLE if streak >= UNREACHABLE_AFTER else kind
    to_staff = message.recipient is not None  # about the lead, to a staff number
    if to_staff and kind in {ErrorClass.OPTED_OUT, ErrorClass.UNREACHABLE}:
        audit.record(
            session, actor=actor, action="staff.sms_failed", lead_id=lead.id, details=evidence
        )
    elif kind is ErrorClass.OPTED_OUT:
        withdrawals.revoke_sms(
            session,
            lead.id,
            source=ConsentSource.PROVIDER_OPT_OUT,
            evidence=evidence,
            actor=actor,
            now=now,
        )
    elif kind is ErrorClass.UNREACHABLE:
        if lead.sms_unreachable_at is None:
            lead.sms_unreachable_at = now
        withdrawals.cancel_pending(
            session,
            lead.id,
            channel=Channel.SMS,
            purposes=(Purpose.CARE, Purpose.MARKETING, Purpose.OPTIN),
            reason=f"the number cannot receive texts (error {code})",
            now=now,
        )
        audit.record(
            session, actor=actor, action="lead.sms_unreachable", lead_id=lead.id, details=evidence
        )
    elif kind is ErrorClass.HALT:
        reason = REASONS.get(code or 0, f"provider error {code}")
        pauses.pause(
            session,
            PauseScope.CHANNEL,
            Channel.SMS.value,
            reason=f"Twilio {code}: {reason}",
            actor=actor,
            now=now,
        )
        alerts.alert_staff(
            session,
            lead,
            template="staff-halt-alert",
            details={"code": code, "reason": reason, "step": message.step_key},
            clinic=clinic,
            public_url=public_url,
            now=now,
            actor=actor,
        )
    return kind
