"""Inbound texts: opt-out, opt-in, help, crisis, and replies that need a person.

Every text is stored once per Twilio MessageSid with its raw parameters, classified, acted on in
the same transaction, and audited. The reply (if any) goes back as TwiML in the webhook response:
responsive messages are immediate and never wait for quiet hours.

The rules an e-mail reply shares with a text live here once: :func:`crisis_actions` (page,
hold, staff alert, audit) and :func:`needs_person` (the staff inbox and a marketing pause);
`nurture.replies.email_replies` calls them for mail read from the reply mailbox.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import and_, or_, select
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
    MessageStatus,
    Purpose,
)
from nurture.outbox import alerts, pauses, planner, states, withdrawals
from nurture.program import windows
from nurture.program.sequences import Catalog
from nurture.replies import keywords

ACTOR = "lead"
STOP_CONFIRMATION = "stop-confirmation"
# Rule 9: one confirmation per opt-out; a repeat inside this time gets none.
ONE_OPT_OUT_REPLY = timedelta(hours=24)
# A confirmation request in one of these states reached (or may have reached) the person.
ASKED = (MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNKNOWN)


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
    # What the person had agreed to before this text: a STOP from someone already opted out is
    # a repeat, and a YES from someone subscribed is not asking to be subscribed.
    subscribed = consent.current(session, lead.id).allows(Channel.SMS, Purpose.OPTIN)
    if reading.crisis:
        _crisis(session, inbound, lead, writer, replies, now=now)
    if reading.opts_out:
        _opt_out(
            session,
            inbound,
            lead,
            writer,
            reading,
            replies,
            evidence=evidence,
            answered=provider_answered,
            subscribed=subscribed,
            now=now,
        )
    elif reading.kind is InboundClass.OPT_IN:
        _opt_in(
            session,
            inbound,
            lead,
            writer,
            catalog,
            reading,
            replies,
            evidence=evidence,
            answered=provider_answered,
            subscribed=subscribed,
            now=now,
        )
    elif reading.kind is InboundClass.HELP:
        if not provider_answered:
            replies.append(_reply(session, writer, lead, "help-reply"))
    elif reading.kind is InboundClass.CONFIRM and _has_upcoming_consult(lead, now):
        replies.append(_confirm_consult(session, writer, lead, catalog, now=now))
    elif reading.kind in {InboundClass.OTHER, InboundClass.CONFIRM} and not reading.crisis:
        needs_person(
            session,
            inbound,
            lead,
            writer,
            now=now,
            reason="a reply that needs a person",
            template="staff-reply-alert",
            pause_reason="replied by text; waiting for staff",
            sender=lead.phone,
        )
    _record_replies(session, lead, inbound, replies, now)
    return InboundResult(
        replies=[r.text for r in replies], inbound_id=inbound.id, classification=reading.kind
    )


def _opt_out(
    session: Session,
    inbound: InboundMessage,
    lead: Lead,
    writer: Writer,
    reading: keywords.Reading,
    replies: list[_Reply],
    *,
    evidence: dict[str, Any],
    answered: bool,
    subscribed: bool,
    now: datetime,
) -> None:
    """Rules 7 and 9: every SMS purpose revoked, pending texts cancelled, and one confirmation
    per opt-out (none when Twilio already sent it, none for a repeat within 24 hours)."""
    withdrawals.revoke_sms(
        session,
        lead.id,
        source=ConsentSource.SMS_KEYWORD,
        evidence=evidence,
        actor=ACTOR,
        now=now,
    )
    if not subscribed and _confirmed_opt_out_since(session, lead, now - ONE_OPT_OUT_REPLY):
        # The repeat is recorded and audited like the first; a second "you have been
        # unsubscribed" would only be one text too many.
        audit.record(
            session,
            actor=audit.SYSTEM,
            action="reply.withheld",
            lead_id=lead.id,
            details={
                "inbound_id": inbound.id,
                "template": STOP_CONFIRMATION,
                "reason": "this opt-out was confirmed in the last 24 hours",
            },
        )
    elif not answered:
        replies.append(_reply(session, writer, lead, STOP_CONFIRMATION))
    if reading.by_phrase and not reading.crisis:
        inbound.needs_attention = True
        inbound.attention_reason = "read as an opt-out from a phrase: please check"
    if reading.cancel and _has_upcoming_consult(lead, now):
        _cancel_may_mean_the_consult(session, inbound, lead, writer, now=now)


def _opt_in(
    session: Session,
    inbound: InboundMessage,
    lead: Lead,
    writer: Writer,
    catalog: Catalog,
    reading: keywords.Reading,
    replies: list[_Reply],
    *,
    evidence: dict[str, Any],
    answered: bool,
    subscribed: bool,
    now: datetime,
) -> None:
    """Rule 11: START/YES/UNSTOP restores what was granted before the opt-out and confirms it.
    From someone already subscribed, "YES" answers the consult confirmation they were asked
    for; anything else goes to a person, never "request a free consultation"."""
    if consent.restore_sms(session, lead.id, evidence=evidence, actor=ACTOR):
        if not answered:
            replies.append(_reply(session, writer, lead, "optin-confirmation", Purpose.OPTIN))
    elif not subscribed:
        if not answered:
            replies.append(_reply(session, writer, lead, "optin-not-found"))
    elif reading.yes and _confirmation_pending(session, lead, catalog, now):
        replies.append(_confirm_consult(session, writer, lead, catalog, now=now))
    else:
        needs_person(
            session,
            inbound,
            lead,
            writer,
            now=now,
            reason="an opt-in word from someone already subscribed; nothing to confirm",
            template="staff-reply-alert",
            pause_reason="replied by text; waiting for staff",
            sender=lead.phone,
        )


def _crisis(
    session: Session,
    inbound: InboundMessage,
    lead: Lead,
    writer: Writer,
    replies: list[_Reply],
    *,
    now: datetime,
) -> None:
    """Rule 26: the 988/911 reply at once, an e-mail to staff and a text page to the on-call
    clinician, every nurture send to them held, and an audit entry; whatever else the text
    also is."""
    replies.append(_reply(session, writer, lead, "crisis-reply"))
    crisis_actions(
        session,
        inbound,
        lead,
        writer,
        now=now,
        template="staff-crisis-alert",
        pause_reason="crisis words in a text",
        sender=lead.phone,
    )


def crisis_actions(
    session: Session,
    inbound: InboundMessage,
    lead: Lead,
    writer: Writer,
    *,
    now: datetime,
    template: str,
    pause_reason: str,
    sender: str | None,
) -> None:
    """Rule 26 after the reply to the person (which each channel sends its own way): the staff
    inbox and an alert, every nurture send held, the on-call clinician paged, an audit entry."""
    needs_person(
        session,
        inbound,
        lead,
        writer,
        now=now,
        reason="crisis words",
        template=template,
        pause_reason=pause_reason,
        sender=sender,
    )
    pauses.hold_for_crisis(session, lead, actor=audit.SYSTEM, now=now)
    alerts.page_on_call(
        session,
        lead,
        received=describe_local_time(now, writer.clinic.zone),  # the clinician's own clock
        clinic=writer.clinic,
        public_url=writer.public_url,
        now=now,
        actor=audit.SYSTEM,
    )
    audit.record(
        session,
        actor=ACTOR,
        action="inbound.crisis",
        lead_id=lead.id,
        details={"inbound_id": inbound.id},
    )


def _confirmed_opt_out_since(session: Session, lead: Lead, since: datetime) -> bool:
    """Whether this number was already told it is unsubscribed since ``since``."""
    found = session.scalar(
        select(Message.id)
        .where(
            Message.lead_id == lead.id,
            Message.channel == Channel.SMS,
            Message.template_key == STOP_CONFIRMATION,
            Message.sent_at >= since,
        )
        .limit(1)
    )
    return found is not None


def _cancel_may_mean_the_consult(
    session: Session, inbound: InboundMessage, lead: Lead, writer: Writer, *, now: datetime
) -> None:
    """CANCEL is an opt-out keyword (FCC), and it is honoured as one; someone with a consult
    booked may also mean the consult, which only a person can tell (and must not guess)."""
    inbound.needs_attention = True
    inbound.attention_reason = "texted CANCEL with a consult booked: they may mean the consult"
    alerts.alert_staff(
        session,
        lead,
        template="staff-cancel-alert",
        details=_alert_details(inbound, lead, writer, now, reason=inbound.attention_reason),
        clinic=writer.clinic,
        public_url=writer.public_url,
        now=now,
        actor=audit.SYSTEM,
    )


def _confirm_consult(
    session: Session, writer: Writer, lead: Lead, catalog: Catalog, *, now: datetime
) -> _Reply:
    if lead.consult_confirmed_at is None:
        lead.consult_confirmed_at = now
    planner.skip_confirm_requests(session, lead, catalog=catalog, now=now)
    audit.record(
        session,
        actor=ACTOR,
        action="consult.confirmed",
        lead_id=lead.id,
        details={"consult_at": lead.consult_at.isoformat() if lead.consult_at else None},
    )
    return _reply(session, writer, lead, "confirm-reply")


def _confirmation_pending(session: Session, lead: Lead, catalog: Catalog, now: datetime) -> bool:
    """A consult is coming and they were asked to confirm it (the text went out), or already
    did: a YES then means yes to that. A YES nobody asked for goes to a person instead."""
    if not _has_upcoming_consult(lead, now):
        return False
    if lead.consult_confirmed_at is not None:
        return True
    steps = [
        and_(Message.sequence_key == sequence_key, Message.step_key == step_key)
        for sequence_key, step_key in sorted(
            {
                (sequence.key, step.key)
                for sequence in catalog.every_version()
                for step in sequence.steps
                if step.confirm_request
            }
        )
    ]
    if not steps:
        return False
    asked = session.scalar(
        select(Message.id)
        .where(
            Message.lead_id == lead.id,
            Message.anchor_version == lead.consult_version,
            Message.status.in_(ASKED),
            or_(*steps),
        )
        .limit(1)
    )
    return asked is not None


def _has_upcoming_consult(lead: Lead, now: datetime) -> bool:
    return lead.stage is LeadStage.BOOKED and lead.consult_at is not None and lead.consult_at > now


def _received(lead: Lead, writer: Writer, now: datetime) -> str:
    zone = windows.zones_of(lead, writer.clinic.zone).shown
    return describe_local_time(now, zone)


def _alert_details(
    inbound: InboundMessage,
    lead: Lead,
    writer: Writer,
    now: datetime,
    *,
    reason: str,
    sender: str | None = None,
) -> dict[str, Any]:
    return {
        "lead_name": f"{lead.first_name} {lead.last_name}".strip() or "someone not signed up",
        # Where it came from: the number of a text, the address of an e-mail.
        "phone": sender if sender is not None else lead.phone,
        "body": inbound.body,
        "reason": reason,
        "received": _received(lead, writer, now),
    }


def needs_person(
    session: Session,
    inbound: InboundMessage,
    lead: Lead,
    writer: Writer,
    *,
    now: datetime,
    reason: str,
    template: str,
    pause_reason: str,
    sender: str | None,
) -> None:
    """A reply that only a person can answer: into the staff inbox, an alert e-mail to staff,
    and marketing to the lead paused until someone resumes it."""
    inbound.needs_attention = True
    inbound.attention_reason = reason
    pauses.pause_lead_marketing(session, lead, reason=pause_reason, actor=audit.SYSTEM, now=now)
    alerts.alert_staff(
        session,
        lead,
        template=template,
        details=_alert_details(inbound, lead, writer, now, reason=reason, sender=sender),
        clinic=writer.clinic,
        public_url=writer.public_url,
        now=now,
        actor=audit.SYSTEM,
    )
