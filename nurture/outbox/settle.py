"""Settling a row: the guarded move, its audit entry, and, after a provider call, its attempt.

Nothing here commits or rolls back: the sender settles a whole batch in one transaction. A move
that finds the row already moved by someone else writes nothing but the attempt record (what
the provider was asked is a fact whatever became of the row). Counting and logging wait for
the commit (:func:`announce`), so a batch that did not commit counts nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_
from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import Channel, Message, MessageStatus
from nurture.outbox import outcome_metrics, states
from nurture.outbox.states import MESSAGES

log = logging.getLogger(__name__)

QUEUED = (MessageStatus.QUEUED,)
OWNED = states.IN_FLIGHT  # after the provider call: `sending`, or `unknown` if the reaper guessed


@dataclass(frozen=True)
class Settled:
    """A move made, to be counted and logged once its transaction has committed."""

    message_id: int
    lead_id: uuid.UUID
    channel: Channel
    sequence: str | None
    step: str
    status: MessageStatus
    due_at: datetime
    sent_at: datetime | None
    code: str | None


def move(
    session: Session,
    message: Message,
    status: MessageStatus,
    *,
    now: datetime,
    expected: tuple[MessageStatus, ...],
    reason: str | None = None,
    code: str | None = None,
    attempt: int | None = None,
    **values: Any,
) -> Settled | None:
    """Move the row to ``status`` if it is still in an ``expected`` state (and, with
    ``attempt``, still on that attempt: a slow attempt 1 never settles attempt 2); audit it.
    None when someone else moved the row first."""
    rows: states.Rows = message.id
    if attempt is not None:
        rows = and_(MESSAGES.c.id == message.id, MESSAGES.c.attempts == attempt)
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
    if moved != 1:
        return None
    audit.record_fast(
        session,
        actor=audit.WORKER,
        action=f"message.{status.value}",
        lead_id=message.lead_id,
        message_id=message.id,
        details=_details(message, reason, code, values),
        now=now,
    )
    return _settled(message, status, code, values)


@dataclass(frozen=True)
class Move:
    """One row's move for :func:`move_all`: what :func:`move` takes, as a value."""

    message: Message
    status: MessageStatus
    now: datetime
    expected: tuple[MessageStatus, ...]
    reason: str | None = None
    code: str | None = None
    attempt: int | None = None
    values: Mapping[str, Any] = field(default_factory=dict)


def move_all(
    session: Session, moves: Sequence[Move], *, trail: audit.Trail
) -> list[Settled] | None:
    """Every move of ``moves``, in as few round trips as their kinds allow (one per target
    state and set of columns), their audit entries noted on ``trail``; each row's
    :class:`Settled`, in order. None when any row had been moved by someone else meanwhile:
    the caller rolls back and settles the rows one at a time with :func:`move`, which can
    tell which (a batch of rows nobody else touched is by far the common case)."""
    groups: dict[tuple[Any, ...], list[Move]] = {}
    for one in moves:
        kind = (one.status, one.expected, one.attempt is None, tuple(sorted(one.values)))
        groups.setdefault(kind, []).append(one)
    for group in groups.values():
        changes = [
            states.Change(
                one.message,
                one.now,
                {"last_error": one.reason, "error_code": one.code, **one.values},
                attempt=one.attempt,
            )
            for one in group
        ]
        if not states.move_all(session, changes, from_=group[0].expected, to=group[0].status):
            return None
    for one in moves:
        trail.add(
            actor=audit.WORKER,
            action=f"message.{one.status.value}",
            lead_id=one.message.lead_id,
            message_id=one.message.id,
            details=_details(one.message, one.reason, one.code, one.values),
            at=one.now,
        )
    return [_settled(one.message, one.status, one.code, one.values) for one in moves]


def _details(
    message: Message, reason: str | None, code: str | None, values: Mapping[str, Any]
) -> dict[str, Any]:
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
    return details


def _settled(
    message: Message, status: MessageStatus, code: str | None, values: Mapping[str, Any]
) -> Settled:
    return Settled(
        message_id=message.id,
        lead_id=message.lead_id,
        channel=message.channel,
        sequence=message.sequence_key,
        step=message.step_key,
        status=status,
        due_at=message.due_at,
        sent_at=values.get("sent_at"),
        code=code,
    )


def announce(settled: Iterable[Settled | None]) -> None:
    """Count and log moves whose transaction has committed."""
    for one in settled:
        if one is None:
            continue
        outcome_metrics.record_outcome(
            one.channel.value,
            one.status.value,
            due_at=one.due_at,
            sent_at=one.sent_at,
            code=one.code,
        )
        log.info(
            "message %s %s",
            one.message_id,
            one.status.value,
            extra={
                "message_id": one.message_id,
                "lead_id": str(one.lead_id),
                "sequence": one.sequence,
                "step": one.step,
                "channel": one.channel.value,
                "status": one.status.value,
            },
        )
