"""The ops charts in Chromium at desktop and phone width: drawn, readable, within the screen,
switching between 24 h and 7 days, with nothing fetched from anywhere but this host."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Dialog, expect
from sqlalchemy import select, update

from nurture import clock
from nurture.db.models import Channel, Message, MessageStatus
from tests.e2e.conftest import Site, sign_in
from tests.support.factories import claim_and_send_all, sign_up

HOSTILE_CODE = "<img src=x onerror=alert(1)>"[:32]  # error_code is 32 characters at most


def seed(site: Site) -> int:
    """Three leads' first messages sent now; one text failed an hour ago with a hostile code.
    Returns how many messages left."""
    for i in range(3):
        sign_up(site.services, email=f"chart{i}@example.com", phone=f"+120855502{i:02d}")
    claim_and_send_all(site.services)
    with site.services.sessions.begin() as session:
        text = session.scalars(
            select(Message.id).where(Message.channel == Channel.SMS).order_by(Message.id)
        ).first()
        assert text is not None
        session.execute(
            update(Message)
            .where(Message.id == text)
            .values(
                status=MessageStatus.FAILED,
                status_at=clock.utcnow() - timedelta(hours=1),
                error_code=HOSTILE_CODE,
            )
        )
        left = session.scalars(select(Message.id).where(Message.sent_at.is_not(None))).all()
    assert len(left) >= 3
    return len(left)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_ops_charts_fit_the_screen_and_stay_on_this_host(
    browser: Browser, site: Site, artifacts: Path, width: int
) -> None:
    sent = seed(site)
    page = browser.new_page(viewport={"width": width, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:  # an alert() would mean the error code ran as markup
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    sign_in(page, site, "ops@clinic.example", "/admin/ops")

    for range_key, link_text in (("24h", "The last 7 days"), ("7d", "The last 24 h")):
        for name in ("minutes", "sends", "lateness", "failures"):
            chart = page.locator(f'figure[data-chart="{name}"] svg[role="img"]')
            expect(chart).to_be_visible()
            box = chart.bounding_box()
            assert box is not None and 150 < box["width"] <= width, (name, box)
            assert box["height"] > 60, (name, box)
        failures = page.locator('figure[data-chart="failures"] svg')
        # The provider's code is text in the legend, not an element in the page.
        expect(failures.locator("g.legend text").first).to_contain_text("<img src=x")
        expect(failures.locator(":scope > desc")).to_contain_text(f"({HOSTILE_CODE} 1)")
        assert page.locator('img[src="x"]').count() == 0
        description = page.locator('figure[data-chart="sends"] svg > desc')
        expect(description).to_contain_text(f": {sent} sends in total;")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{range_key} at {width} px is wider than the screen by {overflow}"
        page.locator("#charts").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / f"ops-charts-{range_key}-{width}.png"), full_page=True)
        page.locator("#charts").screenshot(
            path=str(artifacts / f"ops-charts-{range_key}-{width}-section.png")
        )
        if range_key == "24h":
            page.click(f"nav.range-switch a:has-text('{link_text}')")
            expect(page).to_have_url(f"{site.url}/admin/ops?range=7d#charts")
            expect(page.locator('nav.range-switch [aria-current="page"]')).to_have_text(
                "The last 7 days"
            )

    page.close()
    assert dialogs == []
    off_host = [
        url
        for url in requested
        if urlsplit(url).scheme not in {"data", "about", "blob"}
        and urlsplit(url).hostname not in {"127.0.0.1", "localhost"}
    ]
    assert off_host == [], f"requests that left the host: {off_host}"
    assert any(url.endswith("/static/charts.css") for url in requested)
