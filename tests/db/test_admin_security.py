"""Every staff route against every role: sign-in required, the right role, CSRF on every POST;
and the session cookie, the login form, and sign-in answers that never tell accounts apart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from nurture import clock, staff
from nurture.content import template_store
from nurture.db.models import AuditEvent, Channel, InboundClass, InboundMessage, Message, StaffUser
from nurture.program import sequence_store
from nurture.runtime import Services
from nurture.web import admin, create_app
from tests.support.factories import sign_up

PASSWORD = "a long and careful passphrase"
ROLES = ("marketing", "ops", "admin")
AREAS = {
    "/admin/templates": "templates",
    # Editing and publishing sequences: marketing and admins; ops may look (issue 15 §1).
    "/admin/sequences/{key}/edit": "sequence-editing",
    "/admin/sequences/{key}/drafts": "sequence-editing",
    "/admin/sequences/{key}/versions": "sequence-editing",
    "/admin/sequences": "sequences",
    "/admin/leads/reach": "reach",  # before /admin/leads: the first prefix that matches wins
    "/admin/leads": "leads",
    "/admin/inbox": "inbox",
    "/admin/users": "users",
    "/admin/ops": "ops",
    "/admin/funnel": "funnel",
}
ANY_STAFF = {"/admin/", "/admin/logout"}
# Who may open what, written down here rather than read from the code under test (README,
# "Staff UI"): marketing writes templates and reads sequences; ops run the console, leads and
# inbox and read sequences; admin everything, and alone manages users.
MAY_OPEN = {
    "marketing": {"templates", "sequences", "sequence-editing", "reach", "funnel"},
    "ops": {"ops", "leads", "inbox", "sequences"},
    "admin": {
        "templates",
        "sequences",
        "sequence-editing",
        "ops",
        "leads",
        "inbox",
        "users",
        "reach",
        "funnel",
    },
}


@pytest.fixture
def weekday_daytime() -> None:
    """Real time: the throttle's memory storage expires entries in a thread on the real clock,
    so a clock frozen in the past would empty its windows at once."""


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


def admin_paths() -> dict[str, Any]:
    schema_of_admin = FastAPI()
    schema_of_admin.include_router(admin.router)
    paths: dict[str, Any] = schema_of_admin.openapi()["paths"]
    return paths


def concrete_routes(client: TestClient, services: Services) -> list[tuple[str, str, str]]:
    """(method, url, area) for every /admin route, with real ids filled in.

    The public OpenAPI document lists only the JSON API and webhooks, so the admin routes are
    read from a schema of the admin router alone: a new route still appears here by itself."""
    lead_id = sign_up(services)
    source = services.templates.get(Channel.SMS, "confirm-reply").source
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
        message_id = session.scalar(select(Message.id).where(Message.lead_id == lead_id).limit(1))
        # A draft of a text marketing may publish (no legal weight, clean lint in the test
        # program), for the review and delete pages.
        draft = template_store.save_draft(
            session,
            Channel.SMS,
            "confirm-reply",
            source,
            author="test",
            now=clock.utcnow(),
        ).version
        # The test program's sequence imported (version 1, live) and a valid draft of it, for
        # the sequence studio's review and delete pages.
        sequence_store.sync(
            session,
            services.settings.config_dir / "sequences",
            templates=services.templates.available(),
            now=clock.utcnow(),
        )
        live_sequence = sequence_store.published(session, "basic-nurture")
        assert live_sequence is not None
        sequence_draft = sequence_store.save_draft(
            session,
            "basic-nurture",
            live_sequence.source.replace("name: ", "name: Edited ", 1),
            author="test",
            now=clock.utcnow(),
        ).version
    values = {
        "channel": "sms",
        "lead_id": str(lead_id),
        "inbound_id": str(inbound_id),
        "user_id": str(user_id),
        "message_id": str(message_id),
        "version": str(draft),
        "number": str(sequence_draft),
    }
    routes: list[tuple[str, str, str]] = []
    for path, operations in admin_paths().items():
        if not path.startswith("/admin") or path == "/admin/login":
            continue
        area = next((a for prefix, a in AREAS.items() if path.startswith(prefix)), None)
        assert area or path in ANY_STAFF, f"{path}: which role may open it? add it to AREAS"
        key = "basic-nurture" if path.startswith("/admin/sequences") else "confirm-reply"
        url = path
        for name, value in {**values, "key": key}.items():
            url = url.replace("{" + name + "}", value)
        for method in operations:
            query = ""
            if url.endswith("/diff"):
                query = "?a=1&b=1"
            elif url.endswith("/publish") and method == "get":
                query = f"?version={draft}"
            routes.append((method.upper(), url + query, area or "any"))
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
        allowed = MAY_OPEN[role]
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


def from_client(app: TestClient, ip: str) -> TestClient:
    """Another browser on the same app, from another address (the throttle counts per client)."""
    return TestClient(
        app.app, base_url="https://testserver", follow_redirects=False, client=(ip, 50000)
    )


def error_of(response: Any) -> str:
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', response.text)
    assert found, response.text
    return found.group(1)


def deactivate(services: Services, email: str) -> None:
    with services.sessions.begin() as session:
        session.scalars(select(StaffUser).where(StaffUser.email == email)).one().active = False


def test_every_failed_sign_in_answers_the_same_whether_or_not_the_address_exists(
    app: TestClient, services: Services
) -> None:
    deactivate(services, "marketing@clinic.example")
    attempts = {
        "wrong password": ("ops@clinic.example", "wrong password!"),
        "unknown address": ("nobody@clinic.example", PASSWORD),
        "switched-off account, right password": ("marketing@clinic.example", PASSWORD),
        "not an address": ("ops@", PASSWORD),
    }
    for n, (state, (email, password)) in enumerate(attempts.items()):
        answer = post_login(from_client(app, f"198.51.100.{n + 1}"), email, password)
        assert (answer.status_code, error_of(answer)) == (401, "wrong e-mail or password"), state

    # Used-up attempts answer alike too: an account's state never shows, not even when throttled.
    throttled = {}
    for email in ("ops@clinic.example", "nobody@clinic.example"):
        client = from_client(app, "203.0.113.9" if email.startswith("ops") else "203.0.113.10")
        for _ in range(5):
            assert post_login(client, email, "wrong password!").status_code == 401
        answer = post_login(client, email, PASSWORD)  # the right one, for ops: still too soon
        throttled[email] = (answer.status_code, error_of(answer))
        assert 1 <= int(answer.headers["retry-after"]) <= 15 * 60
    assert set(throttled.values()) == {(429, "too many attempts; try again in 15 minutes")}

    with services.sessions() as session:
        failed = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "staff.login_failed")
        ).all()
    assert failed.count("staff:ops@clinic.example") == 6  # one wrong in the first round, five here
    assert failed.count("public") == 8  # unknown, switched off, not an address; five unknown


def test_every_attempt_verifies_exactly_one_password_hash(
    app: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timing's shape rather than its stopwatch: a hash is what costs the time, so each
    attempt that reaches the accounts costs one, known address or not, and a throttled one
    (which never looks at the accounts) costs none, known address or not."""
    calls: list[str] = []
    verify = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str, password: str | bytes) -> bool:
        calls.append(hash)
        return verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    deactivate(services, "marketing@clinic.example")

    def hashes_for(client: TestClient, email: str, password: str, status: int) -> int:
        calls.clear()
        assert post_login(client, email, password).status_code == status, email
        return len(calls)

    states = [
        ("ops@clinic.example", "wrong password!", 401),
        ("ops@clinic.example", PASSWORD, 303),
        ("nobody@clinic.example", PASSWORD, 401),
        ("marketing@clinic.example", PASSWORD, 401),  # switched off
        ("ops@", PASSWORD, 401),
        ("", "", 401),
    ]
    for n, (email, password, status) in enumerate(states):
        client = from_client(app, f"198.51.100.{n + 1}")
        assert hashes_for(client, email, password, status) == 1, (email, password)
    for n, email in enumerate(("ops@clinic.example", "nobody@clinic.example")):
        client = from_client(app, f"203.0.113.{n + 1}")
        for _ in range(5):
            post_login(client, email, "wrong password!")
        assert hashes_for(client, email, PASSWORD, 429) == 0, email


def test_signing_out_ends_the_session(app: TestClient) -> None:
    assert sign_in(app, "admin@clinic.example") == 303
    csrf = re.search(r'name="csrf" value="([^"]+)"', app.get("/admin/").text)
    assert csrf
    cookie = app.cookies.get("nurture_staff")
    assert app.post("/admin/logout", data={"csrf": csrf.group(1)}).status_code == 303
    app.cookies.set("nurture_staff", cookie or "", path="/admin")  # a stolen copy of the old cookie
    assert app.get("/admin/").status_code == 303
