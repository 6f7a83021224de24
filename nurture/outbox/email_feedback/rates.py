"""Bounce and complaint rates against e-mail sent, and the pause they trigger.

Gmail and Yahoo judge a sender by the share of its mail that recipients mark as spam: under
0.1 % is healthy, 0.3 % or more is trouble that takes days below it to clear. A rising rate
of permanent bounces says the list has gone stale. Past the policy's rates marketing e-mail
is paused (care e-mail, such as appointment reminders, still goes) until ops resume it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture.config.policy import EmailFeedback as FeedbackPolicy
from nurture.db.models import (
    Channel,
    EmailFeedback,
    EmailFeedbackKind,
    Message,
    Pause,
    PauseScope,
    Purpose,
)
from nurture.outbox import pauses

# Google's and Yahoo's sender guidelines (2024): keep complaints under the first, never reach
# the second.
COMPLAINT_TARGET = 0.001
COMPLAINT_LIMIT = 0.003
MARKETING_EMAIL = f"{Channel.EMAIL.value}:{Purpose.MARKETING.value}"
ACTOR = "email-feedback"


@dataclass(frozen=True)
class Rates:
    """Feedback against e-mails sent in one period (a UTC day, or the policy's window)."""

    start: datetime
    sent: int
    bounces: int  # permanent
    transient_bounces: int
    complaints: int

    @property
    def bounce_rate(self) -> float | None:
        return self.bounces / self.sent if self.sent else None

    @property
    def complaint_rate(self) -> float | None:
        return self.complaints / self.sent if self.sent else None

    @property
    def day(self) -> date:
        return self.start.date()


def _sent(session: Session, start: datetime, end: datetime) -> int:
    # E-mails to leads: staff alerts go to the clinic's own mailboxes.
    return int(
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.channel == Channel.EMAIL,
                Message.purpose != Purpose.ALERT,
                Message.sent_at >= start,
                Message.sent_at < end,
            )
        )
        or 0
    )


def _feedback(session: Session, start: datetime, end: datetime) -> Counter[EmailFeedbackKind]:
    return Counter(
        {
            kind: int(count)
            for kind, count in session.execute(
                select(EmailFeedback.kind, func.count())
                .where(EmailFeedback.received_at >= start, EmailFeedback.received_at < end)
                .group_by(EmailFeedback.kind)
            )
        }
    )


def rates(session: Session, start: datetime, end: datetime) -> Rates:
    counts = _feedback(session, start, end)
    return Rates(
        start=start,
        sent=_sent(session, start, end),
        bounces=counts[EmailFeedbackKind.BOUNCE],
        transient_bounces=counts[EmailFeedbackKind.TRANSIENT_BOUNCE],
        complaints=counts[EmailFeedbackKind.COMPLAINT],
    )


def last(session: Session, window: timedelta, *, now: datetime) -> Rates:
    """The rates over ``window`` up to and including ``now`` (a report recorded at ``now``
    counts at once)."""
    return rates(session, now - window, now + timedelta(microseconds=1))


def daily(session: Session, *, days: int, now: datetime) -> list[Rates]:
    """One line per UTC day, the last ``days`` days up to today, oldest first."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    starts = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    return [rates(session, start, start + timedelta(days=1)) for start in starts]


def over(policy: FeedbackPolicy, window: Rates) -> str | None:
    """Why the window's rates pause marketing e-mail, or None."""
    if window.sent < policy.min_sent:
        return None
    span = f"over the last {window_text(policy.window)} ({window.sent} e-mails sent)"
    if (window.complaint_rate or 0) >= policy.pause_at_complaint_rate:
        return (
            f"spam complaints at {percent(window.complaint_rate)} {span}, "
            f"the limit is {percent(policy.pause_at_complaint_rate)}"
        )
    if (window.bounce_rate or 0) >= policy.pause_at_bounce_rate:
        return (
            f"permanent bounces at {percent(window.bounce_rate)} {span}, "
            f"the limit is {percent(policy.pause_at_bounce_rate)}"
        )
    return None


def pause_marketing_if_over(
    session: Session, policy: FeedbackPolicy, *, now: datetime
) -> Pause | None:
    """Pause marketing e-mail (audited, nurture.outbox.pauses) when the window's rates reach
    the policy's; an active pause of it is not doubled."""
    reason = over(policy, last(session, policy.window, now=now))
    if reason is None:
        return None
    return pauses.pause(
        session,
        PauseScope.CHANNEL,
        MARKETING_EMAIL,
        reason=f"marketing e-mail paused: {reason}",
        actor=ACTOR,
        now=now,
    )


def percent(rate: float | None) -> str:
    if rate is None:
        return "–"
    return f"{rate * 100:.2f} %"


def window_text(window: timedelta) -> str:
    if window % timedelta(days=1) == timedelta():
        return f"{window.days} days"
    return f"{window.total_seconds() / 3600:g} hours"
