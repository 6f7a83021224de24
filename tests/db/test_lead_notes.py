"""Issue 14, "Leads": staff notes on a lead, newest first on the page and in the story;
append-only (the database refuses a change), audited without their text, never logged."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from nurture.db.models import AuditEvent, LeadNote
from nurture.leads import notes
from nurture.runtime import Services
from tests.db.test_admin_pages import Browser, app, sign_in, text_of
from tests.support.factories import sign_up

__all__ = ["app"]  # the admin pages' app fixture

FIRST = "Called: prefers mornings, ask about her knee."
SECOND = "Left a voicemail\nabout the 10:00 slot."


@pytest.fixture
def ops(app: FastAPI, services: Services) -> Browser:
    return sign_in(app, services, "ops")


def test_notes_are_added_and_shown_newest_first_in_notes_and_story(
    services: Services, ops: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lead_id = sign_up(services)
    with freeze_time("2026-03-03 18:00:00", tick=True) as frozen:
        token = ops.csrf(f"/admin/leads/{lead_id}")
        first = ops.post(f"/admin/leads/{lead_id}/notes", {"text": FIRST}, csrf=token)
        assert first.status_code == 303
        assert first.headers["location"] == f"/admin/leads/{lead_id}?notice=note#notes"
        frozen.tick(timedelta(minutes=5))
        assert (
            ops.post(f"/admin/leads/{lead_id}/notes", {"text": SECOND}, csrf=token).status_code
            == 303
        )
        page = ops.get(f"/admin/leads/{lead_id}?notice=note")
    body = text_of(page)
    assert "Note added." in body
    notes_list = body[body.index('<ul class="notes">') :]
    assert notes_list.index("Left a voicemail") < notes_list.index(FIRST)  # newest first
    assert f"staff:{ops.email}" in notes_list
    story = body[body.index('<ul class="timeline story">') :]
    assert f"note by {ops.actor}: {FIRST}" in story
    assert story.index("Left a voicemail") < story.index(FIRST)

    with services.sessions() as session:
        kept = list(session.scalars(select(LeadNote).order_by(LeadNote.id)))
        entries = list(
            session.scalars(select(AuditEvent).where(AuditEvent.action == "lead.note_added"))
        )
    assert [n.text for n in kept] == [FIRST, SECOND]
    assert all(n.author == ops.actor and n.lead_id == lead_id for n in kept)
    assert [e.details for e in entries] == [
        {"note_id": kept[0].id, "length": len(FIRST)},
        {"note_id": kept[1].id, "length": len(SECOND)},
    ]
    # PII: the text is in no log line, whatever the level.
    assert caplog.records, "the note should have been logged by its id"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "prefers mornings" not in logged and "voicemail" not in logged
    assert f"note {kept[0].id} added" in logged


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("   ", "write something first"),
        ("x" * (notes.MAX_NOTE + 1), "keep it to 2,000 characters"),
        ("bad \x1b[31m escape", "invisible or control characters"),
    ],
)
def test_a_bad_note_is_a_422_with_the_reason_and_nothing_is_kept(
    services: Services, ops: Browser, text: str, says: str
) -> None:
    lead_id = sign_up(services)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    response = ops.post(f"/admin/leads/{lead_id}/notes", {"text": text}, csrf=token)
    assert response.status_code == 422
    assert re.search(r'id="note-error" role="alert">[^<]*' + re.escape(says), text_of(response))
    with services.sessions() as session:
        assert session.scalars(select(LeadNote)).all() == []
        assert (
            session.scalars(select(AuditEvent).where(AuditEvent.action == "lead.note_added")).all()
            == []
        )


def test_a_note_of_exactly_2000_characters_is_kept(services: Services, ops: Browser) -> None:
    lead_id = sign_up(services)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    text = "y" * notes.MAX_NOTE
    assert ops.post(f"/admin/leads/{lead_id}/notes", {"text": text}, csrf=token).status_code == 303
    with services.sessions() as session:
        assert [n.text for n in session.scalars(select(LeadNote))] == [text]


def test_a_note_needs_the_csrf_token_and_is_text_not_markup(
    services: Services, ops: Browser
) -> None:
    lead_id = sign_up(services)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    assert ops.post(f"/admin/leads/{lead_id}/notes", {"text": "hi"}).status_code == 403
    markup = "<script>alert('x')</script>"
    assert (
        ops.post(f"/admin/leads/{lead_id}/notes", {"text": markup}, csrf=token).status_code == 303
    )
    page = ops.get(f"/admin/leads/{lead_id}")
    assert markup not in page.text
    assert "&lt;script&gt;" in page.text


def test_notes_are_append_only_in_the_database(services: Services, ops: Browser) -> None:
    lead_id = sign_up(services)
    token = ops.csrf(f"/admin/leads/{lead_id}")
    ops.post(f"/admin/leads/{lead_id}/notes", {"text": FIRST}, csrf=token)
    for statement in (update(LeadNote).values(text="rewritten"), delete(LeadNote)):
        with pytest.raises(DBAPIError, match="append-only"), services.sessions.begin() as session:
            session.execute(statement)
    with services.sessions() as session:
        assert [n.text for n in session.scalars(select(LeadNote))] == [FIRST]
