"""Ops in a real browser: find a lead, read their story, act on a reply."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from nurture import clock
from nurture.replies import inbound
from tests.e2e.conftest import Site, sign_in
from tests.support.factories import claim_and_send_all, sign_up


def test_ops_opens_a_leads_timeline_and_resumes_marketing(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    lead_id = sign_up(
        site.services,
        first_name="Rosa",
        last_name="Diaz",
        email="rosa@example.com",
        phone="+12085550155",
        timezone="America/Boise",
    )
    claim_and_send_all(site.services)
    with site.services.sessions.begin() as session:
        inbound.handle_inbound(
            session,
            {
                "MessageSid": "SM" + "7" * 32,
                "From": "+12085550155",
                "To": "+12085550100",
                "Body": "Can I bring my sister to the consultation?",
            },
            writer=site.services.writer,
            keyword_lists=site.services.policy.keywords,
            catalog=site.services.catalog,
            now=clock.utcnow(),
        )
    page = browser.new_page()
    sign_in(page, site, "ops@clinic.example", "/admin/leads")
    page.fill("input[name=q]", "555-0155")
    page.keyboard.press("Enter")
    page.click("text=Rosa Diaz")
    expect(page).to_have_url(f"{site.url}/admin/leads/{lead_id}")
    expect(page.locator("body")).to_contain_text("Can I bring my sister to the consultation?")
    expect(page.locator("body")).to_contain_text("optin-confirmation")
    expect(page.locator("body")).to_contain_text("replied by text; waiting for staff")
    page.screenshot(path=str(artifacts / "lead-timeline.png"), full_page=True)

    page.click("button:has-text('Resume marketing')")
    expect(page.locator(".notice")).to_have_text("Marketing resumed for this lead.")
    page.click("button:has-text('Mark handled')")
    expect(page.locator(".notice")).to_have_text("Marked as handled.")
    page.goto(f"{site.url}/admin/inbox")
    expect(page.locator("body")).not_to_contain_text("Can I bring my sister")
    page.screenshot(path=str(artifacts / "inbox-empty.png"), full_page=True)
    page.close()
