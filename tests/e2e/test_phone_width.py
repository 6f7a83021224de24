"""Issue 14: every admin page works on a phone (390 px wide): nothing wider than the screen
except inside a table's own scroll box."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from nurture import staff
from tests.e2e.conftest import PASSWORD, Site, sign_in
from tests.support.factories import claim_and_send_all, sign_up

PAGES = [
    "/admin/",
    "/admin/templates",
    "/admin/templates/email/welcome",
    "/admin/sequences",
    "/admin/sequences/consult-nurture/edit",
    "/admin/sequences/consult-nurture/history",
    "/admin/leads",
    "/admin/leads/uncontacted",
    "/admin/leads/reach",
    "/admin/funnel",
    "/admin/inbox",
    "/admin/ops",
    "/admin/users",
]


@pytest.mark.parametrize("width", [390, 1280])
def test_every_admin_page_fits_the_screen(
    browser: Browser, site: Site, artifacts: Path, width: int
) -> None:
    lead_id = sign_up(site.services, first_name="Rosa", email="rosa@example.com")
    claim_and_send_all(site.services)
    with site.services.sessions.begin() as session:
        staff.add_user(
            session, "admin@clinic.example", PASSWORD, role="admin", phone=None, actor="test"
        )
    page = browser.new_page(viewport={"width": width, "height": 800})
    sign_in(page, site, "admin@clinic.example", "/admin/leads")
    too_wide = {}
    for path in [*PAGES, f"/admin/leads/{lead_id}"]:
        response = page.goto(f"{site.url}{path}")
        assert response is not None and response.status == 200, path
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 0:
            too_wide[path] = overflow
        name = path.strip("/").replace("/", "_") or "home"
        if path.endswith(str(lead_id)):
            name = "admin_lead"
        page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
    page.close()
    assert too_wide == {}, f"pages wider than {width} px (by px): {too_wide}"
