"""Issue 15 §1, done when: in a real browser a marketing user adds a step to a sequence, sees
what it changes for the leads enrolled now, publishes with "move", the next lead gets the new
step (the messages table says so), and a rollback restores the old behaviour. Screenshots at
1280 and 390 px go to test-artifacts/."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from nurture import clock
from nurture.db.models import Enrollment, EnrollmentStatus, MessageStatus
from nurture.program import sequence_store
from tests.conftest import REPO
from tests.e2e.conftest import Site, sign_in
from tests.support.factories import messages_of, sign_up

KEY = "consult-nurture"
NEW_STEP = "extra-nudge"


def _fits(page: Page) -> int:
    overflow: int = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return overflow


def _shoot(page: Page, artifacts: Path, name: str) -> None:
    """A screenshot at 1280 and at 390 px wide; nothing may be wider than a phone's screen."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
        if width == 390:
            assert _fits(page) == 0, f"{name} is wider than 390 px"
    page.set_viewport_size({"width": 1280, "height": 900})


def _steps_of(site: Site, lead_id: uuid.UUID) -> dict[str, MessageStatus]:
    with site.services.sessions() as session:
        return {m.step_key or "": m.status for m in messages_of(session, lead_id)}


def _version_of(site: Site, lead_id: uuid.UUID) -> int:
    with site.services.sessions() as session:
        enrolment = session.scalars(
            select(Enrollment).where(
                Enrollment.lead_id == lead_id,
                Enrollment.sequence_key == KEY,
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
        ).one()
        return enrolment.sequence_version


def test_marketing_adds_a_step_previews_moves_publishes_and_rolls_back(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    services = site.services
    # The publishes happen in the server's process; this one signs up "the next lead". A
    # process trusts its catalog for RECHECK_SECONDS after another's publish: ask every time.
    services.sequences.recheck = 0
    with services.sessions.begin() as session:
        sequence_store.sync(
            session,
            REPO / "config" / "sequences",
            templates=services.templates.available(),
            now=clock.utcnow(),
        )
        live = sequence_store.published(session, KEY)
        assert live is not None
        live_version = live.version
    enrolled = [
        sign_up(services, first_name="Maria", last_name="Gonzales", email="maria@example.com"),
        sign_up(
            services,
            first_name="Ruth",
            last_name="Okafor",
            email="ruth@example.com",
            phone="+12085550177",
        ),
    ]
    assert all(NEW_STEP not in _steps_of(site, lead) for lead in enrolled)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, site, "marketing@clinic.example", f"/admin/sequences/{KEY}")
    page.click("#edit-sequence")
    expect(page.locator("h1")).to_contain_text(f"Edit sequence {KEY}")
    expect(page.locator("#sequence-key")).to_have_text(KEY)

    # Add a step after the welcome (step 2): a plain form submit, nothing saved yet.
    page.click("button[aria-label='Add a step after step 2']")
    step = page.locator("#f-steps-2")
    expect(step.locator("legend")).to_have_text("Step 3")
    page.fill("#steps-2-key", NEW_STEP)
    page.select_option("#steps-2-channel", "email")
    page.select_option("#steps-2-purpose", "marketing")
    page.fill("#steps-2-template", "follow-up")
    page.fill("#steps-2-offset", "2d")
    page.fill("#steps-2-at", "11:00")
    page.fill("#note", "a second nudge")
    _shoot(page, artifacts, "sequence-editor")

    # A typo first: saved, and shown next to its field.
    page.fill("#steps-2-offset", "2 days")
    page.click("#save-draft")
    expect(page.locator(".notice")).to_have_text("Draft saved.")
    expect(page.locator("#f-steps-2-offset .field-problem")).to_contain_text("bad duration")
    expect(page.locator("#problems")).to_contain_text(f"steps[2] ({NEW_STEP}).offset")
    _shoot(page, artifacts, "sequence-editor-problem")
    page.fill("#steps-2-offset", "2d")
    page.click("#save-draft")
    expect(page.locator("#no-problems")).to_be_visible()

    # The draft's own timeline and simulation, marked not live.
    page.click("#simulate-version")
    expect(page.locator("#not-live")).to_contain_text("not live")
    expect(page.locator(f"li[data-step='{NEW_STEP}']")).to_be_visible()
    page.go_back()

    # Review: the YAML diff and the change for the two leads enrolled now.
    page.click("#publish-version")
    expect(page.locator("h1")).to_contain_text("Publish version")
    expect(page.locator("tr.added").first).to_contain_text(NEW_STEP)
    preview = page.locator("#move-preview")
    expect(preview.locator(".count-active")).to_have_text("2")
    expect(preview.locator(".count-changed")).to_have_text("2")
    expect(preview).to_contain_text("Maria G.")
    expect(preview).to_contain_text("Ruth O.")
    expect(preview.locator(".change.added").first).to_contain_text(NEW_STEP)
    expect(preview.locator(".change.added").first).to_contain_text(":00 M")  # 11:00 MST/MDT
    _shoot(page, artifacts, "sequence-review")
    expect(page.locator("#enrolments-keep")).to_be_checked()
    page.check("#enrolments-move")
    page.click("#confirm-publish")
    expect(page.locator(".notice")).to_contain_text("Published version")
    expect(page.locator(".notice")).to_contain_text("2 active enrolments moved to it.")
    _shoot(page, artifacts, "sequence-published")

    with services.sessions() as session:
        published = sequence_store.published(session, KEY)
        assert published is not None
        new_version = published.version
    assert new_version > live_version
    for lead in enrolled:
        assert _version_of(site, lead) == new_version
        assert _steps_of(site, lead).get(NEW_STEP) is MessageStatus.SCHEDULED

    nxt = sign_up(services, first_name="Next", email="next@example.com", phone="+12085550178")
    assert _version_of(site, nxt) == new_version
    assert NEW_STEP in _steps_of(site, nxt)

    # Roll back to the version before: the next lead is planned as before the edit.
    page.click("#sequence-history")
    expect(page.locator("h1")).to_contain_text(f"History of {KEY}")
    _shoot(page, artifacts, "sequence-history")
    page.locator(f"tr[data-version='{live_version}']").locator(
        "a", has_text="Roll back to this…"
    ).click()
    expect(page.locator("h1")).to_have_text(f"Roll back {KEY} to version {live_version}?")
    expect(page.locator("tr.removed").first).to_contain_text(NEW_STEP)
    page.click("#confirm-publish")  # keep: the enrolled leads stay where they are
    expect(page.locator(".notice")).to_contain_text("Published version")
    page.click("#sequence-history")
    expect(page.locator("tbody tr").first).to_contain_text(f"rollback to version {live_version}")

    later = sign_up(services, first_name="Later", email="later@example.com", phone="+12085550179")
    assert NEW_STEP not in _steps_of(site, later)
    assert _version_of(site, later) == new_version + 1
    with services.sessions() as session:
        rolled = sequence_store.published(session, KEY)
        first = sequence_store.get_version(session, KEY, live_version)
        assert rolled is not None and first is not None
        assert rolled.source == first.source
    page.close()


def test_ops_sees_the_history_but_cannot_edit(browser: Browser, site: Site) -> None:
    with site.services.sessions.begin() as session:
        sequence_store.sync(
            session,
            REPO / "config" / "sequences",
            templates=site.services.templates.available(),
            now=clock.utcnow(),
        )
    page = browser.new_page()
    sign_in(page, site, "ops@clinic.example", f"/admin/sequences/{KEY}")
    expect(page.locator("#edit-sequence")).to_have_count(0)
    page.click("#sequence-history")
    expect(page.locator("a", has_text="Publish…")).to_have_count(0)
    response = page.goto(f"{site.url}/admin/sequences/{KEY}/edit")
    assert response is not None and response.status == 403
    page.close()
