"""The browser's zone is weak evidence (compliance rule 5): a second sign-up from another
browser does not move a lead's zone, and the front desk sees where the zone came from."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from nurture.db.models import AuditEvent, Channel, Lead, Purpose
from nurture.leads.lifecycle import apply_event
from nurture.program import windows
from nurture.program.sequences import LifecycleEvent
from nurture.runtime import Services, build_services
from nurture.web import create_app
from tests.conftest import REPO, SettingsFactory
from tests.db.test_admin_pages import sign_in, text_of
from tests.support import outbox_files
from tests.support.factories import claim_and_send_all, sign_up

CONSULT = datetime(2026, 3, 5, 17, 30, tzinfo=UTC)  # Thu 10:30 MST in Idaho Falls, 09:30 PST
IN_MOUNTAIN_TIME = "Thu, Mar 5 at 10:30 AM MST"


@pytest.fixture
def program(make_settings: SettingsFactory) -> Iterator[Services]:
    """The clinic's own program (config/sequences), as shipped: consult-booked and reminders."""
    built = build_services(make_settings(config_dir=REPO / "config"))
    yield built
    built.close()


def zone_row(page: str) -> str:
    """The lead page's time zone line, as the front desk reads it."""
    found = re.search(r"<th>Time zone</th><td>(.*?)</td>", page)
    assert found, "the lead page shows no time zone"
    return re.sub(r"<[^>]+>", "", found.group(1))


def book(services: Services, lead_id: uuid.UUID, consult_at: datetime) -> None:
    with services.sessions.begin() as session:
        apply_event(
            session,
            session.get_one(Lead, lead_id),
            LifecycleEvent.CONSULT_BOOKED,
            consult_at=consult_at,
            catalog=services.catalog,
            clinic_zone=services.clinic.zone,
            now=datetime.now(UTC),
            actor="test",
        )


def test_rule_5_a_second_signup_from_los_angeles_keeps_a_boise_leads_zone(
    program: Services,
) -> None:
    """A Boise lead signed up again from a Los Angeles browser; her Idaho Falls consult
    confirmation then said PST. The second browser is recorded, and changes nothing."""
    with freeze_time("2026-03-02 15:00:00"):  # Mon 08:00 MST
        # No ZIP code and a 208 number (Mountain or Pacific): the browser said which.
        lead_id = sign_up(program, timezone="America/Boise", postal_code=None)
        again = sign_up(program, timezone="America/Los_Angeles", postal_code=None)
        assert again == lead_id
        book(program, lead_id, CONSULT)
        claim_and_send_all(program)

        with program.sessions() as session:
            lead = session.get_one(Lead, lead_id)
            assert (lead.timezone, lead.browser_timezone) == (None, "America/Boise")
            details = session.scalars(
                select(AuditEvent.details).where(
                    AuditEvent.lead_id == lead_id, AuditEvent.action == "lead.signed_up_again"
                )
            ).one()
            assert details["browser_timezone_seen"] == "America/Los_Angeles"
            # The reminder text, through the real renderer, as the worker will write it.
            writer = program.writer
            reminder = writer.render(
                Channel.SMS,
                "consult-reminder-confirm",
                writer.context(lead, Purpose.CARE),
                session=session,
            )
        assert IN_MOUNTAIN_TIME in reminder.text

    [confirmation] = [
        mail
        for mail in outbox_files.emails(program.settings.resolved_outbox_dir)
        if mail["Subject"] == "Your consultation is booked"
    ]
    body = confirmation.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert IN_MOUNTAIN_TIME in text
    assert "PST" not in text


def test_rule_5_the_lead_page_says_where_the_zone_came_from(program: Services) -> None:
    app = create_app(program)
    ops = sign_in(app, program, "ops")
    # 208 spans Mountain and Pacific; the browser says which.
    pacific = sign_up(program, timezone="America/Los_Angeles", postal_code=None)
    page = zone_row(text_of(ops.get(f"/admin/leads/{pacific}")))
    assert page == (
        "America/Los_Angeles (from the browser, one of area code 208's zones (America/Los_Angeles,"
        " America/Boise, America/Denver): texts wait for hours allowed in each)"
    )
    # A Boise ZIP code outranks a Chicago browser, whose hours must hold too.
    chicago = sign_up(
        program,
        email="b@example.com",
        phone="+12085550124",
        postal_code="83402",
        timezone="America/Chicago",
    )
    page = zone_row(text_of(ops.get(f"/admin/leads/{chicago}")))
    assert page == (
        "America/Boise (from ZIP code 83402; the browser said America/Chicago, so its hours"
        " must hold too)"
    )
    # No zone from the browser at all: the area code's zones, the clinic's first.
    unknown = sign_up(
        program, email="c@example.com", phone="+12085550125", timezone=None, postal_code=None
    )
    page = zone_row(text_of(ops.get(f"/admin/leads/{unknown}")))
    assert page == (
        "America/Boise (from area code 208 (America/Boise, America/Los_Angeles, America/Denver):"
        " texts wait for hours allowed in each)"
    )
    # A browser in Paris is a trip, not home: it is shown, and does not count.
    paris = sign_up(
        program,
        email="d@example.com",
        phone="+12085550126",
        postal_code="83702",
        timezone="Europe/Paris",
    )
    page = zone_row(text_of(ops.get(f"/admin/leads/{paris}")))
    assert page == (
        "America/Boise (from ZIP code 83702; the browser said Europe/Paris, too far away to count)"
    )
    # E-mail only: the clinic's zone, narrowed by the browser's.
    mail_only = sign_up(
        program,
        email="e@example.com",
        phone=None,
        postal_code=None,
        consent={"email_marketing": True},
        timezone="America/New_York",
    )
    page = zone_row(text_of(ops.get(f"/admin/leads/{mail_only}")))
    assert page == (
        "America/Boise (the clinic's: no ZIP code or area code to go by; the browser said"
        " America/New_York, so its hours must hold too)"
    )
    # A zone set on purpose (the person told the front desk) wins over everything.
    with program.sessions.begin() as session:
        session.get_one(Lead, paris).timezone = "Europe/Paris"
    page = zone_row(text_of(ops.get(f"/admin/leads/{paris}")))
    assert page == "Europe/Paris (set on purpose)"
    ops.client.close()


def test_rule_5_a_zone_the_person_chose_wins_over_zip_area_code_and_browser(
    services: Services,
) -> None:
    """The clinic's own intake may ask the person their zone (``chosen_timezone``): on purpose,
    so it decides alone, and a later choice replaces it."""
    lead_id = sign_up(
        services, postal_code="83402", timezone="Asia/Tokyo", chosen_timezone="America/Chicago"
    )
    with services.sessions() as session:
        lead = session.get_one(Lead, lead_id)
        assert (lead.timezone, lead.browser_timezone) == ("America/Chicago", "Asia/Tokyo")
        zones = windows.resolve_zones(
            lead.timezone, lead.postal_code, lead.phone, services.clinic.zone, lead.browser_timezone
        )
    assert [z.key for z in zones] == ["America/Chicago"]
    sign_up(services, chosen_timezone="America/New_York")
    with services.sessions() as session:
        assert session.get_one(Lead, lead_id).timezone == "America/New_York"
