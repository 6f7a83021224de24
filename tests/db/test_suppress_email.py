"""nurture.outbox.withdrawals.suppress_email: a permanent bounce or a complaint stops all e-mail
to an address (issue 13 §3), for every lead with it, visible in `nurture consent export`."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from nurture import clock, consent
from nurture.cli import cli
from nurture.config.settings import get_settings
from nurture.db.models import (
    PENDING_STATUSES,
    Channel,
    ConsentEvent,
    ConsentSource,
    Lead,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.outbox.withdrawals import suppress_email
from nurture.runtime import Services
from tests.support.factories import sign_up

ADDRESS = "ana.rivera@example.com"


def _pending_email(services: Services, lead_id: uuid.UUID) -> list[Message]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(Message).where(
                    Message.lead_id == lead_id,
                    Message.channel == Channel.EMAIL,
                    Message.status.in_(PENDING_STATUSES),
                )
            )
        )


def _two_leads_one_address(services: Services) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Ana; an older record of hers kept with the address in capitals; and someone else."""
    first = sign_up(services)
    second = sign_up(services, email="ana.old@example.com", phone="+12085550124")
    other = sign_up(services, email="ben@example.com", phone="+12085550125")
    with services.sessions.begin() as session:
        session.execute(
            update(Lead).where(Lead.id == second).values(email="Ana.Rivera@Example.COM")
        )
    return first, second, other


@pytest.mark.parametrize("source", [ConsentSource.BOUNCE, ConsentSource.COMPLAINT])
def test_suppression_revokes_care_and_marketing_for_every_lead_with_the_address(
    services: Services, source: ConsentSource
) -> None:
    first, second, other = _two_leads_one_address(services)
    assert _pending_email(services, first), "the fixture sequence plans e-mail after sign-up"
    with services.sessions.begin() as session:
        changed = suppress_email(
            session,
            "  ANA.rivera@example.com ",
            source=source,
            evidence={"provider": "ses", "event_id": "m-1"},
            actor="ses-webhook",
            now=clock.utcnow(),
        )
    assert set(changed) == {first, second}
    with services.sessions() as session:
        for lead_id in (first, second):
            state = consent.current(session, lead_id)
            assert not state.allows(Channel.EMAIL, Purpose.CARE)
            assert not state.allows(Channel.EMAIL, Purpose.MARKETING)
            assert state.allows(Channel.SMS, Purpose.CARE), "texts are not the address's business"
            cancelled = session.scalars(
                select(Message).where(
                    Message.lead_id == lead_id,
                    Message.channel == Channel.EMAIL,
                    Message.status == MessageStatus.CANCELLED,
                )
            ).all()
            assert all(source.value in (m.last_error or "") for m in cancelled)
        revocations = session.scalars(
            select(ConsentEvent).where(ConsentEvent.lead_id == first, ConsentEvent.source == source)
        ).all()
        assert {e.purpose for e in revocations} == {Purpose.CARE, Purpose.MARKETING}
        assert consent.current(session, other).allows(Channel.EMAIL, Purpose.MARKETING)
    assert not _pending_email(services, first)
    assert not _pending_email(services, second)
    assert _pending_email(services, other)


def test_a_second_report_for_the_same_address_changes_nothing(services: Services) -> None:
    first = sign_up(services)
    for expected in ([first], []):
        with services.sessions.begin() as session:
            changed = suppress_email(
                session,
                ADDRESS,
                source=ConsentSource.BOUNCE,
                evidence={"event_id": "x"},
                actor="ses-webhook",
                now=clock.utcnow(),
            )
        assert changed == expected
    with services.sessions() as session:
        events = session.scalars(
            select(ConsentEvent).where(ConsentEvent.source == ConsentSource.BOUNCE)
        ).all()
    assert len(events) == 2  # care and marketing, once each


def test_an_address_nobody_has_changes_nothing(services: Services) -> None:
    lead = sign_up(services)
    with services.sessions.begin() as session:
        assert (
            suppress_email(
                session,
                "stranger@example.net",
                source=ConsentSource.COMPLAINT,
                evidence={},
                actor="ses-webhook",
                now=clock.utcnow(),
            )
            == []
        )
        assert consent.current(session, lead).allows(Channel.EMAIL, Purpose.MARKETING)


def test_only_a_bounce_or_a_complaint_suppresses(services: Services) -> None:
    sign_up(services)
    with services.sessions.begin() as session, pytest.raises(ValueError, match="bounce"):
        suppress_email(
            session,
            ADDRESS,
            source=ConsentSource.STAFF,
            evidence={},
            actor="staff",
            now=clock.utcnow(),
        )


def test_the_suppression_shows_in_the_consent_export(services: Services) -> None:
    sign_up(services)
    with services.sessions.begin() as session:
        suppress_email(
            session,
            ADDRESS,
            source=ConsentSource.COMPLAINT,
            evidence={"provider": "sendgrid", "event_id": "sg-1"},
            actor="sendgrid-webhook",
            now=clock.utcnow(),
        )
    settings = services.settings
    env = {
        "NURTURE_DATABASE_URL": settings.resolved_database_url,
        "NURTURE_CONFIG_DIR": str(settings.config_dir),
        "NURTURE_TEMPLATES_DIR": str(settings.templates_dir),
        "NURTURE_VAR_DIR": str(settings.var_dir),
    }
    get_settings.cache_clear()  # the command reads these settings, not an earlier test's
    try:
        result = CliRunner().invoke(cli, ["consent", "export", ADDRESS], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    events = json.loads(result.output)["events"]
    complaints = [e for e in events if e["source"] == "complaint"]
    assert {(e["channel"], e["purpose"], e["action"]) for e in complaints} == {
        ("email", "care", "revoked"),
        ("email", "marketing", "revoked"),
    }
    assert complaints[0]["evidence"]["event_id"] == "sg-1"
