"""Issue 15 §2 in Chromium: marketing reads the funnel (1280 and 390 px, nothing wider than the
screen), and a lead's click on a tracked link in a rendered e-mail lands on the target and is
counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route, expect
from sqlalchemy import func, select

from nurture import clock, staff
from nurture.config.settings import Settings
from nurture.content import template_store
from nurture.db.models import LinkClick
from nurture.runtime import build_services
from tests.conftest import REPO
from tests.db.test_click_tracking import part, read_a_minute_later
from tests.e2e.conftest import PASSWORD, Site, sign_in
from tests.integration.conftest import app_env
from tests.support import funnel_seed, outbox_files
from tests.support.factories import claim_and_send_all, sign_up
from tests.support.processes import Process, free_port, python_argv

BOOK = "https://kiidaho.example/book"


@pytest.fixture
def tracked_site(pg_url: str, tmp_path: Path) -> Iterator[Site]:
    """`nurture serve` whose public URL is its own address, so the /r/ links in what it sends
    lead back to it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    services = build_services(
        Settings(
            database_url=pg_url,
            config_dir=REPO / "config",
            templates_dir=REPO / "templates",
            var_dir=tmp_path / "var",
            secret_key="integration-secret-key",
            public_url=url,
        )
    )
    with services.sessions.begin() as session:
        template_store.sync(session, services.templates.files, now=clock.utcnow())
        staff.add_user(
            session, "marketing@clinic.example", PASSWORD, role="marketing", phone=None, actor="t"
        )
    env = app_env(
        NURTURE_DATABASE_URL=pg_url,
        NURTURE_VAR_DIR=str(tmp_path / "var"),
        NURTURE_PUBLIC_URL=url,
        NURTURE_SECRET_KEY="integration-secret-key",
    )
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    server = Process(
        "web", python_argv("-m", "nurture", "serve", "--port", str(port)), env=env, log_dir=log_dir
    )
    try:
        server.wait_for_http(f"{url}/healthz")
        yield Site(url, services)
    finally:
        server.stop()
        services.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_marketing_reads_the_funnel(
    browser: Browser, site: Site, artifacts: Path, width: int
) -> None:
    with site.services.sessions.begin() as session:
        funnel_seed.insert(session)
    page = browser.new_page(viewport={"width": width, "height": 900})
    sign_in(page, site, "marketing@clinic.example", "/admin/funnel")
    expect(page.get_by_role("heading", name="Funnel", exact=True)).to_be_visible()
    cell = page.locator('#channel tr[data-row="0"] td[data-column="booked"]')
    expect(cell).to_have_text("1")
    assert page.locator("#sequence svg").count() == 1
    page.screenshot(path=str(artifacts / f"funnel-{width}.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the funnel page is {overflow} px wider than {width} px"

    page.fill("#since", "2026-03-02")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(f"{site.url}/admin/funnel?since=2026-03-02&sequence=")
    expect(page.locator('#channel tr[data-row="1"] td[data-column="failure_rate"]')).to_have_text(
        "66.7"
    )
    page.screenshot(path=str(artifacts / f"funnel-since-{width}.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download by channel as CSV").click()
    saved = artifacts / f"funnel-channel-{width}.csv"
    download.value.save_as(saved)
    assert saved.read_text().splitlines()[1].startswith("email,2,1,50.0,119.5")
    page.close()


def test_a_click_in_a_rendered_email_lands_on_the_target_and_is_counted(
    browser: Browser, tracked_site: Site, artifacts: Path
) -> None:
    services = tracked_site.services
    sign_up(services)
    claim_and_send_all(services)
    read_a_minute_later(services)  # a follow at once would be a mail scanner's
    [mail] = [
        m
        for m in outbox_files.emails(services.settings.resolved_outbox_dir)
        if "consultation request" in m["Subject"]
    ]
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def booking_page(route: Route) -> None:  # the clinic's booking site, served locally
        route.fulfill(status=200, content_type="text/html", body="<h1>Pick a time</h1>")

    page.route(f"{BOOK}**", booking_page)
    page.set_content(part(mail, "html"))
    link = page.get_by_role("link", name="book your consultation online")
    assert (link.get_attribute("href") or "").startswith(f"{tracked_site.url}/r/")
    page.screenshot(path=str(artifacts / "email-with-tracked-link.png"), full_page=True)
    link.click()
    expect(page).to_have_url(BOOK)
    expect(page.get_by_role("heading", name="Pick a time")).to_be_visible()
    page.screenshot(path=str(artifacts / "landed.png"))
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(LinkClick)) == 1
    page.close()
