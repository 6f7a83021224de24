"""E-mail read from the reply mailbox: recorded once, then acted on like an inbound text.

- A person's reply: crisis words get an immediate e-mail with 988 and 911 and everything a
  crisis text gets (`inbound.crisis_actions`); "unsubscribe" / "stop e-mailing me" revokes
  e-mail marketing (source ``email_reply``) and is flagged for a person; anything else goes to
  the staff inbox and pauses marketing (`inbound.needs_person`).
- An automatic reply (`auto_replies`) is recorded and otherwise ignored.
- A delivery status notification: a permanent failure of an address we sent to suppresses it
  (`withdrawals.suppress_email`, source ``bounce``); a temporary one is only recorded.

A reply is matched to the e-mail it answers by the Message-IDs it names (In-Reply-To and
References) against the ids our SMTP server gave our messages, which carry 64 random bits, so a
stranger cannot claim to answer someone else's mail; failing that, by its From address.
Everything happens in the caller's transaction, which records the mailbox row too: the caller
commits before it marks the message seen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from nurture.config.policy import Keywords
from nurture.consent import ledger
from nurture.content import Writer
from nurture.db import audit
from nurture.db.models import (
    Channel,
    ConsentAction,
    ConsentSource,
    InboundClass,
    InboundMessage,
    Lead,
    MailboxMessage,
    Message,
    MessageAttempt,
    Purpose,
)
from nurture.outbox import planner, withdrawals
from nurture.replies import inbound, keywords
from nurture.replies.mail_reading import IncomingMail

ACTOR = "lead"
MAILBOX_ACTOR = "mailbox"
CRISIS_REPLY = "crisis-reply"
# The part of `inbound_messages` that is a number for a text holds the address (or its start).
_NUMBER_COLUMN = 32


@dataclass(frozen=True)
class Place:
    """Where a message sits in the mailbox: its UID is only meaningful with the UIDVALIDITY."""

    mailbox: str
    uidvalidity: int
    uid: int


@dataclass(frozen=True)
class MailResult:
    # reply, auto_reply, bounce, from_clinic, duplicate, unhandled, or "recorded" (this place
    # already was)
    kind: str
    row_id: int | None = None
    lead_id: uuid.UUID | None = None
    classification: InboundClass | None = None


def already_recorded(session: Session, place: Place) -> bool:
    found = session.scalar(
        select(MailboxMessage.id).where(
            MailboxMessage.mailbox == place.mailbox,
            MailboxMessage.uidvalidity == place.uidvalidity,
            MailboxMessage.uid == place.uid,
        )
    )
    return found is not None


def handle_mail(
    session: Session,
    mail: IncomingMail,
    place: Place,
    *,
    writer: Writer,
    keyword_lists: Keywords,
    now: datetime,
) -> MailResult:
    """Record one message read from the mailbox and act on it; the caller commits."""
    if already_recorded(session, place):
        return MailResult("recorded")
    row = MailboxMessage(
        mailbox=place.mailbox,
        uidvalidity=place.uidvalidity,
        uid=place.uid,
        fingerprint=mail.fingerprint,
        message_id=mail.message_id,
        from_address=mail.from_address,
        kind="reply",
        details={},
        received_at=now,
    )
    first = session.scalar(
        select(MailboxMessage.id)
        .where(MailboxMessage.fingerprint == mail.fingerprint, MailboxMessage.kind != "duplicate")
        .limit(1)
    )
    if first is not None:
        # The same mail at a new place (the folder was renumbered, or it was copied back).
        row.kind = "duplicate"
        row.details = {"duplicate_of": first}
        session.add(row)
        session.flush()
        return MailResult("duplicate", row.id)
    if mail.bounce is not None:
        return _bounce(session, mail, row, now=now)
    replied_to = _answered_message(session, mail.references)
    lead = _lead_of(session, mail, replied_to)
    row.replied_to_id = replied_to.id if replied_to is not None else None
    if mail.auto_reply is not None:
        row.kind = "auto_reply"
        row.lead_id = lead.id if lead is not None else None
        row.details = {"auto_reply": mail.auto_reply}
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=MAILBOX_ACTOR,
            action="email.auto_reply",
            lead_id=row.lead_id,
            details={"mailbox_message_id": row.id, "why": mail.auto_reply},
        )
        return MailResult("auto_reply", row.id, row.lead_id)
    if _from_the_clinic(mail, replied_to, writer):
        # Staff answering an alert, or the clinic's own address: not a lead writing.
        row.kind = "from_clinic"
        session.add(row)
        session.flush()
        return MailResult("from_clinic", row.id)
    if lead is None and mail.from_address is not None:
        lead = _lead_for_address(session, mail.from_address, mail, now=now)
    return _reply(session, mail, row, lead, writer=writer, keyword_lists=keyword_lists, now=now)


def record_unhandled(
    session: Session, mail: IncomingMail, place: Place, *, error: str, now: datetime
) -> MailResult:
    """A message whose handling failed (a bug, data nurture cannot store): recorded, so it does
    not stop the mailbox, and put in the staff inbox for a person to read in the mailbox (it
    may be a crisis). Only what is certain to fit is kept."""
    if already_recorded(session, place):
        return MailResult("recorded")
    text = InboundMessage(
        message_sid=f"email:{mail.fingerprint[:58]}",
        lead_id=None,
        from_number="e-mail",
        to_number="e-mail",
        body=f"{mail.subject[:200]}\n\n{mail.text[:2000]}".strip(),
        classification=InboundClass.OTHER,
        params={"channel": "email", "mailbox": place.mailbox, "uid": place.uid},
        needs_attention=True,
        attention_reason="an e-mail nurture could not handle: please read it in the mailbox",
        received_at=now,
    )
    session.add(text)
    session.flush()
    row = MailboxMessage(
        mailbox=place.mailbox,
        uidvalidity=place.uidvalidity,
        uid=place.uid,
        fingerprint=mail.fingerprint,
        kind="unhandled",
        inbound_id=text.id,
        details={"error": error[:200]},
        received_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=MAILBOX_ACTOR,
        action="email.unhandled",
        details={"mailbox_message_id": row.id, "error": error[:200]},
    )
    return MailResult("unhandled", row.id)


def _answered_message(session: Session, references: tuple[str, ...]) -> Message | None:
    """Our e-mail this answers: the first named Message-ID that our SMTP server gave one."""
    if not references:
        return None
    by_attempt = select(MessageAttempt.message_id).where(MessageAttempt.provider_id.in_(references))
    candidates = session.scalars(
        select(Message).where(
            Message.channel == Channel.EMAIL,
            or_(Message.provider_id.in_(references), Message.id.in_(by_attempt)),
        )
    ).all()
    for reference in references:  # the nearest ancestor wins
        for message in candidates:
            if message.provider_id == reference:
                return message
    return candidates[0] if candidates else None


def _lead_of(session: Session, mail: IncomingMail, replied_to: Message | None) -> Lead | None:
    if replied_to is not None:
        return session.get(Lead, replied_to.lead_id)
    if mail.from_address is None:
        return None
    return session.scalars(
        select(Lead)
        .where(func.lower(Lead.email) == mail.from_address)
        .order_by(Lead.updated_at.desc(), Lead.id)
        .limit(1)
    ).first()


def _from_the_clinic(mail: IncomingMail, replied_to: Message | None, writer: Writer) -> bool:
    if replied_to is not None and replied_to.purpose is Purpose.ALERT:
        return True
    clinic = {str(writer.clinic.email).lower(), str(writer.clinic.staff_email).lower()}
    return mail.from_address in clinic


def _lead_for_address(session: Session, address: str, mail: IncomingMail, *, now: datetime) -> Lead:
    """Someone we never heard of wrote to us: a record, so staff see the mail and a crisis
    reply has somewhere to go. Like a sign-up's e-mail about the consultation it asked for, an
    answer to their own mail is care (CAN-SPAM's transactional class); the grant is recorded,
    so the ledger stays the only truth. Never marketing."""
    lead = Lead(
        id=uuid.uuid4(), first_name="", last_name="", email=address, created_at=now, updated_at=now
    )
    session.add(lead)
    session.flush()
    audit.record(session, actor=ACTOR, action="lead.created_from_email", lead_id=lead.id)
    ledger.record(
        session,
        lead_id=lead.id,
        channel=Channel.EMAIL,
        purpose=Purpose.CARE,
        action=ConsentAction.GRANTED,
        source=ConsentSource.EMAIL_REPLY,
        evidence={"message_id": mail.message_id, "why": "wrote to the clinic"},
        actor=ACTOR,
    )
    return lead


def _reply(
    session: Session,
    mail: IncomingMail,
    row: MailboxMessage,
    lead: Lead | None,
    *,
    writer: Writer,
    keyword_lists: Keywords,
    now: datetime,
) -> MailResult:
    reading = keywords.read_email(mail.words, keyword_lists)
    body = f"{mail.subject}\n\n{mail.text}".strip() if mail.subject else mail.text
    address = mail.from_address or ""
    text = InboundMessage(
        message_sid=f"email:{mail.fingerprint[:58]}",
        lead_id=lead.id if lead is not None else None,
        from_number=address if len(address) <= _NUMBER_COLUMN else address[:31] + "…",
        to_number="e-mail",
        body=body,
        classification=reading.kind,
        params={
            "channel": "email",
            "from": mail.from_address,
            "message_id": mail.message_id,
            "subject": mail.subject,
            "replied_to_message_id": row.replied_to_id,
        },
        received_at=now,
    )
    session.add(text)
    session.flush()
    row.lead_id = text.lead_id
    row.inbound_id = text.id
    row.details = {"classification": reading.kind.value}
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=ACTOR,
        action="inbound.received",
        lead_id=text.lead_id,
        details={"inbound_id": text.id, "channel": "email", "classification": reading.kind.value},
    )
    if lead is None:
        # No address to answer and nobody to page about: a person reads it in the inbox.
        text.needs_attention = True
        text.attention_reason = "an e-mail without a usable sender address"
        return MailResult("reply", row.id, None, reading.kind)
    if reading.crisis:
        _crisis(session, text, lead, writer, address, now=now)
    if reading.opts_out:
        _unsubscribe(session, text, lead, mail, crisis=reading.crisis, now=now)
    elif not reading.crisis:
        inbound.needs_person(
            session,
            text,
            lead,
            writer,
            now=now,
            reason="an e-mail reply that needs a person",
            template="staff-email-reply-alert",
            pause_reason="replied by e-mail; waiting for staff",
            sender=address,
        )
    return MailResult("reply", row.id, lead.id, reading.kind)


def _crisis(
    session: Session,
    text: InboundMessage,
    lead: Lead,
    writer: Writer,
    address: str,
    *,
    now: datetime,
) -> None:
    """Rule 26 by e-mail: the 988/911 answer planned due now to the address that wrote (care,
    so the lead's footer and no marketing), and everything a crisis text gets."""
    if address:
        planner.plan_now(
            session,
            lead,
            channel=Channel.EMAIL,
            purpose=Purpose.CARE,
            template=CRISIS_REPLY,
            recipient=address if address != (lead.email or "").lower() else None,
            now=now,
            actor=audit.SYSTEM,
            action="reply.planned",
            key_prefix="email-reply",
            context={"inbound_id": text.id},
        )
    inbound.crisis_actions(
        session,
        text,
        lead,
        writer,
        now=now,
        template="staff-email-crisis-alert",
        pause_reason="crisis words in an e-mail",
        sender=address,
    )
    audit.record(
        session,
        actor=ACTOR,
        action="inbound.crisis",
        lead_id=lead.id,
        details={"inbound_id": text.id, "channel": "email"},
    )


def _unsubscribe(
    session: Session,
    text: InboundMessage,
    lead: Lead,
    mail: IncomingMail,
    *,
    crisis: bool,
    now: datetime,
) -> None:
    """E-mail marketing revoked (and pending marketing e-mails cancelled); read from prose, so
    a person checks it (a crisis keeps its own reason)."""
    withdrawals.set_preference(
        session,
        lead.id,
        Channel.EMAIL,
        Purpose.MARKETING,
        False,
        source=ConsentSource.EMAIL_REPLY,
        evidence={"message_id": mail.message_id, "inbound_id": text.id, "body": mail.text[:500]},
        actor=ACTOR,
        now=now,
    )
    text.needs_attention = True
    if not crisis:
        text.attention_reason = "read as an unsubscribe from an e-mail reply: please check"


def _bounce(
    session: Session, mail: IncomingMail, row: MailboxMessage, *, now: datetime
) -> MailResult:
    """A DSN: only an address one of our e-mails named in the report went to is suppressed, so
    a forged report cannot stop mail to someone else."""
    assert mail.bounce is not None
    about = _answered_message(session, mail.bounce.about)
    ours: set[str] = set()
    if about is not None:
        row.replied_to_id = about.id
        row.lead_id = about.lead_id
        lead = session.get(Lead, about.lead_id)
        ours = {a.lower() for a in (about.recipient, lead.email if lead else None) if a}
    suppressed: list[str] = []
    ignored: list[str] = []
    for address in sorted(mail.bounce.permanent):
        if address not in ours:
            ignored.append(address)
            continue
        evidence: dict[str, Any] = {
            "message_id": mail.message_id,
            "about_message": about and about.id,
        }
        withdrawals.suppress_email(
            session,
            address,
            source=ConsentSource.BOUNCE,
            evidence=evidence,
            actor=MAILBOX_ACTOR,
            now=now,
        )
        suppressed.append(address)
    row.kind = "bounce"
    row.details = {
        "permanent": sorted(mail.bounce.permanent),
        "temporary": sorted(mail.bounce.temporary),
        "suppressed": suppressed,
        "not_ours": ignored,
    }
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=MAILBOX_ACTOR,
        action="email.bounce_permanent" if suppressed else "email.bounce",
        lead_id=row.lead_id,
        details={"mailbox_message_id": row.id, **row.details},
    )
    return MailResult("bounce", row.id, row.lead_id)
