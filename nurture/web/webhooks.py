"""Twilio webhooks: inbound texts and delivery status. Both require Twilio's signature.

The signature covers the URL Twilio called, which is our public URL (behind a proxy the
internal one differs) with its query (a status callback's names its message and attempt),
plus every form parameter, blank ones included.
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from nurture import clock
from nurture.outbox import reports
from nurture.replies import inbound
from nurture.runtime import Services
from nurture.web.deps import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio")


async def verified_form(request: Request, services: Services) -> FormData:
    """The request's form, if Twilio signed it; 403 (and nothing recorded) otherwise."""
    token = services.settings.twilio_auth_token.get_secret_value()
    signature = request.headers.get("x-twilio-signature", "")
    form = await request.form()
    url = services.settings.public_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not token or not signature or not RequestValidator(token).validate(url, form, signature):
        log.warning(
            "refused a Twilio webhook with a missing or wrong signature at %s", request.url.path
        )
        raise HTTPException(403, "missing or invalid Twilio signature")
    return form


def twiml(replies: list[str]) -> Response:
    messages = "".join(f"<Message>{escape(text)}</Message>" for text in replies)
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response>{messages}</Response>'
    return Response(body, media_type="application/xml")


@router.post("/sms")
async def inbound_sms(request: Request, services: ServicesDep) -> Response:
    form = await verified_form(request, services)
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    if not params.get("MessageSid") and not params.get("SmsSid"):
        raise HTTPException(422, "MessageSid is missing")

    def handle() -> inbound.InboundResult:
        with services.sessions.begin() as session:
            return inbound.handle_inbound(
                session,
                params,
                writer=services.writer,
                keyword_lists=services.policy.keywords,
                catalog=services.catalog,
                now=clock.utcnow(),
            )

    result = await run_in_threadpool(handle)
    return twiml(result.replies)


@router.post("/status")
async def delivery_status(request: Request, services: ServicesDep) -> Response:
    form = await verified_form(request, services)
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not isinstance(sid, str) or not sid or not isinstance(status, str) or not status:
        raise HTTPException(422, "MessageSid and MessageStatus are required")
    raw_code = form.get("ErrorCode")
    error_code = int(raw_code) if isinstance(raw_code, str) and raw_code.isdecimal() else None
    key = request.headers.get("i-twilio-idempotency-token") or f"{sid}:{status}"
    payload = {k: v for k, v in form.items() if isinstance(v, str)}
    target = report_target(request)

    def handle() -> bool:
        with services.sessions.begin() as session:
            return reports.record_status(
                session,
                provider_id=sid,
                status=status,
                error_code=error_code,
                idempotency_key=key,
                payload=payload,
                path=services.send_path,
                now=clock.utcnow(),
                target=target,
            )

    await run_in_threadpool(handle)
    return Response(status_code=204)


def report_target(request: Request) -> reports.Target | None:
    """The message and attempt the StatusCallback URL names (signed with it); None for a
    callback URL from before they were named (the report is then found by its sid)."""
    query = request.query_params
    raw = (query.get(reports.MESSAGE_PARAM), query.get(reports.ATTEMPT_PARAM))
    if raw == (None, None):
        return None
    message_id, attempt = (_whole_number(value) for value in raw)
    if message_id is None or attempt is None or attempt < 1:
        raise HTTPException(422, "message and attempt in the URL must both be whole numbers")
    return reports.Target(message_id, attempt)


def _whole_number(value: str | None) -> int | None:
    # At most 18 digits: fits a BIGINT, and a huge string is refused before int() parses it.
    if value is None or not value.isdecimal() or not value.isascii() or len(value) > 18:
        return None
    return int(value)
