"""POST /webhooks/twilio/status and provider error codes (compliance rule 14)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from nurture import consent, pauses
from nurture.models import (
    Channel,
    ConsentEvent,
    DeliveryEvent,
    Lead,
    Message,
    MessageStatus,
    PauseScope,
    Purpose,
)
from nurture.services import Services, build_services
from nurture.web import create_app
from tests.conftest import SettingsFactory
from tests.support.factories import claim_and_send_all, messages_of, sign_up
from tests.support.signing import AUTH_TOKEN, signed_headers

URL = "https://nurture.test/webhooks/twilio/status"


@pytest.fixture
def services(make_settings: SettingsFactory) -> Iterator[Services]:
    built = build_services(make_settings(twilio_auth_token=AUTH_TOKEN))
    yield built
    built.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def sent_sms(services: Services) -> Message:
    """A lead whose opt-in confirmation text was sent (outbox provider id)."""
    lead_id = sign_up(services)
    claim_and_send_all(services)
    with services.sessions() as session:
        return next(m for m in messages_of(session, lead_id) if m.channel is Channel.SMS)


def callback(
    client: TestClient,
    sid: str,
    status: str,
    error: str | None = None,
    token: str | None = "tok-1",  # noqa: S107 - an idempotency token, not a secret
) -> int:
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC1", "To": "+12085550123"}
    if error:
        params["ErrorCode"] = error
    headers = signed_headers(URL, params)
    if token:
        headers["I-Twilio-Idempotency-Token"] = token
    return client.post("/webhooks/twilio/status", data=params, headers=headers).status_code


def row(services: Services, message_id: int) -> Message:
    with services.sessions() as session:
        return session.get_one(Message, message_id)


def test_delivered_moves_the_row_and_duplicates_change_nothing(
    client: TestClient, services: Services, sent_sms: Message
) -> None:
    assert sent_sms.provider_id
    assert callback(client, sent_sms.provider_id, "delivered") == 204
    assert callback(client, sent_sms.provider_id, "delivered") == 204
    assert callback(client, sent_sms.provider_id, "delivered", token=None) == 204
    assert callback(client, sent_sms.provider_id, "delivered", token=None) == 204
    assert row(services, sent_sms.id).status is MessageStatus.DELIVERED
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryEvent)) == 2


def test_a_late_sent_report_never_moves_a_delivered_row_back(
    client: TestClient, services: Services, sent_sms: Message
) -> None:
    assert sent_sms.provider_id
    callback(client, sent_sms.provider_id, "delivered", token="a")
    callback(client, sent_sms.provider_id, "sent", token="b")
    assert row(services, sent_sms.id).status is MessageStatus.DELIVERED


def test_an_unsigned_callback_is_refused(
    client: TestClient, services: Services, sent_sms: Message
) -> None:
    response = client.post(
        "/webhooks/twilio/status",
        data={"MessageSid": sent_sms.provider_id or "", "MessageStatus": "failed"},
    )
    assert response.status_code == 403
    assert row(services, sent_sms.id).status is MessageStatus.SENT


def test_21610_revokes_sms_consent_as_a_provider_opt_out(
    client: TestClient, services: Services, sent_sms: Message
) -> None:
    assert sent_sms.provider_id
    callback(client, sent_sms.provider_id, "failed", "21610")
    assert row(services, sent_sms.id).status is MessageStatus.FAILED
    with services.sessions() as session:
        assert not consent.current(session, sent_sms.lead_id).allows(Channel.SMS, Purpose.CARE)
        sources = session.scalars(
            select(ConsentEvent.source).where(ConsentEvent.action == "revoked")
        ).all()
        assert {s.value for s in sources} == {"provider_opt_out"}


@pytest.mark.parametrize("code", ["21211", "21614", "30003", "30004", "30005", "30006"])
def test_unreachable_numbers_are_not_texted_again(
    client: TestClient, services: Services, sent_sms: Message, code: str
) -> None:
    assert sent_sms.provider_id
    callback(client, sent_sms.provider_id, "undelivered", code)
    assert row(services, sent_sms.id).status is MessageStatus.UNDELIVERED
    assert row(services, sent_sms.id).error_code == code
    with services.sessions() as session:
        assert session.get_one(Lead, sent_sms.lead_id).sms_unreachable_at is not None


@pytest.mark.parametrize("code", ["30007", "30034"])
def test_filtered_or_unregistered_halts_all_texting_and_alerts_staff(
    client: TestClient, services: Services, sent_sms: Message, code: str
) -> None:
    assert sent_sms.provider_id
    callback(client, sent_sms.provider_id, "failed", code)
    with services.sessions() as session:
        [pause] = pauses.active(session)
        assert pause.scope is PauseScope.CHANNEL and pause.value == "sms"
        assert code in pause.reason
        alert = session.scalars(select(Message).where(Message.purpose == Purpose.ALERT)).one()
        assert alert.template_key == "staff-halt-alert"


@pytest.mark.parametrize("code", ["30001", "30008"])
def test_retryable_failures_go_back_to_the_schedule_with_backoff(
    client: TestClient, services: Services, sent_sms: Message, code: str
) -> None:
    assert sent_sms.provider_id
    callback(client, sent_sms.provider_id, "undelivered", code)
    retried = row(services, sent_sms.id)
    assert retried.status is MessageStatus.SCHEDULED
    assert retried.due_at > sent_sms.due_at
    assert retried.error_code == code


def test_an_unknown_row_is_settled_by_a_sent_report(
    client: TestClient, services: Services, sent_sms: Message
) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Message).where(Message.id == sent_sms.id).values(status=MessageStatus.UNKNOWN)
        )
    assert sent_sms.provider_id
    callback(client, sent_sms.provider_id, "sent")
    assert row(services, sent_sms.id).status is MessageStatus.SENT


def test_a_callback_for_a_message_we_do_not_know_is_stored(
    client: TestClient, services: Services
) -> None:
    assert callback(client, "SMnobody", "delivered") == 204
    with services.sessions() as session:
        event = session.scalars(select(DeliveryEvent)).one()
        assert event.message_id is None and event.status == "delivered"


def test_missing_fields_are_a_clear_error(client: TestClient) -> None:
    params = {"MessageSid": "SM1"}
    response = client.post(
        "/webhooks/twilio/status", data=params, headers=signed_headers(URL, params)
    )
    assert response.status_code == 422
