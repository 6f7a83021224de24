"""Errors Twilio answers when we send (official SDK, real HTTP to the stand-in)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from nurture import consent
from nurture.db.models import Channel, Lead, Message, MessageStatus, Purpose
from nurture.outbox import pauses
from nurture.runtime import Services, build_services
from tests.conftest import SettingsFactory
from tests.support.factories import claim_and_send_all, messages_of, sign_up
from tests.support.twilio_standin import TwilioStandIn


@pytest.fixture
def services(make_settings: SettingsFactory, twilio: TwilioStandIn) -> Iterator[Services]:
    built = build_services(
        make_settings(
            **twilio.settings(),
        )
    )
    yield built
    built.close()


def sms_row(services: Services, lead_id: object) -> Message:
    with services.sessions() as session:
        return next(m for m in messages_of(session, lead_id) if m.channel is Channel.SMS)  # type: ignore[arg-type]


def test_a_text_is_sent_through_the_sdk(services: Services, twilio: TwilioStandIn) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    [sent] = twilio.messages
    row = sms_row(services, lead_id)
    assert row.status is MessageStatus.SENT
    assert row.provider_id == sent.sid
    # The callback names the message and the attempt, so an early report lands on its row.
    assert sent.status_callback == (
        f"https://nurture.test/webhooks/twilio/status?message={row.id}&attempt=1"
    )


def test_21610_at_send_time_revokes_consent_and_fails_the_row(
    services: Services, twilio: TwilioStandIn
) -> None:
    lead_id = sign_up(services)
    twilio.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")
    claim_and_send_all(services)
    row = sms_row(services, lead_id)
    assert row.status is MessageStatus.FAILED
    assert row.error_code == "21610"
    with services.sessions() as session:
        assert not consent.current(session, lead_id).allows(Channel.SMS, Purpose.MARKETING)
    assert twilio.messages == []


def test_an_invalid_number_is_marked_unreachable(services: Services, twilio: TwilioStandIn) -> None:
    lead_id = sign_up(services)
    twilio.fail_next(400, 21211, "Invalid 'To' Phone Number")
    claim_and_send_all(services)
    with services.sessions() as session:
        assert session.get_one(Lead, lead_id).sms_unreachable_at is not None


def test_a_filtered_message_halts_texting(services: Services, twilio: TwilioStandIn) -> None:
    sign_up(services)
    twilio.fail_next(400, 30007, "Message filtered")
    claim_and_send_all(services)
    with services.sessions() as session:
        assert [p.value for p in pauses.active(session)] == ["sms"]
    # The next lead's text waits (scheduled), it is not lost.
    second = sign_up(services, email="b@example.com", phone="+12085550124")
    claim_and_send_all(services)
    row = sms_row(services, second)
    assert row.status is MessageStatus.SCHEDULED
    assert row.attempts == 0  # never even claimed while texting is halted
    assert len(twilio.messages) == 0


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, None), (503, None)])
def test_rate_limits_and_server_errors_are_retried_later(
    services: Services, twilio: TwilioStandIn, status: int, code: int | None
) -> None:
    lead_id = sign_up(services)
    twilio.fail_next(status, code, "try later")
    claim_and_send_all(services)
    row = sms_row(services, lead_id)
    assert row.status is MessageStatus.SCHEDULED
    assert row.attempts == 1


def test_a_read_timeout_is_unknown_never_resent(
    make_settings: SettingsFactory, twilio: TwilioStandIn
) -> None:
    services = build_services(
        make_settings(
            **twilio.settings(),
            twilio_timeout=0.3,
        )
    )
    try:
        lead_id = sign_up(services)
        twilio.delay(1.0)
        claim_and_send_all(services)
        row = sms_row(services, lead_id)
        assert row.status is MessageStatus.UNKNOWN
        assert row.error_code == "timeout"
        claim_and_send_all(services)
        assert len(twilio.messages) == 1  # Twilio did get it once; we did not send it again
    finally:
        twilio.delay(0)
        services.close()


def test_twilio_down_is_transient(make_settings: SettingsFactory) -> None:
    from tests.support.smtp_server import free_port

    services = build_services(
        make_settings(
            sms_backend="twilio",
            twilio_account_sid="AC" + "1" * 32,
            twilio_auth_token="x",
            twilio_from="+12085550100",
            twilio_api_url=f"http://127.0.0.1:{free_port()}",
        )
    )
    try:
        lead_id = sign_up(services)
        claim_and_send_all(services)
        row = sms_row(services, lead_id)
        assert row.status is MessageStatus.SCHEDULED
        assert row.error_code == "io"
    finally:
        services.close()


def test_texts_leave_one_sender_at_its_rate_without_being_requeued_over_and_over(
    make_settings: SettingsFactory, twilio: TwilioStandIn
) -> None:
    """Redis keeps the bucket (its own clock, which freezegun cannot move): real time here."""
    import time

    import redis as redis_client

    from tests.conftest import REDIS_URL

    redis_client.Redis.from_url(REDIS_URL).delete("nurture:throttle:+12085550100")
    services = build_services(
        make_settings(
            **twilio.settings(),
            broker_url=REDIS_URL,
            sms_per_second=4,
        )
    )
    try:
        for n in range(5):
            sign_up(
                services,
                email=f"t{n}@example.com",
                phone=f"+1208555016{n}",
                consent={"sms_care": True},
            )
        deadline = time.monotonic() + 10
        claims = 0
        while len(twilio.messages) < 5 and time.monotonic() < deadline:
            claims += len([c for c in claim_and_send_all(services) if c.channel is Channel.SMS])
            time.sleep(0.05)
        received = [m.received_at for m in twilio.messages]
        assert len(received) == 5
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(received)]
        assert sum(gaps) >= 0.75  # five texts at four a second take at least a second
        assert claims <= 10  # each text waited for its own slot: claimed twice at most
        with services.sessions() as session:
            rows = session.scalars(select(Message).where(Message.channel == Channel.SMS)).all()
        assert {m.status for m in rows} == {MessageStatus.SENT}
        assert all("throttle_slot" not in m.context for m in rows)
    finally:
        services.close()
