"""Issue 14, "Leads": the front desk corrects a lead's name, zone, ZIP code and stage; every
change audited with before and after, bad input a 422 under its field with nothing saved, and
a new zone moving when pending texts may go (the gates read it at send time)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from sqlalchemy import select

from nurture.db.models import AuditEvent, Channel, LeadStage, MessageStatus, Purpose
from nurture.runtime import Services
from tests.db.test_admin_pages import Browser, app, audit_actions, get_lead, sign_in, text_of
from tests.support import outbox_files
from tests.support.factories import claim_and_send_all, messages_of, sign_up

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
        "zone": {"before": "America/Boise", "after": "America/Chicago"},
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
    assert entry.details["zone"] == {"before": "America/Boise", "after": "America/Los_Angeles"}
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
