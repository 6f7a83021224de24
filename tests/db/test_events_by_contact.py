"""POST /api/v1/events: a lifecycle event naming the lead by e-mail or phone (Zapier, a
clinic's own system), with the API key; the same rules as /api/v1/leads/{id}/events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from nurture.db.models import Lead, LeadEvent, LeadStage
from nurture.runtime import Services, build_services
from tests.conftest import REPO, SettingsFactory
from tests.support.factories import sign_up

API_KEY = {"Authorization": "Bearer test-api-key"}
CONSULT = "2026-03-10T09:00:00-07:00"


@pytest.fixture
def services(make_settings: SettingsFactory) -> Iterator[Services]:
    built = build_services(make_settings(config_dir=REPO / "config"))
    yield built
    built.close()


def lead(services: Services, lead_id: uuid.UUID) -> Lead:
    with services.sessions() as session:
        return session.get_one(Lead, lead_id)


def test_an_event_finds_its_lead_by_email_then_phone(
    client: TestClient, services: Services
) -> None:
    ana = sign_up(services, email="ana@example.com", phone="+12085550123")
    body = {
        "type": "consult_booked",
        "consult_at": CONSULT,
        "email": " ANA@Example.com ",
        "event_id": "z-1",
    }
    response = client.post("/api/v1/events", json=body, headers=API_KEY)
    assert response.status_code == 200, response.text
    assert response.json()["lead_id"] == str(ana) and response.json()["changed"] is True
    assert lead(services, ana).stage is LeadStage.BOOKED
    # A retried Zap: the same event_id counts once.
    assert client.post("/api/v1/events", json=body, headers=API_KEY).json()["changed"] is False
    by_phone = {"type": "consult_cancelled", "phone": "(208) 555-0123"}
    response = client.post("/api/v1/events", json=by_phone, headers=API_KEY)
    assert response.status_code == 200 and response.json()["lead_id"] == str(ana)
    assert lead(services, ana).consult_at is None
    with services.sessions() as session:
        kinds = session.scalars(select(LeadEvent.type).where(LeadEvent.lead_id == ana)).all()
    assert kinds == ["consult_booked", "consult_cancelled"]


def test_an_email_nobody_has_falls_back_to_the_phone(
    client: TestClient, services: Services
) -> None:
    ana = sign_up(services, email="ana@example.com", phone="+12085550123")
    body = {
        "type": "consult_booked",
        "consult_at": CONSULT,
        "email": "new@example.com",
        "phone": "+12085550123",
    }
    response = client.post("/api/v1/events", json=body, headers=API_KEY)
    assert response.status_code == 200 and response.json()["lead_id"] == str(ana)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"type": "consult_booked", "consult_at": CONSULT}, 422, "email"),
        (
            {"type": "consult_booked", "consult_at": CONSULT, "email": "not an address"},
            422,
            "email",
        ),
        ({"type": "consult_booked", "consult_at": CONSULT, "phone": "12"}, 422, "phone"),
        ({"type": "consult_booked", "consult_at": CONSULT, "email": 5}, 422, "email"),
        ({"type": "consult_booked", "email": "ana@example.com"}, 422, "consult_at"),
        ({"type": "signed_up", "email": "ana@example.com"}, 422, "type"),
        ({"type": "consult_booked", "lead": "x", "email": "ana@example.com"}, 422, "lead"),
    ],
)
def test_bad_events_say_what_to_fix(
    client: TestClient, services: Services, body: dict[str, object], status: int, field: str
) -> None:
    sign_up(services, email="ana@example.com")
    response = client.post("/api/v1/events", json=body, headers=API_KEY)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["field"] == field


def test_unknown_person_is_404_and_no_key_is_401(client: TestClient, services: Services) -> None:
    body = {"type": "consult_cancelled", "email": "nobody@example.com"}
    response = client.post("/api/v1/events", json=body, headers=API_KEY)
    assert response.status_code == 404 and "e-mail" in response.json()["detail"]
    assert client.post("/api/v1/events", json=body).status_code == 401
