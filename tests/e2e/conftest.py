"""Headless Chromium (Debian's package) driven by Playwright, and a real `nurture serve`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from nurture import clock, staff
from nurture.config.settings import Settings
from nurture.content import template_store
from nurture.runtime import Services, build_services
from tests.conftest import REPO
from tests.integration.conftest import app_env
from tests.support.processes import Process, free_port, python_argv

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail(
            "Chromium is not installed; browser tests need it: apt-get install -y chromium "
            "(`make test` installs it when run as root).",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    directory: Path = ARTIFACTS / request.node.name
    directory.mkdir(parents=True, exist_ok=True)
    return directory


PASSWORD = "a long and careful passphrase"


@dataclass
class Site:
    url: str
    services: Services


@pytest.fixture
def site(pg_url: str, tmp_path: Path) -> Iterator[Site]:
    services = build_services(
        Settings(
            database_url=pg_url,
            config_dir=REPO / "config",
            templates_dir=REPO / "templates",
            var_dir=tmp_path / "var",
            secret_key="integration-secret-key",
        )
    )
    with services.sessions.begin() as session:
        template_store.sync(session, services.templates.files, now=clock.utcnow())
        staff.add_user(
            session,
            "marketing@clinic.example",
            PASSWORD,
            role="marketing",
            phone=None,
            actor="test",
        )
        staff.add_user(
            session, "ops@clinic.example", PASSWORD, role="ops", phone=None, actor="test"
        )
    port = free_port()
    env = app_env(NURTURE_DATABASE_URL=pg_url, NURTURE_VAR_DIR=str(tmp_path / "var"))
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    server = Process(
        "web", python_argv("-m", "nurture", "serve", "--port", str(port)), env=env, log_dir=log_dir
    )
    try:
        server.wait_for_http(f"http://127.0.0.1:{port}/healthz")
        yield Site(f"http://127.0.0.1:{port}", services)
    finally:
        server.stop()
        services.close()


def sign_in(page: Page, site: Site, email: str, start: str) -> None:
    page.goto(f"{site.url}{start}")
    expect(page).to_have_url(f"{site.url}/admin/login?next={start.replace('/', '%2F')}")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{site.url}{start}")
