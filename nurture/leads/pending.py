"""One message from the lead page: read what was sent, call off a pending one, or send it now.

*Cancel* moves one pending row (`scheduled` or `queued`) to `cancelled` through the guarded
move ("staff: cancel"): a row the worker has already taken (`sending`) or that has gone is left
alone and the caller is told. A `queued` row may be cancelled: the worker takes only rows still
`queued`, with a conditional UPDATE, so it never sends a row cancelled meanwhile.

*Send now* makes a `scheduled` row due now ("staff: send now") and nothing more: the dispatcher
claims it like any other due row and the worker passes it through every gate (consent, quiet
hours in the lead's zones, caps, pauses, suppression, the step's rules), so nothing is bypassed.
A `queued` row is already with the worker: it is not handed over a second time. What the gates
would say right now is read (:func:`outlook`) so the page can tell staff honestly what holds it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from nurture.config.policy import Policy
from nurture.content import tracked_links
from nurture.db import audit
from nurture.db.models import Lead, Message, MessageStatus
from nurture.outbox import gates, states
from nurture.program import windows
from nurture.program.sequences import Catalog

S = MessageStatus


class NotPendingError(Exception):
    """The message is no longer pending (it is being sent, has gone or was called off)."""


@dataclass(frozen=True)
class SentBody:
    """What a message said, as stored when the worker took it to send."""

    message: Message
    subject: str | None
    text: str | None
    # Why there is no text to show, in staff words (None when there is one).
    missing: str | None


def message_of(session: Session, lead_id: uuid.UUID, message_id: int) -> Message | None:
    """The lead's message with this id; None for another lead's or no such message."""
    message = session.get(Message, message_id)
    return message if message is not None and message.lead_id == lead_id else None


def body_of(message: Message, *, retention_days: int, public_url: str) -> SentBody:
    """The stored subject and text the provider was given at the last attempt, its tracked
    links (``/r/…``) shown as where they lead: staff following one must not count as the lead's
    click in the funnel.

    For an e-mail this is its plain-text part: the HTML part is rendered at send time and not
    kept. Bodies older than the retention period are deleted by ops (purge)."""
    if message.body is not None:
        text = tracked_links.untracked(
            message.body,
            public_url=public_url,
            message_id=message.id,
            links=tracked_links.stored_links(message.context),
        )
        return SentBody(message, message.subject, text, None)
    if message.attempts == 0:
        missing = (
            "nothing was sent: a message is written out only when the worker takes it to"
            f" send, and this one is {message.status.value}"
        )
    else:
        missing = (
            "no longer stored: message bodies are deleted after"
            f" {retention_days} days (ops: delete old message bodies)"
        )
    return SentBody(message, None, None, missing)


def cancel(session: Session, message: Message, *, actor: str, now: datetime) -> None:
    """Call off one pending message, audited; :class:`NotPendingError` when it is not pending
    any more (the worker took it, or it went, or was called off, meanwhile)."""
    before = message.status
    reason = f"cancelled by {actor}"
    moved = states.move(
        session, message.id, from_=states.PENDING, to=S.CANCELLED, now=now, last_error=reason
    )
    if moved != 1:
        session.refresh(message)
        raise NotPendingError(
            f"message {message.id} is {message.status.value} now: only a scheduled or queued"
            " message can be cancelled"
        )
    audit.record(
        session,
        actor=actor,
        action="message.cancelled",
        lead_id=message.lead_id,
        message_id=message.id,
        details={"reason": reason, "was": before.value},
    )


@dataclass(frozen=True)
class SendNow:
    handed: bool  # False: it was already queued for the worker, and was left as it is


def send_now(session: Session, message: Message, *, actor: str, now: datetime) -> SendNow:
    """Make a scheduled message due now, for the dispatcher and the gates; audited.

    A queued message is already with the worker and is left alone (never handed twice);
    anything else raises :class:`NotPendingError`."""
    due_before = message.due_at
    moved = states.move(
        session, message.id, from_=(S.SCHEDULED,), to=S.SCHEDULED, now=now, due_at=now
    )
    if moved == 1:
        audit.record(
            session,
            actor=actor,
            action="message.send_now",
            lead_id=message.lead_id,
            message_id=message.id,
            details={"due_before": due_before.isoformat(), "due_at": now.isoformat()},
        )
        return SendNow(handed=True)
    session.refresh(message)
    if message.status is S.QUEUED:
        return SendNow(handed=False)
    raise NotPendingError(
        f"message {message.id} is {message.status.value} now: only a scheduled message can be"
        " sent now"
    )


def outlook(
    session: Session,
    message: Message,
    lead: Lead,
    *,
    policy: Policy,
    clinic_zone: ZoneInfo,
    catalog: Catalog,
    now: datetime,
    placeholder_address: bool,
) -> str:
    """Where a pending message stands, in staff words: the gates' answer if it were due now
    (the worker asks them again when it takes it; nothing is written here)."""
    if message.status not in states.PENDING:
        return f"It is {message.status.value}."
    if message.due_at > now:
        return "It is not due yet: the gates look at it when it is."
    verdict = gates.check(
        session,
        message,
        lead,
        policy=policy,
        clinic_zone=clinic_zone,
        now=now,
        catalog=catalog,
        placeholder_address=placeholder_address,
    )
    if isinstance(verdict, gates.Skip):
        return f"It will not be sent: {verdict.reason}."
    if isinstance(verdict, gates.Defer):
        zones = ", ".join(zone.key for zone in windows.zones_of(lead, clinic_zone).zones)
        return (
            f"Queued for sending, and held by the rules: {verdict.reason}"
            f" (the lead's time zone: {zones})."
        )
    return (
        "Queued for sending: the gates allow it now, so the worker sends it within moments"
        " (the number check and the sending rate may add a short wait)."
    )
