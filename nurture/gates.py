"""The checks a message must pass at the moment it leaves, not when it was planned.

A STOP at 09:59 stops the 10:00 message because consent is read here, in the same transaction
that moves the row to ``sending``. The answer is one of: go now, wait until a later instant (the
row goes back to ``scheduled``, never dropped), or never (``skipped`` with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture import consent, pauses, windows
from nurture.models import (
    Channel,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.policy import Policy
from nurture.rendering import describe_local_time

# How long a row held by a kill switch waits before it is looked at again.
PAUSE_RECHECK = timedelta(minutes=5)
# How long after the opt-in confirmation another text to the same number may follow.
OPTIN_FIRST_GAP = timedelta(minutes=1)


@dataclass(frozen=True)
class Proceed:
    pass


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Defer:
    until: datetime
    reason: str


Verdict = Proceed | Skip | Defer


def check(
    session: Session,
    message: Message,
    lead: Lead,
    *,
    policy: Policy,
    clinic_zone: ZoneInfo,
    now: datetime,
) -> Verdict:
    """Whether the message may go now, must wait, or must never go."""
    if message.purpose is Purpose.ALERT:
        # Staff alerts about a crisis go at once: no consent (they are not to the lead), no pause.
        return Proceed() if message.recipient else Skip("an alert without a recipient")
    verdict = _never(session, message, lead, policy=policy, now=now)
    if verdict is not None:
        return verdict
    pause = pauses.matching(pauses.active(session), message)
    if pause is not None:
        return Defer(now + PAUSE_RECHECK, f"paused ({pause.scope.value}): {pause.reason}")
    if message.channel is Channel.SMS and message.purpose is not Purpose.OPTIN:
        optin_due = session.scalar(
            select(Message.due_at)
            .where(
                Message.lead_id == lead.id,
                Message.purpose == Purpose.OPTIN,
                Message.status.in_(
                    (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING)
                ),
            )
            .limit(1)
        )
        if optin_due is not None:
            # CTIA: the opt-in confirmation is the first text a number receives.
            return Defer(
                max(optin_due, now) + OPTIN_FIRST_GAP,
                "waiting for the opt-in confirmation to go first",
            )
    return _timing(session, message, lead, policy=policy, clinic_zone=clinic_zone, now=now)


def _never(
    session: Session, message: Message, lead: Lead, *, policy: Policy, now: datetime
) -> Skip | None:
    if message.channel is Channel.EMAIL and not lead.email:
        return Skip("the lead has no e-mail address")
    if message.channel is Channel.SMS and not lead.phone:
        return Skip("the lead has no phone number")
    if message.not_after is not None and now > message.not_after:
        return Skip("past its not_after time")
    if message.enrollment_id is not None:
        enrollment = session.get(Enrollment, message.enrollment_id)
        if enrollment is None or enrollment.status is not EnrollmentStatus.ACTIVE:
            return Skip("the enrolment has ended")
    if not consent.current(session, lead.id).allows(message.channel, message.purpose):
        return Skip(f"no {message.channel.value} {message.purpose.value} consent")
    if message.purpose is Purpose.MARKETING and lead.marketing_paused_at is not None:
        return Skip(
            f"marketing is paused for this lead: {lead.marketing_pause_reason or 'by staff'}"
        )
    if message.channel is Channel.SMS:
        return _sms_never(session, message, lead, policy=policy, now=now)
    return None


def _sms_never(
    session: Session, message: Message, lead: Lead, *, policy: Policy, now: datetime
) -> Skip | None:
    region = windows.phone_region(lead.phone)
    if region not in policy.sms.countries:
        return Skip(f"texts go only to numbers in {', '.join(policy.sms.countries)}")
    if lead.sms_unreachable_at is not None:
        return Skip("the number cannot receive texts (reported by the provider)")
    if message.purpose is not Purpose.OPTIN:
        return None
    recent = session.scalar(
        select(Message.id)
        .where(
            Message.lead_id == lead.id,
            Message.purpose == Purpose.OPTIN,
            Message.sent_at > now - policy.sms.optin_confirmation_every,
            Message.id != message.id,
        )
        .limit(1)
    )
    if recent is not None:
        return Skip("the opt-in confirmation was already sent to this number recently")
    return None


def _timing(
    session: Session,
    message: Message,
    lead: Lead,
    *,
    policy: Policy,
    clinic_zone: ZoneInfo,
    now: datetime,
) -> Verdict:
    zones = windows.resolve_zones(lead.timezone, lead.postal_code, lead.phone, clinic_zone)
    states = (
        windows.resolve_states(lead.state, lead.postal_code, lead.phone)
        if message.channel is Channel.SMS
        else frozenset()
    )
    schedule = windows.schedule_for(policy, message.channel.value, message.purpose.value, states)
    earliest = now
    why = "outside the allowed hours"
    if schedule.cap_per_24h is not None:
        sent = session.scalars(
            select(Message.sent_at).where(
                Message.lead_id == lead.id,
                Message.channel == message.channel,
                Message.purpose == message.purpose,
                Message.sent_at > now - timedelta(hours=24),
                Message.status.in_(
                    (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)
                ),
            )
        ).all()
        release = windows.cap_release([t for t in sent if t is not None], schedule.cap_per_24h, now)
        if release is not None:
            earliest, why = release, f"at most {schedule.cap_per_24h} per 24 hours"
    allowed = windows.next_allowed(earliest, schedule, zones)
    if allowed is None:
        return Skip("no allowed sending time in the next three weeks")
    if allowed == now:
        return Proceed()
    if message.not_after is not None and allowed > message.not_after:
        return Skip(f"{why}, and the next allowed time is after its not_after time")
    local = describe_local_time(allowed, zones[0])
    return Defer(allowed, f"{why}; moved to {local}")
