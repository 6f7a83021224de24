"""The hosted consult form in a real browser: what a lead sees and does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from nurture.db import make_engine, make_sessionmaker
from nurture.db.models import ConsentEvent, Lead
from tests.integration.conftest import app_env
from tests.support.processes import Process, free_port, python_argv


@pytest.fixture
def web(pg_url: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = app_env(NURTURE_DATABASE_URL=pg_url, NURTURE_VAR_DIR=str(tmp_path / "var"))
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    server = Process(
        "web", python_argv("-m", "nurture", "serve", "--port", str(port)), env=env, log_dir=log_dir
    )
    base = f"http://127.0.0.1:{port}"
    try:
        server.wait_for_http(f"{base}/healthz")
        yield base
    finally:
        server.stop()


def test_a_lead_signs_up_in_the_browser(
    browser: Browser, web: str, pg_url: str, artifacts: Path
) -> None:
    context = browser.new_context(timezone_id="America/Chicago", locale="en-US")
    page = context.new_page()
    page.goto(f"{web}/consult")
    for box in ("email_marketing", "sms_care", "sms_marketing"):
        expect(page.locator(f"#{box}")).not_to_be_checked()  # unticked until the person ticks it
    page.screenshot(path=str(artifacts / "consult-empty.png"), full_page=True)

    # A mistake first: texts ticked but no phone number.
    page.fill("#first_name", "Grace")
    page.fill("#email", "grace@example.com")
    page.check("#sms_care")
    page.click("button[type=submit]")
    expect(page.locator(".error-summary")).to_contain_text(
        "phone number is needed to receive texts"
    )
    expect(page.locator("#first_name")).to_have_value("Grace")
    expect(page.locator("#sms_care")).to_be_checked()
    page.screenshot(path=str(artifacts / "consult-error.png"), full_page=True)

    page.fill("#phone", "(208) 555-0181")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{web}/consult/thanks")
    expect(page.locator("h1")).to_contain_text("Thank you")
    page.screenshot(path=str(artifacts / "consult-thanks.png"), full_page=True)
    context.close()

    engine = make_engine(pg_url)
    try:
        with make_sessionmaker(engine)() as session:
            lead = session.scalars(select(Lead)).one()
            assert lead.phone == "+12085550181"
            # The browser's own zone, sent by the page: kept as weak evidence, not as the zone.
            assert lead.browser_timezone == "America/Chicago"
            assert lead.timezone is None
            sms = session.scalars(select(ConsentEvent).where(ConsentEvent.channel == "sms")).one()
            assert sms.purpose.value == "care"
            assert "HeadlessChrome" in sms.evidence["user_agent"]
    finally:
        engine.dispose()


def test_a_name_that_carries_a_link_or_an_encoded_word_is_refused_in_the_browser(
    browser: Browser, web: str, pg_url: str, artifacts: Path
) -> None:
    """Issue 10 §1–2: what a stranger types as a name never reaches a message; the form says
    which field to fix and keeps everything else the person typed."""
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    for index, name in enumerate(
        [
            "[Verify your account](https://evil.example/login)",
            "=?utf-8?q?Ann=0D=0ABcc:_someone@example.org?=",
        ]
    ):
        page.goto(f"{web}/consult")
        page.fill("#first_name", name)
        page.fill("#email", "ann@example.com")
        page.click("button[type=submit]")
        error = page.locator(".error-summary a[href='#first_name']")
        expect(error).to_contain_text(re.compile("just your name", re.IGNORECASE))
        expect(page.locator("#email")).to_have_value("ann@example.com")
        expect(page).to_have_url(f"{web}/consult")
        page.screenshot(path=str(artifacts / f"consult-hostile-name-{index}.png"), full_page=True)
    context.close()

    engine = make_engine(pg_url)
    try:
        with make_sessionmaker(engine)() as session:
            assert session.scalars(select(Lead)).all() == []
    finally:
        engine.dispose()
