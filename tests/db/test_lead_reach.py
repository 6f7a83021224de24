"""Issue 14, "Leads": marketing sees whom the program reaches (counts by stage, consent and
sequence; the leads under pseudonyms) and nobody's name, e-mail, phone, ZIP code, notes or
message bodies; the full lead page and the CSV export stay closed to marketing."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from nurture.db.models import Lead, LeadStage, Message
from nurture.leads import reach
from nurture.runtime import Services
from tests.db.test_admin_pages import Browser, app, sign_in, text_of
from tests.support.factories import claim_and_send_all, sign_up

__all__ = ["app"]  # the admin pages' app fixture

PEOPLE = [
    # first, last, e-mail, phone, ZIP, consent
    (
        "Zelda",
        "Quackenbush",
        "zelda.q@example.com",
        "+12085550171",
        "83402",
        {"sms_marketing": True, "sms_care": True, "email_marketing": True},
    ),
    ("Yusuf", "Okonkwo", "yusuf.o@example.org", "+12085550172", "98101", {"email_marketing": True}),
    ("Xiomara", "Bellweather", "x.bell@example.net", "+12085550173", "10001", {"sms_care": True}),
]
NOTE = "Prefers calls after 5, knee surgery in May."


@pytest.fixture
def marketing(app: FastAPI, services: Services) -> Browser:
    return sign_in(app, services, "marketing")


def seed(services: Services, app: FastAPI) -> list[uuid.UUID]:
    ids = [
        sign_up(
            services,
            first_name=first,
            last_name=last,
            email=email,
            phone=phone,
            postal_code=postal_code,
            timezone=None,
            consent=consent,
        )
        for first, last, email, phone, postal_code, consent in PEOPLE
    ]
    with services.sessions.begin() as session:
        session.get_one(Lead, ids[2]).stage = LeadStage.BOOKED
    claim_and_send_all(services)  # message bodies are stored
    ops = sign_in(app, services, "ops")
    token = ops.csrf(f"/admin/leads/{ids[0]}")
    assert ops.post(f"/admin/leads/{ids[0]}/notes", {"text": NOTE}, csrf=token).status_code == 303
    return ids


def test_marketing_sees_counts_and_pseudonyms_and_no_contact_details(
    app: FastAPI, services: Services, marketing: Browser
) -> None:
    ids = seed(services, app)
    page = marketing.get("/admin/leads/reach")
    assert page.status_code == 200
    body = text_of(page)

    def count(kind: str, key: str) -> int:
        table = re.search(rf'data-counts="{kind}">(.*?)</table>', page.text, re.S)
        assert table is not None
        found = re.search(rf'data-count="{key}">(\d+)<', table.group(1))
        assert found is not None, (kind, key)
        return int(found.group(1))

    assert count("stage", "signed_up") == 2 and count("stage", "booked") == 1
    assert count("stage", "patient") == 0
    assert count("consent", "email_marketing") == 2
    assert count("consent", "sms_marketing") == 1
    assert count("consent", "sms_care") == 2
    assert count("sequence", "basic-nurture") == 3

    references = re.findall(r'data-reference="(R-[A-Z2-7]{4}-[A-Z2-7]{4})"', page.text)
    assert sorted(references) == sorted(reach.pseudonym(i, services.secret) for i in ids)
    assert len(set(references)) == 3
    assert "2026-03-02" in body  # the week they signed up in (Monday 2 March)

    # Nobody's contact details, notes or message bodies; no id and no way to the lead page.
    with services.sessions() as session:
        bodies = [m.body for m in session.scalars(select(Message)) if m.body]
    assert bodies
    for first, last, email, phone, postal_code, _consent in PEOPLE:
        for secret in (first, last, email, phone, phone[-4:], postal_code):
            assert secret not in body, secret
    assert "Prefers calls" not in body
    for sent in bodies:
        assert sent.strip()[:40] not in body
    for lead_id in ids:
        assert str(lead_id) not in page.text
    assert not re.search(r'href="/admin/leads/[0-9a-f-]{36}', page.text)
    # The nav leads marketing here, and not to the full list.
    assert 'href="/admin/leads/reach">Reach</a>' in page.text
    assert 'href="/admin/leads">Leads</a>' not in page.text


def test_marketing_still_cannot_open_a_lead_the_list_or_the_export(
    app: FastAPI, services: Services, marketing: Browser
) -> None:
    ids = seed(services, app)
    token = marketing.csrf("/admin/leads/reach")
    for url in (f"/admin/leads/{ids[0]}", "/admin/leads", f"/admin/leads/{ids[0]}/messages/1"):
        refused = marketing.get(url)
        assert refused.status_code == 403, url
        assert "zelda" not in refused.text.lower()
    export = marketing.post("/admin/leads/export", {}, csrf=token)
    assert export.status_code == 403
    assert "zelda.q@example.com" not in export.text
    for action in ("edit", "notes", "messages/1/cancel", "messages/1/send-now"):
        assert marketing.post(f"/admin/leads/{ids[0]}/{action}", {}, csrf=token).status_code == 403


def test_the_reach_view_is_for_marketing_and_admin_only(app: FastAPI, services: Services) -> None:
    assert sign_in(app, services, "admin").get("/admin/leads/reach").status_code == 200
    refused = sign_in(app, services, "ops").get("/admin/leads/reach")
    assert refused.status_code == 403 and "cannot open reach" in refused.text


def test_a_pseudonym_is_stable_and_keyed() -> None:
    lead_id = uuid.uuid4()
    assert reach.pseudonym(lead_id, b"k1") == reach.pseudonym(lead_id, b"k1")
    assert reach.pseudonym(lead_id, b"k1") != reach.pseudonym(lead_id, b"k2")
    assert str(lead_id)[:8].upper() not in reach.pseudonym(lead_id, b"k1")
