"""Issue 14, "Leads": the front desk corrects a lead's name, zone, ZIP code and stage; every
change audited with before and after, bad input a 422 under its field with nothing saved, and
a new zone moving when pending texts may go (the gates read it at send time)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from sqlalchemy import select, update

from nurture import clock
from nurture.db.models import (
    AuditEvent,
    Channel,
    Lead,
    LeadStage,
    Message,
    MessageStatus,
    Purpose,
)
from nurture.leads.editing import apply_edit, parse_edit
from nurture.leads.intake import parse_signup, submit_signup
from nurture.program.sequences import load_catalog
from nurture.runtime import Services
from tests.conftest import REPO
from tests.db.test_admin_pages import Browser, app, audit_actions, get_lead, sign_in, text_of
from tests.db.test_sequence_versions import NEW_STEP, live_data, publish_data, sync, with_steps
from tests.support import outbox_files
from tests.support.factories import EVIDENCE, claim_and_send_all, messages_of, sign_up, signup_data

__all__ = ["app"]  # the admin pages' app fixture


def form_for(lead_id: uuid.UUID, services: Services, **changes: str) -> dict[str, str]:
    lead = get_lead(services, lead_id)
    values = {
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "timezone": lead.timezone or "",
        "postal_code": lead.postal_code or "",
        "stage": lead.stage.value,
    }
    values.update(changes)
    return values


def edits(services: Services, lead_id: uuid.UUID) -> list[AuditEvent]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.lead_id == lead_id, AuditEvent.action == "lead.edited"
                )
            )
        )


@pytest.fixture
def ops(app: FastAPI, services: Services) -> Browser:
    return sign_in(app, services, "ops")


def test_an_edit_is_saved_and_audited_field_by_field(services: Services, ops: Browser) -> None:
    lead_id = sign_up(services)  # Ana Rivera, ZIP 83402 (Idaho Falls, Mountain)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    form = form_for(
        lead_id,
        services,
        first_name="Anna",
        last_name="Rivera-Soto",
        timezone="America/Chicago",
        stage="patient",
    )
    done = ops.post(f"/admin/leads/{lead_id}/edit", form, csrf=token)
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/leads/{lead_id}?notice=edited"

    lead = get_lead(services, lead_id)
    assert (lead.first_name, lead.last_name) == ("Anna", "Rivera-Soto")
    assert lead.timezone == "America/Chicago" and lead.stage is LeadStage.PATIENT
    assert lead.postal_code == "83402"
    [entry] = edits(services, lead_id)
    assert entry.actor == ops.actor
    assert entry.details == {
        "first_name": {"before": "Ana", "after": "Anna"},
        "last_name": {"before": "Rivera", "after": "Rivera-Soto"},
        "timezone": {"before": None, "after": "America/Chicago"},
        "stage": {"before": "signed_up", "after": "patient"},
        "zone": {
            "before": "America/Boise",
            "after": "America/Chicago",
            "messages_retimed": 0,  # the fixture's sequence has no step at a local hour
        },
    }
    page = text_of(ops.get(done.headers["location"]))
    assert "Details saved." in page
    assert "America/Chicago" in page and "(set on purpose)" in page

    # The same form again changes nothing and records nothing.
    again = ops.post(f"/admin/leads/{lead_id}/edit", form, csrf=token)
    assert again.headers["location"].endswith("notice=unchanged")
    assert len(edits(services, lead_id)) == 1


def test_a_new_zip_code_moves_the_zone_and_state_when_no_zone_was_set_on_purpose(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services, timezone=None)  # ZIP 83402: Mountain, Idaho
    token = ops.csrf(f"/admin/leads/{lead_id}")
    done = ops.post(
        f"/admin/leads/{lead_id}/edit", form_for(lead_id, services, postal_code="98101"), csrf=token
    )
    assert done.status_code == 303
    lead = get_lead(services, lead_id)
    assert (lead.postal_code, lead.state, lead.timezone) == ("98101", "WA", None)
    [entry] = edits(services, lead_id)
    assert entry.details["postal_code"] == {"before": "83402", "after": "98101"}
    assert entry.details["state"] == {"before": "ID", "after": "WA"}
    assert entry.details["zone"] == {
        "before": "America/Boise",
        "after": "America/Los_Angeles",
        "messages_retimed": 0,  # the fixture's sequence has no step at a local hour
    }
    assert "from ZIP code 98101" in text_of(ops.get(f"/admin/leads/{lead_id}"))


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("timezone", "America/Atlantis", "unknown time zone 'America/Atlantis'"),
        ("timezone", "../../etc/passwd", "unknown time zone"),
        ("postal_code", "8340", "not a US ZIP code"),
        ("postal_code", "ABCDE", "not a US ZIP code"),
        ("stage", "vip", "choose one of signed_up"),
        ("first_name", "<b>Ana</b>", "just the name"),
        ("last_name", "x" * 101, "keep it to 100 characters"),
    ],
)
def test_bad_input_is_a_422_under_its_field_and_nothing_is_saved(
    services: Services, ops: Browser, field: str, value: str, says: str
) -> None:
    lead_id = sign_up(services)
    before = get_lead(services, lead_id)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    # A good change beside the bad one: it must not be saved either.
    good = {"stage": "patient"} if field != "stage" else {"first_name": "Anna"}
    form = form_for(lead_id, services, **good, **{field: value})
    response = ops.post(f"/admin/leads/{lead_id}/edit", form, csrf=token)
    assert response.status_code == 422
    under_field = re.search(rf'id="edit-{field}-error" role="alert">([^<]*)<', response.text)
    assert under_field is not None, response.text
    assert says in text_of(response)
    assert 'aria-invalid="true"' in response.text
    # What was typed is kept in the form, as text.
    assert "<b>Ana</b>" not in response.text
    after = get_lead(services, lead_id)
    assert (after.first_name, after.last_name, after.timezone, after.postal_code, after.stage) == (
        before.first_name,
        before.last_name,
        before.timezone,
        before.postal_code,
        before.stage,
    )
    assert edits(services, lead_id) == []


def test_an_edit_needs_the_csrf_token(services: Services, ops: Browser) -> None:
    lead_id = sign_up(services)
    ops.get(f"/admin/leads/{lead_id}")
    refused = ops.post(f"/admin/leads/{lead_id}/edit", form_for(lead_id, services, first_name="X"))
    assert refused.status_code == 403
    assert get_lead(services, lead_id).first_name == "Ana"
    assert "lead.edited" not in audit_actions(services, ops.actor)


# 13:30 UTC on Wednesday 4 March 2026: 08:30 in New York (EST), 05:30 in Los Angeles (PST).
HALF_PAST_EIGHT_IN_NEW_YORK = "2026-03-04 13:30:00"


@pytest.mark.parametrize("moved", [True, False])
def test_moving_a_lead_from_new_york_to_los_angeles_holds_a_pending_text_until_8_there(
    app: FastAPI, services: Services, moved: bool
) -> None:
    with freeze_time(HALF_PAST_EIGHT_IN_NEW_YORK, tick=True):
        ops = sign_in(app, services, "ops")
        lead_id = sign_up(
            services,
            email="nico@example.com",
            phone="+12125550143",
            postal_code="10001",
            timezone=None,
        )
        with services.sessions() as session:
            [text] = [m for m in messages_of(session, lead_id) if m.channel is Channel.SMS]
        assert text.status is MessageStatus.SCHEDULED and text.purpose is Purpose.OPTIN
        if moved:
            token = ops.csrf(f"/admin/leads/{lead_id}")
            form = form_for(lead_id, services, timezone="America/Los_Angeles")
            assert ops.post(f"/admin/leads/{lead_id}/edit", form, csrf=token).status_code == 303
        claim_and_send_all(services)

    with services.sessions() as session:
        [text] = [m for m in messages_of(session, lead_id) if m.channel is Channel.SMS]
    sent = outbox_files.texts(services.settings.resolved_outbox_dir)
    if not moved:
        # The control: at 08:30 in New York the text goes.
        assert text.status is MessageStatus.SENT and len(sent) == 1
        return
    assert sent == []
    assert text.status is MessageStatus.SCHEDULED
    # 08:00 in Los Angeles: 16:00 UTC.
    assert text.due_at == datetime(2026, 3, 4, 16, 0, tzinfo=UTC)
    assert "outside the allowed hours" in (text.last_error or "")
    # The stored times stay UTC: only where they are shown changes.
    assert get_lead(services, lead_id).created_at.tzinfo is not None


HOURLY_SEQUENCE = (
    (REPO / "tests/fixtures/sequences/basic-nurture.yaml").read_text()
    + """
  - key: next-morning
    channel: email
    purpose: marketing
    template: follow-up
    offset: 1d
    at: "10:00"
  - key: after-the-clocks-change
    channel: email
    purpose: marketing
    template: follow-up
    offset: 7d
    at: "09:00"
  - key: a-week-and-a-day
    channel: email
    purpose: marketing
    template: follow-up
    offset: 8d
    at: "09:30"
"""
)


def test_a_new_zone_moves_planned_local_hour_steps_to_that_hour_there(
    services: Services, tmp_path: Path
) -> None:
    """Boise to New York on March 3: "day 1 at 10:00" was 10:00 Mountain and becomes 10:00
    Eastern, two hours earlier in UTC, on both sides of the March 8 DST change; a row a rule
    moved since planning stays where the rule put it, and steps with no hour do not move."""
    (tmp_path / "basic-nurture.yaml").write_text(HOURLY_SEQUENCE)
    catalog = load_catalog(tmp_path, templates=services.templates.available())
    result = submit_signup(  # ZIP 83402, Mountain; the autouse clock is 2026-03-03 18:00
        services.sessions,
        parse_signup(signup_data()),
        EVIDENCE,
        catalog=catalog,
        clinic_zone=services.clinic.zone,
    )
    with services.sessions() as session:
        planned = {m.step_key: m for m in messages_of(session, result.lead_id)}
    hourly = ["next-morning", "after-the-clocks-change", "a-week-and-a-day"]
    assert all(planned[key].status is MessageStatus.SCHEDULED for key in hourly)
    deferred_to = planned["a-week-and-a-day"].due_at + timedelta(days=1)  # as a rule would
    with services.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id == planned["a-week-and-a-day"].id)
            .values(due_at=deferred_to)
        )

    with services.sessions.begin() as session:
        lead = session.get(Lead, result.lead_id, with_for_update=True)
        assert lead is not None
        edit = parse_edit(
            {
                "first_name": lead.first_name,
                "last_name": lead.last_name or "",
                "timezone": "America/New_York",
                "postal_code": lead.postal_code or "",
                "stage": lead.stage.value,
            }
        )
        changes = apply_edit(
            session,
            lead,
            edit,
            catalog=catalog,
            clinic_zone=services.clinic.zone,
            actor="staff:test",
            now=clock.utcnow(),
        )

    assert changes["zone"] == {
        "before": "America/Boise",
        "after": "America/New_York",
        "messages_retimed": 2,
    }
    with services.sessions() as session:
        now = {m.step_key: m for m in messages_of(session, result.lead_id)}
    eastern, mountain = ZoneInfo("America/New_York"), ZoneInfo("America/Boise")
    for key, hour in (("next-morning", time(10)), ("after-the-clocks-change", time(9))):
        due = now[key].due_at.astimezone(eastern)
        assert due.time() == hour and due.date() == planned[key].due_at.astimezone(mountain).date()
        assert planned[key].due_at - now[key].due_at == timedelta(hours=2)
        assert now[key].status is MessageStatus.SCHEDULED
        assert now[key].idempotency_key == planned[key].idempotency_key
    assert now["after-the-clocks-change"].due_at.astimezone(eastern).dst(), "after March 8"
    assert now["a-week-and-a-day"].due_at == deferred_to
    for key in ("optin-confirmation", "welcome", "follow-up"):
        assert now[key].due_at == planned[key].due_at, key


def test_a_returning_sign_up_that_chooses_a_zone_moves_them_too(
    services: Services, tmp_path: Path
) -> None:
    """The person signs up again and picks Eastern on the form: their next-morning e-mail
    goes at 10:00 Eastern, and the sign-up's audit entry says how many moved."""
    (tmp_path / "basic-nurture.yaml").write_text(HOURLY_SEQUENCE)
    catalog = load_catalog(tmp_path, templates=services.templates.available())

    def sign(**overrides: str) -> uuid.UUID:
        return submit_signup(
            services.sessions,
            parse_signup(signup_data(**overrides)),
            EVIDENCE,
            catalog=catalog,
            clinic_zone=services.clinic.zone,
        ).lead_id

    lead_id = sign()
    again = sign(chosen_timezone="America/New_York")
    assert again == lead_id
    with services.sessions() as session:
        rows = {m.step_key: m for m in messages_of(session, lead_id)}
        [entry] = session.scalars(
            select(AuditEvent).where(
                AuditEvent.lead_id == lead_id, AuditEvent.action == "lead.signed_up_again"
            )
        )
    due = rows["next-morning"].due_at.astimezone(ZoneInfo("America/New_York"))
    assert (due.date().isoformat(), due.time()) == ("2026-03-04", time(10))
    assert entry.details["messages_retimed"] == 3


def test_the_page_says_when_planned_messages_moved_with_the_zone(
    services: Services, ops: Browser
) -> None:
    sync(services)
    publish_data(services, with_steps(live_data(services), NEW_STEP))  # day 1 at 10:00
    lead_id = sign_up(services)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    form = form_for(lead_id, services, timezone="America/New_York")
    done = ops.post(f"/admin/leads/{lead_id}/edit", form, csrf=token)
    assert done.headers["location"] == f"/admin/leads/{lead_id}?notice=edited-retimed"
    assert "now go at that hour in the new time zone" in text_of(ops.get(done.headers["location"]))
    [entry] = edits(services, lead_id)
    assert entry.details["zone"]["messages_retimed"] == 1
