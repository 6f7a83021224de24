"""Delivery status from the provider: stored once per idempotency token, applied to the row."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nurture import audit, dispatch, provider_errors
from nurture.models import Channel, DeliveryEvent, Message, MessageStatus
from nurture.services import Services
from nurture.transports.twilio_errors import ErrorClass

# Where each provider status takes a row; statuses before "sent" only settle an `unknown` row.
FINAL = {
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
}
ACCEPTED = {"accepted", "scheduled", "queued", "sending", "sent"}
# A later report never moves a row back: delivered stays delivered.
MAY_MOVE = {MessageStatus.SENT, MessageStatus.UNKNOWN, MessageStatus.SENDING}


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
    if status in ACCEPTED and message.status is MessageStatus.UNKNOWN:
        _move(session, message, MessageStatus.SENT, now=now, reason=None)
        return True
    target = FINAL.get(status)
    if target is None or message.status not in MAY_MOVE:
        return True
    reason = f"provider status {status}" + (f", error {error_code}" if error_code else "")
    if target is not MessageStatus.DELIVERED:
        kind = provider_errors.apply_sms_error(
            session,
            message,
            error_code,
            clinic=services.clinic,
            public_url=services.settings.public_url,
            now=now,
            actor="provider",
        )
        if kind is ErrorClass.RETRY and message.attempts < services.settings.max_attempts:
            # Twilio could not deliver it and says trying again may work: the same row goes back
            # to the schedule (never a Celery countdown).
            base = timedelta(seconds=services.settings.retry_base)
            message.due_at = now + dispatch.retry_delay(message.attempts, base=base)
            _move(
                session, message, MessageStatus.SCHEDULED, now=now, reason=reason, code=error_code
            )
            return True
    _move(
        session,
        message,
        target,
        now=now,
        reason=reason if target is not MessageStatus.DELIVERED else None,
        code=error_code,
    )
    return True


def _move(
    session: Session,
    message: Message,
    status: MessageStatus,
    *,
    now: datetime,
    reason: str | None,
    code: int | None = None,
) -> None:
    message.status = status
    message.status_at = now
    if reason is not None:
        message.last_error = reason
    if code is not None:
        message.error_code = str(code)
    audit.record(
        session,
        actor="provider",
        action=f"message.{status.value}",
        lead_id=message.lead_id,
        message_id=message.id,
        details={"reason": reason} if reason else {},
    )
