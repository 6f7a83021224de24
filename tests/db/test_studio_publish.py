"""Issue 14, the studio: publishing and rolling back go through a review of the diff against
what is live; drafts can be deleted; texts with legal weight go live only by an admin; a
mistyped variable is named with its line and what exists instead."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from nurture import clock
from nurture.content import template_store
from nurture.db.models import AuditEvent, Channel, TemplateState
from nurture.runtime import Services
from tests.db.test_admin_pages import Browser, app, sign_in, text_of

__all__ = ["app"]

NUDGE = "/admin/templates/sms/confirm-reply"
HELP = "/admin/templates/sms/help-reply"


@pytest.fixture
def imported(services: Services) -> Services:
    """The shipped templates imported as version 1 of each, published."""
    with services.sessions.begin() as session:
        template_store.sync(session, services.templates.files, now=clock.utcnow())
    return services


@pytest.fixture
def marketing(app: FastAPI, services: Services) -> Iterator[Browser]:
    browser = sign_in(app, services, "marketing")
    yield browser
    browser.client.close()


@pytest.fixture
def admin(app: FastAPI, services: Services) -> Iterator[Browser]:
    browser = sign_in(app, services, "admin")
    yield browser
    browser.client.close()


def live_source(services: Services, key: str) -> str:
    """Without its final newline, so that a test can add a line with + "\\n…"."""
    return services.templates.get(Channel.SMS, key).source.rstrip("\n")


def save(browser: Browser, path: str, source: str, **extra: str) -> int:
    saved = browser.post(f"{path}/drafts", {"source": source, **extra}, csrf=browser.csrf(path))
    assert saved.status_code == 303, saved.text
    found = re.search(r"version=(\d+)", saved.headers["location"])
    assert found is not None
    return int(found.group(1))


def reviewed_token(page_html: str) -> str:
    found = re.search(r'name="reviewed" value="([^"]+)"', page_html)
    assert found, "the review page has no Confirm form"
    return found.group(1)


def changed_lines(page_html: str) -> dict[str, list[str]]:
    """The removed and added lines of a rendered diff, as text."""
    rows = re.findall(r'<tr class="(removed|added)">(.*?)</tr>', page_html, re.S)
    found: dict[str, list[str]] = {"removed": [], "added": []}
    for kind, row in rows:
        cell = re.search(
            r'<td class="text">(?:<del>|<ins>)?(.*?)(?:</del>|</ins>)?</td>', row, re.S
        )
        assert cell is not None
        found[kind].append(text_of_html(cell.group(1)))
    return found


def text_of_html(fragment: str) -> str:
    import html

    return html.unescape(fragment)


def audit_details(services: Services, action: str) -> list[dict[str, object]]:
    with services.sessions() as session:
        return [
            dict(e.details or {})
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        ]


# Publish: review first, against what is live -----------------------------------------------------


def test_the_review_shows_the_diff_against_live_not_against_the_previous_draft(
    imported: Services, marketing: Browser
) -> None:
    original = live_source(imported, "confirm-reply")
    first_line = original.splitlines()[0]
    save(marketing, NUDGE, original.replace(first_line, "An earlier draft nobody published."))
    second = save(marketing, NUDGE, original + "\nWe are here when you are ready.")
    page = marketing.get(f"{NUDGE}/publish", {"version": str(second)})
    assert page.status_code == 200, page.text
    lines = changed_lines(page.text)
    assert lines == {"removed": [], "added": ["We are here when you are ready."]}
    assert "An earlier draft nobody published." not in text_of(page)
    assert "Changes against live version 1" in text_of(page)
    assert 'aria-hidden="true">+</span><span class="visually-hidden">Added:</span>' in page.text
    assert live_source(imported, "confirm-reply") == original  # reviewing changes nothing


def test_with_nothing_imported_the_review_diffs_against_the_file(
    services: Services, marketing: Browser
) -> None:
    original = live_source(services, "confirm-reply")
    body = original.splitlines()[1]
    shorter = "{{ clinic.sms_program_name }}: Thank you for your reply. Reply STOP to opt out."
    version = save(marketing, NUDGE, original.replace(body, shorter))
    page = marketing.get(f"{NUDGE}/publish", {"version": str(version)})
    assert page.status_code == 200, page.text
    assert changed_lines(page.text) == {"removed": [body], "added": [shorter]}
    assert "the file in templates/ (live now)" in text_of(page)


def test_publishing_without_the_review_publishes_nothing_and_shows_the_review(
    imported: Services, marketing: Browser
) -> None:
    original = live_source(imported, "confirm-reply")
    version = save(marketing, NUDGE, original + "\nSee you soon.")
    token = marketing.csrf(NUDGE)
    unreviewed = marketing.post(f"{NUDGE}/publish", {"version": str(version)}, csrf=token)
    assert unreviewed.status_code == 422
    assert "Not published yet: check what would change, then confirm." in text_of(unreviewed)
    assert changed_lines(unreviewed.text)["added"] == ["See you soon."]
    assert live_source(imported, "confirm-reply") == original

    reviewed = reviewed_token(marketing.get(f"{NUDGE}/publish", {"version": str(version)}).text)
    confirmed = marketing.post(
        f"{NUDGE}/publish", {"version": str(version), "reviewed": reviewed}, csrf=token
    )
    assert confirmed.status_code == 303, confirmed.text
    assert confirmed.headers["location"].endswith(f"?version={version}&notice=published")
    assert live_source(imported, "confirm-reply") == original + "\nSee you soon."
    published = audit_details(imported, "template.published")[-1]
    assert published["version"] == version and published["reviewed_against"] == reviewed


def test_a_confirmation_for_a_live_version_that_has_since_changed_is_refused(
    imported: Services, marketing: Browser, admin: Browser
) -> None:
    original = live_source(imported, "confirm-reply")
    mine = save(marketing, NUDGE, original + "\nMine.")
    stale = reviewed_token(marketing.get(f"{NUDGE}/publish", {"version": str(mine)}).text)
    theirs = save(admin, NUDGE, original + "\nTheirs.")
    admin_token = reviewed_token(admin.get(f"{NUDGE}/publish", {"version": str(theirs)}).text)
    assert (
        admin.post(
            f"{NUDGE}/publish",
            {"version": str(theirs), "reviewed": admin_token},
            csrf=admin.csrf(NUDGE),
        ).status_code
        == 303
    )
    refused = marketing.post(
        f"{NUDGE}/publish", {"version": str(mine), "reviewed": stale}, csrf=marketing.csrf(NUDGE)
    )
    assert refused.status_code == 409
    assert "changed since you reviewed it" in text_of(refused)
    assert changed_lines(refused.text) == {"removed": ["Theirs."], "added": ["Mine."]}
    assert live_source(imported, "confirm-reply").endswith("Theirs.")


def test_save_and_publish_saves_then_opens_the_review(
    imported: Services, marketing: Browser
) -> None:
    editor = marketing.get(NUDGE)
    assert 'name="then" value="publish"' in editor.text and "Save and publish…" in editor.text
    original = live_source(imported, "confirm-reply")
    saved = marketing.post(
        f"{NUDGE}/drafts",
        {"source": original + "\nOne more line.", "then": "publish"},
        csrf=marketing.csrf(NUDGE),
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{NUDGE}/publish?version=2"
    assert live_source(imported, "confirm-reply") == original


def test_a_rollback_is_reviewed_against_live_too(imported: Services, marketing: Browser) -> None:
    original = live_source(imported, "confirm-reply")
    version = save(marketing, NUDGE, original + "\nA change.")
    token = marketing.csrf(NUDGE)
    first = reviewed_token(marketing.get(f"{NUDGE}/publish", {"version": str(version)}).text)
    marketing.post(f"{NUDGE}/publish", {"version": str(version), "reviewed": first}, csrf=token)

    review = marketing.get(f"{NUDGE}/publish", {"version": "1"})
    assert review.status_code == 200
    assert "Roll back sms/confirm-reply to version 1?" in text_of(review)
    assert changed_lines(review.text) == {"removed": ["A change."], "added": []}
    assert "Changes against live version 2" in text_of(review)
    unreviewed = marketing.post(f"{NUDGE}/publish", {"version": "1"}, csrf=token)
    assert unreviewed.status_code == 422 and live_source(imported, "confirm-reply").endswith(
        "A change."
    )
    done = marketing.post(
        f"{NUDGE}/publish", {"version": "1", "reviewed": reviewed_token(review.text)}, csrf=token
    )
    assert done.status_code == 303
    assert live_source(imported, "confirm-reply") == original


def test_a_version_with_lint_errors_has_no_confirm_button(
    imported: Services, marketing: Browser
) -> None:
    version = save(marketing, NUDGE, "Ask us about ketamine! Reply STOP to opt out.")
    review = marketing.get(f"{NUDGE}/publish", {"version": str(version)})
    assert review.status_code == 422
    assert "“ketamine” may not appear in a text" in text_of(review)
    assert 'name="reviewed"' not in review.text


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ({"version": "99"}, 404, "has no version 99"),
        ({"version": "two"}, 422, "a version number is required"),
        ({}, 422, "a version number is required"),
    ],
)
def test_a_bad_version_to_review_is_a_clear_4xx(
    imported: Services, marketing: Browser, query: dict[str, str], status: int, says: str
) -> None:
    page = marketing.get(f"{NUDGE}/publish", query)
    assert page.status_code == status
    assert says in text_of(page)


def test_publishing_needs_the_csrf_token(imported: Services, marketing: Browser) -> None:
    version = save(marketing, NUDGE, live_source(imported, "confirm-reply") + "\nX.")
    reviewed = reviewed_token(marketing.get(f"{NUDGE}/publish", {"version": str(version)}).text)
    forged = marketing.post(f"{NUDGE}/publish", {"version": str(version), "reviewed": reviewed})
    assert forged.status_code == 403
    assert not live_source(imported, "confirm-reply").endswith("X.")


# Deleting drafts ---------------------------------------------------------------------------------


def test_a_draft_is_deleted_after_a_confirmation_and_stays_in_history_struck_out(
    imported: Services, marketing: Browser
) -> None:
    original = live_source(imported, "confirm-reply")
    version = save(marketing, NUDGE, original + "\nNot this one.")
    confirm = marketing.get(f"{NUDGE}/versions/{version}/delete")
    assert confirm.status_code == 200
    assert "Delete draft 2 of sms/confirm-reply?" in text_of(confirm)
    assert "Not this one." in text_of(confirm)
    assert marketing.post(f"{NUDGE}/versions/{version}/delete").status_code == 403  # no CSRF
    deleted = marketing.post(f"{NUDGE}/versions/{version}/delete", csrf=marketing.csrf(NUDGE))
    assert deleted.status_code == 303
    assert deleted.headers["location"] == f"{NUDGE}?notice=draft-deleted"
    with imported.sessions() as session:
        row = template_store.get_version(session, Channel.SMS, "confirm-reply", version)
        assert row is not None and row.state is TemplateState.DELETED
    assert audit_details(imported, "template.draft_deleted") == [
        {"channel": "sms", "key": "confirm-reply", "version": version}
    ]
    editor = marketing.get(f"{NUDGE}?notice=draft-deleted")
    assert "Draft deleted." in text_of(editor)
    assert '<span class="state deleted">deleted</span>' in editor.text
    assert "Editing from version 1 (published)" in text_of(editor)  # not the deleted one
    # The next save gets a new number: the deleted one keeps its own.
    assert save(marketing, NUDGE, original + "\nAnother.") == version + 1


def test_only_a_draft_can_be_deleted_and_a_deleted_one_cannot_be_published(
    imported: Services, marketing: Browser
) -> None:
    token = marketing.csrf(NUDGE)
    published = marketing.post(f"{NUDGE}/versions/1/delete", csrf=token)
    assert published.status_code == 409
    assert "version 1 is published: only a draft that was never published" in text_of(published)
    assert marketing.get(f"{NUDGE}/versions/1/delete").status_code == 409
    assert marketing.post(f"{NUDGE}/versions/77/delete", csrf=token).status_code == 404

    version = save(marketing, NUDGE, live_source(imported, "confirm-reply") + "\nGone.")
    reviewed = reviewed_token(marketing.get(f"{NUDGE}/publish", {"version": str(version)}).text)
    marketing.post(f"{NUDGE}/versions/{version}/delete", csrf=token)
    again = marketing.post(f"{NUDGE}/versions/{version}/delete", csrf=token)
    assert again.status_code == 409 and "is deleted" in text_of(again)
    review = marketing.get(f"{NUDGE}/publish", {"version": str(version)})
    assert review.status_code == 409 and "is a deleted draft" in text_of(review)
    forced = marketing.post(
        f"{NUDGE}/publish", {"version": str(version), "reviewed": reviewed}, csrf=token
    )
    assert forced.status_code == 409
    assert not live_source(imported, "confirm-reply").endswith("Gone.")


# Texts with legal weight -------------------------------------------------------------------------


def test_marketing_drafts_a_legal_text_but_only_an_admin_publishes_it(
    imported: Services, marketing: Browser, admin: Browser
) -> None:
    original = live_source(imported, "help-reply")
    editor = marketing.get(HELP)
    assert "An admin must publish this one" in text_of(editor)
    assert "Save and publish…" not in editor.text and f"{HELP}/publish?" not in editor.text
    version = save(marketing, HELP, original.replace("Msg", "Msg") + "\nWe answer fast.")
    assert marketing.get(f"{HELP}/publish", {"version": str(version)}).status_code == 403

    review = admin.get(f"{HELP}/publish", {"version": str(version)})
    assert review.status_code == 200
    reviewed = reviewed_token(review.text)
    published_before = len(audit_details(imported, "template.published"))
    forged = marketing.post(
        f"{HELP}/publish",
        {"version": str(version), "reviewed": reviewed},
        csrf=marketing.csrf(HELP),
    )
    assert forged.status_code == 403
    assert "an admin must publish this one" in text_of(forged)
    assert live_source(imported, "help-reply") == original
    assert len(audit_details(imported, "template.published")) == published_before
    rollback = marketing.post(f"{HELP}/publish", {"version": "1"}, csrf=marketing.csrf(HELP))
    assert rollback.status_code == 403

    editor = admin.get(HELP)
    assert "An admin must publish this one" in text_of(editor)
    assert "Save and publish…" in editor.text
    done = admin.post(
        f"{HELP}/publish", {"version": str(version), "reviewed": reviewed}, csrf=admin.csrf(HELP)
    )
    assert done.status_code == 303
    assert live_source(imported, "help-reply").endswith("We answer fast.")


def test_marketing_may_delete_its_draft_of_a_legal_text(
    imported: Services, marketing: Browser
) -> None:
    version = save(marketing, HELP, live_source(imported, "help-reply") + "\nDraft.")
    deleted = marketing.post(f"{HELP}/versions/{version}/delete", csrf=marketing.csrf(HELP))
    assert deleted.status_code == 303


# Variables ---------------------------------------------------------------------------------------


def preview(browser: Browser, path: str, source: str) -> dict[str, object]:
    response = browser.client.post(
        f"{path}/preview",
        content=json.dumps({"source": source}).encode(),
        headers={"content-type": "application/json", "x-csrf-token": browser.csrf(path)},
    )
    assert response.status_code in (200, 422), response.text
    payload: dict[str, object] = response.json()
    return payload


def test_a_mistyped_variable_names_the_line_the_name_and_what_exists(
    imported: Services, marketing: Browser
) -> None:
    source = "Hi {{ lead.first_name }}!\n{{ lead.frist_name }}, {{ clinc.name }} here. Reply STOP."
    payload = preview(marketing, NUDGE, source)
    findings = payload["findings"]
    assert isinstance(findings, list)
    by_message = {f["message"]: f for f in findings}
    lead_hint = next(m for m in by_message if "lead.frist_name" in m)
    assert by_message[lead_hint]["line"] == 2 and by_message[lead_hint]["level"] == "error"
    assert "did you mean lead.first_name?" in lead_hint
    assert "lead has lead.attributes, lead.email, lead.first_name" in lead_hint
    clinic_hint = next(m for m in by_message if "'clinc'" in m)
    assert by_message[clinic_hint]["line"] == 2
    assert "did you mean clinic?" in clinic_hint

    version = save(marketing, NUDGE, source)
    editor = text_of(marketing.get(f"{NUDGE}?version={version}"))
    assert "(line 2): unknown name lead.frist_name: did you mean lead.first_name?" in editor
    review = marketing.get(f"{NUDGE}/publish", {"version": str(version)})
    assert review.status_code == 422
    assert "did you mean lead.first_name?" in text_of(review)
    assert 'name="reviewed"' not in review.text


def test_the_editor_lists_the_variables_the_context_offers_with_examples(
    imported: Services, marketing: Browser
) -> None:
    page = text_of(marketing.get(NUDGE))
    for group in ("lead", "clinic", "consult", "links"):
        assert f"<summary><code>{group}</code>" in page
    assert (
        '<code class="variable-name">{{ lead.first_name }}</code> '
        '<span class="example">Maximiliana</span>' in page
    )
    assert 'data-variable="clinic.name"' in page and 'data-variable="links.book"' in page
    assert 'data-variable="consult.when"' in page
    # A staff alert also offers alert.*; a lead's message does not.
    assert 'data-variable="alert.' not in page
    alert = text_of(marketing.get("/admin/templates/email/staff-reply-alert"))
    assert 'data-variable="alert.lead_name"' in alert
