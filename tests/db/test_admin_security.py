"""Every staff route against every role: sign-in required, the right role, CSRF on every POST;
and the session cookie, lockout and login form rules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import func, select

from nurture import clock, staff, template_store
from nurture.models import AuditEvent, InboundClass, InboundMessage, StaffRole, StaffUser
from nurture.services import Services
from nurture.web import create_app
from tests.support.factories import sign_up

PASSWORD = "a long and careful passphrase"
ROLES = ("marketing", "ops", "admin")
AREAS = {
    "/admin/templates": "templates",
    "/admin/sequences": "sequences",
    "/admin/leads": "leads",
    "/admin/inbox": "inbox",
    "/admin/users": "users",
    "/admin/ops": "ops",
}
ANY_STAFF = {"/admin/", "/admin/logout"}


@pytest.fixture
def weekday_daytime() -> None:
    """Real time: lockouts are tested with their own frozen clock."""


@pytest.fixture
def app(services: Services) -> Iterator[TestClient]:
    with services.sessions.begin() as session:
        template_store.sync(session, services.templates.files, now=clock.utcnow())
        for role in ROLES:
            staff.add_user(
                session, f"{role}@clinic.example", PASSWORD, role=role, phone=None, actor="test"
            )
    with TestClient(
        create_app(services), base_url="https://testserver", follow_redirects=False
    ) as client:
        yield client


def post_login(
    client: TestClient, email: str, password: str = PASSWORD, next_path: str = "/admin/"
) -> Any:
    """Sign in through the real form: fetch it, read its hidden token, post it back."""
    page = client.get("/admin/login")
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    return client.post(
        "/admin/login",
        data={"token": token.group(1), "email": email, "password": password, "next": next_path},
    )


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> int:
    return int(post_login(client, email, password).status_code)


def concrete_routes(client: TestClient, services: Services) -> list[tuple[str, str, str]]:
    """(method, url, area) for every /admin route in the OpenAPI schema, with real ids filled in."""
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        inbound = InboundMessage(
            message_sid="SMx",
            lead_id=lead_id,
            from_number="+12085550123",
            to_number="+1",
            body="hello",
            classification=InboundClass.OTHER,
            needs_attention=True,
        )
        session.add(inbound)
        session.flush()
        inbound_id = inbound.id
        user_id = session.scalar(
            select(StaffUser.id).where(StaffUser.email == "marketing@clinic.example")
        )
    values = {
        "channel": "sms",
        "lead_id": str(lead_id),
        "inbound_id": str(inbound_id),
        "user_id": str(user_id),
    }
    routes: list[tuple[str, str, str]] = []
    for path, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if not path.startswith("/admin") or path == "/admin/login":
            continue
        area = next((a for prefix, a in AREAS.items() if path.startswith(prefix)), None)
        assert area or path in ANY_STAFF, f"{path}: which role may open it? add it to AREAS"
        key = "basic-nurture" if path.startswith("/admin/sequences") else "help-reply"
        url = path
        for name, value in {**values, "key": key}.items():
            url = url.replace("{" + name + "}", value)
        if url.endswith("/diff"):
            url += "?a=1&b=1"
        routes.extend((method.upper(), url, area or "any") for method in operations)
    assert len(routes) > 15
    return routes


def test_every_route_needs_a_session_the_right_role_and_csrf(
    app: TestClient, services: Services
) -> None:
    routes = concrete_routes(app, services)
    for method, url, _area in routes:
        response = app.request(method, url)
        assert response.status_code == 303, (method, url, response.status_code)
        assert response.headers["location"].startswith("/admin/login?next=")
    for role in ROLES:
        app.cookies.clear()
        assert sign_in(app, f"{role}@clinic.example") == 303
        csrf = re.search(r'name="csrf" value="([^"]+)"', app.get("/admin/").text)
        assert csrf
        allowed = staff.ROLE_AREAS[StaffRole(role)]
        for method, url, area in routes:
            if url == "/admin/logout":
                continue
            may = area == "any" or area in allowed
            if method == "GET":
                response = app.get(url)
                assert response.status_code == (200 if may else 403), (
                    role,
                    url,
                    response.status_code,
                )
                continue
            with services.sessions() as session:
                before = session.scalar(select(func.count()).select_from(AuditEvent))
            response = app.post(url, data={"csrf": csrf.group(1) if not may else "wrong"})
            assert response.status_code == 403, (role, method, url, response.status_code)
            with services.sessions() as session:
                assert session.scalar(select(func.count()).select_from(AuditEvent)) == before, (
                    role,
                    url,
                )


def test_the_session_cookie_is_httponly_samesite_secure_and_scoped(app: TestClient) -> None:
    response = post_login(app, "ops@clinic.example", PASSWORD, "/admin/leads")
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "nurture_staff=" in v
    )
    assert (
        "HttpOnly" in cookie
        and "SameSite=lax" in cookie
        and "Secure" in cookie
        and "Path=/admin" in cookie
    )
    assert response.headers["location"] == "/admin/leads"


def test_login_refuses_a_post_without_its_form_token(app: TestClient) -> None:
    response = app.post("/admin/login", data={"email": "ops@clinic.example", "password": PASSWORD})
    assert response.status_code == 403
    assert "nurture_staff" not in response.headers.get("set-cookie", "")


def test_no_open_redirect_after_login(app: TestClient) -> None:
    response = post_login(app, "ops@clinic.example", PASSWORD, "https://evil.example/admin")
    assert response.headers["location"] == "/admin/"


def test_five_wrong_passwords_lock_the_account_for_a_while(
    app: TestClient, services: Services
) -> None:
    with freeze_time("2026-03-03 18:00:00") as frozen:
        for _ in range(staff.MAX_FAILURES):
            assert sign_in(app, "ops@clinic.example", "wrong password!") == 401
        assert sign_in(app, "ops@clinic.example") == 401  # right password, still locked
        frozen.tick(staff.LOCKOUT + timedelta(seconds=1))
        assert sign_in(app, "ops@clinic.example") == 303
    with services.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "staff:ops@clinic.example")
        ).all()
    assert "staff.locked_out" in actions and "staff.login_refused_locked" in actions


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(app: TestClient) -> None:
    page = app.get("/admin/login")
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    nobody = app.post(
        "/admin/login",
        data={"token": token.group(1), "email": "nobody@clinic.example", "password": PASSWORD},
    )
    assert nobody.status_code == 401
    assert "wrong e-mail or password" in nobody.text


def test_signing_out_ends_the_session(app: TestClient) -> None:
    assert sign_in(app, "admin@clinic.example") == 303
    csrf = re.search(r'name="csrf" value="([^"]+)"', app.get("/admin/").text)
    assert csrf
    cookie = app.cookies.get("nurture_staff")
    assert app.post("/admin/logout", data={"csrf": csrf.group(1)}).status_code == 303
    app.cookies.set("nurture_staff", cookie or "", path="/admin")  # a stolen copy of the old cookie
    assert app.get("/admin/").status_code == 303
