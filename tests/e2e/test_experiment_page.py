"""Issue 15 §3 in Chromium: the sequence page of an A/B test shows each variant's results and
the called winner, fits a phone, and its promote button promotes the winner."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from nurture import clock, staff
from nurture.config.settings import Settings
from nurture.content import template_store
from nurture.db.models import AuditEvent
from nurture.outbox import promotions
from nurture.runtime import build_services
from tests.conftest import FIXTURES, REPO
from tests.db.test_experiment_results import seed_called_test
from tests.e2e.conftest import PASSWORD, Site, sign_in
from tests.integration.conftest import app_env
from tests.support.processes import Process, free_port, python_argv

PAGE = "/admin/sequences/ab-nurture"


@pytest.fixture
def ab_site(pg_url: str, tmp_path: Path) -> Iterator[Site]:
    """`nurture serve` over the shipped configuration plus the A/B fixture sequence."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    shutil.copy(FIXTURES / "experiments" / "sequences" / "ab-nurture.yaml", config / "sequences")
    services = build_services(
        Settings(
            database_url=pg_url,
            config_dir=config,
            templates_dir=REPO / "templates",
            var_dir=tmp_path / "var",
            secret_key="integration-secret-key",
        )
    )
    with services.sessions.begin() as session:
        template_store.sync(session, services.templates.files, now=clock.utcnow())
        staff.add_user(
            session, "marketing@clinic.example", PASSWORD, role="marketing", phone=None, actor="t"
        )
    port = free_port()
    env = app_env(
        NURTURE_DATABASE_URL=pg_url,
        NURTURE_VAR_DIR=str(tmp_path / "var"),
        NURTURE_CONFIG_DIR=str(config),
    )
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


def overflow(page: Page) -> int:
    width: int = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return width


def test_the_experiment_page_fits_both_widths_and_promotes_the_winner(
    browser: Browser, ab_site: Site, artifacts: Path
) -> None:
    seed_called_test(ab_site.services)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, ab_site, "marketing@clinic.example", PAGE)
    experiment = page.locator("section.experiment[data-experiment=nudge]")
    expect(experiment.locator("tr[data-arm=B] td.booked")).to_have_text("80")
    expect(experiment.locator("tr[data-arm=A] td.reached")).to_have_text("400")
    expect(experiment.locator("p.decision")).to_contain_text("Winner: variant B")
    expect(page.locator("li.for-sample")).to_have_count(1)  # the sample lead's variant
    too_wide = {}
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for path, name in ((PAGE, "experiment"), ("/admin/sequences", "sequences")):
            page.goto(f"{ab_site.url}{path}")
            if overflow(page) > 0:
                too_wide[(path, width)] = overflow(page)
            page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
    assert too_wide == {}, f"wider than the screen (px): {too_wide}"
    expect(page.locator("tr[data-sequence=ab-nurture]")).to_contain_text("1 A/B")

    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{ab_site.url}{PAGE}")
    page.get_by_role("button", name="Promote variant B").click()
    expect(page.locator("p.decision.promoted")).to_contain_text(
        "Promoted: variant B (booking-nudge-1) by staff:marketing@clinic.example"
    )
    expect(page.get_by_role("button", name="Promote variant B")).to_have_count(0)
    assert overflow(page) <= 0
    page.screenshot(path=str(artifacts / "experiment-promoted-390.png"), full_page=True)
    page.close()
    with ab_site.services.sessions() as session:
        actors = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == promotions.PROMOTED)
        ).all()
    assert actors == ["staff:marketing@clinic.example"]
