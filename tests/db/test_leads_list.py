"""Issue 14: the front desk's lead list filters, sorts, pages and exports (audited)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from nurture.db.models import AuditEvent, Enrollment, Lead, LeadStage
from nurture.leads import listing
from nurture.runtime import Services
from tests.db.test_admin_pages import add_reply, app, sign_in
from tests.support.factories import sign_up

__all__ = ["app"]  # the admin pages' app fixture
BOISE = ZoneInfo("America/Boise")


def people(services: Services) -> dict[str, uuid.UUID]:
    ids = {
        "ana": sign_up(
            services,
            first_name="Ana",
            email="ana@example.com",
            phone="+12085550101",
            consent={"sms_marketing": True},
        ),
        "bo": sign_up(
            services,
            first_name="Bo",
            email="bo@example.com",
            phone="+12085550102",
            consent={"email_marketing": True},
        ),
        "cy": sign_up(services, first_name="Cy", email="cy@example.com", phone=None, consent={}),
    }
    with services.sessions.begin() as session:
        session.execute(update(Lead).where(Lead.id == ids["bo"]).values(stage=LeadStage.BOOKED))
        # Cy signed up on Sunday 23:30 in Boise (Monday 06:30 UTC): Sunday, for the clinic.
        session.execute(
            update(Lead)
            .where(Lead.id == ids["cy"])
            .values(created_at=datetime(2026, 3, 2, 6, 30, tzinfo=UTC))
        )
    return ids


def names(services: Services, wanted: listing.LeadFilter, **kwargs: int) -> list[str]:
    with services.sessions() as session:
        page = listing.find(session, wanted, zone=BOISE, **kwargs)
        return [lead.first_name for lead in page.leads]


def test_each_filter_and_sort(services: Services) -> None:
    ids = people(services)
    add_reply(services, ids["ana"], "Is it covered by insurance?")
    everyone = listing.LeadFilter(sort="name")
    assert names(services, everyone) == ["Ana", "Bo", "Cy"]
    assert names(services, listing.LeadFilter(stage=LeadStage.BOOKED)) == ["Bo"]
    assert names(services, listing.LeadFilter(consent="email_marketing")) == ["Bo"]
    assert names(services, listing.LeadFilter(needs_reply=True)) == ["Ana"]
    sunday = datetime(2026, 3, 1).date()
    assert names(services, listing.LeadFilter(signed_up_to=sunday)) == ["Cy"]
    assert names(services, listing.LeadFilter(signed_up_from=sunday, signed_up_to=sunday)) == ["Cy"]
    assert sorted(names(services, listing.LeadFilter(query="example.com"))) == ["Ana", "Bo", "Cy"]
    assert names(services, listing.LeadFilter(sort="oldest"))[0] == "Cy"
    with services.sessions() as session:
        enrolled = session.scalars(select(Enrollment.sequence_key).distinct()).all()
    assert enrolled, "sign-ups enrol in a sequence"
    in_sequence = listing.LeadFilter(sequence=enrolled[0], sort="name")
    assert names(services, in_sequence) == ["Ana", "Bo", "Cy"]
    assert names(services, listing.LeadFilter(sequence="post-consult", sort="name")) == []


def test_pages_hold_every_lead_once(services: Services) -> None:
    people(services)
    wanted = listing.LeadFilter(sort="name")
    pages = [names(services, wanted, page=n, per_page=2) for n in (1, 2, 3)]
    assert pages == [["Ana", "Bo"], ["Cy"], ["Cy"]]  # past the end: the last page


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("stage=nope", "stage"),
        ("consent=fax", "consent"),
        ("sequence=nope", "sequence"),
        ("from=yesterday", "from"),
        ("from=2026-03-03&to=2026-03-01", "to"),
        ("sort=shoe-size", "sort"),
    ],
)
def test_a_bad_filter_is_a_422_naming_its_field(
    app: FastAPI, services: Services, query: str, field: str
) -> None:
    desk = sign_in(app, services, "ops")
    page = desk.get(f"/admin/leads?{query}")
    assert page.status_code == 422
    assert f'id="{field}-error"' in page.text


def test_the_page_shows_the_filtered_leads_and_pages(app: FastAPI, services: Services) -> None:
    people(services)
    desk = sign_in(app, services, "ops")
    page = desk.get("/admin/leads?stage=booked")
    assert page.status_code == 200
    assert re.findall(r'<tr data-lead="[^"]+">\s*<td><a [^>]*>([^<]+)</a>', page.text) == [
        "Bo Rivera"
    ]
    assert 'data-total="1"' in page.text


def test_the_export_is_csv_of_the_filtered_leads_audited_and_formula_safe(
    app: FastAPI, services: Services
) -> None:
    ids = people(services)
    with services.sessions.begin() as session:
        session.execute(update(Lead).where(Lead.id == ids["bo"]).values(last_name="=1+1"))
    desk = sign_in(app, services, "ops")
    refused = desk.post("/admin/leads/export", {"stage": "booked"})
    assert refused.status_code == 403  # no CSRF token
    response = desk.post("/admin/leads/export", {"stage": "booked"}, csrf=desk.csrf("/admin/leads"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == listing.CSV_COLUMNS
    assert [(r[1], r[2], r[3], r[4], r[5]) for r in rows[1:]] == [
        ("Bo", "'=1+1", "bo@example.com", "+12085550102", "booked")
    ]
    with services.sessions() as session:
        [entry] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "leads.exported")
        ).all()
    assert entry.actor == desk.actor
    assert entry.details == {"filter": {"stage": "booked"}, "rows": 1}
