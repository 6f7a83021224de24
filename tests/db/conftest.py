from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from nurture.runtime import Services
from nurture.web import create_app


@pytest.fixture(autouse=True)
def weekday_daytime() -> Iterator[None]:
    """Tests here run at 11:00 on an ordinary Tuesday in Boise (inside every send window), so
    a test is never deferred by quiet hours because of when CI happened to run it. Tests about
    time freeze their own instant inside this one."""
    with freeze_time("2026-03-03 18:00:00", tick=True):
        yield


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    """The real app over the test's services; an error is answered as a client would see it."""
    with TestClient(create_app(services), raise_server_exceptions=False) as test_client:
        yield test_client
