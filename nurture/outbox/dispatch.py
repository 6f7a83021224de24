"""Claiming what is due, in batches for the send tasks, and reaping rows whose task vanished.

The state machine (DESIGN.md §4) is :mod:`nurture.outbox.states`: every move here is its
guarded ``move()``, a conditional UPDATE that moves a row only from the states named, so two
beats, or a reaper racing a worker, can never send one message twice. Sending a claimed batch
is :mod:`nurture.outbox.send`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import Channel, Message, MessageStatus
from nurture.outbox import pauses, states
from nurture.outbox.states import MESSAGES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: Channel


def claim_due(session: Session, *, now: datetime, limit: int) -> list[Claimed]:
    """Move up to ``limit`` due rows from ``scheduled`` to ``queued`` and return them.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets two dispatchers claim side by side without
    ever taking the same row; SQLite serialises writers, so it needs no such clause. Rows held by
    a kill switch are not claimed at all: they keep their place, untouched, until it is lifted.
    The caller commits, then publishes the rows as send batches (:func:`batches`).
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


def batches(claimed: Sequence[Claimed], size: int) -> Iterator[tuple[Channel, list[int]]]:
    """The claimed rows as send batches of at most ``size`` ids, each of one channel (each
    channel has its own queue and workers), in the order they were claimed."""
    for channel in Channel:
        ids = [row.id for row in claimed if row.channel is channel]
        for start in range(0, len(ids), size):
            yield channel, ids[start : start + size]


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
