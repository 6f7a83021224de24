"""Compliance rule 14: Twilio 30003 (unreachable handset) is tried again with backoff, and only
the third in a row to the same number marks it unreachable.

Real parts: texts leave through the official SDK to the Twilio stand-in, and its reports come
back signed, as Twilio signs them, to the app's status webhook.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from nurture import clock
from nurture.db.models import Channel, Lead, Message, MessageStatus
from nurture.runtime import Services, build_services
from tests.conftest import SettingsFactory
from tests.support.factories import (
    claim_and_send_all,
    messages_of,
    plan_marketing_texts,
    sign_up,
)
from tests.support.twilio_standin import TwilioStandIn

PHONE = "+12085550123"


@pytest.fixture
def services(make_settings: SettingsFactory, twilio: TwilioStandIn) -> Iterator[Services]:
    built = build_services(make_settings(**twilio.settings()))
    yield built
    built.close()


def report(client: TestClient, twilio: TwilioStandIn, status: str, code: int | None) -> None:
    """The stand-in's latest text gets this report, signed over its StatusCallback URL."""
    sent = twilio.messages[-1]
    assert sent.status_callback
    params = {"MessageSid": sent.sid, "MessageStatus": status, "To": sent.to, "AccountSid": "x"}
    if code is not None:
        params["ErrorCode"] = str(code)
    parts = urlsplit(sent.status_callback)
    headers = {
        "X-Twilio-Signature": RequestValidator(twilio.auth_token).compute_signature(
            sent.status_callback, params
        ),
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
    }
    answer = client.post(
        parts.path, params=dict(parse_qsl(parts.query)), data=params, headers=headers
    )
    assert answer.status_code == 204, answer.text


def the_text(services: Services, lead_id: uuid.UUID) -> Message:
    with services.sessions() as session:
        return next(m for m in messages_of(session, lead_id) if m.channel is Channel.SMS)


def unreachable(services: Services, lead_id: uuid.UUID) -> bool:
    with services.sessions() as session:
        return session.get_one(Lead, lead_id).sms_unreachable_at is not None


def test_rule_14_a_30003_is_retried_with_backoff_and_the_third_in_a_row_marks_the_number(
    services: Services, client: TestClient, twilio: TwilioStandIn
) -> None:
    with freeze_time("2026-03-03 16:00:00", tick=True) as frozen:  # 09:00 in Boise
        lead_id = sign_up(services, phone=PHONE)
        claim_and_send_all(services)
        for attempt in (1, 2):
            assert len(twilio.messages_to(PHONE)) == attempt
            report(client, twilio, "undelivered", 30003)
            text = the_text(services, lead_id)
            assert text.status is MessageStatus.SCHEDULED, f"attempt {attempt}"
            assert text.error_code == "30003"
            # Backoff for a handset that is off: a quarter of an hour at least, not a minute.
            assert text.due_at - clock.utcnow() >= timedelta(minutes=14)
            assert not unreachable(services, lead_id)
            frozen.tick(timedelta(hours=1, minutes=1))
            claim_and_send_all(services)
        assert len(twilio.messages_to(PHONE)) == 3
        report(client, twilio, "undelivered", 30003)

    text = the_text(services, lead_id)
    assert (text.status, text.attempts) == (MessageStatus.UNDELIVERED, 3)
    assert unreachable(services, lead_id)
    with services.sessions() as session:
        pending = session.scalars(
            select(Message).where(
                Message.lead_id == lead_id,
                Message.channel == Channel.SMS,
                Message.status.in_((MessageStatus.SCHEDULED, MessageStatus.QUEUED)),
            )
        ).all()
    assert pending == []


def test_rule_14_a_delivery_in_between_starts_the_count_again(
    services: Services, client: TestClient, twilio: TwilioStandIn
) -> None:
    with freeze_time("2026-03-03 16:00:00", tick=True) as frozen:
        lead_id = sign_up(services, phone=PHONE)
        claim_and_send_all(services)
        report(client, twilio, "undelivered", 30003)
        frozen.tick(timedelta(hours=1, minutes=1))
        claim_and_send_all(services)
        report(client, twilio, "undelivered", 30003)
        frozen.tick(timedelta(hours=1, minutes=1))
        claim_and_send_all(services)
        report(client, twilio, "delivered", None)  # the phone was back on
        assert the_text(services, lead_id).status is MessageStatus.DELIVERED

        [later] = plan_marketing_texts(services, lead_id, 1)
        claim_and_send_all(services)
        report(client, twilio, "undelivered", 30003)

    with services.sessions() as session:
        retried = session.get_one(Message, later)
    assert retried.status is MessageStatus.SCHEDULED  # one 30003 since the delivery, not three
    assert not unreachable(services, lead_id)


@pytest.mark.parametrize("code", [30005, 21211])
def test_rule_14_a_dead_number_is_still_marked_at_once(
    services: Services, client: TestClient, twilio: TwilioStandIn, code: int
) -> None:
    lead_id = sign_up(services, phone=PHONE)
    claim_and_send_all(services)
    report(client, twilio, "undelivered", code)
    assert the_text(services, lead_id).status is MessageStatus.UNDELIVERED
    assert unreachable(services, lead_id)
