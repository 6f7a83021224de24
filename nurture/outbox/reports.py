"""Delivery reports from the provider: stored once per idempotency token, applied to the
attempt they are about, and never dropped because they arrived early.

A text's StatusCallback URL names its message and attempt (:func:`callback_query`), so a report
finds its row even before the send settles. Each report is weighed against its attempt:

* the row is still ``sending`` for that attempt (the report beat the provider's answer): the
  report waits, unapplied, and :func:`settle_attempts` applies it when the send settles;
* it is about an earlier attempt: it is recorded and moves nothing (attempt 2 is not attempt 1);
* otherwise it moves the row along the table's arrows (below) and is marked applied.

Both paths lock the message row, so a report and a settling send never miss each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import Channel, DeliveryEvent, Message, MessageAttempt, MessageStatus
from nurture.outbox import provider_errors, states
from nurture.outbox.retry import retry_delay
from nurture.outbox.send_path import SendPath
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
MAY_MOVE = states.REPORTABLE
# Settled so that the provider may have the text: its early reports can now be applied.
MAY_HAVE_LEFT = (MessageStatus.SENT, MessageStatus.UNKNOWN)

# The StatusCallback URL's query: which message and attempt a report is about.
MESSAGE_PARAM = "message"
ATTEMPT_PARAM = "attempt"


def callback_query(message_id: int, attempt: int) -> str:
    """The query a text's StatusCallback URL carries (Twilio signs it with the URL)."""
    return urlencode({MESSAGE_PARAM: message_id, ATTEMPT_PARAM: attempt})


@dataclass(frozen=True)
class Target:
    """Which message and attempt a report is about (from its URL, else from its sid)."""

    message_id: int
    attempt: int


def record_status(
    session: Session,
    *,
    provider_id: str,
    status: str,
    error_code: int | None,
    idempotency_key: str,
    payload: dict[str, Any],
    path: SendPath,
    now: datetime,
    target: Target | None = None,
) -> bool:
    """Store one status callback and apply it if its attempt has settled.

    False if it was seen before and already weighed (nothing changes twice); a copy of a
    report that is still waiting (stored when nothing could take it yet) is weighed again.
    """
    found = _resolve(session, provider_id, target)
    event = DeliveryEvent(
        idempotency_key=idempotency_key,
        message_id=found.message_id if found else None,
        attempt=found.attempt if found else None,
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
        seen = session.scalars(
            select(DeliveryEvent).where(DeliveryEvent.idempotency_key == idempotency_key)
        ).one()
        if seen.applied_at is not None:
            return False
        if seen.message_id is None and found is not None:
            seen.message_id, seen.attempt = found.message_id, found.attempt
        event = seen
    if event.message_id is None:
        return True  # no message yet: a send that learns this sid, or a copy, will take it
    # Locked after the event is written: a send settling meanwhile either committed first
    # (and this sees its outcome) or waits for this commit (and then sees this event).
    message = session.scalars(
        select(Message)
        .where(Message.id == event.message_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).one()
    _weigh(session, event, message, path=path, now=now)
    return True


@dataclass(frozen=True)
class Attempt:
    """Provider call ``number`` of a message, just ended with ``outcome``."""

    message_id: int
    number: int
    outcome: MessageStatus
    provider_id: str | None
    started_at: datetime
    settled_at: datetime
    moved: Message | None  # the row, when it took the outcome (None: someone else moved it)


def settle_attempts(session: Session, attempts: Sequence[Attempt], *, path: SendPath) -> int:
    """Record provider calls that just ended; return how many reports that beat them were
    applied.

    Called by the sender in the transaction that settles the rows. When a row took its outcome
    and the provider may have the text, the reports of this attempt that arrived first are
    applied now, in the order they came: a report is never dropped for being early. Reports
    that know only the sid (an old callback URL) are claimed by it. One query finds the
    waiting reports of the whole batch.
    """
    session.add_all(
        MessageAttempt(
            message_id=a.message_id,
            number=a.number,
            provider_id=a.provider_id,
            started_at=a.started_at,
            settled_at=a.settled_at,
            outcome=a.outcome,
        )
        for a in attempts
    )
    eligible = [a for a in attempts if a.moved is not None and a.outcome in MAY_HAVE_LEFT]
    if not eligible:
        return 0
    sids = [a.provider_id for a in eligible if a.provider_id is not None]
    mine: ColumnElement[bool] = DeliveryEvent.message_id.in_([a.message_id for a in eligible])
    if sids:
        by_sid = and_(DeliveryEvent.message_id.is_(None), DeliveryEvent.provider_id.in_(sids))
        mine = or_(mine, by_sid)
    waiting = session.scalars(
        select(DeliveryEvent)
        .where(DeliveryEvent.applied_at.is_(None), mine)
        .order_by(DeliveryEvent.received_at, DeliveryEvent.id)
    ).all()
    applied = 0
    for attempt in eligible:
        events = [
            event
            for event in waiting
            if (event.message_id, event.attempt) == (attempt.message_id, attempt.number)
            or (event.message_id is None and event.provider_id == attempt.provider_id)
        ]
        if not events:
            continue
        message = attempt.moved
        assert message is not None
        session.refresh(message)  # what the settling move wrote
        for event in events:
            event.message_id, event.attempt = attempt.message_id, attempt.number
            _weigh(session, event, message, path=path, now=attempt.settled_at)
        applied += len(events)
    return applied


def _resolve(session: Session, provider_id: str, target: Target | None) -> Target | None:
    """The message and attempt a report is about: the URL says; else its sid; else None."""
    if target is not None and session.scalar(
        select(Message.id).where(Message.id == target.message_id)
    ):
        return target
    by_attempt = session.execute(
        select(MessageAttempt.message_id, MessageAttempt.number)
        .where(MessageAttempt.provider_id == provider_id)
        .order_by(MessageAttempt.number.desc())
        .limit(1)
    ).one_or_none()
    if by_attempt is not None:
        return Target(by_attempt.message_id, by_attempt.number)
    # A row settled without an attempt record (ops or the reconciler gave it this id): the id
    # on the row is its current attempt's, since a new attempt clears it when it starts.
    row = session.execute(
        select(Message.id, Message.attempts).where(Message.provider_id == provider_id).limit(1)
    ).one_or_none()
    return None if row is None else Target(row.id, max(row.attempts, 1))


def _weigh(
    session: Session,
    event: DeliveryEvent,
    message: Message,
    *,
    path: SendPath,
    now: datetime,
) -> None:
    """Apply a report to its (locked) message, or leave it waiting for its send to settle."""
    current = event.attempt == max(message.attempts, 1)
    if current and message.status is MessageStatus.SENDING:
        return  # it beat the provider's answer: settle_attempts applies it
    event.applied_at = now
    if not current or message.channel is not Channel.SMS:
        return  # an earlier attempt's report (or an e-mail's): recorded, nothing moves
    error_code = int(event.error_code) if event.error_code else None
    _apply(session, message, event.status, error_code, event.provider_id, path, now)


def _apply(
    session: Session,
    message: Message,
    status: str,
    error_code: int | None,
    provider_id: str,
    path: SendPath,
    now: datetime,
) -> None:
    """Move the row where the report takes it (FINAL, ACCEPTED) and learn from its error code."""
    status = status.lower()
    if status in ACCEPTED:
        # The provider has it: that settles a row the reaper could only guess about.
        _move(
            session,
            message,
            (MessageStatus.UNKNOWN,),
            MessageStatus.SENT,
            now=now,
            reason=None,
            provider_id=provider_id,
        )
        return
    final = FINAL.get(status)
    if final is None:
        return
    reason = f"provider status {status}" + (f", error {error_code}" if error_code else "")
    target, values = final, {}
    if final is not MessageStatus.DELIVERED and message.attempts < path.max_attempts:
        # Twilio could not deliver it and says trying again may work (or the handset was off,
        # short of the third time in a row): the same row goes back to the schedule (never a
        # Celery countdown).
        base = None
        if classify(error_code) is ErrorClass.RETRY:
            base = path.retry_base
        elif provider_errors.retry_handset(session, message, error_code):
            base = max(path.retry_base, provider_errors.HANDSET_RETRY_BASE)
        if base is not None:
            target = MessageStatus.SCHEDULED
            values["due_at"] = now + retry_delay(message.attempts, base=base)
    moved = _move(
        session,
        message,
        MAY_MOVE,
        target,
        now=now,
        reason=reason if final is not MessageStatus.DELIVERED else None,
        code=error_code,
        provider_id=provider_id,
        **values,
    )
    if moved and final is not MessageStatus.DELIVERED:
        # What the code means for the lead (an opt-out held by the carrier, a dead number, a
        # filtered sender), once: a report that moved nothing changes nothing else either.
        provider_errors.apply_sms_error(
            session,
            message,
            error_code,
            clinic=path.clinic,
            public_url=path.writer.public_url,
            now=now,
            actor="provider",
        )


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
    if not states.move(session, message, from_=sources, to=target, now=now, **values):
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
