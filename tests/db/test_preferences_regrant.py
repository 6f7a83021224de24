"""Texts turned back on from the preferences page (compliance rules 1, 3, 11, 26).

The page used to turn texts back on after "STOP I want to kill myself", with no phone shown,
no evidence and no opt-in text. Now a tick records the form's evidence and plans the opt-in
confirmation, and after crisis words or an opt-out by text in the last 30 days it goes to a
person from the care team instead.
"""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree

from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import select

from nurture import clock, consent
from nurture.consent import tokens
from nurture.db.models import (
    AuditEvent,
    Channel,
    ConsentAction,
    ConsentEvent,
    Lead,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.runtime import Services
from tests.support import outbox_files
from tests.support.api import API_KEY, api_signup_data
from tests.support.factories import claim_and_send_all, messages_of, sign_up
from tests.support.signing import signed_headers

PHONE = "+12085550123"
WEBHOOK = "https://nurture.test/webhooks/twilio/sms"
HELD = "someone from our care team will confirm with you before texts start again"
_sids = itertools.count(1)


def email_only_lead(services: Services) -> uuid.UUID:
    """Signed up for e-mail with a phone number given, no text box ticked."""
    return sign_up(services, consent={"email_marketing": True})


def page(client: TestClient, services: Services, lead_id: uuid.UUID) -> tuple[str, str, str]:
    token = tokens.sign(services.secret, lead_id, Purpose.MARKETING)
    response = client.get(f"/u/{token}")
    assert response.status_code == 200
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', response.text)
    assert csrf
    return token, csrf.group(1), response.text


def tick(
    client: TestClient, services: Services, lead_id: uuid.UUID, *boxes: str
) -> tuple[str, str]:
    token, csrf, _ = page(client, services, lead_id)
    response = client.post(
        f"/u/{token}/preferences",
        data={"csrf": csrf, **dict.fromkeys(boxes, "on")},
        headers={"User-Agent": "Mozilla/5.0 (iPhone) test"},
    )
    assert response.status_code == 200
    return token, response.text


def text_in(client: TestClient, body: str) -> list[str]:
    """A text from the lead's phone through the real, signed Twilio webhook."""
    params = {
        "MessageSid": f"SM{next(_sids):032d}",
        "From": PHONE,
        "To": "+12085550100",
        "Body": body,
        "AccountSid": "AC" + "1" * 32,
        "NumMedia": "0",
    }
    response = client.post(
        "/webhooks/twilio/sms", data=params, headers=signed_headers(WEBHOOK, params)
    )
    assert response.status_code == 200
    return [m.text or "" for m in ElementTree.fromstring(response.text).findall("Message")]


def sms_grants(services: Services, lead_id: uuid.UUID) -> list[ConsentEvent]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(ConsentEvent)
                .where(
                    ConsentEvent.lead_id == lead_id,
                    ConsentEvent.channel == Channel.SMS,
                    ConsentEvent.action == ConsentAction.GRANTED,
                )
                .order_by(ConsentEvent.id)
            )
        )


def texts_allowed(services: Services, lead_id: uuid.UUID) -> dict[str, bool]:
    with services.sessions() as session:
        return consent.current(session, lead_id).as_dict()["sms"]


def rows(services: Services, lead_id: uuid.UUID, **where: Any) -> list[Message]:
    with services.sessions() as session:
        return [
            m
            for m in messages_of(session, lead_id)
            if all(getattr(m, key) == value for key, value in where.items())
        ]


def audit_actions(services: Services, lead_id: uuid.UUID) -> list[str]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.lead_id == lead_id)
                .order_by(AuditEvent.id)
            )
        )


def test_rule_11_the_page_shows_the_masked_number_and_text_boxes_not_granted_unticked(
    client: TestClient, services: Services
) -> None:
    lead_id = email_only_lead(services)
    _, _, html = page(client, services, lead_id)
    assert "(•••) •••-0123" in html
    assert PHONE not in html and "555-0123" not in html
    for box in ("sms_care", "sms_marketing"):
        tag = re.search(rf'<input type="checkbox" id="{box}"[^>]*>', html)
        assert tag, box
        assert "checked" not in tag.group(0)
        label = re.search(rf'<label for="{box}">(.*?)</label>', html, re.DOTALL)
        assert label and 'to <span class="number">(•••) •••-0123</span>' in label.group(1)
    email_box = re.search(r'<input type="checkbox" id="email_marketing"[^>]*>', html)
    assert email_box and "checked" in email_box.group(0)  # granted boxes still show granted


def test_rule_11_a_regrant_records_the_form_s_evidence_for_each_box(
    client: TestClient, services: Services
) -> None:
    lead_id = email_only_lead(services)
    tick(client, services, lead_id, "email_marketing", "sms_care", "sms_marketing")
    assert texts_allowed(services, lead_id) == {"care": True, "marketing": True}
    grants = {event.purpose: event for event in sms_grants(services, lead_id)}
    assert set(grants) == {Purpose.CARE, Purpose.MARKETING}
    for purpose, box in ((Purpose.CARE, "sms_care"), (Purpose.MARKETING, "sms_marketing")):
        evidence = grants[purpose].evidence
        # The exact words beside that one box, not every box joined.
        assert evidence["disclosure_text"] == getattr(services.disclosures, box)
        assert evidence["disclosure_version"] == services.disclosures.version
        assert evidence["checkbox"] == box
        assert evidence["box_started_unticked"] is True
        assert evidence["seller"] == services.clinic.name == "Ketamine Infusions of Idaho"
        assert evidence["phone"] == PHONE
        assert evidence["name"] == "Ana Rivera"
        assert evidence["user_agent"] == "Mozilla/5.0 (iPhone) test"
        assert evidence["ip"]
        assert evidence["page_url"] == "http://testserver/u/…/preferences"
        assert grants[purpose].source.value == "email_link"


def test_rule_11_a_regrant_plans_the_optin_confirmation_at_once(
    client: TestClient, services: Services
) -> None:
    lead_id = email_only_lead(services)
    claim_and_send_all(services)  # the sign-up's own mail; no text (no text consent)
    assert outbox_files.texts(services.settings.resolved_outbox_dir) == []
    tick(client, services, lead_id, "email_marketing", "sms_care")
    planned = rows(services, lead_id, purpose=Purpose.OPTIN, status=MessageStatus.SCHEDULED)
    assert len(planned) == 1
    assert planned[0].template_key == "optin-confirmation"
    assert planned[0].due_at <= clock.utcnow()
    assert "optin_confirmation.planned" in audit_actions(services, lead_id)


def test_rule_11_the_optin_confirmation_of_a_regrant_goes_out_in_the_outbox(
    client: TestClient, services: Services
) -> None:
    lead_id = email_only_lead(services)
    claim_and_send_all(services)
    tick(client, services, lead_id, "email_marketing", "sms_care")
    claim_and_send_all(services)
    sent = outbox_files.texts(services.settings.resolved_outbox_dir)
    assert [t.to for t in sent] == [PHONE]
    assert "Reply HELP for help, STOP to opt out" in sent[0].body
    assert "Msg & data rates may apply" in sent[0].body
    # Ticking again the same day plans nothing more and sends nothing more.
    tick(client, services, lead_id, "email_marketing", "sms_care", "sms_marketing")
    claim_and_send_all(services)
    assert len(outbox_files.texts(services.settings.resolved_outbox_dir)) == 1


def test_rule_11_after_stop_i_want_to_kill_myself_the_page_sends_the_request_to_staff(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)  # the opt-in confirmation of the sign-up
    replies = text_in(client, "STOP I want to kill myself")
    assert any("988" in reply for reply in replies)
    assert texts_allowed(services, lead_id) == {"care": False, "marketing": False}
    grants_before = len(sms_grants(services, lead_id))
    texts_before = len(outbox_files.texts(services.settings.resolved_outbox_dir))

    _, _, html = page(client, services, lead_id)
    for box in ("sms_care", "sms_marketing"):
        tag = re.search(rf'<input type="checkbox" id="{box}"[^>]*>', html)
        assert tag and "checked" not in tag.group(0)
    _, answer = tick(client, services, lead_id, "email_marketing", "sms_care", "sms_marketing")

    assert HELD in answer.replace("\n", " ")
    assert texts_allowed(services, lead_id) == {"care": False, "marketing": False}
    assert len(sms_grants(services, lead_id)) == grants_before
    assert rows(services, lead_id, purpose=Purpose.OPTIN, status=MessageStatus.SCHEDULED) == []
    [request] = rows(services, lead_id, template_key="staff-regrant-request")
    assert request.purpose is Purpose.ALERT and request.recipient == "oncall@kiidaho.example"
    assert "crisis" in request.context["reason"]
    assert "consent.regrant_held" in audit_actions(services, lead_id)

    claim_and_send_all(services)
    outbox = services.settings.resolved_outbox_dir
    assert len(outbox_files.texts(outbox)) == texts_before + 1  # only the on-call page
    assert outbox_files.texts(outbox)[-1].to == services.clinic.on_call_phone
    mail = next(
        m for m in outbox_files.emails(outbox) if "asked for texts again" in str(m["Subject"])
    )
    assert mail["To"] == "oncall@kiidaho.example"
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    content = body.get_content()
    assert "Texts about a consultation you booked" in content
    assert "reply START" in content
    assert f"/admin/leads/{lead_id}" in content


def test_rule_11_a_crisis_hold_sends_a_regrant_to_staff_even_after_30_days(
    client: TestClient, services: Services
) -> None:
    lead_id = email_only_lead(services)
    text_in(client, "I can't do this anymore, I want to die")
    with freeze_time(clock.utcnow() + timedelta(days=45), tick=True):
        with services.sessions() as session:
            assert session.get_one(Lead, lead_id).crisis_hold_at is not None
        _, answer = tick(client, services, lead_id, "email_marketing", "sms_care")
        assert HELD in answer.replace("\n", " ")
        assert texts_allowed(services, lead_id)["care"] is False
        [request] = rows(services, lead_id, template_key="staff-regrant-request")
        assert "hold" in request.context["reason"]


def test_rule_11_after_a_plain_stop_by_text_the_page_waits_30_days(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    text_in(client, "STOP")
    _, answer = tick(client, services, lead_id, "email_marketing", "sms_care")
    assert HELD in answer.replace("\n", " ")
    assert texts_allowed(services, lead_id)["care"] is False
    [request] = rows(services, lead_id, template_key="staff-regrant-request")
    assert "opted out of texts by text" in request.context["reason"]
    # Ticking again the same day is audited again but e-mails staff once.
    tick(client, services, lead_id, "email_marketing", "sms_care")
    assert len(rows(services, lead_id, template_key="staff-regrant-request")) == 1
    assert audit_actions(services, lead_id).count("consent.regrant_held") == 2

    with freeze_time(clock.utcnow() + timedelta(days=31), tick=True):
        _, answer = tick(client, services, lead_id, "email_marketing", "sms_care")
        assert HELD not in answer.replace("\n", " ")
        assert texts_allowed(services, lead_id)["care"] is True
        assert rows(services, lead_id, purpose=Purpose.OPTIN, status=MessageStatus.SCHEDULED)


def test_rule_11_an_e_mail_opt_out_on_the_page_does_not_hold_a_later_regrant(
    client: TestClient, services: Services
) -> None:
    """Only an opt-out by text (or Twilio's) needs a person: the page's own untick does not."""
    lead_id = sign_up(services)
    tick(client, services, lead_id, "email_marketing")  # texts off, from the page
    _, answer = tick(client, services, lead_id, "email_marketing", "sms_care")
    assert HELD not in answer.replace("\n", " ")
    assert texts_allowed(services, lead_id)["care"] is True


def signs_up_again_by_api(client: TestClient) -> None:
    response = client.post("/api/v1/signups", json=api_signup_data(), headers=API_KEY)
    assert response.status_code == 201, response.text


def test_rule_11_a_sign_up_after_stop_i_want_to_kill_myself_asks_staff_and_texts_nothing(
    client: TestClient, services: Services
) -> None:
    """The sign-up form is another web tick: after a crisis or a STOP by text in the last 30
    days it turns no text back on (it used to, with no opt-in confirmation at all)."""
    lead_id = sign_up(services)
    text_in(client, "STOP I want to kill myself")
    signs_up_again_by_api(client)
    assert not any(texts_allowed(services, lead_id).values())
    [request] = rows(services, lead_id, template_key="staff-regrant-request")
    assert "crisis words" in request.context["reason"]
    assert "consent.regrant_held" in audit_actions(services, lead_id)
    assert not rows(services, lead_id, purpose=Purpose.OPTIN, status=MessageStatus.SCHEDULED)


def test_rule_3_a_sign_up_a_month_after_a_stop_turns_texts_on_with_a_new_optin_text(
    client: TestClient, services: Services
) -> None:
    lead_id = sign_up(services)
    text_in(client, "STOP")
    claim_and_send_all(services)  # nothing pending any more
    with freeze_time(clock.utcnow() + timedelta(days=31), tick=True):
        signs_up_again_by_api(client)
        assert texts_allowed(services, lead_id)["care"] is True
        [optin] = rows(services, lead_id, purpose=Purpose.OPTIN, status=MessageStatus.SCHEDULED)
        assert optin.template_key == "optin-confirmation"
