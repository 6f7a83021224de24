"""Shared fixtures: real PostgreSQL and SQLite databases built by the migrations, settings and
services pointed at them, and helpers to read what the outbox transport wrote.

Services the suite needs (PostgreSQL, Redis) make a test fail loudly when they are missing;
nothing is skipped.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401 - load its C extension before freezegun swaps datetime.date
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

# The developer's own configuration must not leak into tests: each test states what it uses.
for _name in list(os.environ):
    if (_name.startswith("NURTURE_") and not _name.startswith("NURTURE_TEST_")) or _name.startswith(
        "TWILIO_"
    ):
        del os.environ[_name]
# Every test stack serves plain http on loopback; tests/unit/test_settings_and_logs.py shows
# that without this a real transport refuses an http public URL (compliance rule 18).
os.environ["NURTURE_ALLOW_INSECURE_PUBLIC_URL"] = "1"

# Import what is imported lazily elsewhere before any test freezes time: freezegun swaps
# datetime.date, and modules that subclass it at import time (pydantic.v1) would break.
import fastapi.testclient  # noqa: E402, F401
import pydantic.v1  # noqa: E402, F401

import nurture.web  # noqa: E402, F401
from nurture.config.settings import Settings  # noqa: E402
from nurture.db import migrations  # noqa: E402
from nurture.runtime import Services, build_services  # noqa: E402
from tests.support.certificates import teach_cryptography_the_real_datetime  # noqa: E402

# cryptography (47 and later) remembers the datetime class the first time it builds a
# certificate: built first under freezegun, it refuses every real datetime afterwards (test
# failures that depend on the order tests ran in). Build one now, before anything is frozen.
teach_cryptography_the_real_datetime()

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get(
    "NURTURE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("NURTURE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_SECRET = "test-secret-key-0123456789abcdef"
TWILIO_TEST_AUTH_TOKEN = "twilio-test-token"  # tests/support/signing.py signs with it
_counter = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    # Settings are cached per process; tests build their own and must never see a stale one.
    from nurture.config.settings import get_settings

    get_settings.cache_clear()


# --- markers: what a test needs, applied from where it lives and what it asks for ----------
# A new test is marked without anyone thinking about it, so `make test-fast` (which leaves out
# postgres, slow and browser) never picks up a test that starts processes or needs PostgreSQL.
TESTS = Path(__file__).resolve().parent
PROCESS_DIRECTORIES = {TESTS / "integration": ("slow",), TESTS / "e2e": ("slow", "browser")}
POSTGRES_FIXTURES = {"postgres", "pg_url"}
REDIS_FIXTURES = {"redis_url"}


def marks_for(item: pytest.Item) -> set[str]:
    """The markers ``item`` needs: by directory (real processes, Chromium) and by fixture
    (``pg_url``, ``redis_url``, or the PostgreSQL half of the ``database_url`` parameters)."""
    names = set(getattr(item, "fixturenames", ()))
    marks: set[str] = set()
    for directory, needs in PROCESS_DIRECTORIES.items():
        if item.path.is_relative_to(directory):
            marks.update(needs)
    callspec = getattr(item, "callspec", None)
    on_postgres = callspec is not None and callspec.params.get("database_url") == "postgresql"
    if on_postgres or names & POSTGRES_FIXTURES:
        marks.add("postgres")
    if names & REDIS_FIXTURES:
        marks.add("redis")
    return marks


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these very markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        present = {mark.name for mark in item.iter_markers()}
        for name in sorted(marks_for(item) - present):
            item.add_marker(name)


class PostgresDatabases:
    """Creates databases by cloning one migrated template (fast, and the schema is the
    migrations', never create_all's)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.template = f"nurture_tpl_{os.getpid()}"
        # pre_ping: one reliability test restarts PostgreSQL under the whole suite.
        self.engine = create_engine(
            self.admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True
        )
        self.created: list[str] = []

    def url_for(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def check(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as error:
            pytest.fail(
                f"PostgreSQL is not answering at {self.admin_url.render_as_string()}: "
                f"{error.orig}\nStart it (pg_ctlcluster --skip-systemctl-redirect "
                "$(ls /etc/postgresql) main start) or set NURTURE_TEST_DATABASE_URL.",
                pytrace=False,
            )

    def build_template(self) -> None:
        self.check()
        with self.engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{self.template}"'))
        migrations.upgrade(self.url_for(self.template))

    def create(self) -> str:
        name = f"nurture_t_{os.getpid()}_{next(_counter)}"
        with self.engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        self.created.append(name)
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        for url in [self.url_for(name) for name in self.created]:
            self.drop(url)
        with self.engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))
        self.engine.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(PG_ADMIN_URL)
    databases.build_template()
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def pg_url(postgres: PostgresDatabases) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test."""
    url = postgres.create()
    yield url
    postgres.drop(url)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite database for this test."""
    path = tmp_path / "nurture.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The database layer is tested on both backends: PostgreSQL in production, SQLite embedded."""
    url: str = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    return url


SettingsFactory = Callable[..., Settings]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def basic_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped configuration with one small fixed sequence instead of the clinic's program,
    so tests of the mechanics do not change whenever marketing changes the program."""
    config = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(REPO / "config", config)
    shutil.rmtree(config / "sequences")
    shutil.copytree(FIXTURES / "sequences", config / "sequences")
    # The shipped clinic.yaml marks its sample address a placeholder, which holds marketing
    # e-mail over SMTP (rule 17); the mechanics tests send to a clinic that has set its own.
    clinic = config / "clinic.yaml"
    shipped = clinic.read_text()
    if "placeholders: [address, on_call_phone]" not in shipped:
        pytest.fail("tests/conftest.py: config/clinic.yaml no longer lists its placeholders")
    clinic.write_text(shipped.replace("placeholders: [address, on_call_phone]", "placeholders: []"))
    return config


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path, basic_config_dir: Path) -> SettingsFactory:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "var_dir": tmp_path / "var",
            "config_dir": basic_config_dir,
            "templates_dir": REPO / "templates",
            "public_url": "https://nurture.test",
            "secret_key": TEST_SECRET,
            "api_key": "test-api-key",
            # Webhooks are signed with it (tests/support/signing.py), as Twilio signs them.
            "twilio_auth_token": TWILIO_TEST_AUTH_TOKEN,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def outbox(settings: Settings) -> Path:
    return settings.resolved_outbox_dir


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    from tests.support.smtp_server import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def twilio() -> Iterator[Any]:
    """A local Twilio stand-in that the official SDK talks to over real HTTP."""
    from tests.support.twilio_standin import TwilioStandIn

    with TwilioStandIn("AC" + "1" * 32, "twilio-test-token") as standin:
        yield standin
