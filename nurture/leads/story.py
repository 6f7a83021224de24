"""Everything about one lead for the staff lead page, and what staff do from that page.

Reading: details, consent now and its whole history, enrolments, every message with the reason
it did or did not go, replies, lifecycle events and the audit trail. Acting: resume marketing,
mark a reply handled, record a lifecycle event, record an opt-out received another way.
Every action lands with its audit entry in the caller's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nurture import consent
from nurture.content.staff_time import LocalTimeError, parse_local_input
from nurture.db import audit
from nurture.db.models import (
    PENDING_STATUSES,
    AuditEvent,
    Channel,
    ConsentEvent,
    ConsentSource,
    Enrollment,
    InboundClass,
    InboundMessage,
    Lead,
    LeadEvent,
    LeadNote,
    Message,
    Purpose,
)
from nurture.leads import lifecycle
from nurture.leads.search import display_name
from nurture.outbox import pauses, withdrawals
from nurture.program import windows
from nurture.program.sequences import Catalog

AUDIT_LIMIT = 200
INBOX_LIMIT = 500
MAX_NOTE = 500


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # consent | message | reply | event | note
    text: str
    crisis: bool = False
    # A message whose stored body can be opened from the timeline.
    message_id: int | None = None


@dataclass(frozen=True)
class LeadStory:
    lead: Lead
    name: str
    zone: ZoneInfo
    # Where ``zone`` came from, in the front desk's words.
    zone_origin: str
    consent: dict[str, dict[str, bool]]
    consent_events: list[ConsentEvent]
    enrollments: list[Enrollment]
    messages: list[Message]
    inbound: list[InboundMessage]
    events: list[LeadEvent]
    audit: list[AuditEvent]
    notes: list[LeadNote]
    timeline: list[TimelineItem]


def zone_of(lead: Lead, clinic_zone: ZoneInfo) -> ZoneInfo:
    """The zone the lead's own times are shown and typed in."""
    return windows.zones_of(lead, clinic_zone).shown


def zone_origin(lead: Lead, clinic_zone: ZoneInfo) -> str:
    """Where the zone of the lead's times came from, and what else holds their texts back."""
    found = windows.zones_of(lead, clinic_zone)
    keys = ", ".join(zone.key for zone in found.zones if zone is not found.browser)
    origin = {
        windows.ZoneSource.ON_PURPOSE: "set on purpose",
        windows.ZoneSource.ZIP_CODE: f"from ZIP code {lead.postal_code}",
        windows.ZoneSource.AREA_CODE: (
            f"from area code {found.area_code} ({keys}): texts wait for hours allowed in each"
        ),
        windows.ZoneSource.BROWSER: (
            f"from the browser, one of area code {found.area_code}'s zones ({keys}):"
            " texts wait for hours allowed in each"
        ),
        windows.ZoneSource.CLINIC: "the clinic's: no ZIP code or area code to go by",
    }[found.source]
    if found.browser is not None:
        origin += f"; the browser said {found.browser.key}, so its hours must hold too"
    elif (
        lead.browser_timezone
        and found.source is not windows.ZoneSource.ON_PURPOSE
        and all(zone.key != lead.browser_timezone for zone in found.zones)
    ):
        # More than windows.MAX_BROWSER_GAP from home: a trip or a VPN, not where they live.
        origin += f"; the browser said {lead.browser_timezone}, too far away to count"
    return origin


def parse_lead_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def parse_row_id(text: str) -> int | None:
    """A database row id from a URL; None for anything that is not one."""
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


def _timeline(
    consent_events: list[ConsentEvent],
    messages: list[Message],
    inbound: list[InboundMessage],
    events: list[LeadEvent],
    notes: list[LeadNote],
) -> list[TimelineItem]:
    items = [
        TimelineItem(
            e.occurred_at,
            "consent",
            f"{e.channel.value} {e.purpose.value} {e.action.value} ({e.source.value})",
        )
        for e in consent_events
    ]
    for m in messages:
        label = f"{m.channel.value} {m.purpose.value} {m.step_key}"
        if m.sent_at is not None:
            opened = m.id if m.body is not None else None
            text = f"{label}: {m.status.value}"
            items.append(TimelineItem(m.sent_at, "message", text, message_id=opened))
        else:
            reason = f" ({m.last_error})" if m.last_error else ""
            items.append(TimelineItem(m.due_at, "message", f"{label}: {m.status.value}{reason}"))
    items += [
        TimelineItem(
            i.received_at,
            "reply",
            f"replied ({i.classification.value}): {i.body[:120]}",
            crisis=i.classification is InboundClass.CRISIS,
        )
        for i in inbound
    ]
    items += [TimelineItem(e.occurred_at, "event", f"lifecycle: {e.type}") for e in events]
    items += [TimelineItem(n.created_at, "note", f"note by {n.author}: {n.text}") for n in notes]
    return sorted(items, key=lambda item: item.at, reverse=True)


def _newest_first(
    session: Session, model: Any, lead_id: uuid.UUID, when: Any, limit: int | None = None
) -> list[Any]:
    """Every row of ``model`` about the lead, newest first (ties broken by id)."""
    query = select(model).where(model.lead_id == lead_id).order_by(when.desc(), model.id.desc())
    return list(session.scalars(query.limit(limit) if limit else query))


def load_story(session: Session, lead_id: uuid.UUID, *, clinic_zone: ZoneInfo) -> LeadStory | None:
    lead = session.get(Lead, lead_id)
    if lead is None:
        return None
    consent_events = _newest_first(session, ConsentEvent, lead_id, ConsentEvent.occurred_at)
    enrollments = _newest_first(session, Enrollment, lead_id, Enrollment.enrolled_at)
    messages = _newest_first(session, Message, lead_id, Message.due_at)
    inbound = _newest_first(session, InboundMessage, lead_id, InboundMessage.received_at)
    events = _newest_first(session, LeadEvent, lead_id, LeadEvent.occurred_at)
    trail = _newest_first(session, AuditEvent, lead_id, AuditEvent.occurred_at, AUDIT_LIMIT)
    notes = _newest_first(session, LeadNote, lead_id, LeadNote.created_at)
    return LeadStory(
        lead=lead,
        name=display_name(lead),
        zone=zone_of(lead, clinic_zone),
        zone_origin=zone_origin(lead, clinic_zone),
        consent=consent.current(session, lead_id).as_dict(),
        consent_events=consent_events,
        enrollments=enrollments,
        messages=messages,
        inbound=inbound,
        events=events,
        audit=trail,
        notes=notes,
        timeline=_timeline(consent_events, messages, inbound, events, notes),
    )


def resume_marketing(session: Session, lead: Lead, *, actor: str) -> bool:
    """Lift the lead's marketing pause and any crisis hold; False (and nothing written) when
    there was neither."""
    if lead.marketing_paused_at is None and lead.crisis_hold_at is None:
        return False
    pauses.resume_lead_marketing(session, lead, actor=actor)
    return True


def mark_handled(
    session: Session,
    inbound_id: int,
    *,
    lead_id: uuid.UUID | None,
    actor: str,
    now: datetime,
) -> InboundMessage | None:
    """Mark a reply as read and dealt with. None when there is no such reply (for this lead:
    ``lead_id`` None means a reply that belongs to no lead). Marking it twice keeps the first."""
    reply = session.get(InboundMessage, inbound_id)
    if reply is None or reply.lead_id != lead_id:
        return None
    if reply.handled_at is None:
        reply.handled_at = now
        reply.handled_by = actor
        audit.record(
            session,
            actor=actor,
            action="inbound.handled",
            lead_id=reply.lead_id,
            details={"inbound_id": reply.id, "classification": reply.classification.value},
        )
    return reply


@dataclass(frozen=True)
class InboxItem:
    reply: InboundMessage
    lead_id: uuid.UUID | None
    name: str
    crisis: bool


def waiting_replies(session: Session, *, limit: int = INBOX_LIMIT) -> tuple[list[InboxItem], int]:
    """Replies that need a person and have not been handled, oldest first; and how many."""
    waiting = (InboundMessage.needs_attention.is_(True), InboundMessage.handled_at.is_(None))
    total = int(
        session.scalar(select(func.count()).select_from(InboundMessage).where(*waiting)) or 0
    )
    rows = session.execute(
        select(InboundMessage, Lead)
        .outerjoin(Lead, Lead.id == InboundMessage.lead_id)
        .where(*waiting)
        .order_by(InboundMessage.received_at, InboundMessage.id)
        .limit(limit)
    ).all()
    items = [
        InboxItem(
            reply=reply,
            lead_id=reply.lead_id,
            name=display_name(lead) if lead is not None else "unknown number",
            crisis=reply.classification is InboundClass.CRISIS,
        )
        for reply, lead in rows
    ]
    return items, total


def record_lifecycle_event(
    session: Session,
    lead: Lead,
    *,
    event_type: str,
    consult_local: str,
    catalog: Catalog,
    clinic_zone: ZoneInfo,
    now: datetime,
    actor: str,
) -> lifecycle.EventResult:
    """A lifecycle event typed by staff; the consult time is wall-clock time in the lead's zone.
    Raises lifecycle.EventError naming the field to fix."""
    event = lifecycle.parse_event_type(event_type)
    consult_at = None
    if consult_local.strip():
        try:
            consult_at = parse_local_input(consult_local, zone_of(lead, clinic_zone))
        except LocalTimeError as error:
            raise lifecycle.EventError("consult_at", str(error)) from None
    return lifecycle.apply_event(
        session,
        lead,
        event,
        consult_at=consult_at,
        catalog=catalog,
        clinic_zone=clinic_zone,
        now=now,
        actor=actor,
    )


class OptOutError(ValueError):
    pass


def record_opt_out(
    session: Session,
    lead: Lead,
    *,
    channel: str,
    note: str,
    actor: str,
    now: datetime,
) -> int:
    """An opt-out the person gave another way (a phone call, at the front desk): any reasonable
    means counts. Texts: every SMS purpose is revoked. E-mail: marketing is revoked (mail about
    their own consult is care). Returns how many pending messages were cancelled."""
    if channel not in (Channel.SMS.value, Channel.EMAIL.value):
        raise OptOutError("channel: choose sms or email")
    cleaned = note.strip()
    if len(cleaned) > MAX_NOTE:
        raise OptOutError(f"note: keep it to {MAX_NOTE} characters")
    evidence: dict[str, Any] = {"recorded_by": actor, "note": cleaned}
    cancelled = _pending(session, lead.id, Channel(channel))
    if channel == Channel.SMS.value:
        withdrawals.revoke_sms(
            session, lead.id, source=ConsentSource.STAFF, evidence=evidence, actor=actor, now=now
        )
        changed = True
    else:
        changed = withdrawals.set_preference(
            session,
            lead.id,
            Channel.EMAIL,
            Purpose.MARKETING,
            False,
            source=ConsentSource.STAFF,
            evidence=evidence,
            actor=actor,
            now=now,
        )
    session.flush()
    cancelled -= _pending(session, lead.id, Channel(channel))
    audit.record(
        session,
        actor=actor,
        action="lead.opt_out_recorded",
        lead_id=lead.id,
        details={"channel": channel, "changed": changed, "cancelled": cancelled},
    )
    return cancelled


def _pending(session: Session, lead_id: uuid.UUID, channel: Channel) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.lead_id == lead_id,
                Message.channel == channel,
                Message.status.in_(PENDING_STATUSES),
            )
        )
        or 0
    )
