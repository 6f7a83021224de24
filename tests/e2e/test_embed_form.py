"""The embeddable sign-up form in a real browser: a page on another origin frames it.

Both sites are https, as in production: Playwright answers for https://clinic.example (the
clinic's own page with the README's snippet) and passes https://nurture.example through to a
real `nurture serve`, headers and all, so Chromium itself enforces frame-ancestors. (An https
page framing http://127.0.0.1 directly is refused by Chromium for reasons of its own.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Route, expect
from sqlalchemy import select

from nurture.db import make_engine, make_sessionmaker
from nurture.db.models import ConsentEvent, Lead
from tests.integration.conftest import app_env
from tests.support.processes import Process, free_port, python_argv

CLINIC_SITE = "https://clinic.example"
NURTURE = "https://nurture.example"


@pytest.fixture
def web(pg_url: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = app_env(
        NURTURE_DATABASE_URL=pg_url,
        NURTURE_VAR_DIR=str(tmp_path / "var"),
        NURTURE_EMBED_ORIGINS=CLINIC_SITE,
    )
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


SITE_PAGE = (
    "<!doctype html><html><body><h1>Contact us</h1>"
    f'<iframe id="consult" src="{NURTURE}/embed/consult" title="Request a free consultation"'
    ' style="width:100%;max-width:40rem;height:70rem;border:0"></iframe>'
    "</body></html>"
)


def test_a_page_on_the_clinic_s_site_embeds_the_form_and_a_lead_signs_up(
    browser: Browser, web: str, pg_url: str, artifacts: Path
) -> None:
    context = browser.new_context(locale="en-US", timezone_id="America/Boise")

    def serve_site(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=SITE_PAGE)

    def pass_to_nurture(route: Route) -> None:
        # Method, body and headers (the Referer too) as the browser sent them. The redirect
        # after a sign-up is followed here: Playwright would not route the browser's own
        # request for it, and the thank-you page's headers are what the browser must see.
        upstream = route.fetch(url=route.request.url.replace(NURTURE, web))
        route.fulfill(response=upstream)

    context.route(f"{CLINIC_SITE}/**", serve_site)
    context.route(f"{NURTURE}/**", pass_to_nurture)
    context.route("https://elsewhere.example/**", serve_site)
    page = context.new_page()

    # A site not configured cannot show it: the browser refuses to draw the frame.
    page.goto("https://elsewhere.example/contact")
    page.wait_for_load_state("load")
    frame = next(f for f in page.frames if f.parent_frame is not None)
    assert frame.locator("#first_name").count() == 0

    page.goto(f"{CLINIC_SITE}/contact")
    form = page.frame_locator("#consult")
    for box in ("email_marketing", "sms_care", "sms_marketing"):
        expect(form.locator(f"#{box}")).not_to_be_checked()
    form.locator("#first_name").fill("Iris")
    form.locator("#email").fill("iris@example.com")
    form.locator("#phone").fill("(208) 555-0191")
    form.locator("#sms_care").check()
    form.locator("button[type=submit]").click()
    expect(form.locator("h1")).to_contain_text("Thank you")
    expect(page).to_have_url(f"{CLINIC_SITE}/contact")  # the person never left the clinic's page
    page.locator("#consult").screenshot(path=str(artifacts / "embed-thanks.png"))
    context.close()

    engine = make_engine(pg_url)
    try:
        with make_sessionmaker(engine)() as session:
            lead = session.scalars(select(Lead)).one()
            assert lead.phone == "+12085550191"
            sms = session.scalars(select(ConsentEvent).where(ConsentEvent.channel == "sms")).one()
            assert "HeadlessChrome" in sms.evidence["user_agent"]
            page_url = urlsplit(sms.evidence["page_url"])
            assert page_url.path == "/embed/consult"
            # What the browser gave as the iframe's Referer: the clinic's page (here its origin,
            # as Chromium's default referrer policy sends it across origins).
            [embedded_in] = parse_qs(page_url.query)["embedded_in"]
            assert embedded_in.startswith(CLINIC_SITE)
    finally:
        engine.dispose()
