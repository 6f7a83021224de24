"""The JSON API: sign-ups from the clinic's website, lead status for its systems."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from nurture import consent
from nurture.leads import FieldProblem, InvalidSignupError, is_bot, parse_signup, submit_signup
from nurture.models import ConsentSource, Lead, Message
from nurture.ratelimit import Limited
from nurture.web.deps import ServicesDep, SessionDep, evidence_from, require_api_key

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")

CHECKBOXES = ("email_marketing", "sms_marketing", "sms_care")
TRUE_WORDS = {"on", "true", "1", "yes"}
SOURCE_FIELDS = ("page_url", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def problems_response(problems: list[FieldProblem]) -> JSONResponse:
    return JSONResponse(
        {
            "detail": "the sign-up has problems; nothing was stored",
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
    raw = await request.body()
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidSignupError([FieldProblem("body", f"not valid JSON: {error}")]) from None
    if not isinstance(data, dict):
        raise InvalidSignupError([FieldProblem("body", "send a JSON object of sign-up fields")])
    return data


def too_many(limited: Limited) -> JSONResponse:
    return JSONResponse(
        {"detail": f"too many sign-ups from this {limited.what}; try again later"},
        status_code=429,
        headers={"Retry-After": str(limited.retry_after)},
    )


@router.post("/signups", status_code=201)
async def create_signup(request: Request, services: ServicesDep) -> JSONResponse:
    """Store a consult sign-up; 201 with the lead id (the existing one for a returning person)."""
    limited = services.signup_limiter.check_ip(request.client.host if request.client else None)
    if limited is not None:
        return too_many(limited)
    try:
        data = await read_body(request)
        if is_bot(data):
            log.info("sign-up honeypot filled in; dropped")
            return JSONResponse({"lead_id": str(uuid.uuid4()), "created": True}, status_code=201)
        signup = parse_signup(data, sms_countries=services.policy.sms.countries)
    except InvalidSignupError as error:
        return problems_response(error.problems)
    limited = services.signup_limiter.check_phone(signup.phone)
    if limited is not None:
        return too_many(limited)
    page_url = signup.source.get("page_url")
    evidence = evidence_from(
        request, page_url=page_url if isinstance(page_url, str) else None, source=ConsentSource.API
    )
    result = await run_in_threadpool(
        submit_signup,
        services.sessions,
        signup,
        evidence,
        catalog=services.catalog,
        clinic_zone=services.clinic.zone,
    )
    return JSONResponse(
        {"lead_id": str(result.lead_id), "created": result.created}, status_code=201
    )


@router.get("/leads/{lead_id}", dependencies=[Depends(require_api_key)])
def get_lead(lead_id: uuid.UUID, session: SessionDep) -> dict[str, Any]:
    """A lead's stage, consent and every message planned for them, with the reason for each."""
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise HTTPException(404, f"no lead {lead_id}")
    messages = session.scalars(
        select(Message).where(Message.lead_id == lead.id).order_by(Message.due_at, Message.id)
    )
    return {
        "id": str(lead.id),
        "stage": lead.stage.value,
        "timezone": lead.timezone,
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
