"""POST /webhooks/twilio/status and provider error codes (compliance rule 14)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from nurture import clock, consent, ops
from nurture.db.models import (
    AuditEvent,
    Channel,
    ConsentEvent,
    DeliveryEvent,
    Lead,
    Message,
    MessageAttempt,
    MessageStatus,
    PauseScope,
    Purpose,
)
from nurture.outbox import pauses, reports
from nurture.runtime import Services
from nurture.transports import DeliveryOutcomeUnknownError, OutgoingSms
from tests.support.factories import claim_and_send_all, messages_of, sign_up
from tests.support.signing import signed_headers

URL = "https://nurture.test/webhooks/twilio/status"


class ReportsFirst:
    """A text transport whose provider reports on a text before the send call answers (as
    Twilio's callbacks may): ``meanwhile`` runs with the new sid and the text, then the sid is
    returned. ``unanswered`` makes the call time out after that instead."""

    def __init__(self) -> None:
        self.meanwhile: Callable[[str, OutgoingSms], object] = lambda sid, sms: None
        self.unanswered = False
        self.sent: list[OutgoingSms] = []

    def send(self, sms: OutgoingSms) -> str:
        sid = "SM" + uuid.uuid4().hex
        self.sent.append(sms)
        self.meanwhile(sid, sms)
        if self.unanswered:
            raise DeliveryOutcomeUnknownError("no answer from Twilio", code="timeout")
        return sid

    def find_sent(self, *, to: str, body: str, since: datetime, reference: str) -> str | None:
        raise LookupError("this stand-in keeps no history")

    def close(self) -> None:
        pass


@pytest.fixture
def provider(services: Services) -> ReportsFirst:
    transport = ReportsFirst()
    services.sms_override = transport
    return transport


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
    query: str = "",
) -> int:
    """Post a signed report; ``query`` is the StatusCallback URL's (Twilio signs it too)."""
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC1", "To": "+12085550123"}
    if error:
        params["ErrorCode"] = error
    path = "/webhooks/twilio/status" + (f"?{query}" if query else "")
    headers = signed_headers(URL + (f"?{query}" if query else ""), params)
    if token:
        headers["I-Twilio-Idempotency-Token"] = token
    return client.post(path, data=params, headers=headers).status_code


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


# 30003 (unreachable handset) is retried first: tests/db/test_handset_unreachable.py (rule 14).
@pytest.mark.parametrize("code", ["21211", "21614", "30004", "30005", "30006"])
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


# --- reports that beat the send's answer, and reports about an earlier attempt -------------


def sms_of(services: Services, lead_id: uuid.UUID) -> Message:
    with services.sessions() as session:
        return next(m for m in messages_of(session, lead_id) if m.channel is Channel.SMS)


def unreachable(services: Services, lead_id: uuid.UUID) -> bool:
    with services.sessions() as session:
        return session.get_one(Lead, lead_id).sms_unreachable_at is not None


@pytest.mark.parametrize(
    ("status", "code", "ends"),
    [
        ("undelivered", "30006", MessageStatus.UNDELIVERED),
        ("undelivered", "30005", MessageStatus.UNDELIVERED),
        ("delivered", None, MessageStatus.DELIVERED),
    ],
)
def test_a_report_that_beats_the_send_answer_lands_when_the_send_settles(
    client: TestClient,
    services: Services,
    provider: ReportsFirst,
    status: str,
    code: str | None,
    ends: MessageStatus,
) -> None:
    answers: list[int] = []
    provider.meanwhile = lambda sid, sms: answers.append(
        callback(client, sid, status, code, query=sms.status_query)
    )
    lead_id = sign_up(services)
    claim_and_send_all(services)

    assert answers == [204]
    row = sms_of(services, lead_id)
    assert row.status is ends
    assert unreachable(services, lead_id) is (code is not None)
    with services.sessions() as session:
        event = session.scalars(select(DeliveryEvent)).one()
        assert (event.message_id, event.attempt) == (row.id, 1)
        assert event.applied_at is not None
    # Twilio sending the same report again changes nothing a second time.
    assert callback(
        client, row.provider_id or "", status, code, query=provider.sent[0].status_query
    )
    with services.sessions() as session:
        moves = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.message_id == row.id, AuditEvent.actor == "provider"
            )
        ).all()
    assert moves == [f"message.{ends.value}"]


def test_an_early_report_from_a_callback_url_without_its_message_is_claimed_by_its_sid(
    client: TestClient, services: Services, provider: ReportsFirst
) -> None:
    provider.meanwhile = lambda sid, sms: callback(client, sid, "undelivered", "30005")
    lead_id = sign_up(services)
    claim_and_send_all(services)
    row = sms_of(services, lead_id)
    assert row.status is MessageStatus.UNDELIVERED
    assert unreachable(services, lead_id)


def test_an_early_report_applies_to_a_send_that_timed_out(
    client: TestClient, services: Services, provider: ReportsFirst
) -> None:
    """No answer came, but the report says Twilio had it: the row does not stay `unknown`."""
    provider.unanswered = True
    provider.meanwhile = lambda sid, sms: callback(client, sid, "delivered", query=sms.status_query)
    lead_id = sign_up(services)
    claim_and_send_all(services)
    assert sms_of(services, lead_id).status is MessageStatus.DELIVERED


def test_a_copy_of_a_report_that_found_no_message_lands_once_the_message_is_known(
    client: TestClient, services: Services, provider: ReportsFirst
) -> None:
    """The send timed out; its report (an old URL, sid only) found no row. Ops then settle the
    row with that sid, and Twilio's retry of the same report must not be refused as seen."""
    sids: list[str] = []
    provider.unanswered = True
    provider.meanwhile = lambda sid, sms: sids.append(sid)
    lead_id = sign_up(services)
    claim_and_send_all(services)
    row = sms_of(services, lead_id)
    assert row.status is MessageStatus.UNKNOWN
    [sid] = sids
    assert callback(client, sid, "undelivered", "30005", token="retried") == 204
    with services.sessions() as session:
        waiting = session.scalars(select(DeliveryEvent)).one()
        assert waiting.message_id is None and waiting.applied_at is None

    with services.sessions.begin() as session:
        ops.settle_unknown(
            session, row.id, sent=True, provider_id=sid, actor="ops@test", now=clock.utcnow()
        )
    assert callback(client, sid, "undelivered", "30005", token="retried") == 204

    assert sms_of(services, lead_id).status is MessageStatus.UNDELIVERED
    assert unreachable(services, lead_id)


def test_a_late_report_about_attempt_1_does_not_move_attempt_2(
    client: TestClient, services: Services, provider: ReportsFirst
) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    first = sms_of(services, lead_id)
    assert first.provider_id and first.status is MessageStatus.SENT
    first_query = reports.callback_query(first.id, 1)
    # Twilio says retrying may work: the same row goes back to the schedule (made due now).
    assert callback(client, first.provider_id, "undelivered", "30001", token="a1-retry") == 204
    with services.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id == first.id)
            .values(due_at=clock.utcnow() - timedelta(seconds=1))
        )

    def late_reports_about_attempt_1(sid: str, sms: OutgoingSms) -> None:
        # While attempt 2 is in flight: one by the old sid alone, one naming attempt 1.
        assert callback(client, first.provider_id or "", "failed", "30003", token="a1-x") == 204
        assert callback(client, first.provider_id or "", "failed", token="a1-y", query=first_query)
        assert sms_of(services, lead_id).status is MessageStatus.SENDING

    provider.meanwhile = late_reports_about_attempt_1
    claim_and_send_all(services)
    second = sms_of(services, lead_id)
    assert (second.status, second.attempts) == (MessageStatus.SENT, 2)
    assert second.provider_id and second.provider_id != first.provider_id
    assert provider.sent[-1].status_query == reports.callback_query(first.id, 2)

    # And after attempt 2 settled, attempt 1's reports still move nothing.
    assert callback(client, first.provider_id, "undelivered", "30005", token="a1-z") == 204
    assert callback(client, first.provider_id, "failed", token="a1-w", query=first_query) == 204
    assert sms_of(services, lead_id).status is MessageStatus.SENT
    assert not unreachable(services, lead_id)
    with services.sessions() as session:
        attempts = session.scalars(
            select(MessageAttempt).where(MessageAttempt.message_id == first.id)
        ).all()
        by_number = {a.number: (a.provider_id, a.outcome) for a in attempts}
        assert by_number == {
            1: (first.provider_id, MessageStatus.SENT),
            2: (second.provider_id, MessageStatus.SENT),
        }
        about_1 = session.scalars(
            select(DeliveryEvent).where(DeliveryEvent.idempotency_key.like("a1-%"))
        ).all()
        assert {e.attempt for e in about_1} == {1}
        assert all(e.applied_at is not None for e in about_1)


def test_a_callback_for_a_message_we_do_not_know_is_stored_waiting(
    client: TestClient, services: Services
) -> None:
    assert callback(client, "SMnobody", "delivered") == 204
    with services.sessions() as session:
        event = session.scalars(select(DeliveryEvent)).one()
        assert event.message_id is None and event.status == "delivered"
        assert event.applied_at is None  # a send that learns this sid, or a copy, takes it


@pytest.mark.parametrize(
    "query", ["message=abc&attempt=1", "message=1", "message=1&attempt=0", "attempt=1"]
)
def test_a_callback_url_naming_its_message_badly_is_a_clear_error(
    client: TestClient, services: Services, sent_sms: Message, query: str
) -> None:
    assert sent_sms.provider_id
    assert callback(client, sent_sms.provider_id, "failed", query=query) == 422
    assert row(services, sent_sms.id).status is MessageStatus.SENT


def test_missing_fields_are_a_clear_error(client: TestClient) -> None:
    params = {"MessageSid": "SM1"}
    response = client.post(
        "/webhooks/twilio/status", data=params, headers=signed_headers(URL, params)
    )
    assert response.status_code == 422
