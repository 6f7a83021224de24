"""Marketing in a real browser: sign in, edit a text, watch the live preview and lint, fix,
save, publish, roll back. Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from nurture.db.models import Channel
from tests.e2e.conftest import Site, sign_in


def test_marketing_edits_previews_lints_publishes_and_rolls_back(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    page = browser.new_page()
    sign_in(page, site, "marketing@clinic.example", "/admin/templates")
    page.click("text=sms/booking-nudge")
    expect(page.locator("h1")).to_have_text("sms/booking-nudge")
    expect(page.locator("#lint")).to_contain_text("No problems found.")
    original = page.input_value("#source")

    # A drug name on a lock screen: the live preview and lint catch it as it is typed.
    page.fill("#source", original.replace("No pressure at all.", "Ask us about ketamine!"))
    expect(page.locator("#lint")).to_contain_text("“ketamine” may not appear in a text")
    expect(page.locator("#sms-preview")).to_contain_text("Ask us about ketamine!")
    page.screenshot(path=str(artifacts / "studio-lint-error.png"), full_page=True)

    fixed = original.replace("No pressure at all.", "We are here when you are ready.")
    page.fill("#source", fixed)
    expect(page.locator("#lint")).to_contain_text("No problems found.")
    expect(page.locator("#sms-counter")).to_contain_text("GSM-7")
    page.click("text=Save draft")
    expect(page.locator(".notice")).to_have_text("Draft saved.")
    page.screenshot(path=str(artifacts / "studio-draft-saved.png"), full_page=True)

    page.locator("tr", has_text="v2").locator("a", has_text="Publish…").click()
    expect(page.locator("h1")).to_have_text("Publish version 2 of sms/booking-nudge?")
    page.click("#confirm-publish")
    expect(page.locator(".notice")).to_contain_text("Published")
    assert (
        "We are here when you are ready."
        in site.services.templates.get(Channel.SMS, "booking-nudge").source
    )

    page.locator("tr", has_text="v1").locator("a", has_text="Roll back to this…").click()
    expect(page.locator("h1")).to_have_text("Roll back sms/booking-nudge to version 1?")
    expect(page.locator("tr.removed")).to_contain_text("We are here when you are ready.")
    page.click("#confirm-publish")
    expect(page.locator(".notice")).to_contain_text("Published")
    expect(page.locator("tr.current")).to_contain_text("rollback to version 1")
    page.screenshot(path=str(artifacts / "studio-rolled-back.png"), full_page=True)
    assert site.services.templates.get(Channel.SMS, "booking-nudge").source == original

    page.click("text=diff >> nth=0")
    expect(page.locator("h1")).to_contain_text("→ version 3")
    page.close()


def test_an_email_preview_renders_in_a_sandboxed_frame(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    page = browser.new_page()
    sign_in(page, site, "marketing@clinic.example", "/admin/templates/email/how-the-therapy-works")
    frame = page.frame_locator("#html-preview")
    expect(frame.locator("body")).to_contain_text("The care team at")
    expect(frame.locator("body")).to_contain_text("Unsubscribe")
    page.select_option("#sample", label="Someone who only texted us (no name, no e-mail)")
    expect(frame.locator("body")).to_contain_text("Hi there")
    page.screenshot(path=str(artifacts / "studio-email-preview.png"), full_page=True)
    assert page.get_attribute("#html-preview", "sandbox") == ""
    page.close()


def test_ops_cannot_open_the_studio(browser: Browser, site: Site) -> None:
    page = browser.new_page()
    sign_in(page, site, "ops@clinic.example", "/admin/")
    response = page.goto(f"{site.url}/admin/templates")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    page.close()


def test_a_runaway_template_is_stopped_and_explained_in_the_live_preview(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    """Issue 10 §4: a preview of a template that would freeze the web process answers within
    its budget, the studio says why, and the page (and the process) keep working."""
    page = browser.new_page()
    sign_in(page, site, "marketing@clinic.example", "/admin/templates/sms/booking-nudge")
    original = page.input_value("#source")
    page.fill("#source", "{{ 'a' * 10**9 }}")
    expect(page.locator("#render-error")).to_contain_text("render budget exceeded")
    expect(page.locator("#lint")).to_contain_text("render budget exceeded")
    page.screenshot(path=str(artifacts / "studio-runaway.png"), full_page=True)
    page.fill(
        "#source",
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    )
    expect(page.locator("#render-error")).to_contain_text("render budget exceeded")
    page.fill("#source", original)
    expect(page.locator("#render-error")).to_be_hidden()
    expect(page.locator("#lint")).to_contain_text("No problems found.")
    page.close()


def _fits(page: Page) -> int:
    """How many px the page is wider than the screen (0: nothing to scroll sideways)."""
    overflow: int = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return overflow


def test_marketing_inserts_a_variable_sees_a_typo_hint_and_publishes_after_the_diff(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    """Issue 14, the studio: the picker inserts at the cursor, a mistyped name is explained,
    and "Save and publish…" shows what changes against live before a Confirm."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    path = "/admin/templates/sms/booking-nudge"
    sign_in(page, site, "marketing@clinic.example", path)
    original = page.input_value("#source")
    live_line = "No pressure at all."
    assert live_line in original

    # Put the cursor just after "No pressure at all." and insert the first name there.
    at = original.index(live_line) + len(live_line)
    page.fill("#source", original)
    page.evaluate(f"document.getElementById('source').setSelectionRange({at}, {at})")
    expect(page.locator("details.variable-group").first).to_have_attribute("open", "")
    page.click("button.insert[data-variable='lead.first_name']")
    inserted = page.input_value("#source")
    assert inserted == original[:at] + "{{ lead.first_name }}" + original[at:]
    expect(page.locator("#sms-preview")).to_contain_text("No pressure at all.Maximiliana")

    # A typo: the lint list names the line, the name and the right one.
    typo = inserted.replace("{{ lead.first_name }}", " {{ lead.frist_name }}")
    page.fill("#source", typo)
    expect(page.locator("#lint")).to_contain_text("unknown name lead.frist_name")
    expect(page.locator("#lint")).to_contain_text("did you mean lead.first_name?")
    line = typo[: typo.index("frist_name")].count("\n") + 1
    expect(page.locator("#lint")).to_contain_text(f"(line {line})")
    page.screenshot(path=str(artifacts / "studio-editor-typo-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 900})
    page.screenshot(path=str(artifacts / "studio-editor-typo-390.png"), full_page=True)
    assert _fits(page) == 0
    page.set_viewport_size({"width": 1280, "height": 900})

    fixed = inserted.replace("{{ lead.first_name }}", " See you, {{ lead.first_name }}.")
    page.fill("#source", fixed)
    expect(page.locator("#lint")).to_contain_text("No problems found.")
    page.click("#save-and-publish")
    expect(page.locator("h1")).to_have_text("Publish version 2 of sms/booking-nudge?")
    expect(page.locator("tr.removed")).to_contain_text(live_line)
    expect(page.locator("tr.added")).to_contain_text("See you, {{ lead.first_name }}.")
    expect(page.locator("tr.added .mark")).to_contain_text("+")
    expect(page.locator("section.review")).to_contain_text("Changes against live version 1")
    page.screenshot(path=str(artifacts / "studio-publish-review-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 900})
    page.screenshot(path=str(artifacts / "studio-publish-review-390.png"), full_page=True)
    assert _fits(page) == 0
    # Nothing is live before the Confirm.
    assert site.services.templates.get(Channel.SMS, "booking-nudge").source == original
    page.click("#confirm-publish")
    expect(page.locator(".notice")).to_contain_text("Published")
    assert (
        "See you, {{ lead.first_name }}."
        in site.services.templates.get(Channel.SMS, "booking-nudge").source
    )
    page.close()


def test_marketing_sees_that_an_admin_must_publish_a_legal_text(
    browser: Browser, site: Site
) -> None:
    page = browser.new_page()
    sign_in(page, site, "marketing@clinic.example", "/admin/templates/sms/stop-confirmation")
    expect(page.locator("#admin-only")).to_contain_text("An admin must publish this one")
    expect(page.locator("#save-and-publish")).to_have_count(0)
    page.close()
