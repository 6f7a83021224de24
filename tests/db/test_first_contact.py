"""First contact (issue 13 §5): the leads nobody reached within one business day are listed
for staff, and "contacted" is recorded by a staff button (CSRF, audited) or by a booking.
Through the real app, login form and sessions, on PostgreSQL and SQLite."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import select

from nurture import clock, staff
from nurture.db.models import AuditEvent, Lead, LeadArrival
from nurture.leads import first_contact
from nurture.leads.intake import StaffContact, parse_signup, submit_signup
from nurture.runtime import Services
from tests.support.factories import EVIDENCE, signup_data

PASSWORD = "correct horse battery staple"


def sign_up(services: Services, **overrides: str) -> uuid.UUID:
    return submit_signup(
        services.sessions,
        parse_signup(signup_data(**overrides)),
        EVIDENCE,
        catalog=services.catalog,
        clinic_zone=services.clinic.zone,
        staff=StaffContact(services.clinic, services.settings.public_url),
    ).lead_id


def overdue_ids(services: Services) -> list[uuid.UUID]:
    with services.sessions() as session:
        return [row.lead.id for row in first_contact.uncontacted(session, now=clock.utcnow())]


@pytest.fixture
def staff_browser(client: TestClient, services: Services) -> TestClient:
    """The `client` fixture signed in as a member of staff who may see leads (over https: the
    session cookie is Secure)."""
    with services.sessions.begin() as session:
        staff.add_user(session, "desk@clinic.example", PASSWORD, role="ops", phone=None, actor="t")
    client.base_url = client.base_url.copy_with(scheme="https")
    form = client.get("/admin/login")
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token, form.text
    signed_in = client.post(
        "/admin/login",
        data={"email": "desk@clinic.example", "password": PASSWORD, "token": token.group(1)},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def test_a_lead_is_overdue_after_one_business_day(services: Services) -> None:
    with freeze_time("2026-03-03 18:00:00"):  # Tuesday 11:00 in Boise
        lead_id = sign_up(services)
        assert overdue_ids(services) == []
    with freeze_time("2026-03-04 17:59:00"):  # Wednesday 10:59
        assert overdue_ids(services) == []
    with freeze_time("2026-03-04 18:00:05"):  # Wednesday 11:00: one business day later
        assert overdue_ids(services) == [lead_id]


def test_friday_afternoon_is_due_on_monday(services: Services) -> None:
    with freeze_time("2026-03-06 22:00:00"):  # Friday 15:00 MST; closes at 18:00
        lead_id = sign_up(services)
    with services.sessions() as session:
        due = session.get_one(LeadArrival, lead_id).contact_due_at
    assert due is not None
    # Three staffed hours on Friday, seven on Monday (after the switch to MDT): 15:00 MDT.
    assert due.astimezone(services.clinic.zone).strftime("%a %H:%M %Z") == "Mon 15:00 MDT"


def test_a_booking_counts_as_first_contact_once(services: Services) -> None:
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        lead = session.get_one(Lead, lead_id)
        assert first_contact.record_first_contact(
            session, lead, how=first_contact.BY_BOOKING, actor="calendly", now=clock.utcnow()
        )
    with services.sessions.begin() as session:
        lead = session.get_one(Lead, lead_id)
        assert not first_contact.record_first_contact(
            session, lead, how=first_contact.BY_STAFF, actor="staff:x", now=clock.utcnow()
        )
    with services.sessions() as session:
        row = session.get_one(LeadArrival, lead_id)
        assert (row.first_contact_how, row.first_contacted_by) == (
            first_contact.BY_BOOKING,
            "calendly",
        )
        audited = session.scalars(
            select(AuditEvent).where(
                AuditEvent.lead_id == lead_id, AuditEvent.action == "lead.first_contact"
            )
        ).all()
        assert len(audited) == 1
    with freeze_time("2026-03-05 18:00:00"):
        assert overdue_ids(services) == []


def test_a_lead_from_before_notices_can_be_marked_contacted(services: Services) -> None:
    from tests.support.factories import sign_up as sign_up_unannounced

    lead_id = sign_up_unannounced(services)  # no staff to tell: no arrival row
    with services.sessions.begin() as session:
        assert session.get(LeadArrival, lead_id) is None
        lead = session.get_one(Lead, lead_id)
        assert first_contact.record_first_contact(
            session, lead, how=first_contact.BY_STAFF, actor="staff:x", now=clock.utcnow()
        )
    with services.sessions() as session:
        assert session.get_one(LeadArrival, lead_id).first_contacted_at is not None


def test_staff_see_the_overdue_list_and_mark_contacted(
    services: Services, staff_browser: TestClient
) -> None:
    with freeze_time("2026-03-02 16:00:00"):  # Monday 09:00: due Tuesday 09:00
        lead_id = sign_up(services, first_name="Zoë")
    # Tuesday 11:00, the fixture's instant (a staff session does not last for days).
    listing = staff_browser.get("/admin/leads/uncontacted")
    assert listing.status_code == 200, listing.text
    table = listing.text.split("data-uncontacted", 1)[1]
    assert f'href="/admin/leads/{lead_id}"' in table
    assert "Zoë Rivera" in html.unescape(table)
    page = staff_browser.get(f"/admin/leads/{lead_id}")
    assert "Nobody has marked them contacted yet." in page.text
    assert f'action="/admin/leads/{lead_id}/contacted"' in page.text

    refused = staff_browser.post(
        f"/admin/leads/{lead_id}/contacted", data={"csrf": "forged"}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert overdue_ids(services) == [lead_id]

    done = staff_browser.post(
        f"/admin/leads/{lead_id}/contacted",
        data={"csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/admin/leads/{lead_id}")
    assert overdue_ids(services) == []
    listing = staff_browser.get("/admin/leads/uncontacted")
    assert f'href="/admin/leads/{lead_id}"' not in listing.text.split("data-uncontacted")[1]
    page = staff_browser.get(f"/admin/leads/{lead_id}")
    assert "First contacted" in page.text and first_contact.BY_STAFF in page.text
    with services.sessions() as session:
        [audit] = session.scalars(
            select(AuditEvent).where(
                AuditEvent.lead_id == lead_id, AuditEvent.action == "lead.first_contact"
            )
        ).all()
        assert audit.actor == "staff:desk@clinic.example"


def test_the_contacted_button_for_no_such_lead_is_a_404(
    services: Services, staff_browser: TestClient
) -> None:
    page = staff_browser.get("/admin/leads/uncontacted")
    token = csrf_of(page.text) if 'name="csrf"' in page.text else ""
    missing = staff_browser.post(
        f"/admin/leads/{uuid.uuid4()}/contacted", data={"csrf": token}, follow_redirects=False
    )
    assert missing.status_code == 404
    assert "Traceback" not in missing.text


def test_the_list_needs_a_staff_login(client: TestClient) -> None:
    response = client.get("/admin/leads/uncontacted", follow_redirects=False)
    assert response.status_code in (303, 401, 403)
