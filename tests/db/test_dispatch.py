"""The outbox state machine: claim, send at most once, gates at send time, errors, the reaper."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select, update

from nurture import clock, consent
from nurture.content import compose
from nurture.db import audit
from nurture.db.models import (
    AuditEvent,
    Channel,
    ConsentAction,
    ConsentSource,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.outbox import dispatch, gates, retry, send
from nurture.replies import inbound
from nurture.runtime import Services, build_services
from tests.conftest import SettingsFactory
from tests.support import outbox_files
from tests.support.factories import claim_and_send_all, messages_of, sign_up
from tests.support.smtp_server import SmtpServer

START = "2026-03-02 16:00:00"  # a Monday, 09:00 in Boise


def test_due_rows_are_claimed_once_and_later_rows_wait(services: Services) -> None:
    with freeze_time(START) as frozen:
        lead_id = sign_up(services)
        with services.sessions() as session:
            first = dispatch.claim_due(session, now=clock.utcnow(), limit=100)
            session.commit()
            again = dispatch.claim_due(session, now=clock.utcnow(), limit=100)
            session.commit()
        assert sorted(row.channel for row in first) == [Channel.EMAIL, Channel.SMS]
        assert again == []
        frozen.tick(timedelta(days=1, hours=23))
        with services.sessions() as session:
            assert dispatch.claim_due(session, now=clock.utcnow(), limit=100) == []
        frozen.tick(timedelta(hours=1))
        with services.sessions() as session:
            later = dispatch.claim_due(session, now=clock.utcnow(), limit=100)
            session.commit()
            assert [row.id for row in later] == [
                m.id for m in messages_of(session, lead_id) if m.step_key == "follow-up"
            ]


def test_claim_respects_the_batch_limit(services: Services) -> None:
    for n in range(3):
        sign_up(services, email=f"lead{n}@example.com", phone=f"+1208555010{n}")
    with services.sessions() as session:
        assert len(dispatch.claim_due(session, now=clock.utcnow(), limit=4)) == 4
        session.commit()
        assert len(dispatch.claim_due(session, now=clock.utcnow(), limit=4)) == 2


def test_a_send_task_delivered_twice_sends_once(services: Services, outbox: object) -> None:
    sign_up(services)
    with services.sessions() as session:
        claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=10)
        session.commit()
    sms = next(row for row in claimed if row.channel is Channel.SMS)
    with services.sessions() as session:
        assert send.send_message(session, sms.id, services.send_path) is MessageStatus.SENT
    with services.sessions() as session:
        assert send.send_message(session, sms.id, services.send_path) is None
    texts = outbox_files.texts(services.settings.resolved_outbox_dir)
    assert len(texts) == 1
    assert texts[0].to == "+12085550123"
    assert "Reply HELP for help, STOP to opt out" in texts[0].body
    with services.sessions() as session:
        row = session.get_one(Message, sms.id)
        assert row.status is MessageStatus.SENT
        assert row.provider_id and row.provider_id.startswith("outbox-")
        assert row.attempts == 1
        assert row.body == texts[0].body


def test_rule_8_a_stop_between_claim_and_send_stops_the_message(services: Services) -> None:
    lead_id = sign_up(services)
    with services.sessions() as session:
        claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=10)
        session.commit()
    # STOP arrives between the claim and the send.
    with services.sessions.begin() as session:
        for purpose in (Purpose.CARE, Purpose.MARKETING):
            consent.record(
                session,
                lead_id=lead_id,
                channel=Channel.SMS,
                purpose=purpose,
                action=ConsentAction.REVOKED,
                source=ConsentSource.SMS_KEYWORD,
                evidence={"body": "STOP"},
                actor="lead",
            )
    for row in claimed:
        with services.sessions() as session:
            send.send_message(session, row.id, services.send_path)
    assert outbox_files.texts(services.settings.resolved_outbox_dir) == []
    assert len(outbox_files.emails(services.settings.resolved_outbox_dir)) == 1
    with services.sessions() as session:
        sms = next(m for m in messages_of(session, lead_id) if m.channel is Channel.SMS)
        assert sms.status is MessageStatus.SKIPPED
        assert sms.last_error == "no sms optin consent"


def test_rule_8_a_stop_after_the_gate_check_and_before_the_claim_stops_the_text(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real race: the gates passed (consent was still there), then the person texts STOP
    while the worker renders, before its claim moves the row `queued` → `sending`. The STOP
    lands exactly there, through the real inbound path, from another connection."""
    sign_up(services)
    with services.sessions() as session:
        claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=10)
        session.commit()
    sms = next(row for row in claimed if row.channel is Channel.SMS)

    verdicts: list[gates.Verdict] = []
    real_check = gates.check

    def checking(*args: Any, **kwargs: Any) -> gates.Verdict:
        verdicts.append(real_check(*args, **kwargs))
        return verdicts[-1]

    stops: list[str | BaseException] = []
    real_render = compose.render_record

    def stop_from_another_connection() -> None:
        try:
            stops.append(text_stop(services, sms.id))
        except BaseException as error:  # shown by the assertion below, not lost in the thread
            stops.append(error)

    sender = threading.get_ident()

    def render_while_the_lead_texts_stop(*args: Any, **kwargs: Any) -> Any:
        # Rendering runs after the gate check and before the claim, outside any transaction
        # (see nurture.outbox.send); the STOP commits from another thread and connection.
        # Only the sender's render: the STOP's own reply renders through here too.
        if verdicts and threading.get_ident() == sender and not stops:
            stopping = threading.Thread(target=stop_from_another_connection)
            stopping.start()
            stopping.join(timeout=15)
            assert stops, "the STOP could not commit: the sender holds a lock while rendering"
        return real_render(*args, **kwargs)

    monkeypatch.setattr(gates, "check", checking)
    monkeypatch.setattr(compose, "render_record", render_while_the_lead_texts_stop)
    with services.sessions() as session:
        outcome = send.send_message(session, sms.id, services.send_path)

    assert verdicts == [gates.Proceed()]  # the gates let it through: the STOP came after
    assert outbox_files.texts(services.settings.resolved_outbox_dir) == []  # no text left
    assert stops == ["cancelled"]  # the STOP came before the claim: it found the row queued
    assert outcome is None
    with services.sessions() as session:
        text = session.get_one(Message, sms.id)
        assert text.status is MessageStatus.CANCELLED
        assert text.attempts == 0 and text.body is None  # never claimed, never written


def text_stop(services: Services, message_id: int) -> str:
    """The lead texts STOP (the inbound webhook's path); the text row's status afterwards."""
    with services.sessions.begin() as session:
        inbound.handle_inbound(
            session,
            {"MessageSid": "SM" + "5" * 32, "From": "+12085550123", "Body": "STOP"},
            writer=services.writer,
            keyword_lists=services.policy.keywords,
            catalog=services.catalog,
            now=clock.utcnow(),
        )
    with services.sessions() as session:
        return session.get_one(Message, message_id).status.value


def test_rule_2_marketing_needs_marketing_consent_not_just_care(services: Services) -> None:
    with freeze_time(START) as frozen:
        lead_id = sign_up(services, consent={"sms_care": True})
        claim_and_send_all(services)
        frozen.tick(timedelta(days=2))
        claim_and_send_all(services)
    with services.sessions() as session:
        statuses = {m.step_key: (m.status, m.last_error) for m in messages_of(session, lead_id)}
    assert statuses["optin-confirmation"] == (MessageStatus.SENT, None)
    assert statuses["welcome"] == (MessageStatus.SENT, None)
    assert statuses["follow-up"] == (MessageStatus.SKIPPED, "no email marketing consent")


def test_a_template_error_fails_that_message_and_the_worker_goes_on(
    make_settings: SettingsFactory, tmp_path: object
) -> None:
    import shutil

    from tests.conftest import REPO

    templates = Path(str(tmp_path)) / "templates"
    shutil.copytree(REPO / "templates", templates)
    (templates / "sms" / "optin-confirmation.txt.j2").write_text("Hi {{ lead.nickname }}")
    services = build_services(make_settings(templates_dir=templates))
    try:
        lead_id = sign_up(services)
        claim_and_send_all(services)
        with services.sessions() as session:
            rows = {m.step_key: m for m in messages_of(session, lead_id)}
        assert rows["optin-confirmation"].status is MessageStatus.FAILED
        assert "undefined variable" in (rows["optin-confirmation"].last_error or "")
        assert "nickname" in (rows["optin-confirmation"].last_error or "")
        assert rows["welcome"].status is MessageStatus.SENT
    finally:
        services.close()


def test_smtp_refusal_4xx_is_retried_later_and_5xx_fails(
    make_settings: SettingsFactory, smtp_server: SmtpServer
) -> None:
    # The tests' clinic has a real postal address: marketing e-mail goes over SMTP (rule 17).
    services = build_services(make_settings(email_backend="smtp", smtp_url=smtp_server.url))
    try:
        with freeze_time(START) as frozen:
            lead_id = sign_up(services, phone=None, consent={"email_marketing": True})
            smtp_server.refuse_next("451 4.3.0 mailbox busy, try later")
            claim_and_send_all(services)
            with services.sessions() as session:
                welcome = next(m for m in messages_of(session, lead_id) if m.step_key == "welcome")
            assert welcome.status is MessageStatus.SCHEDULED
            assert welcome.attempts == 1
            assert welcome.error_code == "smtp-451"
            assert clock.utcnow() + timedelta(seconds=30) <= welcome.due_at
            assert welcome.due_at <= clock.utcnow() + timedelta(minutes=1)
            frozen.tick(timedelta(minutes=1))
            claim_and_send_all(services)
            assert len(smtp_server.wait_for(1)) == 1
            frozen.tick(timedelta(days=2))
            smtp_server.refuse_next("550 5.1.1 no such user")
            claim_and_send_all(services)
        with services.sessions() as session:
            rows = {m.step_key: m for m in messages_of(session, lead_id)}
        assert rows["welcome"].status is MessageStatus.SENT
        assert rows["welcome"].attempts == 2
        assert rows["follow-up"].status is MessageStatus.FAILED
        assert rows["follow-up"].error_code == "smtp-550"
    finally:
        services.close()


def test_transient_errors_give_up_after_max_attempts(
    make_settings: SettingsFactory, smtp_server: SmtpServer
) -> None:
    services = build_services(
        make_settings(email_backend="smtp", smtp_url=smtp_server.url, max_attempts=2)
    )
    try:
        with freeze_time(START) as frozen:
            lead_id = sign_up(services, phone=None, consent={})
            smtp_server.refuse_next("421 4.7.0 slow down", times=2)
            claim_and_send_all(services)
            frozen.tick(timedelta(hours=2))
            claim_and_send_all(services)
        with services.sessions() as session:
            welcome = next(m for m in messages_of(session, lead_id) if m.step_key == "welcome")
        assert welcome.status is MessageStatus.FAILED
        assert welcome.attempts == 2
        assert "gave up after 2 attempts" in (welcome.last_error or "")
    finally:
        services.close()


def test_smtp_server_down_is_transient(make_settings: SettingsFactory) -> None:
    from tests.support.smtp_server import free_port

    services = build_services(
        make_settings(email_backend="smtp", smtp_url=f"smtp://127.0.0.1:{free_port()}")
    )
    try:
        lead_id = sign_up(services, phone=None, consent={})
        claim_and_send_all(services)
        with services.sessions() as session:
            welcome = next(m for m in messages_of(session, lead_id) if m.step_key == "welcome")
        assert welcome.status is MessageStatus.SCHEDULED
        assert welcome.error_code == "smtp-io"
    finally:
        services.close()


def test_reaper_requeues_lost_tasks_and_never_resends_a_crashed_send(services: Services) -> None:
    with freeze_time(START) as frozen:
        lead_id = sign_up(services)
        with services.sessions() as session:
            claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=10)
            session.commit()
        sms = next(row for row in claimed if row.channel is Channel.SMS)
        email = next(row for row in claimed if row.channel is Channel.EMAIL)
        # A worker took the SMS and died after committing `sending`.
        with services.sessions.begin() as session:
            session.execute(
                update(Message)
                .where(Message.id == sms.id)
                .values(status=MessageStatus.SENDING, status_at=clock.utcnow())
            )
        frozen.tick(timedelta(minutes=4))
        with services.sessions.begin() as session:
            early = dispatch.reap(
                session,
                now=clock.utcnow(),
                stale_queued=timedelta(minutes=5),
                stale_sending=timedelta(minutes=10),
            )
        assert early.requeued == [] and early.marked_unknown == 0
        frozen.tick(timedelta(minutes=7))
        with services.sessions.begin() as session:
            reaped = dispatch.reap(
                session,
                now=clock.utcnow(),
                stale_queued=timedelta(minutes=5),
                stale_sending=timedelta(minutes=10),
            )
        assert reaped.requeued == [email]
        assert reaped.marked_unknown == 1
        with services.sessions() as session:
            assert send.send_message(session, email.id, services.send_path) is MessageStatus.SENT
        with services.sessions() as session:
            assert send.send_message(session, sms.id, services.send_path) is None
            rows = {m.id: m for m in messages_of(session, lead_id)}
            assert rows[sms.id].status is MessageStatus.UNKNOWN
            assert "settle it in ops" in (rows[sms.id].last_error or "")
            actions = session.scalars(
                select(AuditEvent.action).where(AuditEvent.message_id == sms.id)
            ).all()
            assert actions == ["message.unknown"]
    assert outbox_files.texts(services.settings.resolved_outbox_dir) == []


def test_every_send_attempt_is_audited(services: Services) -> None:
    lead_id = sign_up(services)
    claim_and_send_all(services)
    with services.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.lead_id == lead_id).order_by(AuditEvent.id)
        ).all()
    assert actions.count("message.sent") == 2
    assert "enrollment.started" in actions
    assert actions.count("consent.granted") == 4


def test_sending_a_row_that_was_cancelled_does_nothing(services: Services) -> None:
    lead_id = sign_up(services)
    with services.sessions() as session:
        claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=10)
        session.commit()
    with services.sessions.begin() as session:
        session.execute(
            update(Message).where(Message.lead_id == lead_id).values(status=MessageStatus.CANCELLED)
        )
        audit.record(session, actor="test", action="test.cancel", lead_id=lead_id)
    for row in claimed:
        with services.sessions() as session:
            assert send.send_message(session, row.id, services.send_path) is None
    assert outbox_files.texts(services.settings.resolved_outbox_dir) == []


@pytest.mark.parametrize("attempts", [1, 2, 3, 8, 20])
def test_retry_delay_is_capped_exponential_with_jitter(attempts: int) -> None:
    import random

    ceiling = min(timedelta(hours=1), timedelta(minutes=1) * 2 ** (attempts - 1))
    for seed in range(20):
        delay = retry.retry_delay(attempts, rng=random.Random(seed))
        assert ceiling / 2 <= delay <= ceiling
