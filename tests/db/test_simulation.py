"""The simulator shows what the planner plans (the same function) and touches no row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from nurture.cli import cli
from nurture.config.settings import get_settings
from nurture.db.models import Lead, Message
from nurture.outbox import planner
from nurture.preview.simulation import SampleLead, simulate
from nurture.runtime import Services, build_services
from tests.conftest import REPO, SettingsFactory

START = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # Mon 09:00 MST
CONSULT = datetime(2026, 3, 12, 17, 30, tzinfo=UTC)  # Thu 11:30 MDT


@pytest.fixture
def services(make_settings: SettingsFactory) -> Iterator[Services]:
    built = build_services(make_settings(config_dir=REPO / "config"))
    yield built
    built.close()


@pytest.mark.parametrize(
    "key", ["consult-nurture", "consult-reminders", "no-show-followup", "post-consult-followup"]
)
def test_the_simulated_plan_is_the_planners_plan(services: Services, key: str) -> None:
    sequence = services.catalog.by_key[key]
    sample = SampleLead(stage="booked" if key == "consult-reminders" else "signed_up")
    entries = simulate(
        sequence,
        sample,
        start=START,
        consult_at=CONSULT,
        writer=services.writer,
        policy=services.policy,
    )
    with services.sessions.begin() as session:
        lead = sample.to_lead(consult_at=CONSULT, now=START)
        lead.id = uuid.uuid4()
        session.add(lead)
        enrollment = planner.enroll(
            session, lead, sequence, clinic_zone=services.clinic.zone, now=START, actor="t"
        )
        assert enrollment is not None
        session.flush()
        planned = {
            m.step_key: m.due_at
            for m in session.scalars(select(Message).where(Message.lead_id == lead.id))
        }
    assert {e.step_key: e.planned_at for e in entries} == planned
    assert all(e.skipped is None for e in entries), [e for e in entries if e.skipped]
    for e in entries:
        assert e.send_at is not None and e.planned_at is not None
        assert e.send_at >= e.planned_at  # quiet hours and caps only ever move a message later
        assert e.headline


def test_simulation_applies_quiet_hours_and_touches_no_row(services: Services) -> None:
    sequence = services.catalog.by_key["consult-nurture"]
    late_night = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 01:00 MST
    entries = {
        e.step_key: e
        for e in simulate(
            sequence,
            SampleLead(),
            start=late_night,
            consult_at=None,
            writer=services.writer,
            policy=services.policy,
        )
    }
    assert entries["optin-confirmation"].send_at == datetime(
        2026, 3, 2, 15, 0, tzinfo=UTC
    )  # 08:00 MST
    assert entries["optin-confirmation"].local == "Mon, Mar 2 at 8:00 AM MST"
    assert entries["welcome"].send_at == late_night  # care e-mail: any hour
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 0
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_simulation_shows_why_a_step_would_not_go(services: Services) -> None:
    sequence = services.catalog.by_key["consult-reminders"]
    sample = SampleLead(
        stage="booked",
        consent={
            "email": {"care": True, "marketing": True},
            "sms": {"care": False, "marketing": False},
        },
    )
    late = {
        e.step_key: e
        for e in simulate(
            sequence,
            sample,
            start=START,
            consult_at=datetime(2026, 3, 2, 19, 0, tzinfo=UTC),
            writer=services.writer,
            policy=services.policy,
        )
    }
    assert late["reminder-email-24h"].skipped == "its time had passed when it was planned"
    assert late["reminder-sms-2h"].skipped == "no sms care consent"
    missing = {
        e.step_key: e
        for e in simulate(
            sequence,
            sample,
            start=START,
            consult_at=None,
            writer=services.writer,
            policy=services.policy,
        )
    }
    assert "waits for a consult time" in (missing["reminder-email-24h"].skipped or "")


def test_the_simulate_command(tmp_path: Path) -> None:
    lead_file = tmp_path / "lead.yaml"
    lead_file.write_text("first_name: Rosa\ntimezone: America/New_York\nstage: booked\n")
    env = {
        "NURTURE_CONFIG_DIR": str(REPO / "config"),
        "NURTURE_TEMPLATES_DIR": str(REPO / "templates"),
        "NURTURE_VAR_DIR": str(tmp_path),
    }
    get_settings.cache_clear()
    assert CliRunner().invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    get_settings.cache_clear()
    result = CliRunner().invoke(
        cli,
        [
            "sequences",
            "simulate",
            "consult-reminders",
            "--lead",
            str(lead_file),
            "--start",
            "2026-03-02T09:00:00-05:00",
            "--consult-at",
            "2026-03-06T14:00:00-05:00",
        ],
        env=env,
    )
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "consult-reminders (version 1)" in result.output
    assert "Thu, Mar 5 at 2:00 PM EST" in result.output  # the 24 h reminders, in Rosa's zone
    assert "reminder-sms-2h" in result.output

    bad = tmp_path / "bad.yaml"
    bad.write_text("first_name: Rosa\nfavourite_colour: red\n")
    for args, fragment in [
        (["sequences", "simulate", "nope"], "no sequence 'nope'; known: consult-nurture"),
        (
            ["sequences", "simulate", "consult-nurture", "--lead", str(bad)],
            "bad.yaml:2: favourite_colour",
        ),
        (
            ["sequences", "simulate", "consult-nurture", "--start", "tomorrow"],
            "--start: 'tomorrow' is not ISO 8601",
        ),
    ]:
        result = CliRunner().invoke(cli, args, env=env)
        get_settings.cache_clear()
        assert result.exit_code == 2, result.output
        assert fragment in result.output
