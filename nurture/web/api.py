"""The JSON API for the clinic's own systems (all of it needs the API key): sign-ups, lead
status, lifecycle events. People sign up themselves on the hosted form (nurture.web.public)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from nurture import clock, consent
from nurture.consent import disclosures
from nurture.db.models import ConsentSource, Lead, Message
from nurture.leads import search
from nurture.leads.intake import (
    HONEYPOT_FIELD,
    FieldProblem,
    InvalidSignupError,
    Signup,
    StaffContact,
    is_bot,
    normalize_email,
    normalize_phone,
    parse_signup,
    submit_signup,
)
from nurture.leads.lifecycle import (
    API_EVENTS,
    EventError,
    EventResult,
    apply_event,
    parse_event_type,
)
from nurture.leads.signup_limits import Limited
from nurture.program import windows
from nurture.program.sequences import LifecycleEvent
from nurture.runtime import Services
from nurture.web.deps import (
    ReadSessionDep,
    ServicesDep,
    evidence_from,
    get_services,
    require_api_key,
)
from nurture.web.json_body import JsonBodyError, parse_json

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")

CHECKBOXES = ("email_marketing", "sms_marketing", "sms_care")
TRUE_WORDS = {"on", "true", "1", "yes"}
SOURCE_FIELDS = ("page_url", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` written in place.

    Its ``#/$defs/...`` references point at the root of whatever document holds them, which
    inside the OpenAPI document is the wrong root; the models here nest without cycles.
    """
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    inlined: dict[str, Any] = resolve(schema)
    return inlined


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """``openapi_extra`` describing a body the handler reads itself (FastAPI cannot see it)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


_SIGNUP_SCHEMA = _inline_refs(Signup.model_json_schema())
_SIGNUP_SCHEMA["properties"][HONEYPOT_FIELD] = {
    "type": "string",
    "description": "Leave empty: a hidden field only bots fill in.",
}
SIGNUP_BODY = _json_body(
    _SIGNUP_SCHEMA,
    "The sign-up as JSON; the same fields as a form (x-www-form-urlencoded) are accepted too.",
)
EVENT_BODY = _json_body(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": [event.value for event in API_EVENTS]},
            "consult_at": {"type": ["string", "null"], "format": "date-time"},
            "event_id": {"type": "string", "minLength": 1, "maxLength": 200},
        },
    },
    "A lifecycle event; event_id makes a retried event count once.",
)
LEAD_EVENT_BODY = _json_body(
    {
        **EVENT_BODY["requestBody"]["content"]["application/json"]["schema"],
        "properties": {
            **EVENT_BODY["requestBody"]["content"]["application/json"]["schema"]["properties"],
            "email": {"type": "string", "maxLength": 320},
            "phone": {"type": "string", "maxLength": 40},
        },
    },
    "A lifecycle event naming the lead by email (first) or phone; event_id makes a retried"
    " event count once.",
)


def problems_response(problems: list[FieldProblem], *, what: str = "sign-up") -> JSONResponse:
    return JSONResponse(
        {
            "detail": f"the {what} has problems; nothing was stored",
            "errors": [{"field": p.field, "message": p.message} for p in problems],
        },
        status_code=422,
    )


def signup_from_form(form: FormData) -> dict[str, Any]:
    """A form post in the same shape as the JSON body (checkboxes, source fields)."""
    data: dict[str, Any] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            continue  # file uploads have no place in a sign-up
        if name in CHECKBOXES:
            data.setdefault("consent", {})[name] = value.strip().lower() in TRUE_WORDS
        elif name in SOURCE_FIELDS:
            data.setdefault("source", {})[name] = value
        else:
            data[name] = value
    return data


async def read_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        return signup_from_form(await request.form())
    if content_type not in {"application/json", ""}:
        raise HTTPException(415, "send application/json or a form (x-www-form-urlencoded)")
    try:
        data = parse_json(await request.body())
    except JsonBodyError as error:
        raise InvalidSignupError([FieldProblem("body", str(error))]) from None
    if not isinstance(data, dict):
        raise InvalidSignupError([FieldProblem("body", "send a JSON object of sign-up fields")])
    return data


def too_many(limited: Limited) -> JSONResponse:
    return JSONResponse(
        {"detail": f"too many sign-ups from this {limited.what}; try again later"},
        status_code=429,
        headers={"Retry-After": str(limited.retry_after)},
    )


@router.post("/signups", status_code=201, openapi_extra=SIGNUP_BODY)
async def create_signup(request: Request) -> JSONResponse:
    """Store a consult sign-up from the clinic's own systems (API key); 201 with the lead id
    (the existing one for a returning person). Any consent names the disclosure version shown
    (``consent_version``); the server records its own wording of it for each box ticked."""
    services = get_services(request)
    # Consent evidence is only as good as its source (rule 1): anyone could post a sign-up
    # with "ok" as its wording, so this is for the clinic's systems; people use /consult.
    require_api_key(request, services)
    body: dict[str, Any] | InvalidSignupError | HTTPException
    try:
        body = await read_body(request)
    except (InvalidSignupError, HTTPException) as error:
        body = error  # answered after the limit check, as if it had been read after it
    # Everything that blocks, in one trip to the thread pool: the limiter counts in Redis (a
    # network round trip, never on the event loop) and the sign-up is a transaction.
    return await run_in_threadpool(take_signup, services, request, body)


def take_signup(
    services: Services, request: Request, body: dict[str, Any] | InvalidSignupError | HTTPException
) -> JSONResponse:
    """The sign-up's checks in order (IP limit, body, honeypot, fields, phone limit), then the
    transaction. Blocking: run it in the thread pool."""
    limited = services.signup_limiter.check_ip(request.client.host if request.client else None)
    if limited is not None:
        return too_many(limited)
    if isinstance(body, HTTPException):
        raise body
    if isinstance(body, InvalidSignupError):
        return problems_response(body.problems)
    if is_bot(body):
        log.info("sign-up honeypot filled in; dropped")
        return JSONResponse({"lead_id": str(uuid.uuid4()), "created": True}, status_code=201)
    try:
        signup = parse_signup(body, sms_countries=services.policy.sms.countries)
        shown = _shown_for(services, signup)
    except InvalidSignupError as error:
        return problems_response(_naming_known_versions(services, error.problems))
    limited = services.signup_limiter.check_phone(signup.phone)
    if limited is not None:
        return too_many(limited)
    page_url = signup.source.get("page_url")
    evidence = evidence_from(
        request, page_url=page_url if isinstance(page_url, str) else None, source=ConsentSource.API
    )
    result = submit_signup(
        services.sessions,
        signup,
        evidence,
        catalog=services.catalog,
        clinic_zone=services.clinic.zone,
        shown=shown,
        staff=StaffContact(services.clinic, services.settings.public_url),
    )
    return JSONResponse(
        {"lead_id": str(result.lead_id), "created": result.created}, status_code=201
    )


def _shown_for(services: Services, signup: Signup) -> disclosures.Shown | None:
    """The server's own wording of the version the caller names (any version ever recorded:
    a site may still show last month's). Blocking: an older version is read from the
    database. Raises InvalidSignupError for a version the server does not know."""
    version = signup.consent_version
    if version is None:
        return None  # no consent given (parse_signup asks for a version with any)
    if version == services.disclosures.version:
        wording = services.disclosures
    else:
        with services.read_sessions() as session:
            found = disclosures.find(session, version, current=services.disclosures)
        if found is None:
            raise InvalidSignupError(
                [FieldProblem("consent_version", f"unknown disclosure version {version!r}")]
            )
        wording = found
    # The caller drew the boxes: whether they started unticked is its word, not ours.
    return disclosures.Shown(
        wording=wording, seller=services.clinic.name, boxes_started_unticked=None
    )


def _naming_known_versions(services: Services, problems: list[FieldProblem]) -> list[FieldProblem]:
    """A problem with ``consent_version`` says which versions exist, so the caller can fix it."""
    if not any(problem.field == "consent_version" for problem in problems):
        return problems
    with services.read_sessions() as session:
        known = disclosures.known_versions(session, current=services.disclosures)
    listed = f"; the versions this server knows: {', '.join(known)} (the first is current)"
    return [
        FieldProblem(p.field, p.message + listed) if p.field == "consent_version" else p
        for p in problems
    ]


@router.get("/leads/{lead_id}", dependencies=[Depends(require_api_key)])
def get_lead(lead_id: uuid.UUID, session: ReadSessionDep, services: ServicesDep) -> dict[str, Any]:
    """A lead's stage, consent and every message planned for them, with the reason for each.
    ``timezone`` is the zone nurture shows the lead's times in; ``chosen_timezone`` one the
    person chose (it wins), ``browser_timezone`` what their browser said (it only narrows)."""
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise HTTPException(404, f"no lead {lead_id}")
    messages = session.scalars(
        select(Message).where(Message.lead_id == lead.id).order_by(Message.due_at, Message.id)
    )
    return {
        "id": str(lead.id),
        "stage": lead.stage.value,
        "timezone": windows.zones_of(lead, services.clinic.zone).shown.key,
        "chosen_timezone": lead.timezone,
        "browser_timezone": lead.browser_timezone,
        "consult_at": lead.consult_at.isoformat() if lead.consult_at else None,
        "created_at": lead.created_at.isoformat(),
        "consent": consent.current(session, lead.id).as_dict(),
        "messages": [
            {
                "id": message.id,
                "sequence": message.sequence_key,
                "step": message.step_key,
                "channel": message.channel.value,
                "purpose": message.purpose.value,
                "status": message.status.value,
                "due_at": message.due_at.isoformat(),
                "sent_at": message.sent_at.isoformat() if message.sent_at else None,
                "reason": message.last_error,
            }
            for message in messages
        ],
    }


def _parse_instant(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError("consult_at", "write it as ISO 8601 text, e.g. 2026-03-03T14:30:00-07:00")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EventError(
            "consult_at", f"{value!r} is not ISO 8601, e.g. 2026-03-03T14:30:00-07:00"
        ) from None


@router.post(
    "/leads/{lead_id}/events", dependencies=[Depends(require_api_key)], openapi_extra=EVENT_BODY
)
async def post_event(lead_id: uuid.UUID, request: Request, services: ServicesDep) -> JSONResponse:
    """A lifecycle event from the clinic's systems (booked, rescheduled, cancelled, ...)."""
    parsed = await _read_event(request, names_lead=False)
    if isinstance(parsed, JSONResponse):
        return parsed
    return await _apply_event(
        services, parsed, lambda session: session.get(Lead, lead_id), f"no lead {lead_id}"
    )


@router.post("/events", dependencies=[Depends(require_api_key)], openapi_extra=LEAD_EVENT_BODY)
async def post_event_by_contact(request: Request, services: ServicesDep) -> JSONResponse:
    """A lifecycle event naming the lead by e-mail or phone (Zapier, a clinic's own system):
    the lead with that e-mail address, else the one with that phone number."""
    parsed = await _read_event(request, names_lead=True)
    if isinstance(parsed, JSONResponse):
        return parsed
    email, phone = parsed.email, parsed.phone

    def find(session: Session) -> Lead | None:
        return search.by_contact(session, email, phone)

    return await _apply_event(
        services, parsed, find, "no lead with that e-mail address or phone number"
    )


@dataclass(frozen=True)
class _Event:
    event: LifecycleEvent
    consult_at: datetime | None
    event_id: str | None
    email: str | None = None
    phone: str | None = None


async def _read_event(request: Request, *, names_lead: bool) -> _Event | JSONResponse:
    try:
        body = parse_json(await request.body())
    except JsonBodyError as error:
        return problems_response([FieldProblem("body", str(error))], what="event")
    if not isinstance(body, dict):
        return problems_response(
            [FieldProblem("body", "send a JSON object with type and consult_at")], what="event"
        )
    fields = {"type", "consult_at", "event_id"} | ({"email", "phone"} if names_lead else set())
    unknown = set(body) - fields
    try:
        if unknown:
            raise EventError(sorted(unknown)[0], f"unknown field; send {', '.join(sorted(fields))}")
        event = parse_event_type(body.get("type"))
        consult_at = _parse_instant(body.get("consult_at"))
        event_id = body.get("event_id")
        if event_id is not None and (not isinstance(event_id, str) or not 0 < len(event_id) <= 200):
            raise EventError("event_id", "must be text of 1 to 200 characters")
        email, phone = _contact(body) if names_lead else (None, None)
    except EventError as error:
        return problems_response([FieldProblem(error.field, error.message)], what="event")
    return _Event(event, consult_at, event_id, email, phone)


def _contact(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The e-mail address and phone number that name the lead, normalised as intake does."""
    values: dict[str, str | None] = {}
    for name, normalize in (("email", normalize_email), ("phone", normalize_phone)):
        raw = body.get(name)
        if raw is None or raw == "":
            values[name] = None
            continue
        if not isinstance(raw, str) or len(raw) > 320:
            raise EventError(name, "must be text")
        try:
            values[name] = normalize(raw.strip())
        except ValueError as error:
            raise EventError(name, str(error)) from None
    if values["email"] is None and values["phone"] is None:
        raise EventError("email", "name the lead by email or phone")
    return values["email"], values["phone"]


async def _apply_event(
    services: Services,
    parsed: _Event,
    find: Callable[[Session], Lead | None],
    not_found: str,
) -> JSONResponse:
    def apply() -> EventResult | None:
        with services.sessions.begin() as session:
            lead = find(session)  # apply_event locks it
            if lead is None:
                return None
            return apply_event(
                session,
                lead,
                parsed.event,
                consult_at=parsed.consult_at,
                catalog=services.catalog,
                clinic_zone=services.clinic.zone,
                now=clock.utcnow(),
                actor="api",
                idempotency_key=parsed.event_id,
            )

    try:
        result = await run_in_threadpool(apply)
    except EventError as error:
        return problems_response([FieldProblem(error.field, error.message)], what="event")
    if result is None:
        raise HTTPException(404, not_found)
    return JSONResponse(
        {
            "lead_id": result.lead_id,
            "stage": result.stage.value,
            "consult_at": result.consult_at.isoformat() if result.consult_at else None,
            "changed": result.changed,
            "exited": result.exited,
            "enrolled": result.enrolled,
        }
    )
