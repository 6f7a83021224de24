"""Hostile request bodies: nesting, huge numbers and oversized bodies get a clear 4xx.

Nothing here depends on the database backend, so it runs on SQLite only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.types import Message

from nurture.db.models import Lead
from nurture.runtime import Services
from nurture.web import create_app
from nurture.web.body_limits import DEFAULT_BODY_LIMIT, KIB, body_limit_for
from tests.support.api import api_signup_data
from tests.support.factories import sign_up

API_KEY = {"Authorization": "Bearer test-api-key"}
API_FORM = "application/x-www-form-urlencoded"
DEEP = b"[" * 30_000 + b"]" * 30_000  # far past the recursion limit, within 64 KiB
DEEP_IN_A_FIELD = b'{"first_name": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
HUGE_INTEGER = b'{"first_name": "Ann", "phone": ' + b"9" * 5_000 + b"}"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def leads(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Lead)) or 0)


def body_message(response: Any) -> str:
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == ["body"]
    return str(errors[0]["message"])


HOSTILE_JSON = [
    pytest.param(DEEP, "nested deeper than 32 levels", id="30k-deep"),
    pytest.param(DEEP_IN_A_FIELD, "nested deeper than 32 levels", id="deep-field"),
    pytest.param(HUGE_INTEGER, "more than 20 digits", id="5000-digit-int"),
]


@pytest.mark.parametrize(("body", "fragment"), HOSTILE_JSON)
def test_hostile_json_signup_is_a_422_naming_the_body(
    client: TestClient, services: Services, body: bytes, fragment: str
) -> None:
    response = client.post(
        "/api/v1/signups", content=body, headers={**API_KEY, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert fragment in body_message(response)
    assert leads(services) == 0
    # Nothing ordinary is refused with it: nesting, fractions and 64-bit numbers in `source`.
    sane = api_signup_data(
        source={"page_url": "https://clinic.example/a", "n": [[[1.5]]], "id": 2**63}
    )
    assert client.post("/api/v1/signups", json=sane, headers=API_KEY).status_code == 201


@pytest.mark.parametrize(("body", "fragment"), HOSTILE_JSON)
def test_hostile_json_event_is_a_422_naming_the_body(
    client: TestClient, services: Services, body: bytes, fragment: str
) -> None:
    lead_id = sign_up(services)
    response = client.post(
        f"/api/v1/leads/{lead_id}/events",
        content=body,
        headers={**API_KEY, "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert fragment in body_message(response)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(DEEP, "nested too deeply", id="30k-deep"),
        pytest.param(b'{"n": ' + b"9" * 5_000 + b"}", "not JSON we accept", id="5000-digit-int"),
        pytest.param(b"{not json", "not JSON we accept", id="not-json"),
    ],
)
def test_request_json_anywhere_is_a_422_not_a_500(app: FastAPI, body: bytes, fragment: str) -> None:
    """A handler that reads its body with Starlette's request.json() (the studio's preview
    did) gets the same protection from the application's error handlers."""

    @app.post("/probe/json")
    async def probe(request: Request) -> dict[str, str]:
        await request.json()
        return {"ok": "yes"}

    @app.post("/probe/bug")
    async def bug() -> dict[str, str]:
        raise ValueError("our own bug, not the sender's")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/probe/json", content=body)
        assert response.status_code == 422, response.text
        assert fragment in body_message(response)
        # A ValueError that did not come from parsing a body is still ours: 500.
        assert client.post("/probe/bug").status_code == 500


def test_limits_by_path() -> None:
    assert body_limit_for("/api/v1/signups") == DEFAULT_BODY_LIMIT == 64 * KIB
    assert body_limit_for("/consult") == 64 * KIB
    assert body_limit_for("/u/some-token") == 64 * KIB
    assert body_limit_for("/webhooks/twilio/sms") == 64 * KIB
    assert body_limit_for("/webhooks/email/sendgrid") == 1024 * KIB  # its batches of events
    assert body_limit_for("/admin/leads/x/events") == 256 * KIB
    assert body_limit_for("/admin/templates/email/welcome/drafts") == 1024 * KIB
    assert body_limit_for("/admin/templatesque") == 256 * KIB


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/api/v1/signups", 64 * KIB + 1),
        ("/consult", 64 * KIB + 1),
        ("/u/whatever", 64 * KIB + 1),
        ("/webhooks/twilio/sms", 64 * KIB + 1),
        ("/admin/login", 256 * KIB + 1),
        ("/admin/templates/email/welcome/preview", 1024 * KIB + 1),
    ],
)
def test_a_body_over_the_limit_is_a_413(
    client: TestClient, services: Services, path: str, size: int
) -> None:
    response = client.post(
        path, content=b"a=" + b"x" * (size - 2), headers={"content-type": API_FORM}
    )
    assert response.status_code == 413, response.text
    assert "larger than" in response.json()["detail"]
    assert leads(services) == 0


def test_the_studio_takes_bodies_other_admin_pages_may_not(client: TestClient) -> None:
    body = b"source=" + b"x" * (300 * KIB)  # over the admin limit, within the studio's
    headers = {"content-type": API_FORM}
    assert client.post("/admin/login", content=body, headers=headers).status_code == 413
    studio = client.post(
        "/admin/templates/email/welcome/drafts",
        content=body,
        headers=headers,
        follow_redirects=False,
    )
    assert studio.status_code == 303  # not signed in: the sign-in page, not a 413


def run_asgi(app: FastAPI, path: str, headers: list[tuple[bytes, bytes]], receive: Any) -> int:
    """Call the application as a server would; the response status."""
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=30))
    assert len(statuses) == 1
    return statuses[0]


def test_a_declared_length_over_the_limit_is_refused_before_reading(app: FastAPI) -> None:
    async def receive() -> Message:
        raise AssertionError("the body was read although its length was already too large")

    status = run_asgi(
        app,
        "/api/v1/signups",
        [(b"content-type", b"application/json"), (b"content-length", b"10000000000")],
        receive,
    )
    assert status == 413


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/signups", b"application/json"),
        ("/api/v1/signups", API_FORM.encode()),
        ("/webhooks/twilio/status", API_FORM.encode()),
        (f"/api/v1/leads/{uuid.uuid4()}/events", b"application/json"),
    ],
)
def test_a_chunked_body_is_cut_off_at_the_limit(
    app: FastAPI, path: str, content_type: bytes
) -> None:
    """An endless body with no Content-Length: reading stops at the limit, answered 413."""
    chunk = b"x" * KIB
    chunks_read = 0

    async def endless() -> Message:
        nonlocal chunks_read
        chunks_read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    headers = [(b"content-type", content_type), (b"authorization", b"Bearer test-api-key")]
    assert run_asgi(app, path, headers, endless) == 413
    assert chunks_read == DEFAULT_BODY_LIMIT // KIB + 1
