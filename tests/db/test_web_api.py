"""The HTTP surface: sign-ups (JSON and form), lead status, health. In-process ASGI client."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from nurture.db.models import ConsentEvent, Lead, Message, Purpose
from nurture.runtime import Services, build_services
from nurture.web import create_app
from tests.conftest import SettingsFactory
from tests.support.api import API_KEY, DISCLOSURE_VERSION, api_signup_data
from tests.support.factories import sign_up


def count(services: Services, table: type[object]) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_json_signup_creates_a_lead(client: TestClient, services: Services) -> None:
    response = client.post("/api/v1/signups", json=api_signup_data(), headers=API_KEY)
    assert response.status_code == 201
    lead_id = uuid.UUID(response.json()["lead_id"])
    assert response.json()["created"] is True
    again = client.post("/api/v1/signups", json=api_signup_data(first_name="Ana"), headers=API_KEY)
    assert again.status_code == 201
    assert again.json() == {"lead_id": str(lead_id), "created": False}
    assert count(services, Lead) == 1


def test_form_encoded_signup_is_accepted_by_the_api(client: TestClient, services: Services) -> None:
    response = client.post(
        "/api/v1/signups",
        data={
            "first_name": "Bo",
            "email": "bo@example.com",
            "phone": "2085550111",
            "sms_care": "on",
            "consent_version": DISCLOSURE_VERSION,
            "page_url": "https://clinic.example/a",
            "utm_source": "newsletter",
        },
        headers=API_KEY,
    )
    assert response.status_code == 201, response.text
    with services.sessions() as session:
        lead = session.get_one(Lead, uuid.UUID(response.json()["lead_id"]))
        assert lead.phone == "+12085550111"
        event = session.scalars(
            select(ConsentEvent).where(
                ConsentEvent.lead_id == lead.id, ConsentEvent.channel == "sms"
            )
        ).one()
        assert event.purpose is Purpose.CARE
        assert event.evidence["page_url"] == "https://clinic.example/a"


def test_bad_input_is_422_naming_each_field_and_stores_nothing(
    client: TestClient, services: Services
) -> None:
    response = client.post(
        "/api/v1/signups",
        json=api_signup_data(email="nope", phone="12", first_name=""),
        headers=API_KEY,
    )
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert {"email", "phone", "first_name"} <= fields
    assert "nothing was stored" in response.json()["detail"]
    assert count(services, Lead) == 0
    assert count(services, Message) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b"{not json", "application/json", 422, "not valid JSON"),
        (b"[1, 2]", "application/json", 422, "JSON object"),
        (b"\xff\xfe", "application/json", 422, "not valid JSON"),
        (b"<xml/>", "application/xml", 415, "application/json"),
    ],
)
def test_malformed_bodies_get_a_clear_error(
    client: TestClient, body: bytes, content_type: str, status: int, fragment: str
) -> None:
    response = client.post(
        "/api/v1/signups", content=body, headers={"content-type": content_type, **API_KEY}
    )
    assert response.status_code == status
    assert fragment in response.text


def test_lead_status_needs_the_api_key(client: TestClient) -> None:
    created = client.post("/api/v1/signups", json=api_signup_data(), headers=API_KEY)
    lead_id = created.json()["lead_id"]
    assert client.get(f"/api/v1/leads/{lead_id}").status_code == 401
    assert (
        client.get(
            f"/api/v1/leads/{lead_id}", headers={"Authorization": "Bearer wrong"}
        ).status_code
        == 401
    )
    response = client.get(f"/api/v1/leads/{lead_id}", headers=API_KEY)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == lead_id
    assert body["stage"] == "signed_up"
    assert body["timezone"] == "America/Boise"
    assert body["consent"] == {
        "email": {"care": True, "marketing": True},
        "sms": {"care": True, "marketing": True},
    }
    assert [(m["step"], m["status"]) for m in body["messages"]] == [
        ("optin-confirmation", "scheduled"),
        ("welcome", "scheduled"),
        ("follow-up", "scheduled"),
    ]
    assert set(body["messages"][0]) >= {
        "id",
        "sequence",
        "step",
        "channel",
        "status",
        "due_at",
        "sent_at",
        "reason",
    }
    assert "email" not in body and "phone" not in body  # minimum necessary


def test_unknown_and_malformed_lead_ids(client: TestClient) -> None:
    assert client.get(f"/api/v1/leads/{uuid.uuid4()}", headers=API_KEY).status_code == 404
    response = client.get("/api/v1/leads/not-a-uuid", headers=API_KEY)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "lead_id"


def test_consult_form_has_unticked_consent_boxes_and_the_disclosures(
    client: TestClient, services: Services
) -> None:
    page = client.get("/consult")
    assert page.status_code == 200
    for name in ("email_marketing", "sms_marketing", "sms_care"):
        assert f'name="{name}" value="on">' in page.text  # present and not checked
        assert " ".join(getattr(services.disclosures, name).split())[:60] in " ".join(
            page.text.split()
        )
    assert "Consent is not a condition of any purchase" in page.text
    assert "988" in page.text


def test_consult_form_records_the_disclosure_the_server_showed(
    client: TestClient, services: Services
) -> None:
    response = client.post(
        "/consult",
        data={
            "first_name": "Cy",
            "phone": "(208) 555-0177",
            "sms_marketing": "on",
            "consent_text": "forged text",
        },
        headers={"user-agent": "Browser/1.0"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/consult/thanks"
    with services.sessions() as session:
        event = session.scalars(select(ConsentEvent)).one()
    assert event.evidence["disclosure_text"] == services.disclosures.sms_marketing
    assert event.evidence["disclosure_version"] == services.disclosures.version
    assert event.evidence["user_agent"] == "Browser/1.0"
    assert event.evidence["page_url"].endswith("/consult")
    assert event.source.value == "web_form"


def test_consult_form_errors_are_shown_next_to_the_fields(
    client: TestClient, services: Services
) -> None:
    response = client.post("/consult", data={"first_name": "Cy", "sms_care": "on", "email": "x@"})
    assert response.status_code == 422
    assert "phone number is needed to receive texts" in response.text
    assert "Not a valid e-mail address" in response.text
    assert 'value="Cy"' in response.text
    assert 'name="sms_care" value="on" checked' in response.text
    assert count(services, Lead) == 0


def form_errors(html: str) -> dict[str, str]:
    """The message under each field of a re-drawn form, by the field's name."""
    return {
        name: " ".join(message.split())
        for name, message in re.findall(r'<p class="error" id="([a-z_]+)-error">([^<]*)</p>', html)
    }


def test_an_empty_form_says_in_words_what_each_field_needs(
    client: TestClient, services: Services
) -> None:
    response = client.post("/consult", data={})
    assert response.status_code == 422
    errors = form_errors(response.text)
    assert errors["first_name"] == "Please tell us your first name"
    assert errors["email"] == "Give an e-mail address or a phone number"
    assert "String should" not in response.text and "Field required" not in response.text
    assert count(services, Lead) == 0


def test_a_mistyped_phone_is_reported_under_the_phone_alone(client: TestClient) -> None:
    response = client.post("/consult", data={"first_name": "Cy", "phone": "555", "sms_care": "on"})
    assert response.status_code == 422
    errors = form_errors(response.text)
    assert set(errors) == {"phone"}, errors  # not "give an e-mail or a phone" under e-mail
    assert errors["phone"].startswith("Not a ")


def test_health_and_readiness(make_settings: SettingsFactory) -> None:
    from tests.conftest import REDIS_URL
    from tests.support.smtp_server import free_port

    for broker, ready_status in ((REDIS_URL, 200), (f"redis://127.0.0.1:{free_port()}/0", 503)):
        services = build_services(make_settings(broker_url=broker))
        sign_up(services, email=f"m{ready_status}@example.com", phone=f"+1208555{ready_status:04d}")
        with TestClient(create_app(services)) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            ready = client.get("/readyz")
            assert ready.status_code == ready_status, ready.text
            checks = ready.json()["checks"]
            assert checks["database"]["ok"] is True
            assert checks["migrations"]["ok"] is True
            assert checks["broker"]["ok"] is (ready_status == 200)
            metrics = client.get("/metrics")
            assert metrics.status_code == 200
            assert re.search(
                r'nurture_messages\{channel="sms",status="scheduled"\} [12]\.0', metrics.text
            )
            assert "nurture_workers_alive" in metrics.text
        services.close()


def test_metrics_need_the_token_when_one_is_set(make_settings: SettingsFactory) -> None:
    services = build_services(make_settings(metrics_token="scrape-me"))
    try:
        with TestClient(create_app(services)) as client:
            assert client.get("/metrics").status_code == 401
            wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-you"})
            assert wrong.status_code == 401
            assert wrong.headers["www-authenticate"] == "Bearer"
            assert client.get("/metrics", headers=API_KEY).status_code == 401
            right = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
            assert right.status_code == 200
            assert "nurture_workers_alive" in right.text
            assert client.get("/healthz").status_code == 200  # probes need no token
    finally:
        services.close()


def test_the_openapi_document_lists_only_the_api_and_webhooks(client: TestClient) -> None:
    document = client.get("/openapi.json")
    assert document.status_code == 200
    paths = set(document.json()["paths"])
    assert paths == {
        "/api/v1/signups",
        "/api/v1/leads/{lead_id}",
        "/api/v1/leads/{lead_id}/events",
        "/api/v1/events",
        "/webhooks/twilio/sms",
        "/webhooks/twilio/status",
        "/webhooks/calendly",
        "/webhooks/calcom",
        "/webhooks/acuity",
        "/webhooks/square",
        "/webhooks/email/ses",
        "/webhooks/email/sendgrid",
        "/webhooks/email/mailgun",
        "/webhooks/email/postmark",
    }
    signup = document.json()["paths"]["/api/v1/signups"]["post"]
    schema = signup["requestBody"]["content"]["application/json"]["schema"]
    assert {"first_name", "email", "phone", "consent"} <= set(schema["properties"])
    assert "$ref" not in str(schema)  # written in place: nothing points into a missing $defs
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    assert client.get("/api/docs").url.path == "/docs"  # the old address still leads there


def _on_the_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_sign_up_rate_limits_run_off_the_event_loop(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limiter talks to Redis in production: a round trip the event loop must not wait on."""
    seen: list[tuple[str, bool]] = []
    limiter = services.signup_limiter
    for name in ("check_ip", "check_phone"):
        real = getattr(limiter, name)

        def spy(value: str | None, _real: Any = real, _name: str = name) -> Any:
            seen.append((_name, _on_the_event_loop()))
            return _real(value)

        monkeypatch.setattr(limiter, name, spy)
    assert (
        client.post("/api/v1/signups", json=api_signup_data(), headers=API_KEY).status_code == 201
    )
    assert seen == [("check_ip", False), ("check_phone", False)]


def test_the_admin_error_page_reads_the_session_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nurture.web.app
    from nurture.web.admin.auth import COOKIE, current_staff

    seen: list[bool] = []
    real = current_staff

    def spy(request: Any, services: Services) -> Any:
        seen.append(_on_the_event_loop())
        return real(request, services)

    monkeypatch.setattr(nurture.web.app, "current_staff", spy)
    client.cookies.set(COOKIE, "bogus")
    assert client.get("/admin/nope").status_code == 404
    assert seen == [False]
