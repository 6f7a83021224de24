"""The staff pages for leads, the inbox, sequences and users, driven through the real login form,
real sessions and CSRF tokens, on PostgreSQL and SQLite."""

from __future__ import annotations

import html
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from nurture import clock, consent, staff
from nurture.db.models import (
    AuditEvent,
    Channel,
    ConsentEvent,
    ConsentSource,
    InboundClass,
    InboundMessage,
    Lead,
    LeadStage,
    MessageStatus,
    Purpose,
    StaffSession,
    StaffUser,
)
from nurture.outbox import pauses, withdrawals
from nurture.runtime import Services, build_services
from nurture.web import create_app
from tests.conftest import REPO, SettingsFactory
from tests.support.factories import messages_of, sign_up

PASSWORD = "correct horse battery staple"
SHIPPED = ["consult-nurture", "consult-reminders", "no-show-followup", "post-consult-followup"]
SAMPLES = [
    "Boise lead, all consent",
    "Pacific lead, texts for appointments only",
    "Lead in Florida (state rules)",
]
_sids = itertools.count()


@dataclass
class Browser:
    """One signed-in staff member's browser."""

    client: TestClient
    email: str

    @property
    def actor(self) -> str:
        return f"staff:{self.email}"

    def get(self, url: str, params: dict[str, str] | None = None) -> httpx.Response:
        return self.client.get(url, params=params, follow_redirects=False)

    def csrf(self, url: str = "/admin/") -> str:
        page = self.get(url)
        assert page.status_code in (200, 422), page.text
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, "the page has no CSRF field"
        return found.group(1)

    def post(
        self, url: str, data: dict[str, str] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf is not None:
            form["csrf"] = csrf
        return self.client.post(url, data=form, follow_redirects=False)


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services)


def add_staff(services: Services, email: str, role: str) -> None:
    with services.sessions.begin() as session:
        staff.add_user(session, email, PASSWORD, role=role, phone=None, actor="test")


def sign_in(app: FastAPI, services: Services, role: str, email: str | None = None) -> Browser:
    """Create a staff user and sign in through the real login form."""
    email = email or f"{role}@clinic.example"
    add_staff(services, email, role)
    # The site is https (public_url), so the session cookie is Secure: browse over https.
    client = TestClient(app, base_url="https://testserver")
    form = client.get("/admin/login")
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token, form.text
    response = client.post(
        "/admin/login",
        data={"email": email, "password": PASSWORD, "token": token.group(1), "next": "/admin/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return Browser(client, email)


@pytest.fixture
def ops(app: FastAPI, services: Services) -> Iterator[Browser]:
    browser = sign_in(app, services, "ops")
    yield browser
    browser.client.close()


@pytest.fixture
def admin(app: FastAPI, services: Services) -> Iterator[Browser]:
    browser = sign_in(app, services, "admin")
    yield browser
    browser.client.close()


@pytest.fixture
def program(make_settings: SettingsFactory) -> Iterator[Services]:
    """The clinic's own program (config/sequences), as shipped."""
    built = build_services(make_settings(config_dir=REPO / "config"))
    yield built
    built.close()


def text_of(response: httpx.Response) -> str:
    return html.unescape(response.text)


def lead_links(response: httpx.Response) -> list[str]:
    return re.findall(r'href="/admin/leads/([0-9a-f-]{36})"', response.text)


def audit_actions(services: Services, actor: str) -> list[str]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent.action).where(AuditEvent.actor == actor).order_by(AuditEvent.id)
            )
        )


def get_lead(services: Services, lead_id: uuid.UUID) -> Lead:
    with services.sessions() as session:
        return session.get_one(Lead, lead_id)


def add_reply(
    services: Services,
    lead_id: uuid.UUID | None,
    body: str,
    *,
    classification: InboundClass = InboundClass.OTHER,
    needs_attention: bool = True,
    received_at: datetime | None = None,
    handled: bool = False,
) -> int:
    with services.sessions.begin() as session:
        reply = InboundMessage(
            message_sid=f"SM{next(_sids):032d}",
            lead_id=lead_id,
            from_number="+12085550123",
            to_number="+15005550006",
            body=body,
            classification=classification,
            needs_attention=needs_attention,
            attention_reason="a reply that needs a person" if needs_attention else None,
            handled_at=clock.utcnow() if handled else None,
            handled_by="staff:earlier@clinic.example" if handled else None,
            params={},
            received_at=received_at or clock.utcnow(),
        )
        session.add(reply)
        session.flush()
        return reply.id


# Signing in and roles ----------------------------------------------------------------------------


def test_pages_need_a_signed_in_staff_member(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver") as anonymous:
        for url in ("/admin/leads", "/admin/inbox", "/admin/sequences", "/admin/users"):
            response = anonymous.get(url, follow_redirects=False)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/admin/login?next=")


def test_each_role_opens_only_its_areas(app: FastAPI, services: Services) -> None:
    marketing = sign_in(app, services, "marketing")
    ops = sign_in(app, services, "ops")
    assert marketing.get("/admin/sequences").status_code == 200
    for url in ("/admin/leads", "/admin/inbox", "/admin/users"):
        refused = marketing.get(url)
        assert refused.status_code == 403
        assert "cannot open" in refused.text
    for url in ("/admin/leads", "/admin/inbox", "/admin/sequences"):
        assert ops.get(url).status_code == 200
    assert ops.get("/admin/users").status_code == 403


# Leads: search -----------------------------------------------------------------------------------


def test_search_by_name_email_and_any_phone_spelling(services: Services, ops: Browser) -> None:
    ana = sign_up(services)  # Ana Rivera, ana.rivera@example.com, +12085550123
    bo = sign_up(
        services,
        first_name="Bo",
        last_name="Lindqvist",
        email="bo@example.org",
        phone="+12085550145",
    )
    with services.sessions.begin() as session:
        texted = Lead(id=uuid.uuid4(), first_name="", last_name="", phone="+12085550177")
        session.add(texted)

    everyone = ops.get("/admin/leads")
    assert everyone.status_code == 200
    assert lead_links(everyone) == [str(texted.id), str(bo), str(ana)]  # newest first
    assert "someone who only texted" in everyone.text

    for query in (
        "ana",
        "RIVERA",
        "Ana Rivera",
        "rivera@EXAMPLE",
        "(208) 555-0123",
        "2085550123",
        "+12085550123",
        "555-0123",
    ):
        found = ops.get("/admin/leads", {"q": query})
        assert found.status_code == 200
        assert lead_links(found) == [str(ana)], query
    assert lead_links(ops.get("/admin/leads", {"q": "example.org"})) == [str(bo)]
    nothing = ops.get("/admin/leads", {"q": "zzz%_"})
    assert lead_links(nothing) == []
    assert "No lead matches" in text_of(nothing)


# Leads: the story --------------------------------------------------------------------------------


def test_the_lead_page_shows_consent_messages_with_reasons_and_replies(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        withdrawals.set_preference(
            session,
            lead_id,
            Channel.EMAIL,
            Purpose.MARKETING,
            False,
            source=ConsentSource.EMAIL_LINK,
            evidence={},
            actor="lead",
            now=clock.utcnow(),
        )
    add_reply(services, lead_id, "Can I bring my partner?")

    page = ops.get(f"/admin/leads/{lead_id}")
    assert page.status_code == 200
    body = text_of(page)
    assert "Ana Rivera" in body
    assert "ana.rivera@example.com" in body and "+12085550123" in body
    assert "America/Boise" in body
    assert re.search(r'data-consent="sms-marketing">granted<', page.text)
    assert re.search(r'data-consent="email-marketing">no<', page.text)
    # The consent history, with its evidence.
    assert "test-1" in body and "https://clinic.example/consult" in body
    assert "email_link" in body
    # Every message with why it did not go.
    assert "email marketing revoked (email_link)" in body
    assert "basic-nurture / follow-up" in body and "cancelled" in body
    assert "basic-nurture / optin-confirmation" in body
    # The reply, and the audit trail.
    assert "Can I bring my partner?" in body
    assert "Mark handled" in body
    assert "lead.signed_up" in body and "consent.revoked" in body


def test_consult_time_is_shown_in_the_leads_own_zone(program: Services) -> None:
    app = create_app(program)
    ops = sign_in(app, program, "ops")
    # No ZIP code: the 208 area code spans Pacific too, so the browser decides what is shown.
    lead_id = sign_up(program, timezone="America/Los_Angeles", postal_code=None)
    form = ops.csrf(f"/admin/leads/{lead_id}")
    booked = ops.post(
        f"/admin/leads/{lead_id}/events",
        {"type": "consult_booked", "consult_at": "2026-03-10T10:00"},
        csrf=form,
    )
    assert booked.status_code == 303
    page = text_of(ops.get(f"/admin/leads/{lead_id}"))
    assert "Tue, Mar 10 at 10:00 AM PDT" in page
    assert "2026-03-10 17:00 UTC" in page
    assert get_lead(program, lead_id).consult_at == datetime(2026, 3, 10, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize("path", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_an_unknown_lead_is_a_404_page(ops: Browser, path: str) -> None:
    response = ops.get(f"/admin/leads/{path}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text


# Leads: actions ----------------------------------------------------------------------------------


def test_resume_marketing(services: Services, ops: Browser) -> None:
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        lead = session.get_one(Lead, lead_id)
        pauses.pause_lead_marketing(
            session, lead, reason="a reply that needs a person", actor="test", now=clock.utcnow()
        )
    page = ops.get(f"/admin/leads/{lead_id}")
    assert "Marketing is paused" in page.text
    token = ops.csrf(f"/admin/leads/{lead_id}")

    refused = ops.post(f"/admin/leads/{lead_id}/resume")
    assert refused.status_code == 403
    assert get_lead(services, lead_id).marketing_paused_at is not None

    done = ops.post(f"/admin/leads/{lead_id}/resume", csrf=token)
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/leads/{lead_id}?notice=resumed"
    assert get_lead(services, lead_id).marketing_paused_at is None
    assert "lead.marketing_resumed" in audit_actions(services, ops.actor)
    assert "Marketing resumed for this lead." in ops.get(done.headers["location"]).text


def test_mark_a_reply_handled_from_the_lead_page(services: Services, ops: Browser) -> None:
    lead_id = sign_up(services)
    other = sign_up(services, email="other@example.com", phone="+12085550145")
    reply_id = add_reply(services, lead_id, "Is it covered by insurance?")
    token = ops.csrf(f"/admin/leads/{lead_id}")
    url = f"/admin/leads/{lead_id}/inbound/{reply_id}/handled"

    assert ops.post(url).status_code == 403
    assert ops.post(url, {"csrf": "forged"}).status_code == 403
    with services.sessions() as session:
        assert session.get_one(InboundMessage, reply_id).handled_at is None

    # Another lead's reply, or no reply at all, is not found.
    assert ops.post(f"/admin/leads/{other}/inbound/{reply_id}/handled", csrf=token).status_code == (
        404
    )
    assert ops.post(f"/admin/leads/{lead_id}/inbound/x/handled", csrf=token).status_code == 404

    done = ops.post(url, csrf=token)
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/leads/{lead_id}?notice=handled"
    with services.sessions() as session:
        reply = session.get_one(InboundMessage, reply_id)
        assert reply.handled_at is not None
        assert reply.handled_by == ops.actor
        entry = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "inbound.handled")
        ).one()
    assert entry.actor == ops.actor and entry.lead_id == lead_id
    assert entry.details["inbound_id"] == reply_id


def test_a_lifecycle_event_from_the_form_moves_the_stage_and_plans_reminders(
    program: Services,
) -> None:
    app = create_app(program)
    ops = sign_in(app, program, "ops")
    lead_id = sign_up(program)  # America/Boise
    token = ops.csrf(f"/admin/leads/{lead_id}")
    form = {"type": "consult_booked", "consult_at": "2026-03-10T10:00"}

    assert ops.post(f"/admin/leads/{lead_id}/events", form).status_code == 403
    assert get_lead(program, lead_id).stage is LeadStage.SIGNED_UP

    done = ops.post(f"/admin/leads/{lead_id}/events", form, csrf=token)
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/leads/{lead_id}?notice=event"
    lead = get_lead(program, lead_id)
    assert lead.stage is LeadStage.BOOKED
    # 10:00 in Boise after DST began on the 8th (MDT, UTC-6).
    consult_at = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
    assert lead.consult_at == consult_at
    with program.sessions() as session:
        reminders = {
            m.step_key: m
            for m in messages_of(session, lead_id)
            if m.sequence_key == "consult-reminders"
        }
        event_actor = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "lead.consult_booked")
        ).one()
    assert reminders["reminder-sms-24h"].status is MessageStatus.SCHEDULED
    assert reminders["reminder-sms-24h"].due_at == consult_at - timedelta(hours=24)
    assert reminders["reminder-sms-2h"].due_at == consult_at - timedelta(hours=2)
    assert event_actor == ops.actor
    assert "Event recorded." in ops.get(done.headers["location"]).text


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"type": "consult_booked", "consult_at": ""}, "consult_booked needs consult_at"),
        ({"type": "consult_booked", "consult_at": "2026-03-01T10:00"}, "is in the past"),
        ({"type": "consult_booked", "consult_at": "next tuesday"}, "not a date and time"),
        ({"type": "signed_up", "consult_at": ""}, "not sent to this endpoint"),
        ({"type": "party", "consult_at": ""}, "unknown event"),
    ],
)
def test_a_bad_lifecycle_event_is_a_422_page_with_the_reason(
    services: Services, ops: Browser, form: dict[str, str], reason: str
) -> None:
    lead_id = sign_up(services)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    response = ops.post(f"/admin/leads/{lead_id}/events", form, csrf=token)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert reason in text_of(response)
    assert "Ana Rivera" in response.text  # the lead page again, not a bare error
    lead = get_lead(services, lead_id)
    assert lead.stage is LeadStage.SIGNED_UP and lead.consult_at is None
    assert not any(a.startswith("lead.consult") for a in audit_actions(services, ops.actor))


def test_an_opt_out_by_phone_revokes_texts_and_cancels_pending_ones(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    form = {"channel": "sms", "note": "Called the front desk: no more texts please."}

    assert ops.post(f"/admin/leads/{lead_id}/opt-out", form).status_code == 403
    with services.sessions() as session:
        assert consent.current(session, lead_id).allows(Channel.SMS, Purpose.CARE)

    done = ops.post(f"/admin/leads/{lead_id}/opt-out", form, csrf=token)
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/leads/{lead_id}?notice=event"
    with services.sessions() as session:
        now = consent.current(session, lead_id)
        assert not now.allows(Channel.SMS, Purpose.CARE)
        assert not now.allows(Channel.SMS, Purpose.MARKETING)
        assert now.allows(Channel.EMAIL, Purpose.MARKETING)
        events = list(
            session.scalars(
                select(ConsentEvent).where(
                    ConsentEvent.lead_id == lead_id, ConsentEvent.source == ConsentSource.STAFF
                )
            )
        )
        texts = [m for m in messages_of(session, lead_id) if m.channel is Channel.SMS]
    assert {e.purpose for e in events} == {Purpose.CARE, Purpose.MARKETING}
    assert all(e.evidence["recorded_by"] == ops.actor for e in events)
    assert all(e.evidence["note"] == form["note"] for e in events)
    assert texts and all(m.status is MessageStatus.CANCELLED for m in texts)
    actions = audit_actions(services, ops.actor)
    assert actions.count("consent.revoked") == 2
    assert "lead.opt_out_recorded" in actions
    page = text_of(ops.get(done.headers["location"]))
    assert "Called the front desk: no more texts please." in page
    assert "Event recorded." in page


def test_an_email_opt_out_by_phone_revokes_marketing_mail(services: Services, ops: Browser) -> None:
    lead_id = sign_up(services)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    done = ops.post(
        f"/admin/leads/{lead_id}/opt-out",
        {"channel": "email", "note": "asked by phone"},
        csrf=token,
    )
    assert done.status_code == 303
    with services.sessions() as session:
        now = consent.current(session, lead_id)
        follow_up = next(m for m in messages_of(session, lead_id) if m.step_key == "follow-up")
    assert not now.allows(Channel.EMAIL, Purpose.MARKETING)
    assert now.allows(Channel.EMAIL, Purpose.CARE) and now.allows(Channel.SMS, Purpose.MARKETING)
    assert follow_up.status is MessageStatus.CANCELLED
    assert "consent.revoked" in audit_actions(services, ops.actor)


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"channel": "sms", "note": "x" * 501}, "keep it to 500 characters"),
        ({"channel": "pigeon", "note": ""}, "choose sms or email"),
    ],
)
def test_a_bad_opt_out_form_is_a_422_page_and_changes_nothing(
    services: Services, ops: Browser, form: dict[str, str], reason: str
) -> None:
    lead_id = sign_up(services)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    response = ops.post(f"/admin/leads/{lead_id}/opt-out", form, csrf=token)
    assert response.status_code == 422
    assert reason in text_of(response)
    with services.sessions() as session:
        assert consent.current(session, lead_id).allows(Channel.SMS, Purpose.MARKETING)
    # Opening the page is audited (rule 24); the refused form adds nothing after it.
    assert audit_actions(services, ops.actor) == ["staff.login", "lead.viewed"]


# Inbox -------------------------------------------------------------------------------------------


def test_the_inbox_lists_waiting_replies_oldest_first_with_a_crisis_badge(
    services: Services, ops: Browser
) -> None:
    ana = sign_up(services)
    bo = sign_up(services, first_name="Bo", email="bo@example.org", phone="+12085550145")
    now = clock.utcnow()
    older = add_reply(services, ana, "what does it cost?", received_at=now - timedelta(hours=3))
    crisis = add_reply(
        services,
        bo,
        "i want to end it all",
        classification=InboundClass.CRISIS,
        received_at=now - timedelta(hours=1),
    )
    add_reply(services, ana, "STOP", classification=InboundClass.OPT_OUT, needs_attention=False)
    add_reply(services, ana, "thanks", received_at=now - timedelta(hours=5), handled=True)
    orphan = add_reply(services, None, "who is this?", received_at=now - timedelta(hours=2))

    page = ops.get("/admin/inbox")
    assert page.status_code == 200
    assert "<title>Inbox (3)" in page.text
    rows = re.findall(r'data-inbound="(\d+)"', page.text)
    assert rows == [str(older), str(orphan), str(crisis)]  # strictly oldest first
    assert 'class="badge crisis">CRISIS<' in page.text
    assert page.text.count(">CRISIS<") == 1
    assert f'href="/admin/leads/{bo}"' in page.text

    token = ops.csrf("/admin/inbox")
    url = f"/admin/leads/{bo}/inbound/{crisis}/handled"
    assert ops.post(url, {"return_to": "inbox"}).status_code == 403
    done = ops.post(url, {"return_to": "inbox"}, csrf=token)
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/inbox?notice=handled"
    after = ops.get(done.headers["location"])
    assert "<title>Inbox (2)" in after.text
    assert re.findall(r'data-inbound="(\d+)"', after.text) == [str(older), str(orphan)]
    assert "CRISIS" not in after.text
    assert "Marked as handled." in after.text

    # A reply from a number we know nothing about is handled from the inbox itself.
    assert ops.post(f"/admin/inbox/{orphan}/handled").status_code == 403
    assert ops.post(f"/admin/inbox/{orphan}/handled", csrf=token).status_code == 303
    assert ops.post(f"/admin/inbox/{older}/handled", csrf=token).status_code == 404
    assert re.findall(r'data-inbound="(\d+)"', ops.get("/admin/inbox").text) == [str(older)]
    assert audit_actions(services, ops.actor).count("inbound.handled") == 2


# Sequences ---------------------------------------------------------------------------------------


def test_the_sequence_list_counts_enrolments_and_pending_rows(
    app: FastAPI, services: Services
) -> None:
    marketing = sign_in(app, services, "marketing")
    sign_up(services)
    sign_up(services, email="bo@example.org", phone="+12085550145")
    page = marketing.get("/admin/sequences")
    assert page.status_code == 200
    row = re.search(r'<tr data-sequence="basic-nurture">(.*?)</tr>', page.text, re.S)
    assert row, page.text
    assert "Basic nurture (test fixture)" in row.group(1)
    assert '<td class="active">2</td>' in row.group(1)
    assert '<td class="pending">6</td>' in row.group(1)  # 3 steps each, none sent yet


def test_the_sequence_page_shows_steps_windows_and_a_simulation(
    app: FastAPI, services: Services
) -> None:
    marketing = sign_in(app, services, "marketing")
    page = marketing.get("/admin/sequences/basic-nurture")
    assert page.status_code == 200
    body = text_of(page)
    assert body.count("<li data-step=") == 3
    assert "Send window: Every day 08:00–21:00" in body  # the opt-in confirmation
    assert "Send window: Any time" in body  # care e-mail
    assert "Send window: Every day 07:00–21:00" in body  # marketing e-mail
    assert "2d after enrolment" in body and "at enrolment" in body
    assert 'href="/admin/templates/email/follow-up"' in page.text
    assert re.findall(r"<td>(optin-confirmation|welcome|follow-up)</td>", page.text)
    assert '<table class="grid simulation">' in page.text

    ops = sign_in(app, services, "ops")
    as_ops = ops.get("/admin/sequences/basic-nurture")
    assert as_ops.status_code == 200
    assert 'href="/admin/templates/' not in as_ops.text  # ops cannot open templates

    assert marketing.get("/admin/sequences/no-such-thing").status_code == 404
    bad = marketing.get("/admin/sequences/basic-nurture", {"start": "soon", "consult": ""})
    assert bad.status_code == 422
    assert "start:" in text_of(bad) and "not a date and time" in text_of(bad)


@pytest.mark.parametrize("key", SHIPPED)
def test_every_shipped_sequence_renders_with_a_simulation_for_every_sample(
    program: Services, key: str
) -> None:
    app = create_app(program)
    marketing = sign_in(app, program, "marketing")
    listing = marketing.get("/admin/sequences")
    assert f'data-sequence="{key}"' in listing.text
    sequence = program.catalog.by_key[key]
    for sample in SAMPLES:
        page = marketing.get(
            f"/admin/sequences/{key}",
            {"sample": sample, "start": "2026-03-09T09:00", "consult": "2026-03-12T10:00"},
        )
        assert page.status_code == 200, page.text
        body = text_of(page)
        assert f"<option selected>{sample}</option>" in body
        table = body.split('<table class="grid simulation">')[1]
        for step in sequence.steps:
            assert f"<td>{step.key}</td>" in table, (sample, step.key)
        assert "would fail" not in table
        assert "UTC" in table
    detail = text_of(marketing.get(f"/admin/sequences/{key}"))
    steps = detail.split('<ul class="timeline steps">')[1]
    assert steps.count("<li data-step=") == len(sequence.steps)
    if key == "consult-reminders":
        assert "1d before the consult; never after the consult\n" in steps
        assert "Asks the lead to confirm" in steps
        assert "Send window: Every day 08:00–21:00" in steps


def test_the_simulation_applies_each_samples_consent_and_state(program: Services) -> None:
    app = create_app(program)
    marketing = sign_in(app, program, "marketing")
    detail = marketing.get(
        "/admin/sequences/consult-nurture",
        {"sample": "Pacific lead, texts for appointments only", "start": "2026-03-09T09:00"},
    )
    body = text_of(detail)
    assert "skipped: no sms marketing consent" in body
    assert (
        "Mon–Sat 09:00–20:00, not on federal holidays; at most 3 per 24 h and 4 per 7 days" in body
    )
    assert "America/Los_Angeles" in body
    assert "1d after enrolment, at 10:00 their time" in body  # booking-nudge-email-1
    boise = text_of(marketing.get("/admin/sequences/consult-nurture"))
    assert "skipped: no sms marketing consent" not in boise
    assert "America/Boise" in boise


# Users -------------------------------------------------------------------------------------------


def test_an_admin_adds_and_updates_a_user(services: Services, admin: Browser) -> None:
    page = admin.get("/admin/users")
    assert page.status_code == 200
    assert "admin@clinic.example" in page.text and "(you)" in page.text
    token = admin.csrf("/admin/users")
    form = {
        "email": "New.Person@Clinic.Example",
        "role": "ops",
        "phone": "(208) 555-0188",
        "password": "a long enough password",
    }
    assert admin.post("/admin/users", form).status_code == 403
    done = admin.post("/admin/users", form, csrf=token)
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/users?notice=user-saved"
    listing = admin.get(done.headers["location"])
    assert "User saved." in listing.text
    assert "new.person@clinic.example" in listing.text and "+12085550188" in listing.text
    with services.sessions() as session:
        user = session.scalars(
            select(StaffUser).where(StaffUser.email == "new.person@clinic.example")
        ).one()
    assert user.role.value == "ops"
    assert "staff.user_saved" in audit_actions(services, admin.actor)

    again = admin.post("/admin/users", {**form, "role": "marketing"}, csrf=token)
    assert again.status_code == 303
    with services.sessions() as session:
        assert session.get_one(StaffUser, user.id).role.value == "marketing"


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"email": "x@clinic.example", "role": "ops", "password": "short"}, "at least 12"),
        ({"email": "x@clinic.example", "role": "ops", "password": "a" * 12}, "Repeats like"),
        ({"email": "x@clinic.example", "role": "ops", "password": " " * 12}, "Repeats like"),
        (
            {"email": "x@clinic.example", "role": "ops", "password": "Password1234"},
            "similar to a commonly used password",
        ),
        (
            {
                "email": "ann.lee@clinic.example",
                "role": "ops",
                "password": "ann.lee@clinic.example",
            },
            "built from the e-mail address",
        ),
        (
            # config/clinic.yaml names the clinic so
            {"email": "x@clinic.example", "role": "ops", "password": "Ketamine Infusions of Idaho"},
            "the clinic's name",
        ),
        ({"email": "nope", "role": "ops", "password": "long enough password"}, "e-mail"),
        ({"email": "x@clinic.example", "role": "boss", "password": "long enough password"}, "boss"),
        (
            {"email": "admin@clinic.example", "role": "ops", "password": "long enough pw!"},
            "own role",
        ),
    ],
)
def test_a_bad_user_form_is_a_422_page(
    services: Services, admin: Browser, form: dict[str, str], reason: str
) -> None:
    token = admin.csrf("/admin/users")
    response = admin.post("/admin/users", form, csrf=token)
    assert response.status_code == 422
    assert reason in text_of(response)
    assert 'value="' + html.escape(form["email"]) + '"' in response.text  # kept for a retry
    assert "staff.user_saved" not in audit_actions(services, admin.actor)
    with services.sessions() as session:
        roles = {u.email: u.role.value for u in session.scalars(select(StaffUser))}
    assert roles == {"admin@clinic.example": "admin"}


def test_an_admin_deactivates_a_user_but_not_themselves(
    app: FastAPI, services: Services, admin: Browser
) -> None:
    ops = sign_in(app, services, "ops")
    assert ops.get("/admin/leads").status_code == 200
    with services.sessions() as session:
        ops_id = session.scalars(select(StaffUser.id).where(StaffUser.email == ops.email)).one()
        admin_id = session.scalars(select(StaffUser.id).where(StaffUser.email == admin.email)).one()
    token = admin.csrf("/admin/users")

    assert admin.post(f"/admin/users/{ops_id}/deactivate").status_code == 403
    own = admin.post(f"/admin/users/{admin_id}/deactivate", csrf=token)
    assert own.status_code == 422
    assert "cannot deactivate your own account" in text_of(own)
    assert admin.post("/admin/users/999999/deactivate", csrf=token).status_code == 404

    done = admin.post(f"/admin/users/{ops_id}/deactivate", csrf=token)
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/users?notice=user-saved"
    with services.sessions() as session:
        assert session.get_one(StaffUser, ops_id).active is False
        assert session.get_one(StaffUser, admin_id).active is True
        assert (
            session.scalars(select(StaffSession).where(StaffSession.user_id == ops_id)).all() == []
        )
        entry = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "staff.user_deactivated")
        ).one()
    assert entry.actor == admin.actor and entry.details["email"] == ops.email
    # Signed out at once.
    assert ops.get("/admin/leads").status_code == 303


# The template studio: runaway and broken templates (issue 10, findings 4 and 6) ------------------

RUNAWAY = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
DID_NOT_HANG = 10.0  # seconds: a generous bound, never a measured duration


@pytest.fixture
def marketing(app: FastAPI, services: Services) -> Iterator[Browser]:
    browser = sign_in(app, services, "marketing")
    with browser.client:  # one event loop for every request, as under uvicorn
        yield browser


def preview(browser: Browser, body: bytes, path: str = "/admin/templates/sms/help-reply") -> Any:
    token = browser.csrf(path)
    return browser.client.post(
        f"{path}/preview",
        content=body,
        headers={"content-type": "application/json", "x-csrf-token": token},
    )


def test_a_runaway_preview_answers_422_quickly_while_healthz_answers(
    marketing: Browser,
) -> None:
    token = marketing.csrf("/admin/templates/sms/help-reply")
    body = json.dumps({"source": "{{ clinic.sms_program_name }}: " + RUNAWAY}).encode()
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            marketing.client.post,
            "/admin/templates/sms/help-reply/preview",
            content=body,
            headers={"content-type": "application/json", "x-csrf-token": token},
        )
        answered = 0
        while not running.done():
            assert marketing.client.get("/healthz").status_code == 200
            answered += 1
            time.sleep(0.05)
        response = running.result()
    assert time.monotonic() - started < DID_NOT_HANG
    assert answered >= 2  # the process kept answering while the render ran
    assert response.status_code == 422
    payload = response.json()
    assert "render budget exceeded: took longer than" in payload["error"]
    assert payload["findings"][0]["level"] == "error"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper"),
        (json.dumps({"source": "{{ lead.first_name|nope }}"}).encode(), "No filter named 'nope'"),
        (json.dumps({"source": "{{ 'a' * 10**9 }}"}).encode(), "render budget exceeded"),
    ],
    ids=["not-json", "too-deep", "unknown-filter", "huge-value"],
)
def test_a_bad_preview_is_a_422_with_the_reason(
    marketing: Browser, body: bytes, reason: str
) -> None:
    response = preview(marketing, body)
    assert response.status_code == 422, response.text
    assert reason in response.text


def test_a_draft_with_an_unknown_filter_opens_and_is_not_published(
    services: Services, marketing: Browser
) -> None:
    path = "/admin/templates/sms/booking-nudge"  # help-reply: only an admin publishes
    token = marketing.csrf(path)
    source = "{{ clinic.sms_program_name }}: {{ lead.first_name|nope }} Reply STOP to opt out."
    saved = marketing.post(f"{path}/drafts", {"source": source}, csrf=token)
    assert saved.status_code == 303, saved.text
    page = marketing.get(path)
    assert page.status_code == 200
    assert "unknown filter &#39;nope&#39;" in page.text or "unknown filter 'nope'" in text_of(page)
    version = re.search(r"version=(\d+)", saved.headers["location"])
    assert version is not None
    refused = marketing.post(f"{path}/publish", {"version": version.group(1)}, csrf=token)
    assert refused.status_code == 422
    assert "Not published" in text_of(refused) and "unknown filter 'nope'" in text_of(refused)
    assert "nope" not in services.templates.get(Channel.SMS, "booking-nudge").source


def test_a_runaway_draft_is_refused_at_publish(services: Services, marketing: Browser) -> None:
    path = "/admin/templates/sms/booking-nudge"  # help-reply: only an admin publishes
    token = marketing.csrf(path)
    source = (
        "{{ clinic.sms_program_name }}: {% if lead.stage == 'lost' %}" + RUNAWAY + "{% endif %}"
    )
    saved = marketing.post(f"{path}/drafts", {"source": source}, csrf=token)
    version = re.search(r"version=(\d+)", saved.headers["location"])
    assert version is not None
    started = time.monotonic()
    refused = marketing.post(f"{path}/publish", {"version": version.group(1)}, csrf=token)
    assert time.monotonic() - started < DID_NOT_HANG
    assert refused.status_code == 422
    assert "render budget exceeded" in text_of(refused)
    assert "range(99999)" not in services.templates.get(Channel.SMS, "booking-nudge").source


def test_rule_26_the_lead_page_says_everything_is_held_after_crisis_words(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services)
    with services.sessions.begin() as session:
        lead = session.get_one(Lead, lead_id)
        pauses.hold_for_crisis(session, lead, actor="test", now=clock.utcnow())
        pauses.pause_lead_marketing(
            session, lead, reason="crisis words in a text", actor="test", now=clock.utcnow()
        )
    page = text_of(ops.get(f"/admin/leads/{lead_id}"))
    assert "Everything is held" in page and "reminders included" in page
    token = ops.csrf(f"/admin/leads/{lead_id}")
    assert ops.post(f"/admin/leads/{lead_id}/resume", csrf=token).status_code == 303
    assert get_lead(services, lead_id).crisis_hold_at is None
    assert "Everything is held" not in text_of(ops.get(f"/admin/leads/{lead_id}"))
