"""Delivery status from the provider: stored once per idempotency token, applied to the row."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nurture import audit, dispatch, message_states, provider_errors
from nurture.models import Channel, DeliveryEvent, Message, MessageStatus
from nurture.services import Services
from nurture.transports.twilio_errors import ErrorClass, classify

# Where each provider report takes a row (Twilio's order: queued → sending → sent → delivered |
# undelivered | failed). Reports before "sent" only settle an `unknown` row; a final report moves
# a row only along the table's arrows, so a later report never moves a row back (delivered
# stays delivered, and an `undelivered` after it is kept only as a delivery event).
FINAL = {
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
}
ACCEPTED = {"accepted", "scheduled", "queued", "sending", "sent"}
MAY_MOVE = message_states.REPORTABLE


def record_status(
    session: Session,
    *,
    provider_id: str,
    status: str,
    error_code: int | None,
    idempotency_key: str,
    payload: dict[str, Any],
    services: Services,
    now: datetime,
) -> bool:
    """Apply one status callback; False if it was seen before (nothing changes twice)."""
    message = session.scalars(
        select(Message).where(Message.provider_id == provider_id)
    ).one_or_none()
    event = DeliveryEvent(
        idempotency_key=idempotency_key,
        message_id=message.id if message else None,
        provider_id=provider_id,
        status=status,
        error_code=str(error_code) if error_code else None,
        payload=payload,
        received_at=now,
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        return False
    if message is None or message.channel is not Channel.SMS:
        return True
    status = status.lower()
    if status in ACCEPTED:
        # The provider has it: that settles a row the reaper could only guess about.
        _move(session, message, (MessageStatus.UNKNOWN,), MessageStatus.SENT, now=now, reason=None)
        return True
    final = FINAL.get(status)
    if final is None:
        return True
    reason = f"provider status {status}" + (f", error {error_code}" if error_code else "")
    target, values = final, {}
    if (
        final is not MessageStatus.DELIVERED
        and classify(error_code) is ErrorClass.RETRY
        and message.attempts < services.settings.max_attempts
    ):
        # Twilio could not deliver it and says trying again may work: the same row goes back
        # to the schedule (never a Celery countdown).
        target = MessageStatus.SCHEDULED
        base = timedelta(seconds=services.settings.retry_base)
        values["due_at"] = now + dispatch.retry_delay(message.attempts, base=base)
    moved = _move(
        session,
        message,
        MAY_MOVE,
        target,
        now=now,
        reason=reason if final is not MessageStatus.DELIVERED else None,
        code=error_code,
        **values,
    )
    if moved and final is not MessageStatus.DELIVERED:
        # What the code means for the lead (an opt-out held by the carrier, a dead number, a
        # filtered sender), once: a report that moved nothing changes nothing else either.
        provider_errors.apply_sms_error(
            session,
            message,
            error_code,
            clinic=services.clinic,
            public_url=services.settings.public_url,
            now=now,
            actor="provider",
        )
    return True


def _move(
    session: Session,
    message: Message,
    sources: tuple[MessageStatus, ...],
    target: MessageStatus,
    *,
    now: datetime,
    reason: str | None,
    code: int | None = None,
    **values: Any,
) -> bool:
    """The guarded move of one reported row, audited; False when the row was not in ``sources``."""
    if reason is not None:
        values["last_error"] = reason
    if code is not None:
        values["error_code"] = str(code)
    if not message_states.move(session, message, from_=sources, to=target, now=now, **values):
        return False
    audit.record(
        session,
        actor="provider",
        action=f"message.{target.value}",
        lead_id=message.lead_id,
        message_id=message.id,
        details={"reason": reason} if reason else {},
    )
    return True
