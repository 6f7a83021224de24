"""became_patient (issue 15 §2): from the lead page's event form, the API and the CLI it moves
the lead to stage patient, ends the sequences that exit on it, and is recorded like the others."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from nurture.cli import cli
from nurture.config.settings import get_settings
from nurture.db.models import (
    AuditEvent,
    Enrollment,
    EnrollmentStatus,
    Lead,
    LeadEvent,
    LeadStage,
    MessageStatus,
)
from nurture.runtime import Services, build_services
from nurture.web import create_app
from tests.conftest import SettingsFactory
from tests.db.test_admin_pages import sign_in
from tests.support.factories import messages_of, sign_up

API_KEY = {"Authorization": "Bearer test-api-key"}


@pytest.fixture
def services(
    make_settings: SettingsFactory, basic_config_dir: Path, tmp_path: Path
) -> Iterator[Services]:
    """The test sequence, told to end when the lead becomes a patient."""
    config = tmp_path / "config"
    shutil.copytree(basic_config_dir, config)
    sequence = config / "sequences" / "basic-nurture.yaml"
    sequence.write_text(
        sequence.read_text().replace("exit_on: [consult_booked]", "exit_on: [became_patient]")
    )
    built = build_services(make_settings(config_dir=config))
    yield built
    built.close()


def assert_became_patient(services: Services, lead_id: uuid.UUID, actor: str) -> None:
    with services.sessions() as session:
        lead = session.get_one(Lead, lead_id)
        assert lead.stage is LeadStage.PATIENT
        [enrollment] = session.scalars(select(Enrollment).where(Enrollment.lead_id == lead_id))
        assert enrollment.status is EnrollmentStatus.EXITED
        assert enrollment.exit_reason == "became_patient"
        follow_up = next(m for m in messages_of(session, lead_id) if m.step_key == "follow-up")
        assert follow_up.status is MessageStatus.CANCELLED
        [event] = session.scalars(
            select(LeadEvent).where(
                LeadEvent.lead_id == lead_id, LeadEvent.type == "became_patient"
            )
        )
        assert event.actor == actor
        [audit] = session.scalars(
            select(AuditEvent).where(
                AuditEvent.lead_id == lead_id, AuditEvent.action == "lead.became_patient"
            )
        )
        assert audit.details["exited"] == ["basic-nurture"]


def test_from_the_lead_page_form(services: Services) -> None:
    ops = sign_in(create_app(services), services, "ops")
    lead_id = sign_up(services)
    page = ops.get(f"/admin/leads/{lead_id}")
    assert '<option value="became_patient"' in page.text
    token = ops.csrf(f"/admin/leads/{lead_id}")
    done = ops.post(f"/admin/leads/{lead_id}/events", {"type": "became_patient"}, csrf=token)
    assert done.status_code == 303, done.text
    assert_became_patient(services, lead_id, ops.actor)


def test_from_the_api(services: Services) -> None:
    lead_id = sign_up(services)
    with TestClient(create_app(services)) as client:
        response = client.post(
            f"/api/v1/leads/{lead_id}/events", json={"type": "became_patient"}, headers=API_KEY
        )
        assert response.status_code == 200, response.text
        assert response.json()["stage"] == "patient"
        assert response.json()["exited"] == ["basic-nurture"]
        again = client.post(
            f"/api/v1/leads/{lead_id}/events", json={"type": "became_patient"}, headers=API_KEY
        )
        assert again.json()["changed"] is False  # the same event twice changes nothing
    assert_became_patient(services, lead_id, "api")


def test_from_the_cli(services: Services) -> None:
    lead_id = sign_up(services)
    settings = services.settings
    env = {
        "NURTURE_DATABASE_URL": settings.resolved_database_url,
        "NURTURE_CONFIG_DIR": str(settings.config_dir),
        "NURTURE_TEMPLATES_DIR": str(settings.templates_dir),
        "NURTURE_VAR_DIR": str(settings.var_dir),
    }
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            cli,
            ["--as", "dana", "leads", "event", "ana.rivera@example.com", "became_patient"],
            env=env,
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert_became_patient(services, lead_id, "cli:dana")
