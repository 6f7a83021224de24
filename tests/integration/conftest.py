"""Fixtures for the integration path: Redis, a Twilio stand-in, and the service's processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import REDIS_URL, REPO


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of its own for this test, emptied before and after."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(
            f"Redis is not answering at {REDIS_URL}: {error}\n"
            'Start it (redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" '
            "--appendonly no) or set NURTURE_TEST_REDIS_URL.",
            pytrace=False,
        )
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "logs"
    directory.mkdir()
    return directory


def app_env(**values: str) -> dict[str, str]:
    from tests.support.processes import child_env

    defaults = {
        "NURTURE_CONFIG_DIR": str(REPO / "config"),
        "NURTURE_TEMPLATES_DIR": str(REPO / "templates"),
        "NURTURE_SECRET_KEY": "integration-secret-key",
        "NURTURE_API_KEY": "integration-api-key",
    }
    return child_env(**{**defaults, **values})
