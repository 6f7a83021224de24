"""Step conditions (`when:`), evaluated at send time, and re-entry with a cool-down."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from nurture import clock
from nurture.db.models import Enrollment, Lead, MessageStatus
from nurture.leads.lifecycle import apply_event
from nurture.program.sequences import LifecycleEvent
from nurture.runtime import Services, build_services
from tests.conftest import REPO, SettingsFactory
from tests.support.factories import claim_and_send_all, messages_of, sign_up

TESTER = """\
key: tester
name: Rules under test
version: 1
trigger: signed_up
exit_on: [consult_booked]
reenter: true
cooldown: 1d
steps:
  - {key: only-ana, channel: email, purpose: care, template: welcome, offset: 0s,
     when: "lead.first_name == 'Ana'"}
  - {key: broken, channel: email, purpose: care, template: welcome, offset: 0s,
     when: "lead.attributes.vip"}
"""


@pytest.fixture
def services(make_settings: SettingsFactory, tmp_path: Path) -> Iterator[Services]:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    (config / "sequences" / "tester.yaml").write_text(TESTER)
    built = build_services(make_settings(config_dir=config))
    yield built
    built.close()


def rows_of_tester(
    services: Services, lead_id: object
) -> dict[str, tuple[MessageStatus, str | None]]:
    with services.sessions() as session:
        return {
            m.step_key: (m.status, m.last_error)
            for m in messages_of(session, lead_id)  # type: ignore[arg-type]
            if m.sequence_key == "tester"
        }


def test_conditions_are_checked_when_the_message_leaves(services: Services) -> None:
    ana = sign_up(services)
    bo = sign_up(services, first_name="Bo", email="bo@example.com", phone="+12085550124")
    claim_and_send_all(services)
    assert rows_of_tester(services, ana)["only-ana"] == (MessageStatus.SENT, None)
    assert rows_of_tester(services, bo)["only-ana"] == (
        MessageStatus.SKIPPED,
        "condition not met: lead.first_name == 'Ana'",
    )
    status, reason = rows_of_tester(services, ana)["broken"]
    assert status is MessageStatus.SKIPPED
    assert reason is not None and "condition 'lead.attributes.vip' failed" in reason


def test_a_condition_reads_the_lead_as_it_is_at_send_time(services: Services) -> None:
    lead_id = sign_up(services, first_name="Bo")
    with services.sessions.begin() as session:
        session.get_one(Lead, lead_id).first_name = "Ana"  # corrected by staff before it went out
    claim_and_send_all(services)
    assert rows_of_tester(services, lead_id)["only-ana"][0] is MessageStatus.SENT


def test_reentry_waits_for_the_cooldown(services: Services) -> None:
    with freeze_time("2026-03-03 18:00:00") as frozen:
        lead_id = sign_up(services)
        with services.sessions.begin() as session:
            apply_event(
                session,
                session.get_one(Lead, lead_id),
                LifecycleEvent.CONSULT_BOOKED,
                consult_at=clock.utcnow() + timedelta(days=5),
                catalog=services.catalog,
                clinic_zone=services.clinic.zone,
                now=clock.utcnow(),
                actor="test",
            )
        frozen.tick(timedelta(hours=23))
        sign_up(services)
        frozen.tick(timedelta(hours=2))
        sign_up(services)
    with services.sessions() as session:
        tester = session.scalars(
            select(Enrollment).where(Enrollment.sequence_key == "tester").order_by(Enrollment.id)
        ).all()
    assert [e.status.value for e in tester] == ["exited", "active"]
    assert tester[1].enrolled_at - tester[0].ended_at >= timedelta(days=1)  # type: ignore[operator]
