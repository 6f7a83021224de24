"""Moving rows through the outbox: claim what is due, send one row through the gates, reap.

The state machine (DESIGN.md §4) is :mod:`nurture.outbox.states`: every move here is its
guarded ``move()``, a conditional UPDATE that moves a row only from the states named, so a task
delivered twice, two beats, or a reaper racing a worker can never send one message twice.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from nurture import clock, content
from nurture.content.rendering import RenderError
from nurture.content.template_store import TemplateNotFoundError
from nurture.db import audit
from nurture.db.models import Channel, Lead, Message, MessageStatus, Purpose
from nurture.ops import metrics
from nurture.outbox import gates, pauses, provider_errors, reports, states
from nurture.outbox.states import MESSAGES
from nurture.outbox.throttle import SenderThrottle, Slot
from nurture.runtime import Services
from nurture.transports import (
    DeliveryOutcomeUnknownError,
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    TransientDeliveryError,
)

log = logging.getLogger(__name__)

RETRY_BASE = timedelta(minutes=1)  # the default; NURTURE_RETRY_BASE sets it
RETRY_CAP = timedelta(hours=1)


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: Channel


def claim_due(session: Session, *, now: datetime, limit: int) -> list[Claimed]:
    """Move up to ``limit`` due rows from ``scheduled`` to ``queued`` and return them.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets two dispatchers claim side by side without
    ever taking the same row; SQLite serialises writers, so it needs no such clause. Rows held by
    a kill switch are not claimed at all: they keep their place, untouched, until it is lifted.
    The caller commits, then publishes one send task per row.
    """
    # Two statements, not `UPDATE … WHERE id IN (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)`:
    # PostgreSQL may rescan such a subquery for each outer row (a nested-loop semi-join) and
    # then claims more than ``limit`` rows. The ids locked here are exactly the ones moved.
    due = session.scalars(
        select(Message.id)
        .where(
            Message.status == MessageStatus.SCHEDULED,
            Message.due_at <= now,
            *pauses.held_out(session),
        )
        .order_by(Message.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not due:
        return []
    rows = states.move_returning(
        session,
        list(due),
        from_=(MessageStatus.SCHEDULED,),
        to=MessageStatus.QUEUED,
        now=now,
        returning=(MESSAGES.c.id, MESSAGES.c.channel),
    )
    return [Claimed(id=row.id, channel=row.channel) for row in rows]


def unsubscribe_headers(url: str, mailto: str) -> dict[str, str]:
    """RFC 8058 one-click: exactly one HTTPS URI, plus a mailto when one is configured."""
    targets = f"<{url}>" + (f", <mailto:{mailto}?subject=unsubscribe>" if mailto else "")
    return {"List-Unsubscribe": targets, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def retry_delay(
    attempts: int, *, rng: random.Random | None = None, base: timedelta = RETRY_BASE
) -> timedelta:
    """Capped exponential backoff with jitter: 1, 2, 4 … minutes up to an hour, at random
    between half and all of it (so retries after an outage do not arrive together)."""
    ceiling: timedelta = min(RETRY_CAP, base * 2 ** max(attempts - 1, 0))
    fraction: float = 0.5 + 0.5 * (rng or random.SystemRandom()).random()
    return ceiling * fraction


OWNED = states.IN_FLIGHT
SLOT = "throttle_slot"  # in message.context: the moment (Redis clock) reserved for this text
TURN_EARLY = 0.05  # seconds: close enough to its slot to go


@dataclass(frozen=True)
class _Attempt:
    """The provider call being settled: recorded, with the reports that beat its answer."""

    started_at: datetime
    services: Services


def _settle(
    session: Session,
    message: Message,
    status: MessageStatus,
    *,
    now: datetime,
    reason: str | None = None,
    code: str | None = None,
    expected: tuple[MessageStatus, ...] = OWNED,
    keep_staged: bool = False,
    attempt: _Attempt | None = None,
    **values: Any,
) -> bool:
    """Move the row to ``status`` if it is still in an ``expected`` state; audit and commit.

    After the provider call the row is ``sending``, or ``unknown`` when the reaper gave up on
    a slow send (a definite outcome beats a guess). Before it, the row must still be ``queued``.
    False (and nothing of the move written) when someone else moved the row first; what the
    caller staged in the session is then rolled back, unless ``keep_staged`` says it stands
    whatever became of the row (a consent revocation learnt from the provider's answer).

    With ``attempt`` (the outcome of a provider call) the move also requires the row to be on
    that attempt still (a slow attempt 1 never settles attempt 2), the call is recorded
    whatever became of the row, and reports of it that came first are applied with the move.
    """
    message_id, number = message.id, message.attempts  # read before a rollback expires them
    rows: states.Rows = message_id
    if attempt is not None:
        rows = and_(MESSAGES.c.id == message_id, MESSAGES.c.attempts == number)
    moved = states.move(
        session,
        rows,
        from_=expected,
        to=status,
        now=now,
        last_error=reason,
        error_code=code,
        **values,
    )
    if moved != 1 and not keep_staged:
        session.rollback()
    if attempt is not None:
        # The attempt is recorded either way; only a row that moved has its reports applied.
        reports.settle_attempt(
            session,
            message if moved == 1 else None,
            message_id=message_id,
            number=number,
            outcome=status,
            provider_id=values.get("provider_id"),
            started_at=attempt.started_at,
            services=attempt.services,
            now=now,
        )
    if moved != 1:
        if keep_staged or attempt is not None:
            session.commit()
        return False
    details: dict[str, Any] = {
        "channel": message.channel.value,
        "sequence": message.sequence_key,
        "step": message.step_key,
        "attempt": message.attempts,
    }
    if reason:
        details["reason"] = reason
    if code:
        details["code"] = code
    if "provider_id" in values:
        details["provider_id"] = values["provider_id"]
    metrics.record_outcome(
        message.channel.value,
        status.value,
        due_at=message.due_at,
        sent_at=values.get("sent_at"),
        code=code,
    )
    audit.record_fast(
        session,
        actor=audit.WORKER,
        action=f"message.{status.value}",
        lead_id=message.lead_id,
        message_id=message.id,
        details=details,
        now=now,
    )
    session.commit()
    log.info(
        "message %s %s",
        message.id,
        status.value,
        extra={
            "message_id": message.id,
            "lead_id": str(message.lead_id),
            "sequence": message.sequence_key,
            "step": message.step_key,
            "channel": message.channel.value,
            "status": status.value,
        },
    )
    return True


def send_message(session: Session, message_id: int, services: Services) -> MessageStatus | None:
    """Send one queued row at most once; return its new status, or None if it was not ours.

    The gates and the rendering run first (the render outside any transaction); then one
    conditional UPDATE moves the row from `queued` to `sending` with what it will say, and
    commits, before the provider sees anything. A second delivery of the same task, or a STOP
    that cancelled the row meanwhile, finds it no longer `queued` and does nothing.
    """
    now = clock.utcnow()
    queued = (MessageStatus.QUEUED,)
    message = session.scalars(
        select(Message).where(Message.id == message_id, Message.status == MessageStatus.QUEUED)
    ).one_or_none()
    if message is None:
        session.rollback()
        log.info("message %s is not queued any more; nothing to do", message_id)
        return None
    lead = session.get_one(Lead, message.lead_id)

    verdict = gates.check(
        session,
        message,
        lead,
        policy=services.policy,
        clinic_zone=services.clinic.zone,
        now=now,
        catalog=services.catalog,
    )
    if not isinstance(verdict, gates.Proceed):
        return _not_now(session, message, verdict, now=now)

    if message.channel is Channel.SMS and services.throttle is not None:
        turn = _wait_for_turn(message, services.throttle, services.sms_sender)
        if turn is not None:
            done = _settle(
                session,
                message,
                MessageStatus.SCHEDULED,
                now=now,
                reason=f"waiting its turn ({services.throttle.per_second:g} text(s) a second)",
                due_at=now + timedelta(seconds=turn.wait),
                context={**message.context, SLOT: turn.at},
                expected=queued,
            )
            return MessageStatus.SCHEDULED if done else None

    context = content.context_for(
        lead,
        clinic=services.clinic,
        public_url=services.settings.public_url,
        secret=services.secret,
        purpose=message.purpose,
        alert=message.context,
    )
    try:
        record = services.templates.get(message.channel, message.template_key, session=session)
        # End the read before rendering: a template may take its whole render budget, and no
        # transaction (on SQLite, the write lock) may be held meanwhile. The UPDATE below
        # re-checks that the row is still `queued`.
        session.commit()
        rendered = content.render_record(services.templates, services.renderer, record, context)
    except (RenderError, TemplateNotFoundError) as error:
        done = _settle(
            session,
            message,
            MessageStatus.FAILED,
            now=now,
            reason=str(error),
            code="template",
            expected=queued,
        )
        return MessageStatus.FAILED if done else None
    # The caps again, in the claiming transaction and under a per-lead lock: another worker may
    # have started a text to this lead while this one rendered.
    verdict, claimed_at = gates.check_at_claim(
        session, message, lead, policy=services.policy, clinic_zone=services.clinic.zone
    )
    if not isinstance(verdict, gates.Proceed):
        return _not_now(session, message, verdict, now=claimed_at)
    taken = states.move(
        session,
        message.id,
        from_=queued,
        to=MessageStatus.SENDING,
        now=now,
        attempts=MESSAGES.c.attempts + 1,
        subject=rendered.subject,
        body=rendered.text,
        template_version=rendered.template_version,
        context={k: v for k, v in message.context.items() if k != SLOT},  # the turn is used
        provider_id=None,  # an earlier attempt's id is in message_attempts, not on the row
    )
    if taken != 1:
        session.rollback()
        return None
    # `sending` is committed before the provider sees anything: after a crash from here on the
    # row is `sending`, which the reaper turns into `unknown`, never into a second text.
    session.commit()
    # What the row now says, without marking the object dirty (no second UPDATE at the next flush).
    set_committed_value(message, "attempts", message.attempts + 1)
    return _deliver(session, message, lead, rendered, context.links.unsubscribe, services)


def _not_now(
    session: Session, message: Message, verdict: gates.Verdict, *, now: datetime
) -> MessageStatus | None:
    """A queued row the gates hold back: skipped for good, or scheduled for later."""
    queued = (MessageStatus.QUEUED,)
    if isinstance(verdict, gates.Skip):
        done = _settle(
            session, message, MessageStatus.SKIPPED, now=now, reason=verdict.reason, expected=queued
        )
        return MessageStatus.SKIPPED if done else None
    assert isinstance(verdict, gates.Defer)
    done = _settle(
        session,
        message,
        MessageStatus.SCHEDULED,
        now=now,
        reason=verdict.reason,
        due_at=verdict.until,
        expected=queued,
    )
    return MessageStatus.SCHEDULED if done else None


def _wait_for_turn(message: Message, throttle: SenderThrottle, sender: str) -> Slot | None:
    """None when this text may leave now; else its reserved slot, in the future.

    A text that already holds a slot (it waited its turn) uses it and takes no second one."""
    reserved = message.context.get(SLOT)
    if isinstance(reserved, (int, float)):
        now = throttle.now()
        return None if now >= reserved - TURN_EARLY else Slot(wait=reserved - now, at=reserved)
    slot = throttle.take(sender)
    return slot if slot.wait > TURN_EARLY else None


def _deliver(
    session: Session,
    message: Message,
    lead: Lead,
    rendered: content.RenderedContent,
    unsubscribe: str,
    services: Services,
) -> MessageStatus:
    attempt = _Attempt(started_at=clock.utcnow(), services=services)
    try:
        if message.channel is Channel.EMAIL:
            to = message.recipient or lead.email
            assert to is not None
            assert rendered.html is not None
            headers = (
                unsubscribe_headers(unsubscribe, services.settings.unsubscribe_mailto)
                if message.purpose is Purpose.MARKETING
                else {}
            )
            provider_id = services.email.send(
                OutgoingEmail(
                    to=to,
                    subject=rendered.subject or "",
                    text=rendered.text,
                    html=rendered.html,
                    reference=str(message.id),
                    headers=headers,
                )
            )
        else:
            assert lead.phone is not None
            provider_id = services.sms.send(
                OutgoingSms(
                    to=lead.phone,
                    body=rendered.text,
                    reference=str(message.id),
                    # Its reports name this message and attempt, even one that beats the answer.
                    status_query=reports.callback_query(message.id, message.attempts),
                )
            )
    except TransientDeliveryError as error:
        failed_at = clock.utcnow()
        if message.attempts >= services.settings.max_attempts:
            _settle(
                session,
                message,
                MessageStatus.FAILED,
                now=failed_at,
                reason=f"gave up after {message.attempts} attempts: {error.reason}",
                code=error.code,
                attempt=attempt,
            )
            return MessageStatus.FAILED
        base = timedelta(seconds=services.settings.retry_base)
        _settle(
            session,
            message,
            MessageStatus.SCHEDULED,
            now=failed_at,
            reason=error.reason,
            code=error.code,
            due_at=failed_at + retry_delay(message.attempts, base=base),
            attempt=attempt,
        )
        return MessageStatus.SCHEDULED
    except PermanentDeliveryError as error:
        failed_at = clock.utcnow()
        if message.channel is Channel.SMS and error.code and error.code.isdecimal():
            # The provider's code says more than "failed": an opt-out held by the carrier, a
            # landline, a filtered sender. The consequences commit with the row's move, and
            # stand even if someone settled the row meanwhile (ops marked it sent, say): they
            # are facts about the number, not about this row.
            provider_errors.apply_sms_error(
                session,
                message,
                int(error.code),
                clinic=services.clinic,
                public_url=services.settings.public_url,
                now=failed_at,
                actor=audit.WORKER,
            )
        _settle(
            session,
            message,
            MessageStatus.FAILED,
            now=failed_at,
            reason=error.reason,
            code=error.code,
            keep_staged=True,
            attempt=attempt,
        )
        return MessageStatus.FAILED
    except DeliveryOutcomeUnknownError as error:
        _settle(
            session,
            message,
            MessageStatus.UNKNOWN,
            now=clock.utcnow(),
            reason=error.reason,
            code=error.code,
            attempt=attempt,
        )
        return MessageStatus.UNKNOWN
    except Exception as error:
        # We cannot tell whether it left: for a text, a guess of "not sent" risks a duplicate.
        log.exception(
            "message %s: unexpected error from the %s transport", message.id, message.channel.value
        )
        _settle(
            session,
            message,
            MessageStatus.UNKNOWN,
            now=clock.utcnow(),
            reason=f"unexpected {type(error).__name__}; check before resending",
            code="unexpected",
            attempt=attempt,
        )
        return MessageStatus.UNKNOWN
    sent_at = clock.utcnow()
    _settle(
        session,
        message,
        MessageStatus.SENT,
        now=sent_at,
        provider_id=provider_id,
        sent_at=sent_at,
        attempt=attempt,
    )
    return MessageStatus.SENT


@dataclass(frozen=True)
class Reaped:
    requeued: list[Claimed]
    marked_unknown: int


def reap(
    session: Session, *, now: datetime, stale_queued: timedelta, stale_sending: timedelta
) -> Reaped:
    """Recover rows whose worker or task vanished.

    A row ``queued`` too long lost its task (a broker restart): it is handed back to be
    published again; if the old task turns up after all, only one of them can move the row to
    ``sending``. A row ``sending`` too long belongs to a worker that died mid-send: it may have
    left, so it becomes ``unknown`` for ops to settle, never resent automatically.
    """
    requeued = states.move_returning(
        session,
        MESSAGES.c.status_at < now - stale_queued,
        from_=(MessageStatus.QUEUED,),
        to=MessageStatus.QUEUED,  # status_at = now: not stale again until another wait
        now=now,
        returning=(MESSAGES.c.id, MESSAGES.c.channel),
    )
    stuck = states.move_returning(
        session,
        MESSAGES.c.status_at < now - stale_sending,
        from_=(MessageStatus.SENDING,),
        to=MessageStatus.UNKNOWN,
        now=now,
        returning=(MESSAGES.c.id, MESSAGES.c.lead_id),
        last_error="the worker stopped while sending; it may have gone out: settle it in ops",
        error_code="stale-sending",
    )
    for row in stuck:
        audit.record(
            session,
            actor=audit.WORKER,
            action="message.unknown",
            lead_id=row.lead_id,
            message_id=row.id,
            details={"reason": "stale sending"},
        )
    if requeued or stuck:
        log.warning(
            "reaper: %d queued rows re-enqueued, %d sending rows marked unknown",
            len(requeued),
            len(stuck),
        )
    return Reaped(
        requeued=[Claimed(row.id, row.channel) for row in requeued], marked_unknown=len(stuck)
    )
