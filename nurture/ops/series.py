"""The outbox over time, for the ops charts: sends, how late they went, failures by code.

Buckets are fixed lengths of UTC time (a bucket on a DST night is still one hour long); only
their labels are in the clinic's zone. Bucket edges fall on whole local units at the clinic's
offset now (minutes, hours, 00:00/06:00/12:00/18:00), and the last bucket holds now, so the
newest numbers are always on the right. Every bucket is present, zero when nothing happened.

Each query is bounded by time on an indexed column, (status, status_at), so its cost follows the
window, not the table: a row's ``sent_at`` is never after its ``status_at`` (every move sets
``status_at`` to its own instant, and a row gets ``sent_at`` in a move at or before it), so
``status_at >= start`` keeps every row sent since ``start``. All of them run in the caller's
session: open it read-only and close it before rendering.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.db.models import Message, MessageStatus
from nurture.ops.console import percentile

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAILED_STATES = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
NO_CODE = "none"  # a failure the provider gave no code for, as the failures table says


@dataclass(frozen=True)
class Window:
    """A span of time cut into equal buckets, with how a bucket's start is labelled."""

    key: str
    span: timedelta
    bucket: timedelta
    label_format: str  # strftime, applied to the bucket's start in the clinic's zone
    text: str  # "the last 24 h", for sentences

    @property
    def count(self) -> int:
        return self.span // self.bucket


LAST_HOUR = Window("1h", timedelta(hours=1), timedelta(minutes=1), "%H:%M", "the last hour")
LAST_DAY = Window("24h", timedelta(hours=24), timedelta(hours=1), "%H:%M", "the last 24 h")
LAST_WEEK = Window("7d", timedelta(days=7), timedelta(hours=6), "%a %H:%M", "the last 7 days")
# The ranges the ops page switches between (the hour is always shown, per minute).
RANGES = {w.key: w for w in (LAST_DAY, LAST_WEEK)}


@dataclass(frozen=True)
class Buckets:
    window: Window
    starts: list[datetime]  # aware UTC, oldest first
    labels: list[str]  # the same instants in the clinic's zone

    @property
    def start(self) -> datetime:
        return self.starts[0]

    @property
    def end(self) -> datetime:
        return self.starts[-1] + self.window.bucket

    def index(self, instant: datetime) -> int | None:
        """Which bucket ``instant`` falls in, or None outside the window."""
        if not self.start <= instant < self.end:
            return None
        return int((instant - self.start) // self.window.bucket)


def buckets(window: Window, *, now: datetime, zone: ZoneInfo) -> Buckets:
    """``window``'s buckets up to and including the one that holds ``now``."""
    offset = now.astimezone(zone).utcoffset() or timedelta(0)
    # Floor in local wall-clock terms at today's offset, so edges fall on whole local units.
    local = now + offset
    floored = EPOCH + ((local - EPOCH) // window.bucket) * window.bucket
    end = floored - offset + window.bucket
    starts = [end - window.span + i * window.bucket for i in range(window.count)]
    return Buckets(window, starts, _labels(starts, window.label_format, zone))


def _labels(starts: list[datetime], label_format: str, zone: ZoneInfo) -> list[str]:
    """Local labels; where the zone's offset changes (a DST night) the label names the zone
    (``03:00 MDT``), so an hour that repeats or is skipped is not misread."""
    labels = []
    previous = None
    for start in starts:
        local = start.astimezone(zone)
        text = local.strftime(label_format)
        if previous is not None and local.utcoffset() != previous:
            text = f"{text} {local.tzname()}"
        previous = local.utcoffset()
        labels.append(text)
    return labels


@dataclass(frozen=True)
class SendSeries:
    """Sends per bucket and how late they went (seconds after ``due_at``; None: no sends)."""

    buckets: Buckets
    sends: list[int]
    late_p50: list[float | None]
    late_p95: list[float | None]


def sends(session: Session, window: Window, *, now: datetime, zone: ZoneInfo) -> SendSeries:
    """Every message that left in ``window`` (whatever became of it after), per bucket."""
    cut = buckets(window, now=now, zone=zone)
    lateness: list[list[float]] = [[] for _ in cut.starts]
    rows = session.execute(
        select(Message.sent_at, Message.due_at).where(
            Message.status.in_(tuple(MessageStatus)),  # lets the (status, status_at) index serve
            Message.status_at >= cut.start,
            Message.sent_at >= cut.start,
            Message.sent_at < cut.end,
        )
    )
    for sent_at, due_at in rows:
        slot = None if sent_at is None else cut.index(sent_at)  # the query keeps only the window
        if sent_at is not None and slot is not None:
            lateness[slot].append(max(0.0, (sent_at - due_at).total_seconds()))
    return SendSeries(
        buckets=cut,
        sends=[len(late) for late in lateness],
        late_p50=[percentile(late, 0.5) for late in lateness],
        late_p95=[percentile(late, 0.95) for late in lateness],
    )


@dataclass(frozen=True)
class FailureSeries:
    """Failed or undelivered messages per bucket, by error code, most frequent code first."""

    buckets: Buckets
    by_code: dict[str, list[int]]

    @property
    def total(self) -> int:
        return sum(sum(counts) for counts in self.by_code.values())


def failures(session: Session, window: Window, *, now: datetime, zone: ZoneInfo) -> FailureSeries:
    """Rows that became failed or undelivered in ``window``, by when they did and their code."""
    cut = buckets(window, now=now, zone=zone)
    counted: Counter[tuple[str, int]] = Counter()
    rows = session.execute(
        select(Message.status_at, Message.error_code).where(
            Message.status.in_(FAILED_STATES),
            Message.status_at >= cut.start,
            Message.status_at < cut.end,
        )
    )
    for status_at, code in rows:
        slot = cut.index(status_at)
        if slot is not None:
            counted[(code or NO_CODE, slot)] += 1
    totals: Counter[str] = Counter()
    for (code, _), n in counted.items():
        totals[code] += n
    by_code = {
        code: [counted[(code, slot)] for slot in range(len(cut.starts))]
        for code, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    }
    return FailureSeries(buckets=cut, by_code=by_code)
