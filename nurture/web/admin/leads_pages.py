"""Leads: find one, read their whole story, and act on it (resume marketing, mark a reply
handled, record a lifecycle event or an opt-out received by phone, mark them contacted, correct
their details, add a note, open what a message said, cancel or send now one pending message);
the new leads nobody has contacted within one business day; and, for marketing, the leads
without anyone's contact details (/admin/leads/reach)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from nurture import clock
from nurture.content.staff_time import local_input_value, local_text, utc_text
from nurture.db import audit
from nurture.db.models import PENDING_STATUSES, Lead, LeadStage, Message
from nurture.leads import editing, first_contact, lifecycle, listing, notes, pending, reach, search
from nurture.leads import story as lead_story
from nurture.runtime import Services
from nurture.web.admin.auth import LeadsStaff, Staff, area, check_csrf
from nurture.web.admin.staff_page import render
from nurture.web.deps import ServicesDep

router = APIRouter(prefix="/leads")
T = TypeVar("T")
# Marketing's view of the leads: counts and pseudonyms, never a contact detail.
ReachStaff = Annotated[Staff, Depends(area("reach"))]
# This page's own notices (the shared ones are staff_page.NOTICES).
LEAD_NOTICES = {
    "edited": "Details saved.",
    "edited-retimed": (
        "Details saved. Messages planned for a local hour (such as 10 a.m.) now go at that hour"
        " in the new time zone."
    ),
    "unchanged": "Nothing changed: the details were already so.",
    "note": "Note added.",
    "cancelled": "Message cancelled.",
    "already-queued": "It was already queued for the worker: it is not handed over twice.",
}


def _lead_id(text: str) -> uuid.UUID:
    parsed = lead_story.parse_lead_id(text)
    if parsed is None:
        raise HTTPException(404, "no lead with this id")
    return parsed


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _lead_action(
    request: Request,
    lead_id: str,
    services: Services,
    who: Staff,
    act: Callable[[Session, Lead], object],
    *,
    notice: str,
) -> Response:
    """A button on the lead page: CSRF checked, ``act`` run on the locked lead off the event
    loop, then back to the page with ``notice``."""
    check_csrf(who, await request.form())
    parsed = _lead_id(lead_id)
    await run_in_threadpool(_with_lead, services, parsed, act)
    return RedirectResponse(f"/admin/leads/{parsed}?notice={notice}", 303)


def _with_lead(services: Services, lead_id: uuid.UUID, act: Callable[[Session, Lead], T]) -> T:
    """Run ``act`` on the locked lead in one transaction; 404 when there is no such lead."""
    with services.sessions.begin() as session:
        lead = session.get(Lead, lead_id, with_for_update=True)
        if lead is None:
            raise HTTPException(404, "no lead with this id")
        return act(session, lead)


def _wanted(params: dict[str, str], services: Services) -> listing.LeadFilter:
    return listing.parse_filter(params, sequences=sorted(services.catalog.by_key))


@router.get("", response_class=HTMLResponse)
def find(request: Request, services: ServicesDep, who: LeadsStaff) -> HTMLResponse:
    """The leads, filtered, sorted and paged; a bad filter is shown under its field (422)."""
    clinic_zone = services.clinic.zone
    params = dict(request.query_params)
    page_raw = params.pop("page", "1")
    page_number = int(page_raw) if page_raw.isdecimal() and len(page_raw) < 7 else 1
    context: dict[str, Any] = {
        "params": params,
        "stages": [stage.value for stage in LeadStage],
        "consents": list(listing.CONSENTS),
        "sorts": listing.SORTS,
        "sequence_keys": sorted(services.catalog.by_key),
        "utc": utc_text,
        "zone": clinic_zone.key,
        "per_page": listing.PER_PAGE,
        "max_export": listing.MAX_EXPORT,
    }
    try:
        wanted = _wanted(params, services)
    except listing.FilterError as error:
        context.update(rows=[], error=error, found=None, query_for=lambda **_: "")
        return render(request, who, "leads.html", context, status_code=422)
    with services.read_sessions() as session:
        found = listing.find(session, wanted, zone=clinic_zone, page=page_number)
    rows = [
        {
            "lead": lead,
            "name": search.display_name(lead),
            "consult": local_text(lead.consult_at, lead_story.zone_of(lead, clinic_zone)),
        }
        for lead in found.leads
    ]

    def query_for(**change: Any) -> str:
        return urlencode({**wanted.as_params(), **{k: str(v) for k, v in change.items()}})

    context.update(rows=rows, error=None, found=found, query_for=query_for)
    return render(request, who, "leads.html", context)


@router.post("/export")
async def export(request: Request, services: ServicesDep, who: LeadsStaff) -> Response:
    """The filtered leads as CSV (contact details included: audited with who and what)."""
    form = await request.form()
    check_csrf(who, form)
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    params.pop("csrf", None)
    try:
        wanted = _wanted(params, services)
    except listing.FilterError as error:
        raise HTTPException(422, str(error)) from None

    def write() -> tuple[str, int]:
        with services.sessions.begin() as session:
            return listing.export_csv(session, wanted, zone=services.clinic.zone, actor=who.actor)

    body, _count = await run_in_threadpool(write)
    stamp = clock.utcnow().strftime("%Y%m%d-%H%M")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="leads-{stamp}.csv"',
            "Cache-Control": "no-store",  # contact details: not for a shared cache or history
        },
    )


@router.get("/uncontacted", response_class=HTMLResponse)
def uncontacted(request: Request, services: ServicesDep, who: LeadsStaff) -> HTMLResponse:
    """Speed-to-lead: announced leads whose business day passed with nobody reaching them."""
    zone = services.clinic.zone
    with services.read_sessions() as session:
        overdue = first_contact.uncontacted(session, now=clock.utcnow())
    rows = [
        {
            "lead": row.lead,
            "name": search.display_name(row.lead),
            "came_by": row.arrival.came_by,
            "arrived": local_text(row.arrival.arrived_at, zone),
            "due": local_text(row.arrival.contact_due_at, zone),
        }
        for row in overdue
    ]
    return render(
        request,
        who,
        "uncontacted.html",
        {"rows": rows, "limit": first_contact.MAX_LISTED, "zone": zone.key},
    )


@router.get("/reach", response_class=HTMLResponse)
def reach_view(request: Request, services: ServicesDep, who: ReachStaff) -> HTMLResponse:
    """Whom the program reaches, for marketing: counts and a contact-free list of leads."""
    page_raw = request.query_params.get("page", "1")
    page_number = int(page_raw) if page_raw.isdecimal() and len(page_raw) < 7 else 1
    with services.read_sessions() as session:
        counted = reach.counts(session, sequences=sorted(services.catalog.by_key))
        found = reach.page_of_leads(
            session, secret=services.secret, zone=services.clinic.zone, page=page_number
        )
    return render(
        request,
        who,
        "reach.html",
        {
            "counts": counted,
            "found": found,
            "consents": list(listing.CONSENTS),
            "zone": services.clinic.zone.key,
            "per_page": reach.PER_PAGE,
        },
    )


@router.get("/{lead_id}", response_class=HTMLResponse)
def show(request: Request, lead_id: str, services: ServicesDep, who: LeadsStaff) -> HTMLResponse:
    parsed = _lead_id(lead_id)
    page = _lead_page(request, services, who, parsed, notice=_notice(request, services, parsed))
    # Who opened whose record is itself part of the record (compliance rule 24). Written after
    # the page is built, so a lead that does not exist (404) logs nothing.
    with services.sessions.begin() as session:
        audit.record(session, actor=who.actor, action="lead.viewed", lead_id=parsed)
    return page


def _lead_page(
    request: Request,
    services: Services,
    who: Staff,
    lead_id: uuid.UUID,
    *,
    errors: list[str] | None = None,
    entered: dict[str, str] | None = None,
    edit_errors: dict[str, str] | None = None,
    edit_entered: dict[str, str] | None = None,
    note_error: str | None = None,
    note_entered: str = "",
    notice: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    with services.read_sessions() as session:
        story = lead_story.load_story(session, lead_id, clinic_zone=services.clinic.zone)
        arrival = first_contact.arrival_of(session, lead_id)
    if story is None:
        raise HTTPException(404, "no lead with this id")
    zone = story.zone
    extra: dict[str, Any] = {"notice": notice} if notice else {}

    def local(instant: datetime | None) -> str:
        return local_text(instant, zone)

    return render(
        request,
        who,
        "lead.html",
        {
            "story": story,
            "lead": story.lead,
            "zone": zone.key,
            "utc": utc_text,
            "local": local,
            "event_types": [event.value for event in lifecycle.API_EVENTS],
            "errors": errors or [],
            "entered": {
                "type": "",
                "consult_at": local_input_value(story.lead.consult_at, zone),
                "channel": "",
                "note": "",
                **(entered or {}),
            },
            "max_note": lead_story.MAX_NOTE,
            "arrival": arrival,
            "clinic_local": lambda instant: local_text(instant, services.clinic.zone),
            "stages": [stage.value for stage in LeadStage],
            "edit": edit_entered or editing.form_values(story.lead),
            "edit_errors": edit_errors or {},
            "note_error": note_error,
            "note_text": note_entered,
            "max_lead_note": notes.MAX_NOTE,
            "pending_statuses": {status.value for status in PENDING_STATUSES},
            **extra,
        },
        status_code=status,
    )


def _notice(request: Request, services: Services, lead_id: uuid.UUID) -> str | None:
    """This page's own notice, if the query names one. After "send now" it says where the
    message stands by the gates' reading now, so staff learn at once what holds it."""
    code = request.query_params.get("notice", "")
    if code != "send-now":
        return LEAD_NOTICES.get(code)
    message_id = lead_story.parse_row_id(request.query_params.get("message", ""))
    if message_id is None:
        return None
    with services.read_sessions() as session:
        message = pending.message_of(session, lead_id, message_id)
        lead = session.get(Lead, lead_id)
        if message is None or lead is None:
            return None
        standing = pending.outlook(
            session,
            message,
            lead,
            policy=services.policy,
            clinic_zone=services.clinic.zone,
            catalog=services.catalog,
            now=clock.utcnow(),
            placeholder_address=_placeholder_address(services),
        )
    return f"Message {message_id} is due now. {standing}"


def _placeholder_address(services: Services) -> bool:
    # As the worker decides it (nurture.outbox.send): marketing e-mail waits while the postal
    # address is an example and e-mail reaches real inboxes.
    path = services.send_path
    return path.email.reaches_inboxes and "address" in path.clinic.placeholders


@router.post("/{lead_id}/resume")
async def resume(
    request: Request, lead_id: str, services: ServicesDep, who: LeadsStaff
) -> Response:
    return await _lead_action(
        request,
        lead_id,
        services,
        who,
        lambda session, lead: lead_story.resume_marketing(session, lead, actor=who.actor),
        notice="resumed",
    )


@router.post("/{lead_id}/inbound/{inbound_id}/handled")
async def handled(
    request: Request, lead_id: str, inbound_id: str, services: ServicesDep, who: LeadsStaff
) -> Response:
    form = await request.form()
    check_csrf(who, form)
    parsed = _lead_id(lead_id)
    reply_id = lead_story.parse_row_id(inbound_id)
    if reply_id is None:
        raise HTTPException(404, "this lead has no such reply")

    def act() -> bool:
        with services.sessions.begin() as session:
            reply = lead_story.mark_handled(
                session, reply_id, lead_id=parsed, actor=who.actor, now=clock.utcnow()
            )
            return reply is not None

    if not await run_in_threadpool(act):
        raise HTTPException(404, f"this lead has no reply {reply_id}")
    if _field(form, "return_to") == "inbox":
        return RedirectResponse("/admin/inbox?notice=handled", 303)
    return RedirectResponse(f"/admin/leads/{parsed}?notice=handled", 303)


@router.post("/{lead_id}/contacted")
async def contacted(
    request: Request, lead_id: str, services: ServicesDep, who: LeadsStaff
) -> Response:
    return await _lead_action(
        request,
        lead_id,
        services,
        who,
        lambda session, lead: first_contact.record_first_contact(
            session, lead, how=first_contact.BY_STAFF, actor=who.actor, now=clock.utcnow()
        ),
        notice="event",
    )


@router.post("/{lead_id}/events")
async def record_event(
    request: Request, lead_id: str, services: ServicesDep, who: LeadsStaff
) -> Response:
    form = await request.form()
    check_csrf(who, form)
    parsed = _lead_id(lead_id)
    entered = {"type": _field(form, "type"), "consult_at": _field(form, "consult_at")}

    def act(session: Session, lead: Lead) -> lifecycle.EventResult:
        return lead_story.record_lifecycle_event(
            session,
            lead,
            event_type=entered["type"],
            consult_local=entered["consult_at"],
            catalog=services.catalog,
            clinic_zone=services.clinic.zone,
            now=clock.utcnow(),
            actor=who.actor,
        )

    try:
        await run_in_threadpool(_with_lead, services, parsed, act)
    except lifecycle.EventError as error:
        return await run_in_threadpool(
            _page_with_errors, request, services, who, parsed, [f"Not recorded: {error}"], entered
        )
    return RedirectResponse(f"/admin/leads/{parsed}?notice=event", 303)


@router.post("/{lead_id}/opt-out")
async def record_opt_out(
    request: Request, lead_id: str, services: ServicesDep, who: LeadsStaff
) -> Response:
    form = await request.form()
    check_csrf(who, form)
    parsed = _lead_id(lead_id)
    entered = {"channel": _field(form, "channel"), "note": _field(form, "note")}

    def act(session: Session, lead: Lead) -> int:
        return lead_story.record_opt_out(
            session,
            lead,
            channel=entered["channel"],
            note=entered["note"],
            actor=who.actor,
            now=clock.utcnow(),
        )

    try:
        await run_in_threadpool(_with_lead, services, parsed, act)
    except lead_story.OptOutError as error:
        return await run_in_threadpool(
            _page_with_errors, request, services, who, parsed, [f"Not recorded: {error}"], entered
        )
    return RedirectResponse(f"/admin/leads/{parsed}?notice=event", 303)


def _page_with_errors(
    request: Request,
    services: Services,
    who: Staff,
    lead_id: uuid.UUID,
    errors: list[str],
    entered: dict[str, Any],
) -> HTMLResponse:
    return _lead_page(request, services, who, lead_id, errors=errors, entered=entered, status=422)


@router.post("/{lead_id}/edit")
async def edit(request: Request, lead_id: str, services: ServicesDep, who: LeadsStaff) -> Response:
    """Correct the name, zone, ZIP code or stage; every problem under its field (422)."""
    form = await request.form()
    check_csrf(who, form)
    parsed = _lead_id(lead_id)
    entered = {name: _field(form, name) for name in editing.EDITABLE}
    try:
        wanted = editing.parse_edit(entered)
    except editing.EditError as error:
        return await run_in_threadpool(
            _lead_page,
            request,
            services,
            who,
            parsed,
            errors=["Not saved: fix the fields marked below."],
            edit_errors=error.problems,
            edit_entered=entered,
            status=422,
        )

    def act(session: Session, lead: Lead) -> dict[str, Any]:
        return editing.apply_edit(
            session,
            lead,
            wanted,
            catalog=services.catalog,
            clinic_zone=services.clinic.zone,
            actor=who.actor,
            now=clock.utcnow(),
        )

    changes = await run_in_threadpool(_with_lead, services, parsed, act)
    retimed = changes.get("zone", {}).get("messages_retimed")
    notice = "edited-retimed" if retimed else "edited" if changes else "unchanged"
    return RedirectResponse(f"/admin/leads/{parsed}?notice={notice}", 303)


@router.post("/{lead_id}/notes")
async def add_note(
    request: Request, lead_id: str, services: ServicesDep, who: LeadsStaff
) -> Response:
    form = await request.form()
    check_csrf(who, form)
    parsed = _lead_id(lead_id)
    text = _field(form, "text")

    def act(session: Session, lead: Lead) -> object:
        return notes.add_note(session, lead, text, actor=who.actor, now=clock.utcnow())

    try:
        await run_in_threadpool(_with_lead, services, parsed, act)
    except notes.NoteError as error:
        return await run_in_threadpool(
            _lead_page,
            request,
            services,
            who,
            parsed,
            errors=[f"Not added: {error}"],
            note_error=str(error),
            note_entered=text,
            status=422,
        )
    return RedirectResponse(f"/admin/leads/{parsed}?notice=note#notes", 303)


def _message_id(text: str) -> int:
    parsed = lead_story.parse_row_id(text)
    if parsed is None:
        raise HTTPException(404, "this lead has no such message")
    return parsed


@router.get("/{lead_id}/messages/{message_id}", response_class=HTMLResponse)
def message_body(
    request: Request, lead_id: str, message_id: str, services: ServicesDep, who: LeadsStaff
) -> HTMLResponse:
    """What one message said, as stored when it was sent (its text, never its HTML as markup)."""
    parsed, wanted = _lead_id(lead_id), _message_id(message_id)
    with services.read_sessions() as session:
        message = pending.message_of(session, parsed, wanted)
        lead = session.get(Lead, parsed)
        if message is None or lead is None:
            raise HTTPException(404, f"this lead has no message {wanted}")
        body = pending.body_of(
            message,
            retention_days=services.settings.body_retention_days,
            public_url=services.settings.public_url,
        )
        name = search.display_name(lead)
    page = render(
        request,
        who,
        "lead_message.html",
        {"body": body, "message": body.message, "lead_id": parsed, "name": name, "utc": utc_text},
    )
    # Reading what was sent to a person is reading their record (compliance rule 24).
    with services.sessions.begin() as session:
        audit.record(
            session, actor=who.actor, action="message.viewed", lead_id=parsed, message_id=wanted
        )
    return page


async def _message_action(
    request: Request,
    lead_id: str,
    message_id: str,
    services: Services,
    who: Staff,
    act: Callable[[Session, Message], str],
) -> Response:
    """A button on one message: CSRF checked, ``act`` run on the lead's message (the lead
    locked), then back to the page with the notice ``act`` names; 409 when the message is no
    longer pending."""
    check_csrf(who, await request.form())
    parsed, wanted = _lead_id(lead_id), _message_id(message_id)

    def on_message(session: Session, lead: Lead) -> str:
        message = pending.message_of(session, lead.id, wanted)
        if message is None:
            raise HTTPException(404, f"this lead has no message {wanted}")
        return act(session, message)

    try:
        query = await run_in_threadpool(_with_lead, services, parsed, on_message)
    except pending.NotPendingError as error:
        raise HTTPException(409, str(error)) from None
    return RedirectResponse(f"/admin/leads/{parsed}?{query}#messages", 303)


@router.post("/{lead_id}/messages/{message_id}/cancel")
async def cancel_message(
    request: Request, lead_id: str, message_id: str, services: ServicesDep, who: LeadsStaff
) -> Response:
    def act(session: Session, message: Message) -> str:
        pending.cancel(session, message, actor=who.actor, now=clock.utcnow())
        return "notice=cancelled"

    return await _message_action(request, lead_id, message_id, services, who, act)


@router.post("/{lead_id}/messages/{message_id}/send-now")
async def send_message_now(
    request: Request, lead_id: str, message_id: str, services: ServicesDep, who: LeadsStaff
) -> Response:
    """Make it due now; the dispatcher and every gate take it from there."""

    def act(session: Session, message: Message) -> str:
        handed = pending.send_now(session, message, actor=who.actor, now=clock.utcnow())
        if not handed.handed:
            return "notice=already-queued"
        return urlencode({"notice": "send-now", "message": message.id})

    return await _message_action(request, lead_id, message_id, services, who, act)
