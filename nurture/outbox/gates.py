"""The checks a message must pass at the moment it leaves, not when it was planned.

A STOP at 09:59 stops the 10:00 message because consent is read here, in the same transaction
that moves the row to ``sending``. The answer is one of: go now, wait until a later instant (the
row goes back to ``scheduled``, never dropped), or never (``skipped`` with the reason).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture import clock, consent
from nurture.config.policy import Policy
from nurture.content.rendering import LeadView, consult_view, describe_local_time
from nurture.db.models import (
    Channel,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Message,
    MessageStatus,
    Pause,
    Purpose,
)
from nurture.outbox import pauses
from nurture.program import conditions, windows
from nurture.program.sequences import Catalog, Step

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


# How often a row held after crisis words looks again whether staff have lifted the hold.
CRISIS_RECHECK = timedelta(hours=1)
# How often a marketing e-mail held for a placeholder postal address looks again (the address
# is read at start-up: it goes at the first look after a restart with the real one).
ADDRESS_RECHECK = timedelta(hours=1)
PLACEHOLDER_ADDRESS = (
    "held: clinic.yaml's postal address is a placeholder, and marketing e-mail must carry a "
    "real one (CAN-SPAM); set the address, remove it from placeholders and restart"
)
PENDING_OPTIN = (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING)


@dataclass(frozen=True)
class Facts:
    """What the gates read from the database about some messages, read once for all of them:
    a send batch asks four queries, not four per row."""

    pauses: list[Pause]
    consents: dict[uuid.UUID, consent.ConsentState]
    enrollments: dict[int, EnrollmentStatus]
    # The sequence version each enrolment is on: a step's rules are read from that version.
    versions: dict[int, int]
    # The earliest due time of each lead's opt-in confirmation not yet sent.
    optin_pending: dict[uuid.UUID, datetime]


def read_facts(session: Session, messages: Sequence[Message]) -> Facts:
    lead_ids = {m.lead_id for m in messages}
    enrollment_ids = {m.enrollment_id for m in messages if m.enrollment_id is not None}
    texted = {m.lead_id for m in messages if m.channel is Channel.SMS}
    enrollments: dict[int, EnrollmentStatus] = {}
    versions: dict[int, int] = {}
    if enrollment_ids:
        for enrollment_id, status, version in session.execute(
            select(Enrollment.id, Enrollment.status, Enrollment.sequence_version).where(
                Enrollment.id.in_(enrollment_ids)
            )
        ):
            enrollments[enrollment_id] = status
            versions[enrollment_id] = version
    optin_pending: dict[uuid.UUID, datetime] = {}
    if texted:
        optin_pending = dict(
            session.execute(
                select(Message.lead_id, func.min(Message.due_at))
                .where(
                    Message.lead_id.in_(texted),
                    Message.purpose == Purpose.OPTIN,
                    Message.status.in_(PENDING_OPTIN),
                )
                .group_by(Message.lead_id)
            ).all()
        )
    return Facts(
        pauses=pauses.active(session),
        consents=consent.current_many(session, lead_ids),
        enrollments=enrollments,
        versions=versions,
        optin_pending=optin_pending,
    )


def check(
    session: Session,
    message: Message,
    lead: Lead,
    *,
    policy: Policy,
    clinic_zone: ZoneInfo,
    now: datetime,
    catalog: Catalog | None = None,
    facts: Facts | None = None,
    placeholder_address: bool = False,
) -> Verdict:
    """Whether the message may go now, must wait, or must never go. ``facts`` are what
    :func:`read_facts` read for a batch the message is in; without them they are read now.
    ``placeholder_address``: the clinic's postal address is still an example and e-mail
    reaches real inboxes, so marketing e-mail waits (compliance rule 17)."""
    if message.purpose is Purpose.ALERT:
        # Staff alerts about a crisis go at once: no consent (they are not to the lead), no pause.
        return Proceed() if message.recipient else Skip("an alert without a recipient")
    facts = facts or read_facts(session, [message])
    verdict = _never(session, message, lead, facts, policy=policy, now=now) or _step_rules(
        message, lead, catalog=catalog, facts=facts, clinic_zone=clinic_zone
    )
    if verdict is not None:
        return verdict
    pause = pauses.matching(facts.pauses, message)
    if pause is not None:
        # Back to the schedule with its own due time: the claim leaves paused rows alone, and
        # resuming can tell which became overdue while paused.
        return Defer(message.due_at, f"paused ({pause.scope.value}): {pause.reason}")
    if (
        placeholder_address
        and message.channel is Channel.EMAIL
        and message.purpose is Purpose.MARKETING
    ):
        return Defer(now + ADDRESS_RECHECK, PLACEHOLDER_ADDRESS)
    if lead.crisis_hold_at is not None and message.enrollment_id is not None:
        # Compliance rule 26: after crisis words no nurture send of any purpose goes until a
        # person has spoken to them. Held, not skipped: a consult reminder may still matter
        # once staff lift the hold, and its not_after ends it if it no longer does.
        return Defer(
            now + CRISIS_RECHECK,
            "held after crisis words until staff have spoken to them (lead page: Resume)",
        )
    if message.channel is Channel.SMS and message.purpose is not Purpose.OPTIN:
        optin_due = facts.optin_pending.get(lead.id)
        if optin_due is not None:
            # CTIA: the opt-in confirmation is the first text a number receives.
            return Defer(
                max(optin_due, now) + OPTIN_FIRST_GAP,
                "waiting for the opt-in confirmation to go first",
            )
    return _timing(session, message, lead, policy=policy, clinic_zone=clinic_zone, now=now)


def _step_rules(
    message: Message, lead: Lead, *, catalog: Catalog | None, facts: Facts, clinic_zone: ZoneInfo
) -> Skip | None:
    """The step's own rules, read now from the version the enrolment is on (a condition fixed
    by a publish applies at once to those who move to it)."""
    if catalog is None or message.sequence_key is None:
        return None
    version = facts.versions.get(message.enrollment_id) if message.enrollment_id else None
    step = catalog.step(message.sequence_key, message.step_key, version)
    return step_verdict(step, lead, clinic_zone) if step is not None else None


def step_verdict(step: Step, lead: Lead, clinic_zone: ZoneInfo) -> Skip | None:
    """Skip when the step asks for a confirmation already given, or its ``when:`` is false."""
    if step.confirm_request and lead.consult_confirmed_at is not None:
        return Skip("the consult is already confirmed")
    if step.when is not None:
        try:
            met = conditions.evaluate(step.when, condition_variables(lead, clinic_zone))
        except conditions.ConditionError as error:
            return Skip(str(error))
        if not met:
            return Skip(f"condition not met: {step.when}")
    return None


def condition_variables(lead: Lead, clinic_zone: ZoneInfo) -> dict[str, Any]:
    """What a ``when:`` expression sees: the lead and their consult, as plain values."""
    zone = windows.zones_of(lead, clinic_zone).shown
    return {
        "lead": LeadView(
            first_name=lead.first_name,
            last_name=lead.last_name,
            email=lead.email,
            phone=lead.phone,
            stage=lead.stage.value,
            attributes=dict(lead.attributes or {}),
        ),
        "consult": consult_view(
            lead.consult_at, zone, confirmed=lead.consult_confirmed_at is not None
        ),
    }


def _never(
    session: Session, message: Message, lead: Lead, facts: Facts, *, policy: Policy, now: datetime
) -> Skip | None:
    if message.channel is Channel.EMAIL and not lead.email:
        return Skip("the lead has no e-mail address")
    if message.channel is Channel.SMS and not lead.phone:
        return Skip("the lead has no phone number")
    if message.not_after is not None and now >= message.not_after:
        return Skip("past its not_after time")
    if (
        message.enrollment_id is not None
        and facts.enrollments.get(message.enrollment_id) is not EnrollmentStatus.ACTIVE
    ):
        return Skip("the enrolment has ended")
    granted = facts.consents.get(lead.id) or consent.current(session, lead.id)
    if not granted.allows(message.channel, message.purpose):
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


# What counts against a cap: every text that has left or may have left. A `sending` row is on its
# way and an `unknown` one may have arrived; leaving them out let two workers both pass the cap.
COUNTED_AGAINST_CAPS = (
    MessageStatus.SENDING,
    MessageStatus.UNKNOWN,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
)


def recent_sends(
    session: Session, lead: Lead, channel: Channel, purpose: Purpose, *, since: datetime
) -> list[datetime]:
    """When each of the lead's messages of this channel and purpose left (or began to leave)."""
    left_at = func.coalesce(Message.sent_at, Message.status_at)
    return [
        t
        for t in session.scalars(
            select(left_at).where(
                Message.lead_id == lead.id,
                Message.channel == channel,
                Message.purpose == purpose,
                Message.status.in_(COUNTED_AGAINST_CAPS),
                left_at > since,
            )
        )
        if t is not None
    ]


def _timing(
    session: Session,
    message: Message,
    lead: Lead,
    *,
    policy: Policy,
    clinic_zone: ZoneInfo,
    now: datetime,
) -> Verdict:
    schedule = schedule_for_lead(policy, lead, message.channel, message.purpose)
    sent: list[datetime] = []
    if schedule.capped:
        since = now - schedule.cap_lookback
        sent = recent_sends(session, lead, message.channel, message.purpose, since=since)
    zones = windows.zones_of(lead, clinic_zone).zones
    return timing(
        now, schedule=schedule, zones=zones, recent_sends=sent, not_after=message.not_after
    )


def check_at_claim(
    session: Session,
    message: Message,
    lead: Lead,
    *,
    policy: Policy,
    clinic_zone: ZoneInfo,
) -> tuple[Verdict, datetime]:
    """The timing gates again, in the transaction that claims the row, under a per-lead lock;
    with the instant they were checked at.

    Between :func:`check` and the claim the template renders outside any transaction, so
    another worker may have started a text to the same lead meanwhile. Locking the lead row
    (PostgreSQL; on SQLite the claim's BEGIN IMMEDIATE already serialises writers) and counting
    again makes the caps hold however many workers run: the second claim sees the first's
    `sending` row. The clock is read after the lock is held: a send the other worker settled
    while this one waited is not in this one's future."""
    if not schedule_for_lead(policy, lead, message.channel, message.purpose).capped:
        return Proceed(), clock.utcnow()  # no cap another send could have used up: no lock
    session.execute(select(Lead.id).where(Lead.id == lead.id).with_for_update())
    now = clock.utcnow()
    return _timing(session, message, lead, policy=policy, clinic_zone=clinic_zone, now=now), now


def schedule_for_lead(
    policy: Policy, lead: Lead, channel: Channel, purpose: Purpose
) -> windows.Schedule:
    states = (
        windows.resolve_states(lead.state, lead.postal_code, lead.phone)
        if channel is Channel.SMS
        else frozenset()
    )
    return windows.schedule_for(policy, channel.value, purpose.value, states)


def timing(
    now: datetime,
    *,
    schedule: windows.Schedule,
    zones: tuple[ZoneInfo, ...],
    recent_sends: list[datetime],
    not_after: datetime | None,
) -> Verdict:
    """Quiet hours and caps (pure): go now, wait until the next allowed instant, or never.

    The simulator calls this same function with its virtual clock."""
    earliest = now
    why = "outside the allowed hours"
    daily = windows.cap_release(recent_sends, schedule.cap_per_24h, now)
    if daily is not None:
        earliest, why = daily, f"at most {schedule.cap_per_24h} per 24 hours"
    weekly = windows.cap_release(recent_sends, schedule.cap_per_7d, now, window=timedelta(days=7))
    if weekly is not None and weekly > earliest:
        earliest, why = weekly, f"at most {schedule.cap_per_7d} in any 7 days"
    allowed = windows.next_allowed(earliest, schedule, zones)
    if allowed is None:
        return Skip("no allowed sending time in the next three weeks")
    if not_after is not None and allowed >= not_after:
        return Skip(f"{why}, and the next allowed time is not before its not_after time")
    if allowed == now:
        return Proceed()
    return Defer(allowed, f"{why}; moved to {describe_local_time(allowed, zones[0])}")
