"""POST /webhooks/twilio/sms: signatures, keywords, crisis, replies (compliance rules 7–13, 26)."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from datetime import datetime, timedelta
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import func, select, update

from nurture import clock, consent
from nurture.consent import tokens
from nurture.content.sms_encoding import measure
from nurture.db.models import (
    AuditEvent,
    Channel,
    InboundClass,
    InboundMessage,
    Lead,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.leads.lifecycle import apply_event
from nurture.outbox import gates, pauses
from nurture.program.sequences import LifecycleEvent
from nurture.runtime import Services, build_services
from nurture.web import create_app
from tests.conftest import REPO, SettingsFactory
from tests.support import outbox_files
from tests.support.factories import claim_and_send_all, messages_of, sign_up
from tests.support.signing import AUTH_TOKEN, signed_headers

URL = "https://nurture.test/webhooks/twilio/sms"
PHONE = "+12085550123"
_sids = itertools.count(1)


def text(
    client: TestClient, body: str, *, sender: str = PHONE, sid: str | None = None, **extra: str
) -> tuple[int, list[str]]:
    params = {
        "MessageSid": sid or f"SM{next(_sids):032d}",
        "From": sender,
        "To": "+12085550100",
        "Body": body,
        "AccountSid": "AC" + "1" * 32,
        "NumMedia": "0",
        **extra,
    }
    response = client.post("/webhooks/twilio/sms", data=params, headers=signed_headers(URL, params))
    replies = []
    if response.status_code == 200:
        root = ElementTree.fromstring(response.text)
        assert root.tag == "Response"
        replies = [element.text or "" for element in root.findall("Message")]
    return response.status_code, replies


def count(services: Services, model: type[object]) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("headers", [{}, {"X-Twilio-Signature": "forged"}])
def test_unsigned_or_forged_requests_are_refused_and_nothing_is_recorded(
    client: TestClient, services: Services, headers: dict[str, str]
) -> None:
    params = {"MessageSid": "SM1", "From": PHONE, "To": "+12085550100", "Body": "STOP"}
    response = client.post("/webhooks/twilio/sms", data=params, headers=headers)
    assert response.status_code == 403
    assert count(services, InboundMessage) == 0
    assert count(services, Lead) == 0


def test_a_signature_for_other_parameters_is_refused(
    client: TestClient, services: Services
) -> None:
    params = {"MessageSid": "SM1", "From": PHONE, "To": "+12085550100", "Body": "hello"}
    headers = signed_headers(URL, params)
    response = client.post("/webhooks/twilio/sms", data={**params, "Body": "STOP"}, headers=headers)
    assert response.status_code == 403


def test_rule_7_stop_revokes_every_sms_purpose_cancels_texts_and_replies_once(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    status, replies = text(client, "Stop.")
    assert status == 200
    assert len(replies) == 1
    assert replies[0].startswith("KI Idaho:")
    assert "no further texts" in replies[0]
    with services.sessions() as session:
        state = consent.current(session, lead_id)
        assert not state.allows(Channel.SMS, Purpose.CARE)
        assert not state.allows(Channel.SMS, Purpose.MARKETING)
        assert state.allows(Channel.EMAIL, Purpose.MARKETING)  # texts only
        rows = messages_of(session, lead_id)
        assert [(m.step_key, m.status) for m in rows if m.channel is Channel.SMS] == [
            ("optin-confirmation", MessageStatus.CANCELLED),
            ("reply-opt_out", MessageStatus.SENT),  # the one confirmation, in their history
        ]
        assert all(m.status is MessageStatus.SCHEDULED for m in rows if m.channel is Channel.EMAIL)
        inbound = session.scalars(select(InboundMessage)).one()
        assert inbound.classification is InboundClass.OPT_OUT
        assert inbound.params["Body"] == "Stop."
        assert not inbound.needs_attention
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.lead_id == lead_id)
        ).all()
        assert "inbound.received" in actions
        assert actions.count("consent.revoked") == 2
        assert "reply.sent" in actions


def test_the_same_message_sid_twice_is_handled_once(client: TestClient, services: Services) -> None:
    sign_up(services)
    assert text(client, "STOP", sid="SMdup")[1]
    status, replies = text(client, "STOP", sid="SMdup")
    assert status == 200
    assert replies == []
    assert count(services, InboundMessage) == 1


def test_an_opt_out_phrase_is_honoured_and_flagged_for_review(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    _, replies = text(client, "please stop texting me")
    assert len(replies) == 1
    with services.sessions() as session:
        assert not consent.current(session, lead_id).allows(Channel.SMS, Purpose.MARKETING)
        inbound = session.scalars(select(InboundMessage)).one()
        assert inbound.classification is InboundClass.OPT_OUT_PHRASE
        assert inbound.needs_attention


def test_twilio_opt_out_type_is_honoured_without_a_second_reply(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    _, replies = text(client, "ARRET", OptOutType="STOP")
    assert replies == []  # Twilio's Advanced Opt-Out already answered
    with services.sessions() as session:
        assert not consent.current(session, lead_id).allows(Channel.SMS, Purpose.CARE)


def test_rule_11_start_restores_what_was_granted_and_confirms_again(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services, consent={"sms_care": True, "email_marketing": True})
    text(client, "STOP")
    _, replies = text(client, "start")
    assert len(replies) == 1
    assert "Reply HELP for help, STOP to opt out" in replies[0]
    assert "Msg & data rates may apply" in replies[0]
    with services.sessions() as session:
        state = consent.current(session, lead_id)
        assert state.allows(Channel.SMS, Purpose.CARE)
        assert not state.allows(Channel.SMS, Purpose.MARKETING)  # never granted, not invented


def test_start_from_someone_who_never_agreed_grants_nothing(
    client: TestClient, services: Services
) -> None:
    _, replies = text(client, "START", sender="+12085550999")
    assert "request a free consultation" in replies[0]
    with services.sessions() as session:
        lead = session.scalars(select(Lead)).one()
        assert consent.current(session, lead.id).granted == frozenset()


def test_rule_13_help_names_the_program_contact_frequency_rates_and_stop(
    client: TestClient, services: Services
) -> None:
    sign_up(services)
    _, [reply] = text(client, "HELP")
    for needed in (
        "KI Idaho",
        "(208) 555-0134",
        "care@kiidaho.example",
        "up to 4 msgs/week",
        "Msg & data rates may apply",
        "Reply STOP to opt out",
    ):
        assert needed in reply
    assert "ketamine" not in reply.lower()


def test_rule_26_crisis_words_reply_alert_staff_pause_marketing_and_audit(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    _, replies = text(client, "honestly I want to die")
    assert len(replies) == 1
    assert "988" in replies[0] and "911" in replies[0]
    with services.sessions() as session:
        lead = session.get_one(Lead, lead_id)
        assert lead.marketing_paused_at is not None
        alert = session.scalars(
            select(Message).where(
                Message.purpose == Purpose.ALERT, Message.channel == Channel.EMAIL
            )
        ).one()
        assert alert.recipient == "oncall@kiidaho.example"
        assert alert.template_key == "staff-crisis-alert"
        assert alert.context["body"] == "honestly I want to die"
        assert alert.status is MessageStatus.SCHEDULED
        inbound = session.scalars(select(InboundMessage)).one()
        assert inbound.classification is InboundClass.CRISIS
        assert inbound.needs_attention
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.lead_id == lead_id)
        ).all()
        assert "inbound.crisis" in actions
        assert "lead.marketing_paused" in actions
        # Consent for care stays; the sends themselves are held until staff resume (below).
        assert consent.current(session, lead_id).allows(Channel.SMS, Purpose.CARE)


def test_any_other_text_goes_to_staff_and_pauses_marketing(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    _, replies = text(client, "Can I bring my husband to the consult?")
    assert replies == []
    with services.sessions() as session:
        assert (
            session.get_one(Lead, lead_id).marketing_pause_reason
            == "replied by text; waiting for staff"
        )
        alert = session.scalars(select(Message).where(Message.purpose == Purpose.ALERT)).one()
        assert alert.template_key == "staff-reply-alert"


def test_a_stranger_s_stop_is_recorded_against_a_new_record(
    client: TestClient, services: Services
) -> None:
    _, replies = text(client, "STOP", sender="(208) 555-0777")
    assert len(replies) == 1
    with services.sessions() as session:
        lead = session.scalars(select(Lead)).one()
        assert lead.phone == "+12085550777"
        assert not consent.current(session, lead.id).allows(Channel.SMS, Purpose.CARE)


def test_a_signed_request_without_message_sid_is_a_clear_error(client: TestClient) -> None:
    params = {"From": PHONE, "Body": "hi"}
    response = client.post("/webhooks/twilio/sms", data=params, headers=signed_headers(URL, params))
    assert response.status_code == 422
    assert "MessageSid" in response.text


def test_the_crisis_alert_reaches_staff_by_email_at_any_hour(
    client: TestClient, services: Services
) -> None:
    from freezegun import freeze_time

    from tests.support import outbox_files
    from tests.support.factories import claim_and_send_all

    with freeze_time("2026-03-04 10:00:00"):  # 03:00 in Boise
        sign_up(services, consent={"sms_care": True})
        text(client, "I keep thinking about suicide")
        claim_and_send_all(services)
    mails = outbox_files.emails(services.settings.resolved_outbox_dir)
    alert = next(m for m in mails if m["To"] == "oncall@kiidaho.example")
    assert alert["Subject"] == "URGENT: crisis words in a text from Ana Rivera"
    body = alert.get_body(preferencelist=("plain",))
    assert body is not None
    assert "I keep thinking about suicide" in body.get_content()
    assert "/admin/leads/" in body.get_content()


def test_replies_join_the_lead_s_history(client: TestClient, services: Services) -> None:
    lead_id = sign_up(services)
    text(client, "HELP")
    with services.sessions() as session:
        reply = next(m for m in messages_of(session, lead_id) if m.step_key == "reply-help")
    assert reply.status is MessageStatus.SENT
    assert reply.body and "Msg & data rates may apply" in reply.body


# Issue 12: every way people say STOP, HELP or "I need help now" (rules 7, 9, 11, 26).

ON_CALL = "+12085550199"  # config/clinic.yaml on_call_phone


def book(services: Services, lead_id: uuid.UUID, consult_at: datetime) -> None:
    with services.sessions.begin() as session:
        apply_event(
            session,
            session.get_one(Lead, lead_id),
            LifecycleEvent.CONSULT_BOOKED,
            consult_at=consult_at,
            catalog=services.catalog,
            clinic_zone=services.clinic.zone,
            now=clock.utcnow(),
            actor="test",
        )


def alerts_of(services: Services) -> list[Message]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(Message).where(Message.purpose == Purpose.ALERT).order_by(Message.id)
            )
        )


def actions_of(services: Services, lead_id: uuid.UUID) -> list[str]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.lead_id == lead_id)
                .order_by(AuditEvent.id)
            )
        )


@pytest.mark.parametrize(
    "body", ["PARAR", "alto", "Basta!", "CANCELAR", "🛑", "🛑🛑", "No more", "STOP 🛑", "stop!! 🙏"]
)
def test_rule_7_the_new_opt_out_words_revoke_texts_and_confirm(
    client: TestClient, services: Services, body: str
) -> None:
    lead_id = sign_up(services)
    _, replies = text(client, body)
    assert len(replies) == 1 and "unsubscribed" in replies[0]
    with services.sessions() as session:
        assert not consent.current(session, lead_id).allows(Channel.SMS, Purpose.OPTIN)
        inbound = session.scalars(select(InboundMessage)).one()
        assert inbound.classification is InboundClass.OPT_OUT
        assert not inbound.needs_attention  # a keyword: nothing for a person to check


@pytest.mark.parametrize(
    "body",
    [
        "Take me off your list",
        "please remove me",
        "Unsubscribe me!",
        "don't text me",
        "STOP texting",
    ],
)
def test_rule_7_opt_out_phrases_are_honoured_and_flagged(
    client: TestClient, services: Services, body: str
) -> None:
    lead_id = sign_up(services)
    _, replies = text(client, body)
    assert len(replies) == 1 and "unsubscribed" in replies[0]
    with services.sessions() as session:
        assert not consent.current(session, lead_id).allows(Channel.SMS, Purpose.OPTIN)
        inbound = session.scalars(select(InboundMessage)).one()
        assert inbound.classification is InboundClass.OPT_OUT_PHRASE
        assert inbound.needs_attention


def test_rule_7_cancel_with_a_consult_booked_opts_out_and_tells_staff(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    book(services, lead_id, clock.utcnow() + timedelta(days=3))
    _, replies = text(client, "CANCEL")
    assert len(replies) == 1 and "unsubscribed" in replies[0]  # still the FCC opt-out
    with services.sessions() as session:
        assert not consent.current(session, lead_id).allows(Channel.SMS, Purpose.OPTIN)
        inbound = session.scalars(select(InboundMessage)).one()
        assert inbound.classification is InboundClass.OPT_OUT
        assert inbound.needs_attention
        assert inbound.attention_reason and "consult" in inbound.attention_reason
        assert session.get_one(Lead, lead_id).stage.value == "booked"  # nobody guessed for them
    [alert] = alerts_of(services)
    assert (alert.channel, alert.template_key) == (Channel.EMAIL, "staff-cancel-alert")
    assert alert.recipient == "oncall@kiidaho.example"
    claim_and_send_all(services)
    mail = next(
        m
        for m in outbox_files.emails(services.settings.resolved_outbox_dir)
        if m["To"] == "oncall@kiidaho.example"
    )
    assert mail["Subject"] == "Ana Rivera texted CANCEL and has a consult booked"
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None and "may also want to cancel their consultation" in body.get_content()


@pytest.mark.parametrize("booked", [False, True])
def test_rule_7_cancel_without_an_upcoming_consult_is_only_an_opt_out(
    client: TestClient, services: Services, booked: bool
) -> None:
    lead_id = sign_up(services)
    if booked:  # booked, but the consult is already over
        book(services, lead_id, clock.utcnow() + timedelta(minutes=5))
        with freeze_time(clock.utcnow() + timedelta(hours=2)):
            _, replies = text(client, "cancel")
    else:
        _, replies = text(client, "cancel")
    assert len(replies) == 1
    assert alerts_of(services) == []
    with services.sessions() as session:
        assert not session.scalars(select(InboundMessage)).one().needs_attention


def test_rule_7_cancel_my_appointment_is_a_question_for_staff_not_an_opt_out(
    client: TestClient, services: Services
) -> None:
    """Only the whole message CANCEL is the FCC keyword; this asks a person for something."""
    lead_id = sign_up(services)
    book(services, lead_id, clock.utcnow() + timedelta(days=3))
    _, replies = text(client, "cancel my appointment?")
    assert replies == []
    with services.sessions() as session:
        assert consent.current(session, lead_id).allows(Channel.SMS, Purpose.CARE)
        assert session.scalars(select(InboundMessage)).one().classification is InboundClass.OTHER
    [alert] = alerts_of(services)
    assert alert.template_key == "staff-reply-alert"


def test_rule_7_a_question_about_stopping_meds_is_not_an_opt_out(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    _, replies = text(client, "pills? do I need to stop my meds before the consult")
    assert replies == []  # no crisis reply, no opt-out confirmation: a person answers
    with services.sessions() as session:
        assert consent.current(session, lead_id).allows(Channel.SMS, Purpose.CARE)
    assert [a.template_key for a in alerts_of(services)] == ["staff-reply-alert"]


def test_rule_9_a_repeated_stop_within_24_hours_gets_no_second_reply(
    client: TestClient, services: Services
) -> None:
    with freeze_time("2026-03-03 18:00:00") as frozen:
        lead_id = sign_up(services)
        assert len(text(client, "STOP")[1]) == 1
        frozen.tick(timedelta(hours=3))
        assert text(client, "STOP")[1] == []
        frozen.tick(timedelta(hours=1))
        assert text(client, "please stop")[1] == []  # a phrase is the same opt-out again
        assert count(services, InboundMessage) == 3  # every one recorded
        assert actions_of(services, lead_id).count("reply.withheld") == 2  # and audited
        frozen.tick(timedelta(hours=21))  # 25 hours after the confirmation
        assert len(text(client, "STOP")[1]) == 1
    with services.sessions() as session:
        sent = [m for m in messages_of(session, lead_id) if m.template_key == "stop-confirmation"]
    assert len(sent) == 2


def test_rule_9_a_stop_after_resubscribing_is_a_new_opt_out_and_is_confirmed(
    client: TestClient, services: Services
) -> None:
    sign_up(services)
    text(client, "STOP")
    text(client, "START")
    _, replies = text(client, "STOP")
    assert len(replies) == 1 and "unsubscribed" in replies[0]


def test_rule_9_a_stranger_s_repeated_stop_is_confirmed_once(
    client: TestClient, services: Services
) -> None:
    assert len(text(client, "STOP", sender="+12085550777")[1]) == 1
    assert text(client, "stop", sender="+12085550777")[1] == []


def test_rule_11_yes_from_a_subscriber_asked_to_confirm_confirms_the_consult(
    make_settings: SettingsFactory,
) -> None:
    """With the clinic's own program: the 24-hour reminder asks "Reply C to confirm"; many
    people answer YES, which is also an opt-in word."""
    services = build_services(
        make_settings(config_dir=REPO / "config", twilio_auth_token=AUTH_TOKEN)
    )
    try:
        with (
            freeze_time("2026-03-03 18:00:00") as frozen,
            TestClient(create_app(services)) as client,
        ):
            lead_id = sign_up(services)
            book(services, lead_id, clock.utcnow() + timedelta(hours=24, minutes=5))
            for _ in range(5):  # the opt-in confirmation now, the 24-hour reminder in 5 minutes
                claim_and_send_all(services)
                frozen.tick(timedelta(minutes=2))
            with services.sessions() as session:
                asked = next(
                    m for m in messages_of(session, lead_id) if m.step_key == "reminder-sms-24h"
                )
            assert asked.status is MessageStatus.SENT, asked.last_error
            _, replies = text(client, "Yes!")
        assert len(replies) == 1
        assert "is confirmed" in replies[0]
        assert "free consultation" not in replies[0]
        with services.sessions() as session:
            lead = session.get_one(Lead, lead_id)
            assert lead.consult_confirmed_at is not None
            assert lead.marketing_paused_at is None
            assert not session.scalars(select(InboundMessage)).one().needs_attention
        assert alerts_of(services) == []
    finally:
        services.close()


@pytest.mark.parametrize("booked", [False, True])
def test_rule_11_yes_from_a_subscriber_with_nothing_to_confirm_goes_to_staff(
    client: TestClient, services: Services, booked: bool
) -> None:
    lead_id = sign_up(services)
    if booked:  # booked, but no confirmation request has gone out yet
        book(services, lead_id, clock.utcnow() + timedelta(days=5))
    _, replies = text(client, "YES")
    assert replies == []  # never "request a free consultation" to someone who did
    with services.sessions() as session:
        inbound = session.scalars(select(InboundMessage)).one()
        assert inbound.classification is InboundClass.OPT_IN
        assert inbound.needs_attention
        assert session.get_one(Lead, lead_id).consult_confirmed_at is None
    [alert] = alerts_of(services)
    assert alert.template_key == "staff-reply-alert"


def test_rule_26_a_crisis_pages_the_on_call_phone_without_the_message(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    text(client, "I took too many pills")
    email, page = alerts_of(services)
    assert (email.channel, email.template_key) == (Channel.EMAIL, "staff-crisis-alert")
    assert (page.channel, page.purpose, page.recipient) == (Channel.SMS, Purpose.ALERT, ON_CALL)
    assert page.status is MessageStatus.SCHEDULED and page.due_at <= clock.utcnow()
    assert page.context["inbox_url"] == "https://nurture.test/admin/inbox"
    assert "pills" not in json.dumps(page.context)  # nothing of what they wrote
    assert "Ana" not in json.dumps(page.context) and PHONE not in json.dumps(page.context)
    assert actions_of(services, lead_id).count("alert.planned") == 2


def test_rule_26_the_page_reaches_the_on_call_phone_at_3_am_and_names_no_one(
    client: TestClient, services: Services
) -> None:
    """Sent through the real outbox: at 03:00 in Boise, to the on-call phone, not the lead."""
    with freeze_time("2026-03-04 10:00:00"):  # 03:00 in Boise
        sign_up(services, consent={"sms_care": True})
        with services.sessions.begin() as session:  # the opt-in confirmation is not the point
            session.execute(
                update(Message).where(Message.purpose == Purpose.OPTIN).values(status="skipped")
            )
        text(client, "quiero morir")
        claim_and_send_all(services)
    sent = outbox_files.texts(services.settings.resolved_outbox_dir)
    assert [t.to for t in sent] == [ON_CALL]
    page = sent[0].body
    assert "crisis" in page and "https://nurture.test/admin/inbox" in page
    assert "morir" not in page and "Ana" not in page and "0123" not in page
    assert measure(page).encoding == "GSM-7"
    for word in services.policy.content.sms_forbidden:  # lock screens: no drug, no diagnosis
        assert not re.search(word, page, re.IGNORECASE)


@pytest.mark.parametrize(
    "body", ["kms", "I can't go on", "goodbye forever", "matarme", "not worth living", "help me"]
)
def test_rule_26_the_crisis_reply_gives_988_911_and_when_the_clinic_is_staffed(
    client: TestClient, services: Services, body: str
) -> None:
    sign_up(services)
    _, replies = text(client, body)
    assert len(replies) == 1
    reply = replies[0]
    assert "988" in reply and "911" in reply
    assert "staffed Mon-Fri 8am-6pm Mountain" in reply
    assert "consultation" not in reply  # never a marketing answer to a crisis
    with services.sessions() as session:
        assert session.scalars(select(InboundMessage)).one().classification is InboundClass.CRISIS
    assert [(a.channel, a.recipient) for a in alerts_of(services)] == [
        (Channel.EMAIL, "oncall@kiidaho.example"),
        (Channel.SMS, ON_CALL),
    ]


@pytest.mark.parametrize("body", ["this traffic is killing me", "I can go on Tuesday", "thanks"])
def test_rule_26_ordinary_replies_get_no_crisis_reply_and_no_page(
    client: TestClient, services: Services, body: str
) -> None:
    sign_up(services)
    _, replies = text(client, body)
    assert replies == []
    assert [a.template_key for a in alerts_of(services)] == ["staff-reply-alert"]


def test_rule_26_crisis_words_hold_every_nurture_send_until_staff_resume(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    text(client, "I can't go on")

    def verdicts() -> list[gates.Verdict]:
        with services.sessions() as session:
            lead = session.get_one(Lead, lead_id)
            care = [
                m
                for m in messages_of(session, lead_id)
                if m.purpose is Purpose.CARE and m.enrollment_id is not None
            ]
            assert care, "the sign-up planned no care step to hold"
            return [
                gates.check(
                    session,
                    m,
                    lead,
                    policy=services.policy,
                    clinic_zone=services.clinic.zone,
                    now=clock.utcnow(),
                )
                for m in care
            ]

    held = verdicts()
    assert all(isinstance(v, gates.Defer) and "crisis words" in v.reason for v in held), held
    with services.sessions.begin() as session:
        pauses.resume_lead_marketing(session, session.get_one(Lead, lead_id), actor="staff:ops")
    assert not any(isinstance(v, gates.Defer) and "crisis" in v.reason for v in verdicts())
    with services.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.lead_id == lead_id)
        ).all()
    assert "lead.crisis_hold" in actions and "lead.marketing_resumed" in actions


def test_rule_10_a_stop_ends_every_text_and_an_unsubscribe_every_marketing_email(
    client: TestClient, services: Services
) -> None:
    """The default scope (rule 10): an SMS STOP stops texts of every purpose and leaves e-mail
    alone; an e-mail unsubscribe stops marketing e-mail and leaves care e-mail and texts."""
    lead_id = sign_up(services)

    def granted() -> set[tuple[str, str]]:
        with services.sessions() as session:
            state = consent.current(session, lead_id)
        return {
            (channel.value, purpose.value)
            for channel in Channel
            for purpose in (Purpose.CARE, Purpose.MARKETING)
            if state.allows(channel, purpose)
        }

    assert {("sms", "care"), ("sms", "marketing"), ("email", "marketing")} <= granted()
    text(client, "STOP")
    assert not {g for g in granted() if g[0] == "sms"}
    assert ("email", "marketing") in granted()
    token = tokens.sign(services.secret, lead_id, Purpose.MARKETING)
    response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert ("email", "marketing") not in granted()
    with services.sessions() as session:
        pending = [
            m
            for m in messages_of(session, lead_id)
            if m.status in (MessageStatus.SCHEDULED, MessageStatus.QUEUED)
        ]
    assert pending and all(
        m.channel is Channel.EMAIL and m.purpose is Purpose.CARE for m in pending
    ), [(m.channel, m.purpose) for m in pending]
