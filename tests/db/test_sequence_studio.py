"""Issue 15 §1, the sequence studio on the web: edit a sequence in a form (what the form posts
is read back from the rendered page, as a browser would), save drafts with their problems next
to the fields they name, review then publish, roll back, delete drafts; roles and CSRF.

Tests that need nurture.outbox.version_moves (the change preview and the move) are marked in
their names: ``..._preview_...`` and ``..._move_...``."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from nurture import clock
from nurture.content import template_store
from nurture.db.models import (
    AuditEvent,
    Enrollment,
    EnrollmentStatus,
    SequenceVersion,
    TemplateState,
)
from nurture.program import sequence_store
from nurture.program.sequences import Sequence
from nurture.runtime import Services
from tests.db.test_admin_pages import Browser, app, sign_in
from tests.support.factories import messages_of, sign_up

__all__ = ["app"]

KEY = "basic-nurture"
SEQ = f"/admin/sequences/{KEY}"
EDIT = f"{SEQ}/edit"


@pytest.fixture
def imported(services: Services) -> Services:
    """The test program's sequence files (and the templates) imported and published."""
    with services.sessions.begin() as session:
        template_store.sync(session, services.templates.files, now=clock.utcnow())
        sequence_store.sync(
            session,
            services.settings.config_dir / "sequences",
            templates=services.templates.available(),
            now=clock.utcnow(),
        )
    return services


@pytest.fixture
def marketing(app: FastAPI, imported: Services) -> Iterator[Browser]:
    browser = sign_in(app, imported, "marketing")
    yield browser
    browser.client.close()


@pytest.fixture
def ops(app: FastAPI, imported: Services) -> Iterator[Browser]:
    browser = sign_in(app, imported, "ops")
    yield browser
    browser.client.close()


class _FormReader(HTMLParser):
    """The fields a browser would submit from the form with id ``form_id`` (no button)."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button"):
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select" and a.get("name"):
            self._select, self._options = a["name"], []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            chosen = next((v for v, sel in self._options if sel), None)
            if chosen is None and self._options:
                chosen = self._options[0][0]
            self.fields.append((self._select, chosen or ""))
            self._select = None


class Fields:
    """An editor form's fields, to change and post back."""

    def __init__(self, page: str) -> None:
        reader = _FormReader("sequence-form")
        reader.feed(page)
        self.items = reader.fields
        assert any(name == "csrf" for name, _ in self.items), "no editor form on the page"

    def get(self, name: str) -> str | None:
        return next((v for n, v in self.items if n == name), None)

    def set(self, name: str, value: str) -> Fields:
        if any(n == name for n, _ in self.items):
            self.items = [(n, value if n == name else v) for n, v in self.items]
        else:
            self.items.append((name, value))
        return self

    def drop(self, name: str) -> Fields:
        self.items = [(n, v) for n, v in self.items if n != name]
        return self

    def step_keys(self) -> list[str]:
        return [v for n, v in self.items if re.fullmatch(r"steps-\d+-key", n)]


def editor(browser: Browser, url: str = EDIT) -> tuple[str, Fields]:
    page = browser.get(url)
    assert page.status_code == 200, page.text
    return page.text, Fields(page.text)


def post_items(browser: Browser, url: str, items: list[tuple[str, str]]) -> Any:
    """A form post with repeated names (exit_on), encoded as a browser encodes it."""
    return browser.client.post(
        url,
        content=urlencode(items),
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def post_form(browser: Browser, fields: Fields, action: str = "save") -> Any:
    return post_items(browser, f"{SEQ}/drafts", [*fields.items, ("action", action)])


def save(browser: Browser, fields: Fields) -> int:
    response = post_form(browser, fields)
    assert response.status_code == 303, response.text
    found = re.search(r"version=(\d+)", response.headers["location"])
    assert found is not None
    return int(found.group(1))


def row(services: Services, version: int) -> SequenceVersion:
    with services.sessions() as session:
        found = sequence_store.get_version(session, KEY, version)
        assert found is not None
        session.expunge(found)
        return found


def parsed(services: Services, version: int) -> Sequence:
    return sequence_store.parse(
        row(services, version).source, KEY, version, templates=services.templates.available()
    )


def live_version(services: Services) -> int:
    with services.sessions() as session:
        live = sequence_store.published(session, KEY)
        assert live is not None
        return live.version


def add_extra_step(browser: Browser) -> int:
    """Marketing adds an e-mail step after the welcome and saves: the new version's number."""
    _page, fields = editor(browser)
    after = post_form(browser, fields, "add-after-1")
    assert after.status_code == 200
    fields = Fields(after.text)
    assert fields.step_keys() == ["optin-confirmation", "welcome", "", "follow-up"]
    fields.set("steps-2-key", "extra-nudge").set("steps-2-channel", "email")
    fields.set("steps-2-purpose", "marketing").set("steps-2-template", "follow-up")
    fields.set("steps-2-offset", "1d").set("steps-2-at", "10:00")
    return save(browser, fields)


def audit_count(services: Services, action: str) -> int:
    with services.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
            )
            or 0
        )


def confirm(
    browser: Browser, version: int, *, reviewed: str, enrolments: str = "keep", csrf: str = ""
) -> Any:
    return browser.post(
        f"{SEQ}/versions/{version}/publish",
        {"reviewed": reviewed, "enrolments": enrolments},
        csrf=csrf or browser.csrf(EDIT),
    )


def reviewed_of(page: str) -> str:
    found = re.search(r'name="reviewed" value="([^"]+)"', page)
    assert found, "the review page has no Confirm form"
    return found.group(1)


# -- the form ----------------------------------------------------------------------------


def test_the_form_round_trips_to_the_intended_sequence(
    marketing: Browser, imported: Services
) -> None:
    page, fields = editor(marketing)
    assert f'<code id="sequence-key">{KEY}</code>' in page
    assert 'name="key"' not in page  # the key is shown, not editable
    assert '<datalist id="templates-email">' in page and '<option value="follow-up">' in page
    live = parsed(imported, 1)

    # Change a field, then add a step: the re-rendered form keeps what was typed.
    fields.set("name", "Basic nurture, edited").set("steps-2-offset", "3d")
    fields.set("cooldown", "7d").set("reenter", "1").set("exit_on", "consult_booked")
    fields.items.append(("exit_on", "no_show"))
    added = post_form(marketing, fields, "add")
    assert added.status_code == 200
    fields = Fields(added.text)
    assert fields.get("steps-2-offset") == "3d" and fields.get("name") == "Basic nurture, edited"
    assert fields.step_keys() == ["optin-confirmation", "welcome", "follow-up", ""]
    fields.set("steps-3-key", "last-word").set("steps-3-channel", "sms")
    fields.set("steps-3-purpose", "marketing").set("steps-3-template", "booking-nudge")
    fields.set("steps-3-offset", "5d").set("steps-3-at", "11:30")
    fields.set("steps-3-when", "lead.stage == 'signed_up'")
    fields.set("note", "a last text")
    with imported.sessions() as session:
        before = len(sequence_store.versions(session, KEY))
    version = save(marketing, fields)
    assert version == before + 1

    expected = live.model_copy(
        update={
            "name": "Basic nurture, edited",
            "version": version,
            "reenter": True,
            "cooldown": parsed(imported, version).cooldown,
            "exit_on": ["consult_booked", "no_show"],
            "steps": [
                live.steps[0],
                live.steps[1],
                live.steps[2].model_copy(
                    update={"offset": parsed(imported, version).steps[2].offset}
                ),
                parsed(imported, version).steps[3],
            ],
        }
    )
    got = parsed(imported, version)
    assert got == expected
    assert got.cooldown.days == 7 and got.steps[2].offset.days == 3
    last = got.steps[3]
    assert (last.key, last.channel.value, last.template, last.when) == (
        "last-word",
        "sms",
        "booking-nudge",
        "lead.stage == 'signed_up'",
    )
    assert last.at is not None and last.at.strftime("%H:%M") == "11:30"
    saved = row(imported, version)
    assert saved.state is TemplateState.DRAFT and saved.note == "a last text"
    assert saved.author == marketing.actor
    # The YAML is written in the files' field order.
    assert saved.source.index("key: basic-nurture") < saved.source.index("name:")
    assert saved.source.index("trigger:") < saved.source.index("steps:")
    # The editor opens on the new draft by default and says it is valid.
    page, again = editor(marketing)
    assert f"Editing from version {version} (draft)" in page and 'id="no-problems"' in page
    assert again.step_keys() == ["optin-confirmation", "welcome", "follow-up", "last-word"]
    assert live_version(imported) == 1  # nothing published by a save


def test_add_remove_and_reorder_steps_without_saving(
    marketing: Browser, imported: Services
) -> None:
    _page, fields = editor(marketing)
    with imported.sessions() as session:
        before = len(sequence_store.versions(session, KEY))
    fields.set("steps-0-when", "lead.stage == 'signed_up'")  # typed, not saved yet
    moved = Fields(post_form(marketing, fields, "down-0").text)
    assert moved.step_keys() == ["welcome", "optin-confirmation", "follow-up"]
    assert moved.get("steps-1-when") == "lead.stage == 'signed_up'"  # it moved with its step
    up = Fields(post_form(marketing, moved, "up-2").text)
    assert up.step_keys() == ["welcome", "follow-up", "optin-confirmation"]
    removed = Fields(post_form(marketing, up, "remove-0").text)
    assert removed.step_keys() == ["follow-up", "optin-confirmation"]
    variant = Fields(post_form(marketing, removed, "add-variant-0").text)
    assert variant.get("steps-0-variants-0-template") == "follow-up"
    assert variant.get("steps-0-variants-1-name") == ""
    assert variant.get("steps-0-template") is None  # the template became variant A
    with imported.sessions() as session:
        assert len(sequence_store.versions(session, KEY)) == before  # nothing saved
    version = save(marketing, removed)
    assert [s.key for s in parsed(imported, version).steps] == ["follow-up", "optin-confirmation"]


def test_problems_are_shown_next_to_the_field_they_name(
    marketing: Browser, imported: Services
) -> None:
    _page, fields = editor(marketing)
    fields.set("steps-1-offset", "2x").set("name", "")
    version = save(marketing, fields)  # saved anyway: every save is a version
    assert row(imported, version).state is TemplateState.DRAFT
    page, _fields = editor(marketing, f"{EDIT}?version={version}")

    def summary() -> str:
        found = re.search(r'<div class="error-box problems-summary".*?</div>', page, re.S)
        assert found is not None
        return html.unescape(found.group(0))

    def field_block(field_id: str) -> str:
        found = re.search(rf'<div class="field" id="f-{field_id}">(.*?)</div>', page, re.S)
        assert found is not None, field_id
        return html.unescape(found.group(1))

    assert "steps[1] (welcome).offset: bad duration '2x'" in summary()
    assert "2 problems" in summary()
    assert "bad duration '2x'" in field_block("steps-1-offset")
    assert "bad duration" not in field_block("steps-0-offset")
    assert "bad duration" not in field_block("steps-2-offset")
    assert "Field required" in field_block("name")
    assert "Field required" not in field_block("steps-1-offset")
    assert 'id="f-steps-1" data-step="1"' in page
    assert page.count('class="step has-problems"') == 1

    # Templates are checked once the rest is valid: the missing one lands on its own field.
    _page, fields = editor(marketing, f"{EDIT}?version=1")
    version = save(marketing, fields.set("steps-2-template", "no-such-template"))
    page, _fields = editor(marketing, f"{EDIT}?version={version}")
    assert "no email template 'no-such-template'" in field_block("steps-2-template")
    assert "no email template" not in field_block("steps-1-template")
    assert "1 problem" in summary()


def test_hostile_strings_are_data(marketing: Browser, imported: Services) -> None:
    _page, fields = editor(marketing)
    fields.set("name", "<script>alert(1)</script>")
    fields.set("steps-0-when", "</script><script>alert(2)</script>")
    fields.set("steps-1-key", 'x") (y: <b>')
    version = save(marketing, fields)
    page = marketing.get(f"{EDIT}?version={version}").text
    assert "<script>alert" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # The odd key still lets its problems land on its own step.
    assert re.search(r'id="f-steps-1-key">.*?field-problem', page, re.S)
    with imported.sessions() as session:
        stored = sequence_store.get_version(session, KEY, version)
        assert stored is not None and "<script>alert(1)</script>" in stored.source


def test_bad_input_is_answered_not_crashed(marketing: Browser, imported: Services) -> None:
    csrf = marketing.csrf(EDIT)
    assert marketing.get(f"{EDIT}?version=999").status_code == 404
    assert marketing.get("/admin/sequences/no-such/edit").status_code == 404
    assert marketing.get(f"{SEQ}/diff?a=1&b=999").status_code == 404
    assert marketing.get(f"{SEQ}/diff").status_code == 422
    assert marketing.get(f"{SEQ}/versions/999/review").status_code == 404
    assert marketing.get(f"{SEQ}?version=999").status_code == 404
    forged = marketing.post(f"{SEQ}/drafts", {"action": "explode-3"}, csrf=csrf)
    assert forged.status_code == 422
    assert marketing.post(f"{SEQ}/drafts", {"action": "remove-7"}, csrf=csrf).status_code == 422
    many = {f"steps-{n}-key": f"s{n}" for n in range(100)}
    assert marketing.post(f"{SEQ}/drafts", many, csrf=csrf).status_code == 422
    no_choice = marketing.post(f"{SEQ}/versions/1/publish", {"reviewed": "1"}, csrf=csrf)
    assert no_choice.status_code == 422
    assert confirm(marketing, 999, reviewed="1").status_code == 404


# -- publishing ----------------------------------------------------------------------------


def test_publish_is_refused_while_the_version_is_invalid(
    marketing: Browser, imported: Services
) -> None:
    _page, fields = editor(marketing)
    version = save(marketing, fields.set("steps-1-offset", "soon"))
    review = marketing.get(f"{SEQ}/versions/{version}/review")
    assert review.status_code == 409
    assert "bad duration &#39;soon&#39;" in review.text or "bad duration 'soon'" in review.text
    assert 'name="reviewed"' not in review.text
    published_before = audit_count(imported, "sequence.published")
    refused = confirm(marketing, version, reviewed="1")
    assert refused.status_code == 409
    assert "bad duration" in html.unescape(refused.text)
    assert live_version(imported) == 1
    assert row(imported, version).state is TemplateState.DRAFT
    assert audit_count(imported, "sequence.published") == published_before


def test_a_stale_review_is_refused_with_409(marketing: Browser, imported: Services) -> None:
    first = add_extra_step(marketing)
    _page, fields = editor(marketing, f"{EDIT}?version=1")
    second = save(marketing, fields.set("name", "Another edit"))
    page = marketing.get(f"{SEQ}/versions/{first}/review")
    assert page.status_code == 200 and reviewed_of(page.text) == "1"
    # Someone else publishes the second draft meanwhile.
    assert confirm(marketing, second, reviewed="1").status_code == 303
    stale = confirm(marketing, first, reviewed=reviewed_of(page.text))
    assert stale.status_code == 409
    assert "changed since your review" in stale.text
    assert live_version(imported) == second
    assert row(imported, first).state is TemplateState.DRAFT


def test_after_publish_the_next_lead_is_planned_with_the_new_step(
    marketing: Browser, imported: Services
) -> None:
    version = add_extra_step(marketing)
    before = sign_up(imported, email="before@example.com", phone="+12085550101")
    page = marketing.get(f"{SEQ}/versions/{version}/review")
    assert page.status_code == 200
    assert "extra-nudge" in html.unescape(page.text)  # in the YAML diff against live
    assert 'value="keep" id="enrolments-keep" checked' in page.text
    done = confirm(marketing, version, reviewed=reviewed_of(page.text))
    assert done.status_code == 303
    assert done.headers["location"] == f"{SEQ}?published={version}"
    notice = marketing.get(done.headers["location"])
    assert f"Published version {version}." in notice.text
    assert live_version(imported) == version
    assert audit_count(imported, "sequence.published") >= 2

    after = sign_up(imported, email="after@example.com", phone="+12085550102")
    with imported.sessions() as session:
        new_steps = {m.step_key for m in messages_of(session, after)}
        old_steps = {m.step_key for m in messages_of(session, before)}
        enrolment = session.scalars(
            select(Enrollment).where(Enrollment.lead_id == after, Enrollment.sequence_key == KEY)
        ).one()
        assert enrolment.sequence_version == version
    assert "extra-nudge" in new_steps
    assert "extra-nudge" not in old_steps  # kept on version 1


def test_a_rollback_restores_the_old_steps(marketing: Browser, imported: Services) -> None:
    version = add_extra_step(marketing)
    review = marketing.get(f"{SEQ}/versions/{version}/review")
    assert confirm(marketing, version, reviewed=reviewed_of(review.text)).status_code == 303
    history = marketing.get(f"{SEQ}/history").text
    assert "Roll back to this…" in history
    back = marketing.get(f"{SEQ}/versions/1/review")
    assert back.status_code == 200 and "Roll back basic-nurture to version 1?" in back.text
    assert re.search(r'<tr class="removed">.*?extra-nudge', back.text, re.S)
    assert confirm(marketing, 1, reviewed=reviewed_of(back.text)).status_code == 303
    live = live_version(imported)
    assert live == version + 1  # a copy, nothing overwritten
    assert parsed(imported, live).steps == parsed(imported, 1).steps
    assert imported.catalog.by_key[KEY].steps == parsed(imported, 1).steps
    lead = sign_up(imported, email="later@example.com", phone="+12085550103")
    with imported.sessions() as session:
        assert "extra-nudge" not in {m.step_key for m in messages_of(session, lead)}
    assert "rollback to version 1" in marketing.get(f"{SEQ}/history").text


def test_a_deleted_draft_cannot_be_published(marketing: Browser, imported: Services) -> None:
    version = add_extra_step(marketing)
    page = marketing.get(f"{SEQ}/versions/{version}/delete")
    assert page.status_code == 200 and "extra-nudge" in page.text
    deleted = marketing.post(
        f"{SEQ}/versions/{version}/delete", csrf=marketing.csrf(f"{SEQ}/versions/{version}/delete")
    )
    assert deleted.status_code == 303
    assert row(imported, version).state is TemplateState.DELETED
    assert marketing.get(f"{SEQ}/versions/{version}/review").status_code == 409
    assert confirm(marketing, version, reviewed="1").status_code == 409
    assert marketing.get(f"{SEQ}/versions/{version}/delete").status_code == 409
    assert marketing.get(f"{SEQ}/versions/1/delete").status_code == 409  # published: never
    assert live_version(imported) == 1


def test_a_draft_can_be_simulated_and_the_page_links_to_it(
    marketing: Browser, ops: Browser, imported: Services
) -> None:
    version = add_extra_step(marketing)
    live_page = marketing.get(SEQ).text
    assert 'id="edit-sequence"' in live_page and 'id="sequence-history"' in live_page
    assert f'href="{SEQ}?version={version}"' in live_page  # the newer-draft note
    draft_page = marketing.get(f"{SEQ}?version={version}")
    assert draft_page.status_code == 200
    assert "draft, not live" in draft_page.text and 'data-step="extra-nudge"' in draft_page.text
    assert f'name="version" value="{version}"' in draft_page.text  # the simulation keeps it
    ops_page = ops.get(SEQ).text
    assert 'id="edit-sequence"' not in ops_page and 'id="sequence-history"' in ops_page
    assert ops.get(f"{SEQ}?version={version}").status_code == 200
    assert ops.get(f"{SEQ}/history").status_code == 200
    assert "Publish…" not in ops.get(f"{SEQ}/history").text


# -- roles and CSRF ------------------------------------------------------------------------


def test_ops_may_look_but_not_edit(ops: Browser, marketing: Browser, imported: Services) -> None:
    version = add_extra_step(marketing)
    csrf = ops.csrf(SEQ)
    for url in (EDIT, f"{SEQ}/versions/{version}/review", f"{SEQ}/versions/{version}/delete"):
        assert ops.get(url).status_code == 403, url
    with imported.sessions() as session:
        audits = session.scalar(select(func.count()).select_from(AuditEvent))
    _page, fields = editor(marketing)
    posts = {
        f"{SEQ}/drafts": dict(fields.items),
        f"{SEQ}/versions/{version}/publish": {"reviewed": "1", "enrolments": "keep"},
        f"{SEQ}/versions/{version}/delete": {},
    }
    for url, data in posts.items():
        data = {**data, "csrf": csrf}
        assert ops.client.post(url, data=data, follow_redirects=False).status_code == 403, url
    with imported.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == audits
    assert live_version(imported) == 1 and row(imported, version).state is TemplateState.DRAFT


def test_every_post_needs_the_csrf_token(marketing: Browser, imported: Services) -> None:
    version = add_extra_step(marketing)
    _page, fields = editor(marketing)
    with imported.sessions() as session:
        count = len(sequence_store.versions(session, KEY))
    without = fields.drop("csrf")
    assert post_form(marketing, without).status_code == 403
    for url in (f"{SEQ}/versions/{version}/publish", f"{SEQ}/versions/{version}/delete"):
        answer = marketing.post(url, {"reviewed": "1", "enrolments": "keep", "csrf": "forged"})
        assert answer.status_code == 403, url
    with imported.sessions() as session:
        assert len(sequence_store.versions(session, KEY)) == count
    assert live_version(imported) == 1 and row(imported, version).state is TemplateState.DRAFT


# -- needs nurture.outbox.version_moves ------------------------------------------------------


def test_review_preview_lists_enrolled_leads_changes(
    marketing: Browser, imported: Services
) -> None:
    sign_up(imported, first_name="Maria", last_name="Gonzales")
    version = add_extra_step(marketing)
    page = marketing.get(f"{SEQ}/versions/{version}/review")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert 'class="count-active">1<' in text and 'class="count-changed">1<' in text
    assert "Maria G." in text and "extra-nudge" in text
    assert "MST" in text or "MDT" in text  # the lead's own zone


def test_publish_with_move_moves_enrolled_leads(marketing: Browser, imported: Services) -> None:
    lead = sign_up(imported)
    version = add_extra_step(marketing)
    page = marketing.get(f"{SEQ}/versions/{version}/review")
    done = confirm(marketing, version, reviewed=reviewed_of(page.text), enrolments="move")
    assert done.status_code == 303
    assert "moved=1" in done.headers["location"]
    with imported.sessions() as session:
        enrolment = session.scalars(
            select(Enrollment).where(
                Enrollment.lead_id == lead,
                Enrollment.sequence_key == KEY,
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
        ).one()
        assert enrolment.sequence_version == version
        assert "extra-nudge" in {m.step_key for m in messages_of(session, lead)}
