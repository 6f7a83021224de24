from __future__ import annotations

from collections.abc import Iterator

import pytest
from freezegun import freeze_time


@pytest.fixture(autouse=True)
def weekday_daytime() -> Iterator[None]:
    """Tests here run at 11:00 on an ordinary Tuesday in Boise (inside every send window), so
    a test is never deferred by quiet hours because of when CI happened to run it. Tests about
    time freeze their own instant inside this one."""
    with freeze_time("2026-03-03 18:00:00", tick=True):
        yield
