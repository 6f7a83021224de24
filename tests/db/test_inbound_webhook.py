"""POST /webhooks/twilio/sms: signatures, keywords, crisis, replies (compliance rules 7–13, 26)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from nurture import consent
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
from nurture.runtime import Services, build_services
from nurture.web import create_app
from tests.conftest import SettingsFactory
from tests.support.factories import messages_of, sign_up
from tests.support.signing import AUTH_TOKEN, signed_headers

URL = "https://nurture.test/webhooks/twilio/sms"
PHONE = "+12085550123"
_sids = itertools.count(1)


@pytest.fixture
def services(make_settings: SettingsFactory) -> Iterator[Services]:
    built = build_services(make_settings(twilio_auth_token=AUTH_TOKEN))
    yield built
    built.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as test_client:
        yield test_client


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
    assert "no further messages" in replies[0]
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
        alert = session.scalars(select(Message).where(Message.purpose == Purpose.ALERT)).one()
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
        # Care texts (reminders) still go; marketing waits for staff.
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
