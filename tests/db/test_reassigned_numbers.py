"""Compliance rule 12: a text on an old consent first asks the FCC Reassigned Numbers Database.

Real parts: the official twilio SDK asks Lookup v2 over HTTP at the local stand-in, and the
send path runs as the worker runs it (claim, then `send_batch`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from nurture import consent
from nurture.db.models import (
    AuditEvent,
    Channel,
    ConsentEvent,
    Message,
    MessageStatus,
    Purpose,
    ReassignedAnswer,
    ReassignedCheck,
)
from nurture.runtime import Services, build_services
from tests.conftest import SettingsFactory
from tests.support.factories import claim_and_send_all, plan_marketing_texts, sign_up
from tests.support.transactions import transaction_open_elsewhere
from tests.support.twilio_standin import TwilioStandIn

PHONE = "+12085550123"
SIGNED_UP = datetime(2025, 10, 7, 17, 0, tzinfo=UTC)  # a Tuesday, 11:00 in Boise
LATER = datetime(2026, 2, 3, 18, 0, tzinfo=UTC)  # 119 days on, also a Tuesday at 11:00


@pytest.fixture
def services(make_settings: SettingsFactory, twilio: TwilioStandIn) -> Iterator[Services]:
    built = build_services(make_settings(**twilio.settings()))
    yield built
    built.close()


def signed_up_long_ago(services: Services, twilio: TwilioStandIn) -> uuid.UUID:
    """A lead who gave SMS consent on SIGNED_UP and got the opt-in confirmation then."""
    with freeze_time(SIGNED_UP, tick=True):
        lead_id = sign_up(services, phone=PHONE)
        claim_and_send_all(services)
    assert [m.to for m in twilio.messages] == [PHONE]  # the opt-in confirmation, at once
    assert twilio.lookups == []  # a fresh consent asks nothing
    twilio.reset()
    return lead_id


def rows(services: Services, ids: list[int]) -> list[Message]:
    with services.sessions() as session:
        return list(session.scalars(select(Message).where(Message.id.in_(ids))))


def checks(services: Services) -> list[ReassignedCheck]:
    with services.sessions() as session:
        return list(session.scalars(select(ReassignedCheck).order_by(ReassignedCheck.id)))


def test_rule_12_a_reassigned_number_revokes_sms_consent_and_the_text_is_skipped(
    services: Services, twilio: TwilioStandIn
) -> None:
    lead_id = signed_up_long_ago(services, twilio)
    twilio.reassigned(PHONE, "yes")
    with freeze_time(LATER, tick=True):
        first, second = plan_marketing_texts(services, lead_id, 2)
        claim_and_send_all(services)

    assert twilio.messages == []  # nothing reached whoever has the number now
    [asked] = twilio.lookups
    assert (asked.number, asked.fields, asked.last_verified_date) == (
        PHONE,
        "reassigned_number",
        "20251007",  # the consent date
    )
    skipped, cancelled = rows(services, [first, second])
    assert skipped.status is MessageStatus.SKIPPED
    assert skipped.last_error is not None and "changed hands" in skipped.last_error
    assert cancelled.status in {MessageStatus.SKIPPED, MessageStatus.CANCELLED}
    with services.sessions() as session:
        state = consent.current(session, lead_id)
        assert not state.allows(Channel.SMS, Purpose.MARKETING)
        assert not state.allows(Channel.SMS, Purpose.CARE)
        assert state.allows(Channel.EMAIL, Purpose.MARKETING)  # e-mail is not the number
        revoked = session.scalars(
            select(ConsentEvent).where(
                ConsentEvent.lead_id == lead_id, ConsentEvent.action == "revoked"
            )
        ).all()
        assert {e.source.value for e in revoked} == {"reassigned_number"}
        assert {e.purpose for e in revoked} == {Purpose.CARE, Purpose.MARKETING}
    [check] = checks(services)
    assert (check.phone, check.consent_date.isoformat(), check.answer) == (
        PHONE,
        "2025-10-07",
        ReassignedAnswer.YES,
    )


@pytest.mark.parametrize(
    ("said", "kept"), [("no", ReassignedAnswer.NO), ("no_data_available", ReassignedAnswer.NO_DATA)]
)
def test_rule_12_no_and_no_data_send_are_recorded_and_cached(
    services: Services, twilio: TwilioStandIn, said: str, kept: ReassignedAnswer
) -> None:
    lead_id = signed_up_long_ago(services, twilio)
    twilio.reassigned(PHONE, said)
    with freeze_time(LATER, tick=True) as frozen:
        [first] = plan_marketing_texts(services, lead_id, 1, prefix="a")
        claim_and_send_all(services)
        frozen.tick(timedelta(days=2))  # inside cache_for (7 days): not asked again
        [second] = plan_marketing_texts(services, lead_id, 1, prefix="b")
        claim_and_send_all(services)
        frozen.tick(timedelta(days=6))  # 8 days after the answer: asked again
        [third] = plan_marketing_texts(services, lead_id, 1, prefix="c")
        claim_and_send_all(services)

    assert [r.status for r in rows(services, [first, second, third])] == [MessageStatus.SENT] * 3
    assert len(twilio.messages) == 3
    assert [r.last_verified_date for r in twilio.lookups] == ["20251007", "20251007"]
    assert [c.answer for c in checks(services)] == [kept, kept]
    with services.sessions() as session:
        assert consent.current(session, lead_id).allows(Channel.SMS, Purpose.MARKETING)
        details = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "lead.reassigned_number_checked")
        ).all()
    assert [d["safe_harbor"] for d in details] == [kept is ReassignedAnswer.NO] * 2


@pytest.mark.parametrize("failure", ["server_error", "timeout"])
def test_rule_12_a_failed_lookup_defers_the_text_never_sends_blind_never_revokes(
    make_settings: SettingsFactory, twilio: TwilioStandIn, failure: str
) -> None:
    services = build_services(make_settings(**twilio.settings(), twilio_timeout=0.5))
    try:
        lead_id = signed_up_long_ago(services, twilio)
        if failure == "server_error":
            twilio.fail_lookups(503, None)
        else:
            twilio.delay_lookups(2.0)
        with freeze_time(LATER, tick=True) as frozen:
            [text_id] = plan_marketing_texts(services, lead_id, 1)
            claim_and_send_all(services)
            [held] = rows(services, [text_id])
            assert twilio.messages == []
            assert held.status is MessageStatus.SCHEDULED
            assert held.last_error is not None and "check failed" in held.last_error
            assert held.due_at >= LATER + timedelta(minutes=14)
            with services.sessions() as session:
                assert consent.current(session, lead_id).allows(Channel.SMS, Purpose.MARKETING)
            assert checks(services) == []  # nothing was answered, nothing recorded

            twilio.delay_lookups(0)
            frozen.tick(timedelta(minutes=16))
            claim_and_send_all(services)
        [sent] = rows(services, [text_id])
        assert sent.status is MessageStatus.SENT
        assert [c.answer for c in checks(services)] == [ReassignedAnswer.NO]
    finally:
        services.close()


def test_rule_12_the_lookup_happens_outside_any_transaction(
    services: Services, twilio: TwilioStandIn
) -> None:
    lead_id = signed_up_long_ago(services, twilio)
    seen_open: list[bool] = []
    twilio.during_lookups(lambda number: seen_open.append(transaction_open_elsewhere(services)))
    with freeze_time(LATER, tick=True):
        plan_marketing_texts(services, lead_id, 1)
        claim_and_send_all(services)
    assert seen_open == [False]
    assert len(twilio.messages) == 1


def test_rule_12_the_embedded_outbox_asks_nothing_and_sends(
    make_settings: SettingsFactory,
) -> None:
    services = build_services(make_settings())  # sms_backend=outbox
    try:
        with freeze_time(SIGNED_UP, tick=True):
            lead_id = sign_up(services, phone=PHONE)
            claim_and_send_all(services)
        with freeze_time(LATER, tick=True):
            [text_id] = plan_marketing_texts(services, lead_id, 1)
            claim_and_send_all(services)
        [sent] = rows(services, [text_id])
        assert sent.status is MessageStatus.SENT
        assert checks(services) == []  # nothing was asked, so nothing is claimed as checked
    finally:
        services.close()
