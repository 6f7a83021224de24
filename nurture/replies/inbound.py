"""Inbound texts: opt-out, opt-in, help, crisis, and replies that need a person.

Every text is stored once per Twilio MessageSid with its raw parameters, classified, acted on in
the same transaction, and audited. The reply (if any) goes back as TwiML in the webhook response:
responsive messages are immediate and never wait for quiet hours.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture import consent
from nurture.config.policy import Keywords
from nurture.content import Writer
from nurture.content.rendering import describe_local_time
from nurture.db import audit
from nurture.db.models import (
    Channel,
    ConsentSource,
    InboundClass,
    InboundMessage,
    Lead,
    LeadStage,
    Message,
    Purpose,
)
from nurture.outbox import alerts, pauses, planner, states, withdrawals
from nurture.program import windows
from nurture.program.sequences import Catalog
from nurture.replies import keywords

ACTOR = "lead"


@dataclass(frozen=True)
class InboundResult:
    replies: list[str] = field(default_factory=list)
    duplicate: bool = False
    inbound_id: int | None = None
    classification: InboundClass | None = None


def _e164(raw: str) -> str:
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(raw, "US"), phonenumbers.PhoneNumberFormat.E164
        )
    except phonenumbers.NumberParseException:
        return raw


def lead_for_number(session: Session, phone: str, *, now: datetime) -> Lead:
    """The lead who owns this number; a person we never heard of gets a record, so staff can
    see their texts and an opt-out has somewhere to live."""
    lead = session.scalars(select(Lead).where(Lead.phone == phone)).one_or_none()
    if lead is None:
        lead = Lead(
            id=uuid.uuid4(),
            first_name="",
            last_name="",
            phone=phone,
            created_at=now,
            updated_at=now,
        )
        session.add(lead)
        session.flush()
        audit.record(session, actor=ACTOR, action="lead.created_from_text", lead_id=lead.id)
    return lead


@dataclass(frozen=True)
class _Reply:
    template: str
    purpose: Purpose
    text: str


def _reply(
    session: Session, writer: Writer, lead: Lead, template: str, purpose: Purpose = Purpose.CARE
) -> _Reply:
    context = writer.context(lead, purpose)
    rendered = writer.render(Channel.SMS, template, context, session=session)
    return _Reply(template, purpose, rendered.text)


def _record_replies(
    session: Session, lead: Lead, inbound: InboundMessage, replies: list[_Reply], now: datetime
) -> None:
    """A TwiML reply is a text like any other: it joins the lead's history as a sent row (and an
    opt-in confirmation sent this way counts as the one the number is owed)."""
    for index, reply in enumerate(replies):
        message = Message(
            lead_id=lead.id,
            step_key=f"reply-{inbound.classification.value}",
            channel=Channel.SMS,
            purpose=reply.purpose,
            template_key=reply.template,
            due_at=now,
            status=states.REPLIED,
            status_at=now,
            sent_at=now,
            body=reply.text,
            provider_id=f"twiml:{inbound.message_sid}",
            attempts=1,
            idempotency_key=f"reply:{inbound.message_sid}:{index}",
            created_at=now,
        )
        session.add(message)
        session.flush()
        audit.record(
            session,
            actor=audit.SYSTEM,
            action="reply.sent",
            lead_id=lead.id,
            message_id=message.id,
            details={"inbound_id": inbound.id, "template": reply.template},
        )


def handle_inbound(
    session: Session,
    params: dict[str, str],
    *,
    writer: Writer,
    keyword_lists: Keywords,
    catalog: Catalog,
    now: datetime,
) -> InboundResult:
    """Act on one inbound text (Twilio's webhook parameters); the caller commits."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if not sid:
        raise ValueError("MessageSid is missing")
    if (
        session.scalar(select(InboundMessage.id).where(InboundMessage.message_sid == sid))
        is not None
    ):
        return InboundResult(duplicate=True)
    phone = _e164(params.get("From", ""))
    body = params.get("Body", "")
    opt_out_type = params.get("OptOutType")
    reading = keywords.read(body, keyword_lists, opt_out_type=opt_out_type)
    lead = lead_for_number(session, phone, now=now)
    inbound = InboundMessage(
        message_sid=sid,
        lead_id=lead.id,
        from_number=phone,
        to_number=params.get("To", ""),
        body=body,
        classification=reading.kind,
        params=dict(params),
        received_at=now,
    )
    session.add(inbound)
    session.flush()
    audit.record(
        session,
        actor=ACTOR,
        action="inbound.received",
        lead_id=lead.id,
        details={"inbound_id": inbound.id, "classification": reading.kind.value},
    )

    replies: list[_Reply] = []
    # Twilio's Advanced Opt-Out already answered this keyword: a second answer is one too many.
    provider_answered = bool(opt_out_type)
    evidence = {"message_sid": sid, "body": body, "opt_out_type": opt_out_type}
    if reading.crisis:
        replies.append(_reply(session, writer, lead, "crisis-reply"))
        _needs_person(
            session,
            inbound,
            lead,
            writer,
            now=now,
            reason="crisis words",
            template="staff-crisis-alert",
            pause_reason="crisis words in a text",
        )
        audit.record(
            session,
            actor=ACTOR,
            action="inbound.crisis",
            lead_id=lead.id,
            details={"inbound_id": inbound.id},
        )
    if reading.opts_out:
        withdrawals.revoke_sms(
            session,
            lead.id,
            source=ConsentSource.SMS_KEYWORD,
            evidence=evidence,
            actor=ACTOR,
            now=now,
        )
        if not provider_answered:
            replies.append(_reply(session, writer, lead, "stop-confirmation"))
        if reading.by_phrase and not reading.crisis:
            inbound.needs_attention = True
            inbound.attention_reason = "read as an opt-out from a phrase: please check"
    elif reading.kind is InboundClass.OPT_IN:
        restored = consent.restore_sms(session, lead.id, evidence=evidence, actor=ACTOR)
        if not provider_answered:
            replies.append(
                _reply(session, writer, lead, "optin-confirmation", Purpose.OPTIN)
                if restored
                else _reply(session, writer, lead, "optin-not-found")
            )
    elif reading.kind is InboundClass.HELP:
        if not provider_answered:
            replies.append(_reply(session, writer, lead, "help-reply"))
    elif reading.kind is InboundClass.CONFIRM and _has_upcoming_consult(lead, now):
        lead.consult_confirmed_at = now
        planner.skip_confirm_requests(session, lead, catalog=catalog, now=now)
        audit.record(
            session,
            actor=ACTOR,
            action="consult.confirmed",
            lead_id=lead.id,
            details={"consult_at": lead.consult_at.isoformat() if lead.consult_at else None},
        )
        replies.append(_reply(session, writer, lead, "confirm-reply"))
    elif reading.kind in {InboundClass.OTHER, InboundClass.CONFIRM} and not reading.crisis:
        _needs_person(
            session,
            inbound,
            lead,
            writer,
            now=now,
            reason="a reply that needs a person",
            template="staff-reply-alert",
            pause_reason="replied by text; waiting for staff",
        )
    _record_replies(session, lead, inbound, replies, now)
    return InboundResult(
        replies=[r.text for r in replies], inbound_id=inbound.id, classification=reading.kind
    )


def _has_upcoming_consult(lead: Lead, now: datetime) -> bool:
    return lead.stage is LeadStage.BOOKED and lead.consult_at is not None and lead.consult_at > now


def _needs_person(
    session: Session,
    inbound: InboundMessage,
    lead: Lead,
    writer: Writer,
    *,
    now: datetime,
    reason: str,
    template: str,
    pause_reason: str,
) -> None:
    inbound.needs_attention = True
    inbound.attention_reason = reason
    pauses.pause_lead_marketing(session, lead, reason=pause_reason, actor=audit.SYSTEM, now=now)
    zone = windows.lead_zone(lead.timezone, writer.clinic.zone, lead.postal_code, lead.phone)
    alerts.alert_staff(
        session,
        lead,
        template=template,
        details={
            "lead_name": f"{lead.first_name} {lead.last_name}".strip() or "someone not signed up",
            "phone": lead.phone,
            "body": inbound.body,
            "reason": reason,
            "received": describe_local_time(now, zone),
        },
        clinic=writer.clinic,
        public_url=writer.public_url,
        now=now,
        actor=audit.SYSTEM,
    )
