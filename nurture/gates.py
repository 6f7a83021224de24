"""The checks a message must pass at the moment it leaves, not when it was planned.

A STOP at 09:59 stops the 10:00 message because consent is read here, in the same transaction
that moves the row to ``sending``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from nurture import consent
from nurture.models import Channel, Enrollment, EnrollmentStatus, Lead, Message


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


def check(session: Session, message: Message, lead: Lead, *, now: datetime) -> Verdict:
    """Whether the message may go now, must wait, or must never go."""
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
    state = consent.current(session, lead.id)
    if not state.allows(message.channel, message.purpose):
        return Skip(f"no {message.channel.value} {message.purpose.value} consent")
    return Proceed()
