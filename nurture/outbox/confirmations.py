"""Confirming a grant of texts given outside a text thread (the preferences page).

A grant of texts is confirmed by the opt-in confirmation text (compliance rules 3 and 11),
planned here at once. Someone who sent crisis words or opted out by text in the last
:data:`PERSON_FIRST_FOR` is different: a person from the care team confirms with them first,
and the page's tick alone turns nothing on (:func:`why_a_person_confirms_first`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.config.clinic import Clinic
from nurture.content.rendering import describe_local_time
from nurture.db import audit
from nurture.db.models import (
    AuditEvent,
    Channel,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    InboundClass,
    InboundMessage,
    Lead,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.outbox import alerts, planner

OPTIN_TEMPLATE = "optin-confirmation"
STAFF_TEMPLATE = "staff-regrant-request"
# A person ticking the boxes again and again gets one e-mail to staff a day, not one a click.
ONE_ALERT_PER = timedelta(hours=24)
PERSON_FIRST_FOR = timedelta(days=30)
# Opt-outs the person made by text (or Twilio made for them): the ones a web tick must not undo.
TEXT_OPT_OUTS = (ConsentSource.SMS_KEYWORD, ConsentSource.PROVIDER_OPT_OUT)
# An opt-in confirmation in one of these states is still to go: planning another is one too many.
NOT_YET_SENT = (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING)


def why_a_person_confirms_first(session: Session, lead: Lead, *, now: datetime) -> str | None:
    """Why texts may not come back on from a web tick alone, or None when they may.

    Crisis words (a hold staff have not lifted, or a crisis text in the last 30 days, whatever
    else it also said) or an opt-out by text in the last 30 days: the person may not have
    ticked the box, or may need a conversation before any automated text."""
    since = now - PERSON_FIRST_FOR
    if lead.crisis_hold_at is not None:
        return "crisis words in a text; the crisis hold is still on"
    crisis = session.scalar(
        select(InboundMessage.received_at)
        .where(
            InboundMessage.lead_id == lead.id,
            InboundMessage.classification == InboundClass.CRISIS,
            InboundMessage.received_at >= since,
        )
        .limit(1)
    )
    if crisis is None:
        # A crisis text can also be a STOP (classified as the opt-out): its audit entry says it.
        crisis = session.scalar(
            select(AuditEvent.occurred_at)
            .where(
                AuditEvent.lead_id == lead.id,
                AuditEvent.action == "inbound.crisis",
                AuditEvent.occurred_at >= since,
            )
            .limit(1)
        )
    if crisis is not None:
        return "crisis words in a text in the last 30 days"
    opted_out = session.scalar(
        select(ConsentEvent.occurred_at)
        .where(
            ConsentEvent.lead_id == lead.id,
            ConsentEvent.channel == Channel.SMS,
            ConsentEvent.action == ConsentAction.REVOKED,
            ConsentEvent.source.in_(TEXT_OPT_OUTS),
            ConsentEvent.occurred_at >= since,
        )
        .limit(1)
    )
    if opted_out is not None:
        return "opted out of texts by text in the last 30 days"
    return None


def plan_optin_confirmation(
    session: Session, lead: Lead, *, now: datetime, actor: str
) -> Message | None:
    """Plan the opt-in confirmation text to the lead, due now; None when one is still to go.

    The gates refuse a second one within 24 hours of the last and hold every other text until
    it has gone, so planning it never makes the number receive two."""
    waiting = session.scalar(
        select(Message.id)
        .where(
            Message.lead_id == lead.id,
            Message.purpose == Purpose.OPTIN,
            Message.status.in_(NOT_YET_SENT),
        )
        .limit(1)
    )
    if waiting is not None:
        return None
    return planner.plan_now(
        session,
        lead,
        channel=Channel.SMS,
        purpose=Purpose.OPTIN,
        template=OPTIN_TEMPLATE,
        now=now,
        actor=actor,
        action="optin_confirmation.planned",
        key_prefix=f"optin:{lead.id}",
    )


def ask_a_person_first(
    session: Session,
    lead: Lead,
    *,
    asked_for: Sequence[str],
    reason: str,
    clinic: Clinic,
    public_url: str,
    now: datetime,
    actor: str,
) -> Message | None:
    """Texts the person asked for on the page, held until the care team has spoken to them:
    an e-mail to staff (one a day at most) and an audit entry. Nothing is granted."""
    recent = session.scalar(
        select(Message.id)
        .where(
            Message.lead_id == lead.id,
            Message.purpose == Purpose.ALERT,
            Message.template_key == STAFF_TEMPLATE,
            Message.created_at > now - ONE_ALERT_PER,
        )
        .limit(1)
    )
    alert = None
    if recent is None:
        alert = alerts.alert_staff(
            session,
            lead,
            template=STAFF_TEMPLATE,
            details={
                "lead_name": f"{lead.first_name} {lead.last_name}".strip() or "someone",
                "phone": lead.phone,
                "body": "; ".join(asked_for),
                "reason": reason,
                "received": describe_local_time(now, clinic.zone),  # the staff's own clock
            },
            clinic=clinic,
            public_url=public_url,
            now=now,
            actor=actor,
        )
    audit.record(
        session,
        actor=actor,
        action="consent.regrant_held",
        lead_id=lead.id,
        message_id=alert.id if alert is not None else None,
        details={
            "asked_for": list(asked_for),
            "reason": reason,
            "staff_alerted": alert is not None,
        },
    )
    return alert
