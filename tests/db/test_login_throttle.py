"""Sign-in throttling over HTTP: a client spraying many addresses is stopped, an attacker
elsewhere cannot keep the real person out, and every window empties on its own."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from freezegun import freeze_time

from nurture import staff
from nurture.runtime import Services
from nurture.staff.login_throttle import LoginThrottle, address_key
from nurture.web import create_app
from tests.conftest import REDIS_URL
from tests.db.test_admin_security import PASSWORD, post_login

REAL_USER = "ops@clinic.example"
# The memory storage drops expired entries in a thread that freezegun leaves on the real clock:
# frozen in the future, that thread never drops what the frozen windows still count.
FUTURE = "2031-01-07 18:00:00"


@pytest.fixture
def weekday_daytime() -> None:
    """Real time, or a clock frozen in the future (see FUTURE)."""


@pytest.fixture
def app(services: Services) -> FastAPI:
    with services.sessions.begin() as session:
        staff.add_user(session, REAL_USER, PASSWORD, role="ops", phone=None, actor="test")
    return create_app(services)


def browser(app: FastAPI, ip: str) -> TestClient:
    return TestClient(app, base_url="https://testserver", follow_redirects=False, client=(ip, 1))


def test_one_client_trying_many_addresses_is_stopped(app: FastAPI) -> None:
    sprayer = browser(app, "198.51.100.7")
    for n in range(30):
        assert post_login(sprayer, f"guess{n}@clinic.example", "Summer2026!").status_code == 401
    stopped = post_login(sprayer, REAL_USER)  # even a right password, from that client
    assert stopped.status_code == 429
    assert "too many attempts; try again in 15 minutes" in stopped.text
    assert 1 <= int(stopped.headers["retry-after"]) <= 15 * 60
    assert post_login(browser(app, "192.0.2.10"), REAL_USER).status_code == 303


def test_an_attacker_elsewhere_cannot_keep_the_real_person_out(app: FastAPI) -> None:
    attacker = browser(app, "198.51.100.7")
    answers = [post_login(attacker, REAL_USER, "wrong password!").status_code for _ in range(12)]
    assert answers == [401] * 5 + [429] * 7
    assert post_login(browser(app, "192.0.2.10"), REAL_USER).status_code == 303


def test_many_attackers_delay_the_real_person_only_for_a_short_window(app: FastAPI) -> None:
    with freeze_time(FUTURE) as frozen:
        for n in range(20):
            attacker = browser(app, f"198.51.100.{n + 1}")
            assert post_login(attacker, REAL_USER, "wrong password!").status_code == 401
        real = browser(app, "192.0.2.10")
        waiting = post_login(real, REAL_USER)
        assert waiting.status_code == 429
        assert int(waiting.headers["retry-after"]) <= 5 * 60
        frozen.tick(timedelta(minutes=5, seconds=1))
        assert post_login(real, REAL_USER).status_code == 303


def test_signing_in_clears_the_pair_and_a_full_window_empties_on_its_own(app: FastAPI) -> None:
    with freeze_time(FUTURE) as frozen:
        person = browser(app, "192.0.2.10")
        for _ in range(2):  # 4 typos and a success, twice: 10 attempts, never throttled
            for _ in range(4):
                assert post_login(person, REAL_USER, "typo password").status_code == 401
            assert post_login(person, REAL_USER).status_code == 303
        for _ in range(5):
            assert post_login(person, REAL_USER, "typo password").status_code == 401
        for _ in range(5):  # knocking on a full window does not keep it full
            frozen.tick(timedelta(minutes=1))
            assert post_login(person, REAL_USER).status_code == 429
        frozen.tick(timedelta(minutes=10, seconds=1))
        assert post_login(person, REAL_USER).status_code == 303


def test_every_spelling_of_an_address_shares_one_count() -> None:
    assert address_key(" Ops@Clinic.EXAMPLE ") == address_key("ops@clinic.example")
    assert address_key("ops@") == address_key("OPS@")
    assert address_key("ops@clinic.example") != address_key("ops2@clinic.example")


@pytest.mark.redis
def test_counts_are_shared_through_redis_by_every_web_process() -> None:
    # Fresh keys on every run: this Redis is shared with other tests and other runs.
    address, client = f"{uuid.uuid4().hex}@clinic.example", uuid.uuid4().hex
    first, second = (LoginThrottle(REDIS_URL, per_pair="2 per minute") for _ in range(2))
    assert first.attempt(address, client) is None
    assert second.attempt(address, client) is None
    throttled = first.attempt(address, client)
    assert throttled is not None and 1 <= throttled.retry_after <= 60
    second.succeeded(address, client)
    assert first.attempt(address, client) is None


def test_an_unreachable_redis_leaves_sign_in_working_and_throttled_per_process() -> None:
    """Ops sign in to see that Redis is down: its outage must not lock them out, nor let an
    attacker guess freely."""
    throttle = LoginThrottle("redis://127.0.0.1:1/0", per_pair="2 per minute")
    assert throttle.attempt(REAL_USER, "198.51.100.7") is None
    assert throttle.attempt(REAL_USER, "198.51.100.7") is None
    assert throttle.attempt(REAL_USER, "198.51.100.7") is not None
    throttle.succeeded(REAL_USER, "198.51.100.7")
    assert throttle.attempt(REAL_USER, "198.51.100.7") is None
