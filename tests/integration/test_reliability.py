"""Crashes and outages on real parts: a SIGKILLed worker, a restarted Redis, a restarted
PostgreSQL, a failing provider, an SMTP server that goes away, two beats, double submissions.
Every time: nothing is sent twice, nothing is lost.

Each test also proves its fault happened (a row left `unknown` by the crash, a re-enqueue by
the reaper): a test whose fault missed would otherwise pass for the wrong reason."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import func, select

from nurture import clock
from nurture import ops as operations
from nurture.config.settings import Settings
from nurture.db.models import (
    AuditEvent,
    Channel,
    Enrollment,
    Lead,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.outbox.send import BATCH_SIZE
from nurture.runtime import Services, build_services
from tests.conftest import REPO
from tests.support.api import DISCLOSURE_VERSION, INTEGRATION_API_KEY
from tests.support.daytime import zone_where_it_is_daytime
from tests.support.events import LogMark
from tests.support.factories import sign_up
from tests.support.processes import wait_until
from tests.support.redis_server import RedisServer
from tests.support.smtp_server import SmtpServer
from tests.support.stack import Stack
from tests.support.twilio_standin import TwilioStandIn

TERMINAL = {
    MessageStatus.SENT,
    MessageStatus.UNKNOWN,
    MessageStatus.FAILED,
    MessageStatus.SKIPPED,
    MessageStatus.CANCELLED,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
}
FAST = {
    "NURTURE_STALE_QUEUED_AFTER": "3",
    "NURTURE_STALE_SENDING_AFTER": "3",
    "NURTURE_REAP_INTERVAL": "1",
    "NURTURE_RETRY_BASE": "0.5",
    "NURTURE_SMS_PER_SECOND": "50",  # the shared throttle is on the path, without slowing tests
}


@pytest.fixture
def services(pg_url: str, tmp_path: Path) -> Iterator[Services]:
    built = build_services(
        Settings(
            database_url=pg_url,
            config_dir=REPO / "config",
            templates_dir=REPO / "templates",
            var_dir=tmp_path / "var",
            secret_key="integration-secret-key",
        )
    )
    yield built
    built.close()


def twilio_env(twilio: TwilioStandIn, **more: str) -> dict[str, str]:
    return {
        "NURTURE_SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "NURTURE_TWILIO_FROM": "+12085550100",
        "NURTURE_TWILIO_API_URL": twilio.url,
        **FAST,
        **more,
    }


def make_leads(services: Services, count: int, *, start: int = 0) -> list[uuid.UUID]:
    zone = zone_where_it_is_daytime()
    return [
        sign_up(
            services,
            first_name=f"Lead{n}",
            email=f"lead{n}@example.com",
            phone=f"+1208555{n:04d}",
            chosen_timezone=zone,
            consent={"sms_care": True, "sms_marketing": True},
        )
        for n in range(start, start + count)
    ]


def optin_rows(services: Services) -> list[Message]:
    with services.sessions() as session:
        return list(session.scalars(select(Message).where(Message.purpose == Purpose.OPTIN)))


def rows_in(services: Services, status: MessageStatus) -> list[Message]:
    with services.sessions() as session:
        return list(session.scalars(select(Message).where(Message.status == status)))


def optins_settled(services: Services, leads: int) -> bool:
    """Every lead's opt-in row exists and has settled. Counting them matters: `all()` of no
    rows is true, so a bare "all settled" would pass before anything was planned."""
    rows = optin_rows(services)
    return len(rows) == leads and all(m.status in TERMINAL for m in rows)


def optins_sent(services: Services, leads: int) -> bool:
    rows = optin_rows(services)
    return len(rows) == leads and all(m.status is MessageStatus.SENT for m in rows)


def audited(services: Services, *actions: str) -> dict[int, list[str]]:
    """Message id → the audited actions among ``actions`` on that message, oldest first."""
    with services.sessions() as session:
        events = session.execute(
            select(AuditEvent.message_id, AuditEvent.action)
            .where(AuditEvent.action.in_(actions), AuditEvent.message_id.is_not(None))
            .order_by(AuditEvent.id)
        ).all()
    found: dict[int, list[str]] = {}
    for message_id, action in events:
        if message_id is not None:  # excluded by the query; this tells mypy
            found.setdefault(message_id, []).append(action)
    return found


RECONCILED = ("ops.reconciled", "ops.reconciled_not_sent")
# The reaper's log line when it hands lost tasks back (dispatch.reap).
REQUEUED = r"reaper: [1-9]\d* queued rows re-enqueued"


def assert_each_phone_texted_once(services: Services, twilio: TwilioStandIn, leads: int) -> None:
    phones = Counter(m.to for m in twilio.messages)
    assert all(n == 1 for n in phones.values()), (
        f"texted twice: {[p for p, n in phones.items() if n > 1]}"
    )
    rows = optin_rows(services)
    assert len(rows) == leads
    sent = {m.provider_id for m in rows if m.status is MessageStatus.SENT}
    assert sent == {m.sid for m in twilio.messages}, (
        "every sent row is one text at Twilio, and back"
    )
    assert all(m.status is MessageStatus.SENT for m in rows), Counter(m.status.value for m in rows)


@pytest.fixture
def stack(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    built = Stack(pg_url, redis_url, log_dir, tmp_path / "var", {"NURTURE_EMAIL_BACKEND": "outbox"})
    yield built
    built.stop()


def test_a_worker_killed_mid_batch_never_doubles_or_drops_a_text(
    services: Services, stack: Stack, twilio: TwilioStandIn
) -> None:
    leads = make_leads(services, 12)
    twilio.delay(0.4)  # slow provider: several texts are in flight when the worker dies
    stack.extra_env.update(twilio_env(twilio))
    first = stack.worker("first")
    twilio.wait_for(3, timeout=30)
    stack.kill(first)
    twilio.delay(0)
    stack.worker("second")
    wait_until(
        lambda: optins_settled(services, len(leads)), timeout=60, what="every opt-in to settle"
    )
    wait_until(
        lambda: optins_sent(services, len(leads)),
        timeout=60,
        what="unknown rows to be settled by the reconciler",
    )
    assert_each_phone_texted_once(services, twilio, len(leads))
    # The third text was at Twilio, unanswered, when the worker died: its row was left
    # `sending`, the reaper made it `unknown`, and the reconciler asked Twilio about it.
    texts = {m.id for m in optin_rows(services)}
    crashed = set(audited(services, "message.unknown")) & texts
    assert crashed, "no row was left `unknown`: the kill did not land mid-send"
    assert crashed <= set(audited(services, *RECONCILED)), "an unknown row was never reconciled"


def test_a_redis_restart_loses_tasks_that_the_reaper_recovers(
    services: Services, pg_url: str, tmp_path: Path, twilio: TwilioStandIn
) -> None:
    private = RedisServer().start()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    stack = Stack(
        pg_url,
        private.url,
        log_dir,
        tmp_path / "var",
        {"NURTURE_EMAIL_BACKEND": "outbox", **twilio_env(twilio)},
    )
    try:
        # More texts than two send batches (nurture.outbox.send.BATCH_SIZE): the worker
        # (concurrency 1, prefetch 1) holds one batch's task, so the others sit in Redis.
        leads = make_leads(services, 2 * BATCH_SIZE + 8)
        twilio.delay(0.5)
        worker = stack.worker(concurrency=1)
        twilio.wait_for(2, timeout=30)
        # Rows whose tasks sit in Redis: with three or more waiting, the restart loses tasks.
        waiting = len(rows_in(services, MessageStatus.QUEUED))
        restarted = LogMark(worker)
        private.restart()  # every queued task is gone
        twilio.delay(0)
        assert waiting >= 3, f"only {waiting} row(s) queued: the restart lost no task"
        # The proof that lost tasks were recovered, not merely that everything got sent.
        restarted.wait_for(REQUEUED, timeout=60)
        wait_until(
            lambda: optins_settled(services, len(leads)), timeout=90, what="every opt-in to settle"
        )
        wait_until(
            lambda: optins_sent(services, len(leads)),
            timeout=60,
            what="unknown rows to be settled",
        )
        assert_each_phone_texted_once(services, twilio, len(leads))
    finally:
        stack.stop()
        private.stop()


@pytest.mark.disruptive  # restarts the machine's PostgreSQL under every other test running
def test_a_postgresql_restart_is_survived(
    services: Services, stack: Stack, twilio: TwilioStandIn
) -> None:
    stack.extra_env.update(twilio_env(twilio))
    stack.worker()
    before = make_leads(services, 5)
    twilio.wait_for(2, timeout=30)
    cluster = subprocess.run(
        ["ls", "/etc/postgresql"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    after = make_leads(services, 5, start=100)
    leads = len(before) + len(after)
    wait_until(lambda: optins_settled(services, leads), timeout=90, what="every opt-in to settle")
    wait_until(lambda: optins_sent(services, leads), timeout=60, what="unknown rows to be settled")
    assert_each_phone_texted_once(services, twilio, len(before) + len(after))


def test_provider_errors_and_timeouts_are_retried_then_sent_and_visible_to_ops(
    services: Services, stack: Stack, twilio: TwilioStandIn
) -> None:
    stack.extra_env.update(twilio_env(twilio, NURTURE_RETRY_BASE="2", NURTURE_TWILIO_TIMEOUT="0.5"))
    twilio.fail_next(500, None, "Internal error", times=2)
    stack.worker()
    make_leads(services, 1)

    def retrying_seen() -> bool:
        with services.sessions() as session:
            status = operations.status(
                session, catalog=services.catalog, queues={}, now=clock.utcnow()
            )
        return status.retrying_by_code.get("http-500", 0) == 1

    wait_until(retrying_seen, timeout=30, what="ops to show the text waiting to retry after a 500")
    twilio.wait_for(1, timeout=60)
    # A timeout: Twilio got the request but the answer never came; the reconciler settles it.
    twilio.delay(1.5)
    [timed_out] = make_leads(services, 1, start=50)
    wait_until(
        lambda: len(twilio.messages) == 2, timeout=30, what="the second text to reach Twilio"
    )
    twilio.delay(0)
    wait_until(
        lambda: optins_sent(services, 2),
        timeout=60,
        what="the timed-out text to be settled as sent",
    )
    assert_each_phone_texted_once(services, twilio, 2)
    # It was settled by asking Twilio (the reconciler), not by a second send.
    [row] = [m for m in optin_rows(services) if m.lead_id == timed_out]
    assert audited(services, "message.unknown", *RECONCILED)[row.id] == [
        "message.unknown",
        "ops.reconciled",
    ]


def test_an_smtp_outage_is_retried_until_the_server_returns(
    services: Services, stack: Stack, smtp_server: SmtpServer
) -> None:
    stack.extra_env.update(
        {
            "NURTURE_EMAIL_BACKEND": "smtp",
            "NURTURE_SMTP_URL": smtp_server.url,
            "NURTURE_SMS_BACKEND": "outbox",
            **FAST,
        }
    )
    smtp_server.stop()
    stack.worker()
    make_leads(services, 3)

    def retrying() -> bool:
        with services.sessions() as session:
            status = operations.status(
                session, catalog=services.catalog, queues={}, now=clock.utcnow()
            )
        return status.retrying_by_code.get("smtp-io", 0) == 3

    wait_until(retrying, timeout=30, what="ops to show three e-mails waiting to retry (smtp-io)")
    smtp_server.start()  # the mail server is back, on the same port
    received = smtp_server.wait_for(3, timeout=60)
    wait_until(
        lambda: all(m.status is MessageStatus.SENT for m in welcomes(services)),
        timeout=30,
        what="the welcomes to be recorded as sent",
    )
    assert sorted(r.rcpt_tos[0] for r in received) == [f"lead{n}@example.com" for n in range(3)]


def welcomes(services: Services) -> list[Message]:
    with services.sessions() as session:
        return list(session.scalars(select(Message).where(Message.step_key == "welcome")))


def test_two_beats_by_mistake_still_send_everything_once(
    services: Services, stack: Stack, twilio: TwilioStandIn
) -> None:
    stack.extra_env.update(twilio_env(twilio))
    stack.worker("one")
    stack.worker("two")
    leads = make_leads(services, 15)
    wait_until(
        lambda: len(twilio.messages) >= len(leads) and optins_settled(services, len(leads)),
        timeout=60,
        what="all opt-ins to be sent",
    )
    # A second copy would come from a later tick of either beat. A lead signed up now is sent
    # only by such a later tick: once its text is out, both beats have had their chance.
    make_leads(services, 1, start=len(leads))
    wait_until(
        lambda: optins_sent(services, len(leads) + 1), timeout=30, what="a later text to be sent"
    )
    assert_each_phone_texted_once(services, twilio, len(leads) + 1)


def test_a_double_submitted_signup_is_one_lead_one_enrolment_one_welcome(
    services: Services, stack: Stack, smtp_server: SmtpServer
) -> None:
    stack.extra_env.update({"NURTURE_EMAIL_BACKEND": "smtp", "NURTURE_SMTP_URL": smtp_server.url})
    stack.web()
    stack.worker()
    body = {
        "first_name": "Twin",
        "email": "twin@example.com",
        "chosen_timezone": zone_where_it_is_daytime(),
        "consent": {"email_marketing": True},
        "consent_text": "I agree.",
        "consent_version": DISCLOSURE_VERSION,
    }
    start = threading.Barrier(8)
    results: list[int] = []

    def submit() -> None:
        start.wait()
        response = httpx.post(
            f"{stack.public_url}/api/v1/signups", json=body, headers=INTEGRATION_API_KEY, timeout=20
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 8
    smtp_server.wait_for(1, timeout=30)
    # An e-mail-only sign-up plans no opt-in text: what must settle is every row due by now
    # (the welcome among them), and there must be some.
    wait_until(lambda: due_rows_settled(services), timeout=30, what="every due row to settle")
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 1
        assert session.scalar(select(func.count()).select_from(Enrollment)) == 1
        welcome = session.scalars(select(Message).where(Message.step_key == "welcome")).one()
        assert welcome.channel is Channel.EMAIL
        assert welcome.status is MessageStatus.SENT
    assert len(smtp_server.received) == 1


def due_rows_settled(services: Services) -> bool:
    with services.sessions() as session:
        due = session.scalars(select(Message.status).where(Message.due_at <= clock.utcnow()))
        statuses = due.all()
    return bool(statuses) and all(status in TERMINAL for status in statuses)
