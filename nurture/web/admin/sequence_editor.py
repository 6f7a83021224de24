"""The sequence studio (issue 15 §1): edit a sequence in a form, save drafts (every save a
version, valid or not, with its problems shown next to the fields they name), history and
diffs, review then publish (the YAML diff against live and what it changes for the leads
enrolled now), roll back, delete drafts.

Like the template studio: publishing is two steps, a review page then a Confirm naming the live
version it was reviewed against (409 when that changed meanwhile). Marketing and admins edit
and publish; ops may look at the history and diffs only. Handlers are plain ``def`` (they run
in the thread pool); only reading the form is async, in a dependency.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from nurture import clock
from nurture.config.yamlconf import ConfigError
from nurture.content.staff_time import utc_text
from nurture.db.models import Channel, SequenceVersion, StaffRole, TemplateState
from nurture.db.versioning import VersionStateError
from nurture.outbox import version_moves
from nurture.preview import sequence_form
from nurture.preview.source_diff import hunks
from nurture.program import sequence_store
from nurture.program.sequences import Anchor, LifecycleEvent, Sequence
from nurture.runtime import Services
from nurture.web.admin.auth import SequencesStaff, Staff, check_csrf
from nurture.web.admin.staff_page import render
from nurture.web.deps import ServicesDep

router = APIRouter(prefix="/sequences")

# Who may edit and publish a sequence (ops may look): as for promoting a variant.
MAY_EDIT = (StaffRole.ADMIN, StaffRole.MARKETING)
MAX_SOURCE = 100_000
MAX_NOTE = 500
PURPOSES = ("care", "marketing", "optin", "alert")


async def _read_form(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(_read_form)]


def may_edit(who: Staff) -> bool:
    return who.user.role in MAY_EDIT


def _editor_only(who: Staff) -> None:
    if not may_edit(who):
        raise HTTPException(403, f"your role ({who.user.role.value}) cannot edit sequences")


def _known(services: Services, key: str) -> str:
    """The key of a sequence that exists (published, or still only a file); 404 otherwise."""
    if key in services.catalog.by_key:
        return key
    with services.sessions() as session:
        if sequence_store.versions(session, key):
            return key
    raise HTTPException(404, f"no sequence {key[:64]!r}")


def _templates(services: Services) -> set[tuple[Channel, str]]:
    return services.templates.available()


def _form_of(source: str) -> sequence_form.SequenceForm:
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError:
        data = None
    return sequence_form.from_data(data)


def _normal(source: str, key: str) -> str:
    """A version's YAML as the editor writes it, without its number: comparing two of these
    shows what changed in the sequence, not in comments, layout or the version line."""
    data = sequence_form.to_data(_form_of(source), key, 1)
    del data["version"]
    return sequence_store.to_source(data)


def _choices(services: Services) -> dict[str, Any]:
    available = _templates(services)
    return {
        "events": [e.value for e in LifecycleEvent],
        "anchors": [a.value for a in Anchor],
        "channels": [c.value for c in Channel],
        "purposes": PURPOSES,
        "template_lists": {
            c.value: sorted(key for channel, key in available if channel is c) for c in Channel
        },
    }


def _editor(
    request: Request,
    services: Services,
    who: Staff,
    key: str,
    *,
    version: int | None,
    form: sequence_form.SequenceForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with services.sessions() as session:
        history = sequence_store.versions(session, key)
    live = next((v for v in history if v.state is TemplateState.PUBLISHED), None)
    if version is not None:
        current = next((v for v in history if v.version == version), None)
        if current is None:
            raise HTTPException(404, f"sequence {key} has no version {version}")
    else:  # the newest draft newer than live, else live
        newer = [
            v
            for v in history
            if v.state is TemplateState.DRAFT and (live is None or v.version > live.version)
        ]
        current = newer[0] if newer else live
    placed: list[sequence_form.PlacedProblem] = []
    if form is None:
        if current is not None:
            form = _form_of(current.source)
            problems = sequence_store.problems_of(
                current.source, key, current.version, templates=_templates(services)
            )
            placed = sequence_form.place(problems, form)
        else:  # not imported yet: what the file says
            shipped = services.catalog.by_key.get(key)
            form = sequence_form.from_data(
                sequence_form.sequence_data(shipped) if shipped is not None else None
            )
    return render(
        request,
        who,
        "sequence_edit.html",
        {
            "key": key,
            "form": form,
            "current": current,
            "live": live,
            "stored": bool(history),
            "problems": placed,
            "at_field": sequence_form.by_field(placed),
            "bad_steps": {
                int(p.field_id.split("-")[1]) for p in placed if p.field_id.startswith("steps-")
            },
            "errors": errors or [],
            **_choices(services),
        },
        status_code=status,
    )


@router.get("/{key}/edit", response_class=HTMLResponse)
def edit(
    request: Request,
    key: str,
    services: ServicesDep,
    who: SequencesStaff,
    version: int | None = None,
) -> HTMLResponse:
    _editor_only(who)
    key = _known(services, key)
    return _editor(request, services, who, key, version=version)


@router.post("/{key}/drafts")
def save(
    request: Request, key: str, services: ServicesDep, who: SequencesStaff, form: Form
) -> Response:
    """ "Save draft" (a new version, valid or not, then the editor on it with its problems), or
    one of the step buttons (``action``): the form again, changed, nothing saved."""
    check_csrf(who, form)
    _editor_only(who)
    key = _known(services, key)
    fields = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    try:
        edited = sequence_form.from_fields(fields)
    except sequence_form.FormError as error:
        raise HTTPException(422, f"the form: {error}") from None
    based_on = _optional_number(form.get("based_on"))
    action = form.get("action")
    if isinstance(action, str) and action and action != "save":
        try:
            changed = sequence_form.apply_action(edited, action)
        except sequence_form.FormError as error:
            raise HTTPException(422, f"the form: {error}") from None
        return _editor(request, services, who, key, version=based_on, form=changed)
    note = form.get("note")
    note_text = note.strip()[:MAX_NOTE] if isinstance(note, str) and note.strip() else None
    with services.sessions.begin() as session:
        if not sequence_store.versions(session, key):
            raise HTTPException(
                409,
                f"sequence {key} is not in the database yet: import the files first "
                "(nurture sequences sync), then edit it here",
            )
        number = sequence_store.lineage(key).next_version(session)
        source = sequence_store.to_source(sequence_form.to_data(edited, key, number))
        if len(source) > MAX_SOURCE:
            raise HTTPException(422, f"the sequence is longer than {MAX_SOURCE} characters")
        draft = sequence_store.save_draft(
            session, key, source, author=who.actor, now=clock.utcnow(), note=note_text
        )
        saved = draft.version
    return RedirectResponse(f"/admin/sequences/{key}/edit?version={saved}&notice=saved", 303)


def _optional_number(raw: object) -> int | None:
    if isinstance(raw, str) and raw.isdecimal() and len(raw) < 10:
        return int(raw)
    return None


@router.get("/{key}/history", response_class=HTMLResponse)
def history(request: Request, key: str, services: ServicesDep, who: SequencesStaff) -> HTMLResponse:
    key = _known(services, key)
    with services.sessions() as session:
        rows = sequence_store.versions(session, key)
    return render(
        request,
        who,
        "sequence_history.html",
        {"key": key, "history": rows, "may_edit": may_edit(who), "utc": utc_text},
    )


@router.get("/{key}/diff", response_class=HTMLResponse)
def diff(
    request: Request,
    key: str,
    services: ServicesDep,
    who: SequencesStaff,
    a: int | None = None,
    b: int | None = None,
) -> HTMLResponse:
    key = _known(services, key)
    if a is None or b is None:
        raise HTTPException(422, "give two versions: ?a=1&b=2")
    with services.sessions() as session:
        left = sequence_store.get_version(session, key, a)
        right = sequence_store.get_version(session, key, b)
    if left is None or right is None:
        raise HTTPException(404, f"sequence {key} has no version {a if left is None else b}")
    return render(
        request,
        who,
        "sequence_diff.html",
        {"key": key, "a": left, "b": right, "changes": hunks(left.source, right.source)},
    )


def _row(session: Session, key: str, number: int) -> SequenceVersion:
    row = sequence_store.get_version(session, key, number)
    if row is None:
        raise HTTPException(404, f"sequence {key} has no version {number}")
    return row


def _plan(services: Services, session: Session, new: Sequence) -> version_moves.MovePlan:
    return version_moves.plan_move(
        session,
        new,
        policy=services.policy,
        clinic_zone=services.clinic.zone,
        now=clock.utcnow(),
    )


@router.get("/{key}/versions/{number}/review", response_class=HTMLResponse)
def review(
    request: Request,
    key: str,
    number: int,
    services: ServicesDep,
    who: SequencesStaff,
) -> HTMLResponse:
    """The YAML diff against live and what the change does to the leads enrolled now, then a
    Confirm; 409 listing the problems while the version is invalid."""
    _editor_only(who)
    key = _known(services, key)
    return _review_page(request, services, who, key, number)


def _review_page(
    request: Request,
    services: Services,
    who: Staff,
    key: str,
    number: int,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    templates = _templates(services)
    with services.sessions() as session:
        row = _row(session, key, number)
        live = sequence_store.published(session, key)
        if row.state is TemplateState.DELETED:
            raise HTTPException(
                409, f"sequence {key} version {number} is a deleted draft: it cannot be published"
            )
        if row.state is TemplateState.PUBLISHED:
            raise HTTPException(409, f"sequence {key} version {number} is live already")
        problems = sequence_store.problems_of(row.source, key, number, templates=templates)
        plan: version_moves.MovePlan | None = None
        rollback = row.state is TemplateState.ARCHIVED
        if not problems:
            # A rollback publishes a copy under the next number: preview it as that.
            as_number = sequence_store.lineage(key).next_version(session) if rollback else number
            new = sequence_store.parse(row.source, key, as_number, templates=templates)
            plan = _plan(services, session, new)
        context = {
            "key": key,
            "row": row,
            "live": live,
            "rollback": rollback,
            "problems": problems,
            "changes": hunks(_normal(live.source, key) if live else "", _normal(row.source, key)),
            "full_changes": hunks(live.source if live else "", row.source),
            "plan": plan,
            "errors": errors or [],
            "local": sequence_form.local_time_text,
            "utc": utc_text,
        }
    if problems:
        status = 409
    return render(request, who, "sequence_review.html", context, status_code=status)


@contextmanager
def _refusals_as_http() -> Iterator[None]:
    """The store's refusals as a page's answers: the version is invalid or in the wrong state
    (409), no such version (404)."""
    try:
        yield
    except ConfigError as error:
        reasons = "; ".join(str(p.reason) for p in error.problems[:10])
        raise HTTPException(409, f"not published: fix these first: {reasons}") from None
    except (VersionStateError, version_moves.StaleReviewError) as error:
        raise HTTPException(409, str(error)) from None
    except LookupError as error:
        raise HTTPException(404, str(error)) from None


@router.post("/{key}/versions/{number}/publish")
def publish(
    request: Request,
    key: str,
    number: int,
    services: ServicesDep,
    who: SequencesStaff,
    form: Form,
) -> Response:
    check_csrf(who, form)
    _editor_only(who)
    key = _known(services, key)
    reviewed_raw = form.get("reviewed")
    choice = form.get("enrolments")
    if not isinstance(reviewed_raw, str) or not reviewed_raw:
        # Not from the review page: nothing goes live unseen.
        return _review_page(
            request,
            services,
            who,
            key,
            number,
            errors=["Not published yet: check what would change, then confirm."],
            status=422,
        )
    # "none": there was no live version when they looked (version numbers start at 1).
    reviewed = 0 if reviewed_raw == "none" else _optional_number(reviewed_raw)
    if reviewed is None:
        raise HTTPException(422, "reviewed: the live version number the review was made against")
    if choice not in ("keep", "move"):
        raise HTTPException(422, "enrolments: choose keep or move")
    with services.sessions.begin() as session, _refusals_as_http():
        outcome = version_moves.publish_version(
            session,
            key,
            number,
            move=choice == "move",
            reviewed=reviewed,
            templates=_templates(services),
            policy=services.policy,
            clinic_zone=services.clinic.zone,
            now=clock.utcnow(),
            actor=who.actor,
        )
    published_number, moved = outcome.version, outcome.moved
    query = f"published={published_number}"
    if moved is not None:
        query += f"&moved={moved.active}"
    return RedirectResponse(f"/admin/sequences/{key}?{query}", 303)


def _draft(services: Services, key: str, number: int) -> SequenceVersion:
    with services.sessions() as session:
        row = _row(session, key, number)
    if row.state is not TemplateState.DRAFT:
        raise HTTPException(
            409,
            f"sequence {key} version {number} is {row.state.value}: "
            "only a draft that was never published can be deleted",
        )
    return row


@router.get("/{key}/versions/{number}/delete", response_class=HTMLResponse)
def review_delete(
    request: Request, key: str, number: int, services: ServicesDep, who: SequencesStaff
) -> HTMLResponse:
    _editor_only(who)
    key = _known(services, key)
    row = _draft(services, key, number)
    return render(request, who, "sequence_delete.html", {"key": key, "draft": row, "utc": utc_text})


@router.post("/{key}/versions/{number}/delete")
def delete_draft(
    key: str, number: int, services: ServicesDep, who: SequencesStaff, form: Form
) -> Response:
    check_csrf(who, form)
    _editor_only(who)
    key = _known(services, key)
    with services.sessions.begin() as session, _refusals_as_http():
        sequence_store.delete_draft(session, key, number, author=who.actor)
    return RedirectResponse(f"/admin/sequences/{key}/history?notice=draft-deleted", 303)
