"""What ops see and do: queue depths, the outbox at a glance, lateness, failures, kill
switches, retries, settling `unknown` rows, reconciling with the provider, purging bodies.

Every action is audited. Nothing here sends a message itself: actions move rows back to the
schedule and the dispatcher sends them, through every gate, like any other.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    func,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from nurture import db
from nurture.config.policy import EmailFeedback as EmailFeedbackPolicy
from nurture.db import audit
from nurture.db.models import (
    Channel,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Message,
    MessageStatus,
    Pause,
    PauseScope,
    Purpose,
    WorkerHeartbeat,
)
from nurture.outbox import pauses, states
from nurture.outbox.email_feedback import rates as email_rates
from nurture.program.sequences import Catalog
from nurture.transports import SmsTransport

HEARTBEAT_EVERY = timedelta(seconds=15)
ALIVE_WITHIN = timedelta(seconds=45)
LATENESS_SAMPLE = 10_000


# Failed rows listed with a retry button each (the codes table covers any more).
FAILED_LISTED = 50


class OpsError(ValueError):
    pass


# --- seeing -------------------------------------------------------------------------------


def record_heartbeat(
    session: Session, *, hostname: str, pid: int, queues: str, now: datetime
) -> None:
    beat = session.get(WorkerHeartbeat, hostname)
    if beat is None or beat.pid != pid:
        if beat is not None:
            session.delete(beat)
            session.flush()
        session.add(
            WorkerHeartbeat(
                hostname=hostname, pid=pid, queues=queues, started_at=now, last_seen=now
            )
        )
    else:
        beat.last_seen = now


def workers_alive(session: Session, now: datetime) -> list[WorkerHeartbeat]:
    return list(
        session.scalars(
            select(WorkerHeartbeat)
            .where(WorkerHeartbeat.last_seen > now - ALIVE_WITHIN)
            .order_by(WorkerHeartbeat.hostname)
        )
    )


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Lateness:
    due_now: int
    p50_seconds: float | None
    p95_seconds: float | None
    max_seconds: float | None
    oldest_scheduled: datetime | None


@dataclass
class SequenceLine:
    key: str
    name: str
    active_enrollments: int
    pending_rows: int
    sent_24h: int
    failed_24h: int


@dataclass
class EmailRatesLine:
    """One period's bounces and complaints against the e-mails sent to leads in it.

    ``complaint_level``: "ok" under Gmail's and Yahoo's 0.1 %, "high" from 0.1 %, "limit" at
    0.3 % or more, "none" with nothing sent."""

    start: datetime
    sent: int
    bounces: int
    transient_bounces: int
    complaints: int
    bounce_rate: float | None
    complaint_rate: float | None
    complaint_level: str


def _rates_line(rates: email_rates.Rates) -> EmailRatesLine:
    rate = rates.complaint_rate
    level = (
        "none"
        if rate is None
        else "limit"
        if rate >= email_rates.COMPLAINT_LIMIT
        else "high"
        if rate >= email_rates.COMPLAINT_TARGET
        else "ok"
    )
    return EmailRatesLine(
        start=rates.start,
        sent=rates.sent,
        bounces=rates.bounces,
        transient_bounces=rates.transient_bounces,
        complaints=rates.complaints,
        bounce_rate=rates.bounce_rate,
        complaint_rate=rate,
        complaint_level=level,
    )


EMAIL_RATE_DAYS = 14


def email_feedback_lines(
    session: Session, *, now: datetime, policy: EmailFeedbackPolicy | None = None
) -> tuple[list[EmailRatesLine], EmailRatesLine | None]:
    """The last 14 days' rates, and the rates over the policy's window (what pauses)."""
    days = [_rates_line(r) for r in email_rates.daily(session, days=EMAIL_RATE_DAYS, now=now)]
    window = None
    if policy is not None:
        window = _rates_line(email_rates.last(session, policy.window, now=now))
    return days, window


@dataclass
class Status:
    at: datetime
    queues: dict[str, int | None]
    workers: list[dict[str, Any]]
    counts: dict[str, dict[str, int]]  # status -> channel -> count
    lateness: Lateness
    sends_per_minute: list[int]  # the last 60 minutes, oldest first
    failures_by_code: dict[str, int]  # last 24 h
    retrying_by_code: dict[str, int]  # scheduled again after a transient error, waiting to retry
    unknown: list[dict[str, Any]]
    failed: list[dict[str, Any]]  # the last 24 h, newest first, at most FAILED_LISTED
    held_by_pause: int
    pauses: list[dict[str, Any]]
    sequences: list[SequenceLine] = field(default_factory=list)
    # Bounces and complaints against e-mail sent, per UTC day, oldest first (issue 13 §3).
    email_rates: list[EmailRatesLine] = field(default_factory=list)
    email_window: EmailRatesLine | None = None  # over the policy's window, when given one

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(
    session: Session,
    *,
    catalog: Catalog,
    queues: dict[str, int | None],
    now: datetime,
    email_feedback: EmailFeedbackPolicy | None = None,
) -> Status:
    """Everything the ops console and `nurture ops status` show, in one read.

    ``queues`` are the broker's depths (nurture.broker), read by the caller before the
    session opens: no network call inside the transaction."""
    counts: dict[str, dict[str, int]] = {
        s.value: {c.value: 0 for c in Channel} for s in MessageStatus
    }
    for state, channel, count in session.execute(
        select(Message.status, Message.channel, func.count()).group_by(
            Message.status, Message.channel
        )
    ):
        counts[state.value][channel.value] = int(count)
    due = [
        (now - due_at).total_seconds()
        for due_at in session.scalars(
            select(Message.due_at)
            .where(
                Message.status == MessageStatus.SCHEDULED,
                Message.due_at <= now,
                *pauses.held_out(session),
            )
            .order_by(Message.due_at)
            .limit(LATENESS_SAMPLE)
        )
    ]
    oldest = session.scalar(
        select(func.min(Message.due_at)).where(Message.status == MessageStatus.SCHEDULED)
    )
    hour_ago = now - timedelta(hours=1)
    per_minute = [0] * 60
    for sent_at in session.scalars(
        select(Message.sent_at).where(Message.sent_at >= hour_ago, Message.sent_at <= now)
    ):
        if sent_at is not None:
            per_minute[min(59, int((sent_at - hour_ago).total_seconds() // 60))] += 1
    failures = Counter(
        code or "none"
        for code in session.scalars(
            select(Message.error_code).where(
                Message.status.in_((MessageStatus.FAILED, MessageStatus.UNDELIVERED)),
                Message.status_at >= now - timedelta(hours=24),
            )
        )
    )
    unknown = [
        {
            "id": m.id,
            "channel": m.channel.value,
            "lead_id": str(m.lead_id),
            "step": m.step_key,
            "since": m.status_at.isoformat(),
            "reason": m.last_error,
        }
        for m in session.scalars(
            select(Message)
            .where(Message.status == MessageStatus.UNKNOWN)
            .order_by(Message.status_at)
            .limit(100)
        )
    ]
    # The failed rows themselves, newest first, so each can be retried by a button.
    failed = [
        {
            "id": m.id,
            "channel": m.channel.value,
            "lead_id": str(m.lead_id),
            "step": m.step_key,
            "status": m.status.value,
            "since": m.status_at.isoformat(),
            "code": m.error_code,
            "reason": m.last_error,
        }
        for m in session.scalars(
            select(Message)
            .where(
                Message.status.in_((MessageStatus.FAILED, MessageStatus.UNDELIVERED)),
                Message.status_at >= now - timedelta(hours=24),
            )
            .order_by(Message.status_at.desc(), Message.id.desc())
            .limit(FAILED_LISTED)
        )
    ]
    scheduled = (
        select(func.count()).select_from(Message).where(Message.status == MessageStatus.SCHEDULED)
    )
    held = int(session.scalar(scheduled) or 0) - int(
        session.scalar(scheduled.where(*pauses.held_out(session))) or 0
    )
    email_days, email_window = email_feedback_lines(session, now=now, policy=email_feedback)
    return Status(
        at=now,
        queues=queues,
        workers=[
            {
                "hostname": w.hostname,
                "pid": w.pid,
                "queues": w.queues,
                "last_seen": w.last_seen.isoformat(),
            }
            for w in workers_alive(session, now)
        ],
        counts=counts,
        lateness=Lateness(
            due_now=len(due),
            p50_seconds=percentile(due, 0.5),
            p95_seconds=percentile(due, 0.95),
            max_seconds=max(due) if due else None,
            oldest_scheduled=oldest,
        ),
        sends_per_minute=per_minute,
        failures_by_code=dict(failures.most_common()),
        retrying_by_code=dict(
            Counter(
                code or "none"
                for code in session.scalars(
                    select(Message.error_code).where(
                        Message.status == MessageStatus.SCHEDULED,
                        Message.attempts > 0,
                        Message.error_code.is_not(None),
                    )
                )
            ).most_common()
        ),
        unknown=unknown,
        failed=failed,
        held_by_pause=held,
        pauses=[
            {
                "id": p.id,
                "scope": p.scope.value,
                "value": p.value,
                "reason": p.reason,
                "by": p.created_by,
                "since": p.created_at.isoformat(),
            }
            for p in pauses.active(session)
        ],
        sequences=sequence_lines(session, catalog, now),
        email_rates=email_days,
        email_window=email_window,
    )


def sequence_lines(session: Session, catalog: Catalog, now: datetime) -> list[SequenceLine]:
    day_ago = now - timedelta(hours=24)
    active = dict(
        session.execute(
            select(Enrollment.sequence_key, func.count())
            .where(Enrollment.status == EnrollmentStatus.ACTIVE)
            .group_by(Enrollment.sequence_key)
        ).all()
    )
    pending = dict(
        session.execute(
            select(Message.sequence_key, func.count())
            .where(Message.status.in_((MessageStatus.SCHEDULED, MessageStatus.QUEUED)))
            .group_by(Message.sequence_key)
        ).all()
    )
    sent = dict(
        session.execute(
            select(Message.sequence_key, func.count())
            .where(Message.sent_at >= day_ago)
            .group_by(Message.sequence_key)
        ).all()
    )
    failed = dict(
        session.execute(
            select(Message.sequence_key, func.count())
            .where(
                Message.status.in_((MessageStatus.FAILED, MessageStatus.UNDELIVERED)),
                Message.status_at >= day_ago,
            )
            .group_by(Message.sequence_key)
        ).all()
    )
    return [
        SequenceLine(
            key,
            sequence.name,
            int(active.get(key, 0)),
            int(pending.get(key, 0)),
            int(sent.get(key, 0)),
            int(failed.get(key, 0)),
        )
        for key, sequence in sorted(catalog.by_key.items())
    ]


# --- doing --------------------------------------------------------------------------------


def start_pause(
    session: Session,
    scope: str,
    value: str | None,
    *,
    reason: str,
    actor: str,
    now: datetime,
    catalog: Catalog,
) -> Pause:
    """A kill switch: everything, one channel (email|sms) or one sequence."""
    try:
        kind = PauseScope(scope)
    except ValueError:
        raise OpsError(f"scope: use all, channel or sequence, not {scope!r}") from None
    if kind is PauseScope.ALL:
        value = None
    elif kind is PauseScope.CHANNEL and value not in {c.value for c in Channel}:
        raise OpsError(f"channel: use email or sms, not {value!r}")
    elif kind is PauseScope.SEQUENCE and value not in catalog.by_key:
        raise OpsError(
            f"sequence: no sequence {value!r}; known: {', '.join(sorted(catalog.by_key))}"
        )
    if not reason.strip():
        raise OpsError("reason: say why, for the people who come after you")
    return pauses.pause(session, kind, value, reason=reason.strip(), actor=actor, now=now)


def end_pause(
    session: Session, pause_id: int, *, overdue: Literal["send", "skip"], actor: str, now: datetime
) -> int:
    """Lift a pause. Rows that fell due while it held them are sent now ("send") or skipped
    with the reason "paused past due" ("skip"). Returns how many rows were skipped."""
    if overdue not in ("send", "skip"):
        raise OpsError(f"overdue: choose send or skip, not {overdue!r}")
    pause = session.get(Pause, pause_id)
    if pause is None or pause.ended_at is not None:
        raise OpsError(f"no active pause {pause_id}")
    pause.ended_at, pause.ended_by = now, actor
    session.flush()
    skipped = 0
    if overdue == "skip":
        held = _held_by(pause)
        still_held = pauses.held_out(session)  # other pauses keep their rows
        skipped = states.move(
            session,
            and_(Message.due_at < now, Message.purpose != Purpose.ALERT, held, *still_held),
            from_=(MessageStatus.SCHEDULED,),
            to=MessageStatus.SKIPPED,
            now=now,
            last_error="paused past due",
        )
    audit.record(
        session,
        actor=actor,
        action="pause.ended",
        details={
            "pause_id": pause.id,
            "scope": pause.scope.value,
            "value": pause.value,
            "overdue": overdue,
            "skipped": skipped,
        },
    )
    return skipped


def _held_by(pause: Pause) -> Any:
    return pauses.held_by(pause)


def retry_failed(
    session: Session,
    *,
    ids: list[int] | None = None,
    error_code: str | None = None,
    actor: str,
    now: datetime,
) -> int:
    """Failed rows (by id, or every one with an error code) go back to the schedule, due now."""
    if not ids and not error_code:
        raise OpsError("name the rows: ids, or an error code")
    count = states.move(
        session,
        ids if ids else Message.error_code == error_code,
        from_=(MessageStatus.FAILED, MessageStatus.UNDELIVERED),
        to=MessageStatus.SCHEDULED,
        now=now,
        due_at=now,
        last_error="retried by ops",
    )
    audit.record(
        session,
        actor=actor,
        action="ops.retried",
        details={"ids": ids, "error_code": error_code, "rows": count},
    )
    return count


def settle_unknown(
    session: Session,
    message_id: int,
    *,
    sent: bool,
    provider_id: str | None,
    actor: str,
    now: datetime,
    confirm_duplicate: bool = False,
) -> Message:
    """An `unknown` row: record it as sent (it did go out), or send it again. Resending may
    make the person receive it twice, so it needs an explicit confirmation."""
    message = session.get(Message, message_id, with_for_update=True)
    if message is None or message.status is not MessageStatus.UNKNOWN:
        raise OpsError(f"message {message_id} is not unknown")
    if sent:
        if not provider_id:
            raise OpsError(
                "provider_id: give the provider's id for the message (Twilio SM…, a Message-ID)"
            )
        action, target = "ops.settled_sent", MessageStatus.SENT
        values: dict[str, Any] = {
            "provider_id": provider_id,
            "sent_at": message.sent_at or message.status_at,
        }
    else:
        if not confirm_duplicate:
            raise OpsError("resending may duplicate the message; confirm that you accept that")
        action, target, values = "ops.resent", MessageStatus.SCHEDULED, {"due_at": now}
    values["last_error"] = f"{action.removeprefix('ops.')} by {actor}"
    # Locked above on PostgreSQL; the guard still refuses a row a report settled meanwhile.
    if not states.move(
        session, message, from_=(MessageStatus.UNKNOWN,), to=target, now=now, **values
    ):
        raise OpsError(f"message {message_id} is not unknown")
    audit.record(
        session,
        actor=actor,
        action=action,
        lead_id=message.lead_id,
        message_id=message.id,
        details={"provider_id": provider_id},
    )
    return message


def purge_bodies(session: Session, *, older_than: timedelta, actor: str, now: datetime) -> int:
    """Minimum necessary: forget what old messages said, keep that and when they were sent."""
    result = session.execute(
        update(Message)
        .where(
            Message.created_at < now - older_than,
            or_(Message.body.is_not(None), Message.subject.is_not(None)),
            not_(
                Message.status.in_(
                    (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING)
                )
            ),
        )
        .values(body=None, subject=None, context={})
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    audit.record(
        session,
        actor=actor,
        action="ops.purged_bodies",
        details={"older_than_days": older_than.days, "rows": count},
    )
    return count


@dataclass(frozen=True)
class UnknownText:
    """What the provider is asked about one `unknown` text (read before any call is made)."""

    id: int
    lead_id: uuid.UUID
    to: str
    body: str
    status_at: datetime
    sent_at: datetime | None


def reconcile_unknown(
    session: Session,
    sms: SmsTransport,
    *,
    now: datetime,
    older_than: timedelta = timedelta(minutes=2),
) -> int:
    """Settle `unknown` texts by asking the provider for a message to that number, with that
    body, since the attempt. Found → `sent` with its id. Not found, by a provider that answered
    → it never left, so it goes back to the schedule: a timeout that lost the request is retried
    with no risk of a second text. The provider cannot be asked → left as it is, for next time.

    No transaction is open while the provider is asked (on SQLite one would hold the write
    lock over HTTP): the rows are read in a short read-only transaction of their own, then the
    provider is asked, and only then are the answers written, in the caller's ``session`` (which
    must not have begun its work yet), through the guarded move: a row that ops or a delivery
    report settled in the meantime is left as it is."""
    texts = unknown_texts(session.get_bind(), older_than=older_than, now=now)
    answers: list[tuple[UnknownText, str | None]] = []
    for unknown in texts:
        try:
            provider_id = sms.find_sent(
                to=unknown.to,
                body=unknown.body,
                since=unknown.status_at - timedelta(hours=1),
                reference=str(unknown.id),
            )
        except LookupError:
            continue
        answers.append((unknown, None if provider_id is None else str(provider_id)))
    return sum(settle_answer(session, unknown, found, now=now) for unknown, found in answers)


def unknown_texts(
    bind: Engine | Connection, *, older_than: timedelta, now: datetime, limit: int = 100
) -> list[UnknownText]:
    """The `unknown` texts old enough to ask about, read in a transaction that ends at once."""
    query = (
        select(
            Message.id,
            Message.lead_id,
            # Where the text went: a staff alert (the on-call page) goes to its recipient.
            func.coalesce(Message.recipient, Lead.phone).label("phone"),
            Message.body,
            Message.status_at,
            Message.sent_at,
        )
        .join(Lead, Lead.id == Message.lead_id)
        .where(
            Message.status == MessageStatus.UNKNOWN,
            Message.channel == Channel.SMS,
            Message.status_at < now - older_than,
        )
        .order_by(Message.status_at)
        .limit(limit)
    )
    with db.read_only(bind.engine).connect() as connection:
        rows = connection.execute(query).all()
    return [
        UnknownText(row.id, row.lead_id, row.phone, row.body, row.status_at, row.sent_at)
        for row in rows
        if row.phone and row.body  # nothing to ask the provider about
    ]


def settle_answer(
    session: Session, unknown: UnknownText, provider_id: str | None, *, now: datetime
) -> int:
    """Apply the provider's answer about one `unknown` text; 1 if the row moved, else 0."""
    if provider_id is None:
        action, details = "ops.reconciled_not_sent", {}
        moved = states.move(
            session,
            unknown.id,
            from_=(MessageStatus.UNKNOWN,),
            to=MessageStatus.SCHEDULED,
            now=now,
            due_at=now,
            last_error="the provider has no record of it: sending again",
        )
    else:
        action, details = "ops.reconciled", {"provider_id": provider_id}
        moved = states.move(
            session,
            unknown.id,
            from_=(MessageStatus.UNKNOWN,),
            to=MessageStatus.SENT,
            now=now,
            provider_id=provider_id,
            sent_at=unknown.sent_at or unknown.status_at,
            last_error="settled: the provider has it",
        )
    if not moved:
        return 0
    audit.record(
        session,
        actor="reconciler",
        action=action,
        lead_id=unknown.lead_id,
        message_id=unknown.id,
        details=details,
    )
    return 1
