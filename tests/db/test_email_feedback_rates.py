"""Bounce and complaint rates on the ops console, and the automatic pause of marketing e-mail
when a rate crosses the policy's limit (issue 13 §3)."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from nurture import clock
from nurture.config.settings import Settings
from nurture.db.models import (
    AuditEvent,
    Channel,
    EmailFeedback,
    EmailFeedbackKind,
    Message,
    MessageStatus,
    Pause,
    PauseScope,
    Purpose,
)
from nurture.outbox import dispatch
from nurture.runtime import Services
from nurture.web import create_app
from tests.conftest import SettingsFactory
from tests.db.test_admin_pages import Browser, sign_in
from tests.support.email_feedback_signing import (
    MAILGUN_KEY,
    mailgun_body,
    mailgun_complained,
    mailgun_failed,
)
from tests.support.factories import sign_up

PAGE = "/admin/ops"


@pytest.fixture
def settings(make_settings: SettingsFactory, basic_config_dir: Path, tmp_path: Path) -> Settings:
    """The test policy pauses at the shipped rates, but counts from 10 e-mails sent."""
    config = tmp_path / "config"
    shutil.copytree(basic_config_dir, config)
    policy = config / "policy.yaml"
    shipped = policy.read_text()
    assert "  min_sent: 200\n" in shipped, "config/policy.yaml no longer has email_feedback"
    policy.write_text(shipped.replace("  min_sent: 200\n", "  min_sent: 10\n"))
    return make_settings(config_dir=config, mailgun_signing_key=MAILGUN_KEY)


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services)


@pytest.fixture
def ops_staff(app: FastAPI, services: Services) -> Iterator[Browser]:
    browser = sign_in(app, services, "ops")
    yield browser
    browser.client.close()


def _leads(services: Services, count: int) -> list[uuid.UUID]:
    return [
        sign_up(services, email=f"lead{i}@example.com", phone=f"+120855501{i:02d}")
        for i in range(count)
    ]


def _mark_welcome_sent(services: Services, leads: list[uuid.UUID], *, days_ago: int) -> None:
    """The leads' care e-mail (the welcome) went out ``days_ago`` days ago."""
    with services.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(
                Message.lead_id.in_(leads),
                Message.channel == Channel.EMAIL,
                Message.purpose == Purpose.CARE,
            )
            .values(status=MessageStatus.SENT, sent_at=clock.utcnow() - timedelta(days=days_ago))
        )


def _feedback(services: Services, kind: EmailFeedbackKind, *, days_ago: int, n: int) -> None:
    with services.sessions.begin() as session:
        for i in range(n):
            at = clock.utcnow() - timedelta(days=days_ago)
            session.add(
                EmailFeedback(
                    provider="ses",
                    event_id=f"{kind.value}-{days_ago}-{i}",
                    address=f"x{i}@example.net",
                    kind=kind,
                    detail="",
                    occurred_at=at,
                    received_at=at,
                )
            )


def _day_cells(page: str, day: str) -> dict[str, str]:
    row = re.search(rf'<tr data-email-day="{day}">(.*?)</tr>', page, re.DOTALL)
    assert row, f"no line for {day}"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', row.group(1)))


def test_the_console_shows_each_days_rates_against_the_thresholds(
    services: Services, ops_staff: Browser
) -> None:
    leads = _leads(services, 20)
    _mark_welcome_sent(services, leads[:10], days_ago=0)
    _mark_welcome_sent(services, leads[10:], days_ago=3)
    _feedback(services, EmailFeedbackKind.BOUNCE, days_ago=3, n=2)
    _feedback(services, EmailFeedbackKind.TRANSIENT_BOUNCE, days_ago=3, n=1)
    _feedback(services, EmailFeedbackKind.COMPLAINT, days_ago=0, n=1)
    _feedback(services, EmailFeedbackKind.COMPLAINT, days_ago=20, n=5)  # outside the 14 days

    page = ops_staff.get(PAGE).text
    assert "Bounces and complaints" in page
    assert "under 0.1 %" in page and "never 0.3 %" in page
    today = clock.utcnow().date()
    assert _day_cells(page, today.isoformat()) == {
        "sent": "10",
        "bounces": "0",
        "transient": "0",
        "complaints": "1",
        "complaint-level": "limit",
    }
    assert "10.00 %" in page
    three_days_ago = (today - timedelta(days=3)).isoformat()
    assert _day_cells(page, three_days_ago) == {
        "sent": "10",
        "bounces": "2",
        "transient": "1",
        "complaints": "0",
        "complaint-level": "ok",
    }
    assert page.count("data-email-day=") == 14
    assert _day_cells(page, (today - timedelta(days=1)).isoformat())["complaint-level"] == "none"
    assert 'data-email-window-sent="20"' in page

    status = ops_staff.get(f"{PAGE}/status.json").json()
    assert len(status["email_rates"]) == 14
    assert status["email_rates"][-1]["complaints"] == 1
    assert status["email_window"]["sent"] == 20
    assert status["email_window"]["bounces"] == 2
    assert status["email_window"]["complaints"] == 1


def _claimed(services: Services) -> list[tuple[Channel, Purpose]]:
    with services.sessions() as session:
        claimed = dispatch.claim_due(session, now=clock.utcnow(), limit=1000)
        session.commit()
    with services.sessions() as session:
        found = session.scalars(select(Message).where(Message.id.in_([c.id for c in claimed])))
        return sorted((m.channel, m.purpose) for m in found)


def _make_follow_ups_due(services: Services) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.purpose == Purpose.MARKETING, Message.channel == Channel.EMAIL)
            .values(due_at=clock.utcnow() - timedelta(minutes=1))
        )


def _post(client: TestClient, event: dict[str, Any]) -> Any:
    response = client.post(
        "/webhooks/email/mailgun", content=mailgun_body(event, now=clock.utcnow())
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_complaint_rate_over_the_limit_pauses_marketing_email_only(
    services: Services, client: TestClient
) -> None:
    leads = _leads(services, 12)
    _mark_welcome_sent(services, leads[:10], days_ago=1)
    now = clock.utcnow()
    # A transient bounce is no reason to pause; 0 complaints in 10 sent is fine.
    transient = mailgun_failed("x@example.net", event_id="mg-0", severity="temporary", now=now)
    assert _post(client, transient)["paused"] is False
    # One complaint in 10 sent: 10 %, far over 0.3 %.
    assert _post(client, mailgun_complained("lead0@example.com", event_id="mg-1", now=now)) == {
        "recorded": 1,
        "duplicates": 0,
        "paused": True,
    }
    with services.sessions() as session:
        (pause,) = session.scalars(select(Pause)).all()
        assert (pause.scope, pause.value) == (PauseScope.CHANNEL, "email:marketing")
        assert "spam complaints at 10.00 %" in pause.reason
        assert pause.created_by == "email-feedback"
        started = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "pause.started")
        ).all()
        assert [e.actor for e in started] == ["email-feedback"]
    # A second complaint does not double the pause.
    assert _post(client, mailgun_complained("lead1@example.com", event_id="mg-2", now=now))[
        "paused"
    ]
    with services.sessions() as session:
        assert len(session.scalars(select(Pause)).all()) == 1

    _make_follow_ups_due(services)
    claimed = _claimed(services)
    # The two leads still unsent get their welcome (care) and texts; no marketing e-mail goes.
    assert (Channel.EMAIL, Purpose.MARKETING) not in claimed
    assert (Channel.EMAIL, Purpose.CARE) in claimed
    assert (Channel.SMS, Purpose.OPTIN) in claimed


def test_below_the_minimum_sent_one_complaint_is_not_yet_a_rate(
    services: Services, client: TestClient
) -> None:
    leads = _leads(services, 5)
    _mark_welcome_sent(services, leads, days_ago=1)
    now = clock.utcnow()
    assert not _post(client, mailgun_complained("lead0@example.com", event_id="m1", now=now))[
        "paused"
    ]
    with services.sessions() as session:
        assert session.scalars(select(Pause)).all() == []


def test_a_permanent_bounce_rate_over_the_limit_pauses_marketing_email(
    services: Services, client: TestClient
) -> None:
    leads = _leads(services, 12)
    _mark_welcome_sent(services, leads[:10], days_ago=2)
    now = clock.utcnow()
    # The window is 7 days: sends of 8 days ago do not count.
    _feedback(services, EmailFeedbackKind.BOUNCE, days_ago=8, n=3)
    event = mailgun_failed("lead0@example.com", event_id="mg-1", severity="permanent", now=now)
    assert _post(client, event)["paused"] is True  # 1 in 10: over 5 %
    with services.sessions() as session:
        (pause,) = session.scalars(select(Pause)).all()
        assert pause.reason.startswith("marketing e-mail paused: permanent bounces at 10.00 %")
