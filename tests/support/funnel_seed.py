"""A small funnel whose true numbers are worked out by hand below (issue 15 §2, "done when").

Clinic zone America/Boise (MST, UTC-7; MDT, UTC-6 from 2026-03-08 02:00 local). Attribution
windows: e-mail 5 days, texts 1 day (the policy's defaults). All times below are UTC.

Leads (sign-up, source, what happened):

- L1 2026-02-23 16:00, facebook/spring. M1 welcome e-mail (v1) 02-23 16:05; M2 booking text
  02-24 17:00, clicked twice (17:30, 17:35). Booked 02-24 20:30: last touch M2, 3.5 h, inside
  the text's day. Consulted 02-26, became a patient 02-28.
- L2 2026-02-25 15:00, facebook/spring. M3 welcome (v1) 02-25 15:05. Booked 03-03 15:00: 5 days
  23 h 55 min after M3, outside the e-mail window: credited to nothing. A text opt-out on
  03-10 (no text was sent to L2: counted nowhere).
- L3 Sunday 2026-03-01 22:00 MST (03-02 05:00 UTC: the clinic's week 9, UTC's week 10),
  facebook/spring, sequence version 2. M4 welcome (v2, variant A) 03-02 05:05, status sent;
  M5 booking text failed 03-03 16:00 (never sent). E-mail opt-out 03-04 12:00, within M4's
  window. Staff marked L3 lost.
- L4 2026-03-04 17:00, google/brand, version 2. M6 welcome (v2, variant B) Friday 03-06 17:00
  (10:00 MST); clicked 03-07 12:00. Booked Wednesday 03-11 16:30 (10:30 MDT): five calendar days
  and half an hour later on the wall clock, but 119.5 h elapsed across the DST change: inside.
- L5 2026-03-05 18:00, google/brand, version 2. M7 welcome (v2, variant A) 03-05 18:05; M8
  booking text 03-06 18:00. Booked 03-07 19:00: the last touch is M8, 25 h before, outside the
  text's day; M7 (inside its own window) does not take the credit. M9, a reminder text in
  consult-reminders (template v3), undelivered 03-07 20:00.
- L6 2026-03-06 20:00, no source. One welcome still scheduled (not attempted: not counted).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from nurture.db.models import (
    Channel,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    Enrollment,
    EnrollmentStatus,
    Lead,
    LeadEvent,
    LeadStage,
    LinkClick,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.funnel import cohorts, numbers

NURTURE = "consult-nurture"
REMINDERS = "consult-reminders"
WELCOME = "welcome"
NUDGE = "booking-nudge-sms"
REMINDER = "reminder-sms"
S = MessageStatus


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


LEADS: dict[str, dict[str, Any]] = {
    "L1": {"at": at("2026-02-23 16:00"), "utm": ("facebook", "spring"), "stage": LeadStage.PATIENT},
    "L2": {"at": at("2026-02-25 15:00"), "utm": ("facebook", "spring"), "stage": LeadStage.BOOKED},
    "L3": {"at": at("2026-03-02 05:00"), "utm": ("facebook", "spring"), "stage": LeadStage.LOST},
    "L4": {"at": at("2026-03-04 17:00"), "utm": ("google", "brand"), "stage": LeadStage.BOOKED},
    "L5": {"at": at("2026-03-05 18:00"), "utm": ("google", "brand"), "stage": LeadStage.BOOKED},
    "L6": {"at": at("2026-03-06 20:00"), "utm": (None, None), "stage": LeadStage.SIGNED_UP},
}
# Enrolments: (lead, sequence, version).
ENROLMENTS = {
    "E1": ("L1", NURTURE, 1),
    "E2": ("L2", NURTURE, 1),
    "E3": ("L3", NURTURE, 2),
    "E4": ("L4", NURTURE, 2),
    "E5": ("L5", NURTURE, 2),
    "E5r": ("L5", REMINDERS, 1),
    "E6": ("L6", NURTURE, 2),
}


@dataclass(frozen=True)
class Sent:
    enrolment: str
    step: str
    channel: Channel
    template: str
    version: int
    variant: str | None
    status: MessageStatus
    when: datetime  # sent_at, or when it failed


MESSAGES: dict[str, Sent] = {
    "M1": Sent(
        "E1", WELCOME, Channel.EMAIL, "welcome", 1, None, S.DELIVERED, at("2026-02-23 16:05")
    ),
    "M2": Sent(
        "E1", NUDGE, Channel.SMS, "booking-nudge", 1, None, S.DELIVERED, at("2026-02-24 17:00")
    ),
    "M3": Sent(
        "E2", WELCOME, Channel.EMAIL, "welcome", 1, None, S.DELIVERED, at("2026-02-25 15:05")
    ),
    "M4": Sent("E3", WELCOME, Channel.EMAIL, "welcome", 2, "A", S.SENT, at("2026-03-02 05:05")),
    "M5": Sent(
        "E3", NUDGE, Channel.SMS, "booking-nudge", 1, None, S.FAILED, at("2026-03-03 16:00")
    ),
    "M6": Sent(
        "E4", WELCOME, Channel.EMAIL, "welcome", 2, "B", S.DELIVERED, at("2026-03-06 17:00")
    ),
    "M7": Sent(
        "E5", WELCOME, Channel.EMAIL, "welcome", 2, "A", S.DELIVERED, at("2026-03-05 18:05")
    ),
    "M8": Sent(
        "E5", NUDGE, Channel.SMS, "booking-nudge", 1, None, S.DELIVERED, at("2026-03-06 18:00")
    ),
    "M9": Sent(
        "E5r",
        REMINDER,
        Channel.SMS,
        "consult-reminder",
        3,
        None,
        S.UNDELIVERED,
        at("2026-03-07 20:00"),
    ),
    "M10": Sent(
        "E6", WELCOME, Channel.EMAIL, "welcome", 2, None, S.SCHEDULED, at("2026-03-09 16:00")
    ),
}
# Lifecycle events: (lead, type, when).
EVENTS = [
    ("L1", "consult_booked", at("2026-02-24 20:30")),
    ("L1", "consult_completed", at("2026-02-26 18:00")),
    ("L1", "became_patient", at("2026-02-28 18:00")),
    ("L2", "consult_booked", at("2026-03-03 15:00")),
    ("L4", "consult_booked", at("2026-03-11 16:30")),
    ("L5", "consult_booked", at("2026-03-07 19:00")),
]
CLICKS = [
    ("M2", at("2026-02-24 17:30")),
    ("M2", at("2026-02-24 17:35")),
    ("M6", at("2026-03-07 12:00")),
]
REVOCATIONS = [
    ("L3", Channel.EMAIL, at("2026-03-04 12:00")),
    ("L2", Channel.SMS, at("2026-03-10 12:00")),
]

_N = None  # a rate or median with nothing to divide by / nobody to take the middle of
# (reached, booked, booking_rate, median_hours, clicked, opted_out, opt_out_rate,
#  attempted, failed, failure_rate), worked out by hand from the timeline above.
EXPECTED: dict[str, list[tuple[tuple[Any, ...], tuple[Any, ...]]]] = {
    "sequence": [
        ((NURTURE,), (5, 2, 40.0, 61.5, 2, 1, 20.0, 8, 1, 12.5)),
        ((REMINDERS,), (0, 0, _N, _N, 0, 0, _N, 1, 1, 100.0)),
    ],
    "version": [
        ((NURTURE, 1), (2, 1, 50.0, 3.5, 1, 0, 0.0, 3, 0, 0.0)),
        ((NURTURE, 2), (3, 1, 33.3, 119.5, 1, 1, 33.3, 5, 1, 20.0)),
        ((REMINDERS, 1), (0, 0, _N, _N, 0, 0, _N, 1, 1, 100.0)),
    ],
    "step": [
        ((NURTURE, NUDGE), (2, 1, 50.0, 3.5, 1, 0, 0.0, 3, 1, 33.3)),
        ((NURTURE, WELCOME), (5, 1, 20.0, 119.5, 1, 1, 20.0, 5, 0, 0.0)),
        ((REMINDERS, REMINDER), (0, 0, _N, _N, 0, 0, _N, 1, 1, 100.0)),
    ],
    "template": [
        (("email", "welcome", 1), (2, 0, 0.0, _N, 0, 0, 0.0, 2, 0, 0.0)),
        (("email", "welcome", 2), (3, 1, 33.3, 119.5, 1, 1, 33.3, 3, 0, 0.0)),
        (("sms", "booking-nudge", 1), (2, 1, 50.0, 3.5, 1, 0, 0.0, 3, 1, 33.3)),
        (("sms", "consult-reminder", 3), (0, 0, _N, _N, 0, 0, _N, 1, 1, 100.0)),
    ],
    "channel": [
        (("email",), (5, 1, 20.0, 119.5, 1, 1, 20.0, 5, 0, 0.0)),
        (("sms",), (2, 1, 50.0, 3.5, 1, 0, 0.0, 4, 2, 50.0)),
    ],
    "variant": [
        ((NURTURE, NUDGE, None), (2, 1, 50.0, 3.5, 1, 0, 0.0, 3, 1, 33.3)),
        ((NURTURE, WELCOME, "A"), (2, 0, 0.0, _N, 0, 1, 50.0, 2, 0, 0.0)),
        ((NURTURE, WELCOME, "B"), (1, 1, 100.0, 119.5, 1, 0, 0.0, 1, 0, 0.0)),
        ((NURTURE, WELCOME, None), (2, 0, 0.0, _N, 0, 0, 0.0, 2, 0, 0.0)),
        ((REMINDERS, REMINDER, None), (0, 0, _N, _N, 0, 0, _N, 1, 1, 100.0)),
    ],
    "source": [
        (("facebook", "spring"), (3, 1, 33.3, 3.5, 1, 1, 33.3, 5, 1, 20.0)),
        (("google", "brand"), (2, 1, 50.0, 119.5, 1, 0, 0.0, 4, 1, 25.0)),
    ],
}
# (week, its Monday, signed_up, booked, consulted, patient, lost)
EXPECTED_COHORTS = [
    ("2026-W09", "2026-02-23", 3, 2, 1, 1, 1),
    ("2026-W10", "2026-03-02", 3, 2, 0, 0, 0),
]
# With since 2026-03-02 (the clinic's midnight, 07:00 UTC): M1-M4 and L1-L3 fall away.
EXPECTED_SINCE_CHANNEL = [
    (("email",), (2, 1, 50.0, 119.5, 1, 0, 0.0, 2, 0, 0.0)),
    (("sms",), (1, 0, 0.0, _N, 0, 0, 0.0, 3, 2, 66.7)),
]
EXPECTED_SINCE_COHORTS = [("2026-W10", "2026-03-02", 3, 2, 0, 0, 0)]


def expected_dicts(view: numbers.View) -> list[dict[str, Any]]:
    """The hand-worked rows in the shape of ``Report.as_dict()``."""
    return [
        {
            **dict(zip(view.columns, key, strict=True)),
            **dict(zip(numbers.NUMBERS, values, strict=True)),
        }
        for key, values in EXPECTED[view.name]
    ]


def cohort_dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    names = ("week", "starts", *cohorts.COUNTS)
    return [dict(zip(names, row, strict=True)) for row in rows]


@dataclass
class Seeded:
    lead_ids: dict[str, uuid.UUID]
    message_ids: dict[str, int]


def _ids() -> tuple[dict[str, uuid.UUID], dict[str, int]]:
    leads = {name: uuid.uuid5(uuid.NAMESPACE_URL, f"funnel-seed/{name}") for name in LEADS}
    messages = {name: 9000 + number for number, name in enumerate(MESSAGES, 1)}
    return leads, messages


def _is_sent(sent: Sent) -> bool:
    return sent.status in (S.SENT, S.DELIVERED, S.UNDELIVERED)


def facts() -> tuple[numbers.Facts, list[cohorts.LeadFact]]:
    """The timeline as the plain rows the report reads (what read_facts would give)."""
    lead_ids, message_ids = _ids()
    attempted = {name: sent for name, sent in MESSAGES.items() if sent.status in numbers.ATTEMPTED}
    messages = []
    for name, sent in attempted.items():
        lead, sequence, version = ENROLMENTS[sent.enrolment]
        source, campaign = LEADS[lead]["utm"]
        messages.append(
            numbers.MessageFact(
                message_ids[name],
                lead_ids[lead],
                sequence,
                version,
                sent.step,
                sent.template,
                sent.version,
                sent.channel,
                sent.variant,
                sent.status,
                sent.when if _is_sent(sent) else None,
                source,
                campaign,
            )
        )
    sender = {
        message_ids[name]: lead_ids[ENROLMENTS[s.enrolment][0]] for name, s in MESSAGES.items()
    }
    found = numbers.Facts(
        messages=messages,
        bookings=[
            (lead_ids[lead], when) for lead, kind, when in EVENTS if kind == "consult_booked"
        ],
        clicks=[numbers.Click(message_ids[m], sender[message_ids[m]]) for m, _ in CLICKS],
        revocations=[
            numbers.Revocation(lead_ids[lead], ch, when) for lead, ch, when in REVOCATIONS
        ],
    )
    leads = [
        cohorts.LeadFact(
            lead_ids[name],
            spec["at"],
            spec["stage"],
            frozenset(kind for lead, kind, _ in EVENTS if lead == name),
        )
        for name, spec in LEADS.items()
    ]
    return found, leads


def insert(session: Session) -> Seeded:
    """The same timeline as database rows (the caller commits)."""
    lead_ids, message_ids = _ids()
    for name, spec in LEADS.items():
        source, campaign = spec["utm"]
        session.add(
            Lead(
                id=lead_ids[name],
                first_name=f"Seed {name}",
                email=f"{name.lower()}@funnel.example",
                stage=spec["stage"],
                utm_source=source,
                utm_campaign=campaign,
                created_at=spec["at"],
                updated_at=spec["at"],
            )
        )
    session.flush()
    enrolment_ids = {}
    for name, (lead, sequence, version) in ENROLMENTS.items():
        row = Enrollment(
            lead_id=lead_ids[lead],
            sequence_key=sequence,
            sequence_version=version,
            status=EnrollmentStatus.ACTIVE,
            enrolled_at=LEADS[lead]["at"],
        )
        session.add(row)
        session.flush()
        enrolment_ids[name] = row.id
    for name, sent in MESSAGES.items():
        lead, sequence, _ = ENROLMENTS[sent.enrolment]
        session.add(
            Message(
                id=message_ids[name],
                enrollment_id=enrolment_ids[sent.enrolment],
                lead_id=lead_ids[lead],
                sequence_key=sequence,
                step_key=sent.step,
                channel=sent.channel,
                purpose=Purpose.MARKETING,
                template_key=sent.template,
                template_version=sent.version,
                variant=sent.variant,
                due_at=sent.when - timedelta(minutes=1),
                status=sent.status,
                status_at=sent.when,
                sent_at=sent.when if _is_sent(sent) else None,
                idempotency_key=f"funnel-seed:{name}",
                created_at=sent.when - timedelta(minutes=1),
            )
        )
    session.flush()
    for lead, kind, when in EVENTS:
        session.add(LeadEvent(lead_id=lead_ids[lead], type=kind, actor="seed", occurred_at=when))
    for message, when in CLICKS:
        lead = ENROLMENTS[MESSAGES[message].enrolment][0]
        session.add(
            LinkClick(
                message_id=message_ids[message],
                lead_id=lead_ids[lead],
                url="https://kiidaho.example/book",
                clicked_at=when,
            )
        )
    for lead, channel, when in REVOCATIONS:
        session.add(
            ConsentEvent(
                lead_id=lead_ids[lead],
                channel=channel,
                purpose=Purpose.MARKETING,
                action=ConsentAction.REVOKED,
                source=ConsentSource.STAFF,
                occurred_at=when,
            )
        )
    return Seeded(lead_ids, message_ids)
