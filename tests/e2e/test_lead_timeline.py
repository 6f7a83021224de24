"""Ops in a real browser: find a lead, read their story, act on a reply."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

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


def _overflow(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def test_ops_edits_a_lead_adds_a_note_opens_a_sent_body_and_cancels_a_pending_message(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    lead_id = sign_up(
        site.services,
        first_name="Nico",
        last_name="Ferrante",
        email="nico@example.com",
        phone="+12085550166",
        postal_code="10001",
        timezone=None,
    )
    claim_and_send_all(site.services)  # the welcome e-mail goes at any hour
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, site, "ops@clinic.example", f"/admin/leads/{lead_id}")
    expect(page.locator("[data-zone-origin]")).to_contain_text("from ZIP code 10001")

    # Edit: a bad zone is refused under its field, then a good one is saved.
    page.click("summary:has-text('Edit details')")
    page.fill("#edit-timezone", "America/Atlantis")
    page.click("button:has-text('Save details')")
    expect(page.locator("#edit-timezone-error")).to_contain_text("unknown time zone")
    page.fill("#edit-timezone", "America/Los_Angeles")
    page.fill("#edit-first_name", "Nicola")
    page.click("button:has-text('Save details')")
    # The clinic's program times its e-mails at 9 and 10 a.m.: they follow Nicola to LA.
    expect(page.locator(".notice")).to_have_text(
        "Details saved. Messages planned for a local hour (such as 10 a.m.) now go at that hour"
        " in the new time zone."
    )
    expect(page.locator("h1")).to_contain_text("Nicola Ferrante")
    expect(page.locator("[data-zone-origin]")).to_contain_text("set on purpose")

    # A note, shown in the notes and in the story.
    page.fill("#note-text", "Called: prefers texts after 5 pm.")
    page.click("button:has-text('Add note')")
    expect(page.locator(".notice")).to_have_text("Note added.")
    expect(page.locator("ul.notes")).to_contain_text("Called: prefers texts after 5 pm.")
    expect(page.locator("ul.story")).to_contain_text("note by staff:ops@clinic.example")
    page.screenshot(path=str(artifacts / "lead-edited-1280.png"), full_page=True)

    # What the welcome e-mail said, as text.
    welcome = page.locator("tr[data-message]", has_text="welcome")
    welcome.locator("a:has-text('open what was sent')").click()
    expect(page.locator("pre[data-sent-body]")).to_be_visible()
    expect(page.locator("body")).to_contain_text(
        "The HTML part is rendered at sending and not kept"
    )
    page.screenshot(path=str(artifacts / "sent-body-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 800})
    assert _overflow(page) <= 0
    page.screenshot(path=str(artifacts / "sent-body-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.go_back()

    # Cancel the follow-up that is still to come.
    follow_up = page.locator("tr[data-message]", has_text="follow-up")
    expect(follow_up).to_contain_text("scheduled")
    follow_up.locator("button:has-text('Cancel')").click()
    expect(page.locator(".notice")).to_have_text("Message cancelled.")
    expect(page.locator("tr[data-message]", has_text="follow-up")).to_contain_text(
        "cancelled by staff:ops@clinic.example"
    )
    page.set_viewport_size({"width": 390, "height": 800})
    assert _overflow(page) <= 0
    page.screenshot(path=str(artifacts / "lead-page-390.png"), full_page=True)
    page.close()


def test_marketing_sees_whom_the_program_reaches_without_contact_details(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    sign_up(
        site.services,
        first_name="Quintessa",
        last_name="Marlowe",
        email="quintessa@example.com",
        phone="+12085550167",
    )
    for width in (1280, 390):
        page = browser.new_page(viewport={"width": width, "height": 800})
        sign_in(page, site, "marketing@clinic.example", "/admin/sequences")
        page.click("nav >> text=Reach")
        expect(page).to_have_url(f"{site.url}/admin/leads/reach")
        expect(page.locator("[data-count=signed_up]")).to_have_text("1")
        expect(page.locator("tr[data-reference]")).to_have_count(1)
        body = page.locator("body").inner_text()
        for secret in ("Quintessa", "Marlowe", "quintessa@example.com", "+12085550167", "0167"):
            assert secret not in body
        assert _overflow(page) <= 0, width
        page.screenshot(path=str(artifacts / f"reach-{width}.png"), full_page=True)
        page.close()
