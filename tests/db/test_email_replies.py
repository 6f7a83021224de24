"""E-mail read from the reply mailbox (issue 13 §2): crisis, unsubscribe, auto-replies, DSNs,
matching to the lead and message, unknown senders and hostile headers. The IMAP side is in
tests/integration/test_mailbox_live.py; here each message goes straight to the domain code, in
the transaction the poll would commit."""

from __future__ import annotations

import itertools
import uuid

from sqlalchemy import select, update

from nurture import clock, consent
from nurture.db.models import (
    AuditEvent,
    Channel,
    ConsentEvent,
    ConsentSource,
    InboundClass,
    InboundMessage,
    Lead,
    MailboxMessage,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.leads import story
from nurture.replies import email_replies, mail_reading
from nurture.replies.email_replies import MailResult, Place
from nurture.runtime import Services
from tests.support import outbox_files
from tests.support.factories import claim_and_send_all, messages_of, sign_up

LEAD = "ana.rivera@example.com"
MAILBOX = "replies@clinic.example@127.0.0.1:143/INBOX"
OUR_ID = "<1772560800.1234.987654321.42@kiidaho.example>"
_uids = itertools.count(1)


def mime(
    body: str,
    *,
    sender: str = f"Ana Rivera <{LEAD}>",
    subject: str = "Re: A few simple ways to prepare",
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    lines = [
        f"From: {sender}",
        "To: replies@clinic.example",
        f"Subject: {subject}",
        f"Message-ID: {message_id or f'<{uuid.uuid4()}@mail.example.com>'}",
        "Date: Tue, 03 Mar 2026 18:00:00 +0000",
        "MIME-Version: 1.0",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
    ]
    return "\r\n".join(lines).encode()


def deliver(services: Services, raw: bytes, *, uid: int | None = None) -> MailResult:
    place = Place(MAILBOX, 1, uid if uid is not None else next(_uids))
    with services.sessions.begin() as session:
        return email_replies.handle_mail(
            session,
            mail_reading.read(raw),
            place,
            writer=services.writer,
            keyword_lists=services.policy.keywords,
            now=clock.utcnow(),
        )


def inbound_rows(services: Services) -> list[InboundMessage]:
    with services.sessions() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def lead_of(services: Services, lead_id: uuid.UUID) -> Lead:
    with services.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        session.expunge(lead)
        return lead


def allows(services: Services, lead_id: uuid.UUID, channel: Channel, purpose: Purpose) -> bool:
    with services.sessions() as session:
        return consent.current(session, lead_id).allows(channel, purpose)


def planned(services: Services, lead_id: uuid.UUID, template: str) -> list[Message]:
    with services.sessions() as session:
        return [m for m in messages_of(session, lead_id) if m.template_key == template]


def actions(services: Services, lead_id: uuid.UUID | None) -> list[str]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.lead_id == lead_id)
                .order_by(AuditEvent.id)
            )
        )


def our_email_sent(services: Services, lead_id: uuid.UUID) -> int:
    """Send what sign-up planned; give its first e-mail the Message-ID an SMTP server would."""
    claim_and_send_all(services)
    with services.sessions.begin() as session:
        first = next(m for m in messages_of(session, lead_id) if m.channel is Channel.EMAIL)
        session.execute(update(Message).where(Message.id == first.id).values(provider_id=OUR_ID))
        return first.id


# --- crisis ---------------------------------------------------------------------------------


def test_crisis_words_in_an_email_reply_answer_at_once_page_hold_and_audit(
    services: Services, outbox: object
) -> None:
    lead_id = sign_up(services)
    result = deliver(services, mime("I can't do this anymore. I want to kill myself."))
    assert result.kind == "reply" and result.lead_id == lead_id
    assert result.classification is InboundClass.CRISIS

    (reply,) = planned(services, lead_id, "crisis-reply")
    assert (reply.channel, reply.purpose, reply.recipient) == (Channel.EMAIL, Purpose.CARE, None)
    (page,) = planned(services, lead_id, "staff-crisis-page")
    assert page.channel is Channel.SMS and page.recipient == services.clinic.on_call_phone
    (alert,) = planned(services, lead_id, "staff-email-crisis-alert")
    assert alert.recipient == str(services.clinic.staff_email)
    lead = lead_of(services, lead_id)
    assert lead.crisis_hold_at is not None and lead.marketing_paused_at is not None
    assert "inbound.crisis" in actions(services, lead_id)
    (row,) = inbound_rows(services)
    assert row.needs_attention and row.classification is InboundClass.CRISIS
    assert row.params["channel"] == "email"

    # The answer goes now, day or night, with 988 and 911, to the address that wrote.
    claim_and_send_all(services)
    (sent,) = planned(services, lead_id, "crisis-reply")
    assert sent.status is MessageStatus.SENT
    answer = next(
        m
        for m in outbox_files.emails(services.settings.resolved_outbox_dir)
        if m["Subject"].startswith("We read your message")
    )
    assert answer["To"] == LEAD
    text = answer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "988" in text and "911" in text


def test_quoted_footer_of_our_own_email_is_not_read_as_crisis_or_unsubscribe(
    services: Services,
) -> None:
    lead_id = sign_up(services)
    body = (
        "Thanks, Tuesday works for me.\r\n\r\n"
        "On Tue, Mar 3, 2026 at 10:00 AM Clinic <hello@kiidaho.example> wrote:\r\n"
        "> If you are struggling or thinking about suicide, call or text 988.\r\n"
        "> Unsubscribe or choose what you receive: https://nurture.test/u/x\r\n"
    )
    result = deliver(services, mime(body))
    assert result.classification is InboundClass.OTHER
    assert allows(services, lead_id, Channel.EMAIL, Purpose.MARKETING)
    assert planned(services, lead_id, "crisis-reply") == []
    # Anything else: the staff inbox, an alert, and marketing paused.
    with services.sessions() as session:
        items, _total = story.waiting_replies(session)
    assert [item.lead_id for item in items] == [lead_id]
    assert items[0].reply.body.endswith("Thanks, Tuesday works for me.")
    assert len(planned(services, lead_id, "staff-email-reply-alert")) == 1
    assert lead_of(services, lead_id).marketing_paused_at is not None


# --- unsubscribe ----------------------------------------------------------------------------


def test_stop_emailing_me_revokes_email_marketing_only_and_is_flagged(services: Services) -> None:
    lead_id = sign_up(services)
    result = deliver(services, mime("Please stop e-mailing me."))
    assert result.classification is InboundClass.OPT_OUT_PHRASE
    assert not allows(services, lead_id, Channel.EMAIL, Purpose.MARKETING)
    assert allows(services, lead_id, Channel.EMAIL, Purpose.CARE)
    assert allows(services, lead_id, Channel.SMS, Purpose.MARKETING)
    with services.sessions() as session:
        event = session.scalars(
            select(ConsentEvent).where(ConsentEvent.lead_id == lead_id).order_by(ConsentEvent.id)
        ).all()[-1]
    assert (
        event.source == ConsentSource.EMAIL_REPLY.value or event.source is ConsentSource.EMAIL_REPLY
    )
    (row,) = inbound_rows(services)
    assert row.needs_attention and "unsubscribe" in (row.attention_reason or "")
    # Pending marketing e-mail is cancelled, not only the ledger changed.
    pending = [
        m
        for m in planned_all(services, lead_id)
        if m.channel is Channel.EMAIL and m.purpose is Purpose.MARKETING
    ]
    assert pending and all(m.status is MessageStatus.CANCELLED for m in pending)


def planned_all(services: Services, lead_id: uuid.UUID) -> list[Message]:
    with services.sessions() as session:
        return messages_of(session, lead_id)


def test_a_bare_unsubscribe_in_the_subject_counts(services: Services) -> None:
    lead_id = sign_up(services)
    deliver(services, mime("", subject="UNSUBSCRIBE"))
    assert not allows(services, lead_id, Channel.EMAIL, Purpose.MARKETING)


# --- auto-replies ---------------------------------------------------------------------------


def test_auto_replies_are_recorded_and_otherwise_ignored(services: Services) -> None:
    lead_id = sign_up(services)
    ooo = (
        "I am out of the office until Monday. To unsubscribe from my list... I want to die laughing"
    )
    for header in (
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Precedence": "auto_reply"},
    ):
        result = deliver(services, mime(ooo, subject="Out of office", headers=header))
        assert result.kind == "auto_reply" and result.lead_id == lead_id
    assert inbound_rows(services) == []
    assert allows(services, lead_id, Channel.EMAIL, Purpose.MARKETING)
    lead = lead_of(services, lead_id)
    assert lead.marketing_paused_at is None and lead.crisis_hold_at is None
    assert planned(services, lead_id, "staff-crisis-page") == []
    assert actions(services, lead_id).count("email.auto_reply") == 3


def test_auto_submitted_no_is_a_person(services: Services) -> None:
    sign_up(services)
    result = deliver(services, mime("Can I bring my partner?", headers={"Auto-Submitted": "no"}))
    assert result.kind == "reply"


# --- DSNs -----------------------------------------------------------------------------------


def dsn(action: str, status: str, recipient: str, *, about: str = OUR_ID) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: replies@clinic.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{uuid.uuid4()}@mx.example.net>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n"
        "--B\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "--B\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--B\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"From: Clinic <hello@kiidaho.example>\r\nTo: {recipient}\r\n"
        f"Message-ID: {about}\r\nSubject: Welcome\r\n"
        "--B--\r\n"
    ).encode()


def test_a_permanent_failure_suppresses_the_address(services: Services) -> None:
    lead_id = sign_up(services)
    message_id = our_email_sent(services, lead_id)
    result = deliver(services, dsn("failed", "5.1.1", LEAD))
    assert result.kind == "bounce" and result.lead_id == lead_id
    assert not allows(services, lead_id, Channel.EMAIL, Purpose.MARKETING)
    assert not allows(services, lead_id, Channel.EMAIL, Purpose.CARE)
    assert allows(services, lead_id, Channel.SMS, Purpose.CARE)
    with services.sessions() as session:
        row = session.scalars(select(MailboxMessage)).one()
        sources = set(
            session.scalars(select(ConsentEvent.source).where(ConsentEvent.lead_id == lead_id))
        )
    assert row.replied_to_id == message_id and row.details["suppressed"] == [LEAD]
    assert ConsentSource.BOUNCE in sources or "bounce" in sources
    assert inbound_rows(services) == []  # a machine wrote it: not in the staff inbox


def test_a_transient_failure_is_only_recorded(services: Services) -> None:
    lead_id = sign_up(services)
    our_email_sent(services, lead_id)
    result = deliver(services, dsn("delayed", "4.4.7", LEAD))
    assert result.kind == "bounce"
    assert allows(services, lead_id, Channel.EMAIL, Purpose.MARKETING)
    with services.sessions() as session:
        row = session.scalars(select(MailboxMessage)).one()
    assert row.details["temporary"] == [LEAD] and row.details["suppressed"] == []


def test_a_forged_report_about_no_email_of_ours_suppresses_nothing(services: Services) -> None:
    lead_id = sign_up(services)
    our_email_sent(services, lead_id)
    deliver(services, dsn("failed", "5.1.1", LEAD, about="<guessed.42@kiidaho.example>"))
    assert allows(services, lead_id, Channel.EMAIL, Purpose.CARE)


# --- matching ---------------------------------------------------------------------------------


def test_a_reply_is_matched_by_in_reply_to_even_from_another_address(services: Services) -> None:
    lead_id = sign_up(services)
    sign_up(services, email="someone.else@example.com", phone="+12085550124")
    message_id = our_email_sent(services, lead_id)
    result = deliver(
        services,
        mime(
            "Is Thursday possible?",
            sender="Ana at work <ana@work.example>",
            headers={"In-Reply-To": OUR_ID, "References": f"<older@x.example> {OUR_ID}"},
        ),
    )
    assert result.lead_id == lead_id
    with services.sessions() as session:
        row = session.scalars(select(MailboxMessage)).one()
    assert row.replied_to_id == message_id


def test_a_guessed_message_id_matches_nothing_and_the_from_address_decides(
    services: Services,
) -> None:
    victim = sign_up(services)
    our_email_sent(services, victim)
    result = deliver(
        services,
        mime(
            "unsubscribe",
            sender="stranger@evil.example",
            headers={"In-Reply-To": "<1.2.3.42@kiidaho.example>"},
        ),
    )
    assert result.lead_id != victim
    assert allows(services, victim, Channel.EMAIL, Purpose.MARKETING)


def test_a_reply_without_references_is_matched_by_from_ignoring_case(services: Services) -> None:
    lead_id = sign_up(services)
    result = deliver(services, mime("Hello!", sender="ANA.Rivera@Example.COM"))
    assert result.lead_id == lead_id


def test_an_unknown_sender_becomes_a_lead_with_care_email_only(services: Services) -> None:
    result = deliver(services, mime("I want to end my life", sender="new.person@example.org"))
    assert result.lead_id is not None
    lead = lead_of(services, result.lead_id)
    assert lead.email == "new.person@example.org" and lead.first_name == ""
    assert allows(services, lead.id, Channel.EMAIL, Purpose.CARE)
    assert not allows(services, lead.id, Channel.EMAIL, Purpose.MARKETING)
    claim_and_send_all(services)
    (reply,) = planned(services, lead.id, "crisis-reply")
    assert reply.status is MessageStatus.SENT
    assert len(planned(services, lead.id, "staff-crisis-page")) == 1


# --- hostile headers and duplicates ----------------------------------------------------------


def test_hostile_headers_are_data(services: Services) -> None:
    lead_id = sign_up(services)
    hostile = [
        # An encoded CR/LF trying to add a Bcc: line, with the lead's address after it.
        mime("hi", sender=f"=?utf-8?q?Ana=0D=0ABcc=3A_victim=40evil.example?= <{LEAD}>"),
        # Two senders: neither is believed.
        mime("unsubscribe", sender=f"{LEAD}, other@evil.example"),
        # Broken encodings, a huge subject, bytes that are not UTF-8.
        mime("x", subject="=?bogus-charset?b?////?=" + "A" * 20000),
        b"From: \xff\xfe<" + LEAD.encode() + b">\r\nSubject: \xc3\x28\r\n\r\nstop e-mailing me\r\n",
        b"not a mail at all \x00\x01",
    ]
    results = [deliver(services, raw) for raw in hostile]
    assert [r.kind for r in results] == ["reply"] * 5
    # The plain address behind a hostile display name is the lead's; two senders are nobody.
    assert results[0].lead_id == lead_id and results[3].lead_id == lead_id
    assert results[1].lead_id is None and results[4].lead_id is None
    with services.sessions() as session:
        unsubscribes = session.scalars(
            select(ConsentEvent).where(
                ConsentEvent.lead_id == lead_id, ConsentEvent.purpose == Purpose.MARKETING
            )
        ).all()
    # Only the one from the lead's own address (not the two-sender one) revoked marketing.
    assert [e.evidence.get("inbound_id") for e in unsubscribes if e.evidence.get("inbound_id")] == [
        inbound_rows(services)[3].id
    ]
    for row in inbound_rows(services):
        assert "\n" not in row.from_number and "\r" not in row.from_number
        assert len(row.from_number) <= 32
    with services.sessions() as session:
        addresses = set(session.scalars(select(MailboxMessage.from_address)))
    assert addresses <= {LEAD, None}


def test_the_same_place_twice_is_recorded_once_and_the_same_mail_elsewhere_is_a_duplicate(
    services: Services,
) -> None:
    lead_id = sign_up(services)
    raw = mime("Can I call you?", message_id="<same@mail.example.com>")
    assert deliver(services, raw, uid=500).kind == "reply"
    assert deliver(services, raw, uid=500).kind == "recorded"
    assert deliver(services, raw, uid=501).kind == "duplicate"
    assert len(inbound_rows(services)) == 1
    assert len(planned(services, lead_id, "staff-email-reply-alert")) == 1


def test_staff_answering_an_alert_is_not_a_lead_writing(services: Services) -> None:
    lead_id = sign_up(services)
    deliver(services, mime("Can someone call me?"))  # a reply for staff: an alert goes out
    (alert,) = planned(services, lead_id, "staff-email-reply-alert")
    with services.sessions.begin() as session:
        session.execute(
            update(Message).where(Message.id == alert.id).values(provider_id="<alert.7@x.example>")
        )
    leads_before = count_leads(services)
    result = deliver(
        services,
        mime(
            "On it, calling her now. She said she wants to die, so I am calling.",
            sender=f"Nurse <{services.clinic.staff_email}>",
            headers={"In-Reply-To": "<alert.7@x.example>"},
        ),
    )
    assert result.kind == "from_clinic"
    assert count_leads(services) == leads_before
    assert len(inbound_rows(services)) == 1  # only the lead's own reply
    assert planned(services, lead_id, "staff-crisis-page") == []


def count_leads(services: Services) -> int:
    with services.sessions() as session:
        return len(session.scalars(select(Lead.id)).all())


def test_the_beat_reads_the_mailbox_only_when_it_is_configured(services: Services) -> None:
    from pydantic import SecretStr

    from workers.app import celery_config

    assert "read-reply-mailbox" not in celery_config(services.settings)["beat_schedule"]
    configured = services.settings.model_copy(
        update={"imap_url": SecretStr("imaps://u:p@imap.example.com/INBOX")}
    )
    entry = celery_config(configured)["beat_schedule"]["read-reply-mailbox"]
    assert entry["task"] == "nurture.read_reply_mailbox"


def test_the_mailbox_url_is_checked_and_its_password_never_shown() -> None:
    import pytest

    from nurture.replies import mailbox

    url = mailbox.parse_url("imaps://replies%40clinic.example:s3cr%2Fet@imap.example.com/INBOX")
    assert (url.user, url.password, url.port, url.tls) == (
        "replies@clinic.example",
        "s3cr/et",
        993,
        True,
    )
    assert "s3cr" not in url.key and "s3cr" not in repr(url)
    for bad in (
        "https://u:p@imap.example.com/",
        "imap://u:p@imap.example.com/INBOX",  # plain text off loopback
        "imaps://imap.example.com/INBOX",
    ):
        with pytest.raises(mailbox.MailboxUrlError):
            mailbox.parse_url(bad)


def html_mail(html: str) -> bytes:
    return (
        f"From: {LEAD}\r\nTo: replies@clinic.example\r\nSubject: Re: Welcome\r\n"
        f"Message-ID: <{uuid.uuid4()}@mail.example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n"
    ).encode()


def test_an_html_only_reply_is_read_without_what_it_quotes(services: Services) -> None:
    lead_id = sign_up(services)
    quoted = (
        "<div>Sounds good, thank you!</div>"
        '<div class="gmail_quote"><p>If you are struggling or thinking about suicide, call or '
        "text 988.</p><a href='https://nurture.test/u/x'>Unsubscribe</a></div>"
        "<blockquote>I want to die</blockquote>"
    )
    assert deliver(services, html_mail(quoted)).classification is InboundClass.OTHER
    assert allows(services, lead_id, Channel.EMAIL, Purpose.MARKETING)
    crisis = "<p>Honestly I have been thinking about suicide<br>every day</p>"
    assert deliver(services, html_mail(crisis)).classification is InboundClass.CRISIS
