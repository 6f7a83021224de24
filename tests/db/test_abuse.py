"""The public sign-up against SMS pumping and bots: rate limits, honeypot, allowed countries."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from nurture.db.models import Lead
from nurture.leads.signup_limits import SignupLimiter, storage_uri_for
from nurture.runtime import Services
from tests.conftest import REDIS_URL
from tests.support.api import API_KEY, api_signup_data


@pytest.fixture
def weekday_daytime() -> None:
    """Real time here: the rate limiter's expiry runs in a thread, which freezegun leaves on the
    real clock, so frozen and real instants would mix."""


def leads(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Lead)) or 0)


def test_one_number_signing_up_again_and_again_is_limited(
    client: TestClient, services: Services
) -> None:
    for _ in range(3):  # policy: 3 per day per phone
        response = client.post("/api/v1/signups", json=api_signup_data(), headers=API_KEY)
        assert response.status_code == 201
    response = client.post("/api/v1/signups", json=api_signup_data(), headers=API_KEY)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 3600
    assert "phone" in response.json()["detail"]


def test_one_address_signing_up_many_numbers_is_limited(
    client: TestClient, services: Services
) -> None:
    for n in range(10):  # policy: 10 per hour per IP
        data = api_signup_data(email=f"p{n}@example.com", phone=f"+1208555{n:04d}")
        assert client.post("/api/v1/signups", json=data, headers=API_KEY).status_code == 201
    response = client.post(
        "/api/v1/signups",
        json=api_signup_data(email="x@example.com", phone="+12085559999"),
        headers=API_KEY,
    )
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert leads(services) == 10


def test_the_form_shows_the_limit_kindly(client: TestClient) -> None:
    form = {"first_name": "Al", "phone": "2085550142", "sms_care": "on"}
    for _ in range(3):
        client.post("/consult", data=form, follow_redirects=False)
    response = client.post("/consult", data=form, follow_redirects=False)
    assert response.status_code == 429
    assert "call us at (208) 555-0134" in response.text
    assert "Retry-After" in response.headers


@pytest.mark.parametrize("path", ["/api/v1/signups", "/consult"])
def test_a_filled_honeypot_is_dropped_silently(
    client: TestClient, services: Services, path: str
) -> None:
    if path == "/consult":
        response = client.post(
            path,
            data={"first_name": "Bot", "email": "bot@example.com", "website": "http://spam"},
            follow_redirects=False,
        )
        assert response.status_code == 303
    else:
        response = client.post(
            path, json={**api_signup_data(), "website": "http://spam"}, headers=API_KEY
        )
        assert response.status_code == 201
    assert leads(services) == 0


def test_texts_are_refused_at_intake_for_numbers_outside_the_allowed_countries(
    client: TestClient, services: Services
) -> None:
    response = client.post(
        "/api/v1/signups", json=api_signup_data(phone="+44 7911 123456"), headers=API_KEY
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "phone", "message": "we can only text numbers in US, CA"}
    ]
    ok = client.post(  # Toronto
        "/api/v1/signups", json=api_signup_data(phone="+1 416 555 0123"), headers=API_KEY
    )
    assert ok.status_code == 201


def test_limits_are_shared_through_redis_in_production() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is not answering at {REDIS_URL}: {error}", pytrace=False)
    client.flushdb()
    assert storage_uri_for(REDIS_URL) == REDIS_URL
    assert storage_uri_for("sqla+sqlite:///var/broker.sqlite3") == "memory://"
    first = SignupLimiter(REDIS_URL, per_ip="2 per hour", per_phone="1 per day")
    second = SignupLimiter(
        REDIS_URL, per_ip="2 per hour", per_phone="1 per day"
    )  # another web process
    assert first.check_ip("198.51.100.1") is None
    assert second.check_ip("198.51.100.1") is None
    limited = first.check_ip("198.51.100.1")
    assert limited is not None and limited.what == "ip"
    client.flushdb()
    client.close()
