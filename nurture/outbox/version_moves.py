"""Moving the leads enrolled now onto a sequence's new version, and the preview of it
(issue 15 §1).

An enrolment keeps the version it began with unless the publisher chooses to move it. The
preview and the move are one computation: :func:`plan_move` works out, for every active
enrolment, which of its pending messages go, which come and which change time, with the
planner's own due times and the gates' own sending hours; :func:`apply_move` recomputes that
plan inside the publishing transaction and carries it out. What the publisher saw is what
happens, unless the rows changed in between (a send went out meanwhile), and then what happens
is what is true at the moment of publishing.

Rules of a move:
- a step whose message was already sent (or failed, skipped, cancelled) is never planned
  again: nobody gets a message twice because a sequence was edited;
- a new step whose time has already passed is not sent late: a burst of old steps is worse
  than a missing one;
- rows are never edited in place: a changed step's pending row is cancelled and a new one
  planned, under an idempotency key of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, load_only

from nurture.config.policy import Policy
from nurture.db import audit
from nurture.db.models import (
    Channel,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Message,
    MessageStatus,
)
from nurture.outbox import planner, promotions, states
from nurture.outbox.expected_send import expected_send
from nurture.program import sequence_store, windows
from nurture.program.sequences import Sequence

# What a move reads of each message: what planning and the expected send time look at.
PLANNING_COLUMNS = (
    Message.id,
    Message.enrollment_id,
    Message.lead_id,
    Message.sequence_key,
    Message.step_key,
    Message.channel,
    Message.purpose,
    Message.template_key,
    Message.anchor,
    Message.anchor_version,
    Message.due_at,
    Message.not_after,
    Message.status,
    Message.last_error,
)
# How many enrolments one preview lists lead by lead; the counts cover all of them.
PREVIEW_LEADS = 200


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    MOVED = "moved"  # the same step at another time
    CHANGED = "changed"  # the same step and time, another template or channel
    LATE = "late"  # a new step whose time has passed: not sent


@dataclass(frozen=True)
class RowChange:
    kind: ChangeKind
    step_key: str
    channel: Channel
    template_before: str | None
    template_after: str | None
    # When it would leave (UTC), by the gates' sending hours: on the version the lead is on,
    # and on the new one. None where there is no message.
    before: datetime | None
    after: datetime | None
    message_id: int | None  # the pending row that is cancelled (removed, moved, changed)
    why: str | None = None  # for a late step: why it is not sent


@dataclass(frozen=True)
class EnrolmentChange:
    enrollment_id: int
    lead_id: uuid.UUID
    lead_label: str  # "Maria G.": enough to recognise, no contact details
    zone: ZoneInfo  # the lead's zone, to show the times in
    on_version: int
    changes: tuple[RowChange, ...]


@dataclass(frozen=True)
class MovePlan:
    key: str
    to_version: int
    active: int  # active enrolments not on the new version already
    enrolments: tuple[EnrolmentChange, ...]  # those whose messages change, at most PREVIEW_LEADS
    changed: int  # how many enrolments' messages change in all

    @property
    def unchanged(self) -> int:
        return self.active - self.changed


def plan_move(
    session: Session,
    new: Sequence,
    *,
    policy: Policy,
    clinic_zone: ZoneInfo,
    now: datetime,
    limit: int | None = PREVIEW_LEADS,
) -> MovePlan:
    """What moving every active enrolment of ``new.key`` onto ``new`` would change. Reads
    only; renders nothing."""
    work = _work(session, new, policy=policy, clinic_zone=clinic_zone, now=now)
    return _summary(new, work, clinic_zone, limit=limit)


def _summary(
    new: Sequence, work: list[_Work], clinic_zone: ZoneInfo, *, limit: int | None
) -> MovePlan:
    changing = [(enrolment, lead, changes) for enrolment, lead, changes, _ in work if changes]
    return MovePlan(
        key=new.key,
        to_version=new.version,
        active=len(work),
        enrolments=tuple(
            _described(enrolment, lead, changes, clinic_zone)
            for enrolment, lead, changes in changing[:limit]
        ),
        changed=len(changing),
    )


def apply_move(
    session: Session,
    new: Sequence,
    *,
    policy: Policy,
    clinic_zone: ZoneInfo,
    now: datetime,
    actor: str,
) -> MovePlan:
    """Move every active enrolment of ``new.key`` onto ``new``, in the caller's transaction
    (the one that publishes ``new``); audited per enrolment as ``enrollment.moved``."""
    work = _work(session, new, policy=policy, clinic_zone=clinic_zone, now=now)
    summary = _summary(new, work, clinic_zone, limit=PREVIEW_LEADS)  # as it was before
    reason = f"{new.key} version {new.version} was published and this enrolment moved to it"
    for enrolment, lead, changes, planned in work:
        from_version = enrolment.sequence_version
        # Only scheduled rows are ever replaced, each by a guarded move: a row the dispatcher
        # claimed in the meantime goes as it was planned, and its replacement is not written.
        cancelled = {
            change.message_id
            for change in changes
            if change.message_id is not None
            and states.move(
                session,
                change.message_id,
                from_=(MessageStatus.SCHEDULED,),
                to=MessageStatus.CANCELLED,
                now=now,
                last_error=reason,
            )
        }
        rows = [values for replaced, values in planned if replaced is None or replaced in cancelled]
        if rows:
            session.execute(insert(planner.MESSAGES), rows)
        enrolment.sequence_version = new.version
        audit.record(
            session,
            actor=actor,
            action="enrollment.moved",
            lead_id=lead.id,
            details={
                "sequence": new.key,
                "from_version": from_version,
                "to_version": new.version,
                "cancelled": len(cancelled),
                "planned": len(rows),
            },
        )
    session.flush()
    return summary


@dataclass(frozen=True)
class Published:
    version: int  # the live version now (a rollback publishes a copy under a new number)
    moved: MovePlan | None  # None: the enrolments were kept on their versions


class StaleReviewError(ValueError):
    """The live version is no longer the one the publisher reviewed the change against."""


def publish_version(
    session: Session,
    key: str,
    version: int,
    *,
    move: bool,
    reviewed: int | None,
    templates: Collection[tuple[Channel, str]],
    policy: Policy,
    clinic_zone: ZoneInfo,
    now: datetime,
    actor: str,
) -> Published:
    """Publish a sequence version and, if asked, move the active enrolments onto it: one
    transaction (the caller's), so a refused move publishes nothing. ``reviewed``: the live
    version the publisher saw the preview against (StaleReviewError when another publish came
    in between); None from the CLI, which shows no preview."""
    live = sequence_store.published(session, key)
    if reviewed is not None and (live.version if live else 0) != reviewed:
        raise StaleReviewError(
            f"{key} changed since your review: version "
            f"{live.version if live else 'none'} is live now, not {reviewed}; review again"
        )
    row = sequence_store.publish(
        session,
        key,
        version,
        templates=templates,
        author=actor,
        now=now,
        reviewed=reviewed,
        enrolments="move" if move else "keep",
    )
    if not move:
        return Published(row.version, None)
    new = sequence_store.parse(row.source, key, row.version, templates=None)
    moved = apply_move(session, new, policy=policy, clinic_zone=clinic_zone, now=now, actor=actor)
    return Published(row.version, moved)


# Each row to write, with the pending row it replaces (None: a step the lead had no row for).
_Planned = list[tuple[int | None, dict[str, Any]]]
_Work = tuple[Enrollment, Lead, list[RowChange], _Planned]


def _work(
    session: Session, new: Sequence, *, policy: Policy, clinic_zone: ZoneInfo, now: datetime
) -> list[_Work]:
    """For each active enrolment not yet on ``new``: the changes and the rows to insert."""
    enrolments = list(
        session.scalars(
            select(Enrollment)
            .where(
                Enrollment.sequence_key == new.key,
                Enrollment.status == EnrollmentStatus.ACTIVE,
                Enrollment.sequence_version != new.version,
            )
            .order_by(Enrollment.enrolled_at, Enrollment.id)
        )
    )
    if not enrolments:
        return []
    ids = [enrolment.id for enrolment in enrolments]
    leads = {
        lead.id: lead
        for lead in session.scalars(
            select(Lead).where(Lead.id.in_({enrolment.lead_id for enrolment in enrolments}))
        )
    }
    rows: dict[int, list[Message]] = {enrollment_id: [] for enrollment_id in ids}
    for message in session.scalars(
        select(Message)
        .where(Message.enrollment_id.in_(ids))
        .options(load_only(*PLANNING_COLUMNS))  # not the bodies of what was sent
        .order_by(Message.id)
    ):
        assert message.enrollment_id is not None
        rows[message.enrollment_id].append(message)
    promoted = planner.promotions_of(session, new)
    return [
        _one(
            enrolment,
            leads[enrolment.lead_id],
            rows[enrolment.id],
            new,
            promoted=promoted,
            policy=policy,
            clinic_zone=clinic_zone,
            now=now,
        )
        for enrolment in enrolments
    ]


def _one(
    enrolment: Enrollment,
    lead: Lead,
    rows: list[Message],
    new: Sequence,
    *,
    promoted: Mapping[str, promotions.Promotion],
    policy: Policy,
    clinic_zone: ZoneInfo,
    now: datetime,
) -> _Work:
    changes: list[RowChange] = []
    inserts: _Planned = []

    def when(message: Message) -> datetime | None:
        return expected_send(message, lead, policy=policy, clinic_zone=clinic_zone, now=now).at

    new_keys = {step.key for step in new.steps}
    for message in rows:
        if message.status is MessageStatus.SCHEDULED and message.step_key not in new_keys:
            changes.append(
                RowChange(
                    ChangeKind.REMOVED,
                    message.step_key,
                    message.channel,
                    message.template_key,
                    None,
                    when(message),
                    None,
                    message.id,
                )
            )
    for step in new.steps:
        values = planner.step_values(
            lead, enrolment, new, step, clinic_zone=clinic_zone, now=now, promoted=promoted
        )
        same_step = [m for m in rows if m.step_key == step.key]
        done, pending = _pending(same_step, values)
        if done:
            continue  # sent, failed, skipped, cancelled or on its way: never planned again
        for message in same_step:  # a row left from another anchor (the step's anchor changed)
            if message.status is MessageStatus.SCHEDULED and message is not pending:
                changes.append(
                    RowChange(
                        ChangeKind.REMOVED,
                        step.key,
                        message.channel,
                        message.template_key,
                        None,
                        when(message),
                        None,
                        message.id,
                    )
                )
        if values is None:
            continue  # its anchor is unknown: planned when the consult is booked
        if pending is not None and _same(pending, values):
            continue
        values["idempotency_key"] = (
            f"{planner.idempotency_key(enrolment.id, step.key, values['anchor_version'])}"
            f":v{new.version}"
        )
        late = values["status"] is not MessageStatus.SCHEDULED
        after = None if late else when(Message(**values))
        kind = (
            ChangeKind.LATE
            if late
            else ChangeKind.ADDED
            if pending is None
            else ChangeKind.CHANGED
            if pending.due_at == values["due_at"]
            else ChangeKind.MOVED
        )
        changes.append(
            RowChange(
                kind,
                step.key,
                step.channel,
                pending.template_key if pending is not None else None,
                values["template_key"],
                when(pending) if pending is not None else None,
                after,
                pending.id if pending is not None else None,
                values["last_error"],
            )
        )
        inserts.append((pending.id if pending is not None else None, values))
    return enrolment, lead, changes, inserts


def _pending(rows: list[Message], values: Mapping[str, Any] | None) -> tuple[bool, Message | None]:
    """Whether the step is done for this lead, and else its row a move would replace (None:
    it has none). The newest row planned for the step's anchor as it is now decides:
    scheduled, it may be replaced; anything else (sent, failed, cancelled by staff, queued)
    means done. With no such row, a message sent under another anchor also means done."""
    if values is None:
        return False, None
    anchor = (values["anchor"], values["anchor_version"])
    current = [m for m in rows if (m.anchor, m.anchor_version) == anchor]
    if current:
        newest = current[-1]
        return (False, newest) if newest.status is MessageStatus.SCHEDULED else (True, None)
    unsent = (MessageStatus.SCHEDULED, MessageStatus.CANCELLED)
    return any(m.anchor != anchor[0] and m.status not in unsent for m in rows), None


def _same(message: Message, values: Mapping[str, Any]) -> bool:
    return all(
        getattr(message, name) == values[name]
        for name in ("channel", "purpose", "template_key", "due_at", "not_after")
    )


def _described(
    enrolment: Enrollment, lead: Lead, changes: list[RowChange], clinic_zone: ZoneInfo
) -> EnrolmentChange:
    initial = f" {lead.last_name[:1]}." if lead.last_name else ""
    return EnrolmentChange(
        enrollment_id=enrolment.id,
        lead_id=lead.id,
        lead_label=f"{lead.first_name}{initial}".strip() or "someone who only texted",
        zone=windows.zones_of(lead, clinic_zone).shown,
        on_version=enrolment.sequence_version,
        changes=tuple(changes),
    )
