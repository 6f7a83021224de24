"""Booking tools' webhooks: Calendly, Cal.com, Acuity and Square, each signed its own way.

A provider whose secret is not set answers 404; a missing or wrong signature 403 with nothing
recorded. Everything that blocks (the API read Acuity and Square need, the transaction) runs
in the thread pool, the read before the transaction opens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool

from nurture import clock
from nurture.config.integrations import BookingProvider
from nurture.leads.bookings import (
    BookingEvent,
    BookingResult,
    PayloadError,
    Program,
    SignatureError,
    acuity,
    apply_delivery,
    calcom,
    calendly,
    square,
)
from nurture.leads.bookings.fetching import Fetcher, FetchError
from nurture.runtime import Services
from nurture.web.deps import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks")


def _secret(value: SecretStr | None, provider: BookingProvider) -> str:
    secret = value.get_secret_value() if value is not None else ""
    if not secret:
        raise HTTPException(404, f"{provider} webhooks are not configured on this server")
    return secret


def _refuse(provider: BookingProvider, request: Request, error: SignatureError) -> HTTPException:
    log.warning("refused a %s webhook at %s: %s", provider, request.url.path, error)
    return HTTPException(403, f"missing or invalid {provider} signature")


def _program(services: Services) -> Program:
    return Program(
        integrations=services.integrations,
        catalog=services.catalog,
        clinic=services.clinic,
        public_url=services.settings.public_url,
    )


def _fetcher(services: Services) -> Fetcher:
    return Fetcher(
        timeout=services.settings.booking_fetch_timeout,
        attempts=services.settings.booking_fetch_attempts,
    )


def _answer(result: BookingResult) -> JSONResponse:
    return JSONResponse(
        {
            "outcome": result.outcome.value,
            "lead_id": str(result.lead_id) if result.lead_id else None,
            "lead_created": result.lead_created,
        }
    )


async def _run(services: Services, make_event: Callable[[], BookingEvent]) -> JSONResponse:
    """Read the event (fetching what it needs), then apply it: all in the thread pool."""

    def handle() -> BookingResult:
        event = make_event()
        return apply_delivery(services.sessions, event, program=_program(services))

    try:
        result = await run_in_threadpool(handle)
    except PayloadError as error:
        raise HTTPException(422, f"{error.field}: {error.message}") from None
    except FetchError as error:
        log.warning("%s", error)
        if error.retryable:
            # The provider retries a webhook that failed: the read may work next time.
            raise HTTPException(503, "the booking tool's API did not answer; retry later") from None
        raise HTTPException(422, "the booking tool's API refused to show the booking") from None
    return _answer(result)


@router.post("/calendly")
async def calendly_webhook(request: Request, services: ServicesDep) -> JSONResponse:
    key = _secret(services.settings.calendly_signing_key, "calendly")
    body = await request.body()
    try:
        calendly.verify(
            request.headers.get(calendly.SIGNATURE_HEADER), body, key, now=clock.utcnow()
        )
    except SignatureError as error:
        raise _refuse("calendly", request, error) from None
    return await _run(services, lambda: calendly.parse(body))


@router.post("/calcom")
async def calcom_webhook(request: Request, services: ServicesDep) -> JSONResponse:
    secret = _secret(services.settings.calcom_secret, "calcom")
    body = await request.body()
    try:
        calcom.verify(request.headers.get(calcom.SIGNATURE_HEADER), body, secret)
    except SignatureError as error:
        raise _refuse("calcom", request, error) from None
    return await _run(services, lambda: calcom.parse(body, now=clock.utcnow()))


@router.post("/acuity")
async def acuity_webhook(request: Request, services: ServicesDep) -> JSONResponse:
    settings = services.settings
    api_key = _secret(settings.acuity_api_key, "acuity")
    body = await request.body()
    try:
        acuity.verify(request.headers.get(acuity.SIGNATURE_HEADER), body, api_key)
    except SignatureError as error:
        raise _refuse("acuity", request, error) from None

    def event() -> BookingEvent:
        action, appointment_id = acuity.parse_notice(body)
        if appointment_id is None:
            return acuity.ignored(action, clock.utcnow())
        appointment = acuity.fetch_appointment(
            _fetcher(services),
            api_url=settings.acuity_api_url,
            user_id=settings.acuity_user_id,
            api_key=api_key,
            appointment_id=appointment_id,
        )
        return acuity.event_from_appointment(action, appointment, now=clock.utcnow())

    return await _run(services, event)


@router.post("/square")
async def square_webhook(request: Request, services: ServicesDep) -> JSONResponse:
    settings = services.settings
    key = _secret(settings.square_signature_key, "square")
    body = await request.body()
    # Square signs the notification URL as subscribed: our public URL, not the one behind
    # a proxy.
    url = settings.public_url + request.url.path
    try:
        square.verify(request.headers.get(square.SIGNATURE_HEADER), body, key, notification_url=url)
    except SignatureError as error:
        raise _refuse("square", request, error) from None
    token = settings.square_access_token.get_secret_value() if settings.square_access_token else ""

    def event() -> BookingEvent:
        parsed, customer_id = square.parse(body)
        if customer_id is None:
            return parsed
        invitee = square.fetch_customer(
            _fetcher(services),
            api_url=settings.square_api_url,
            access_token=token,
            customer_id=customer_id,
        )
        return square.with_invitee(parsed, invitee)

    return await _run(services, event)
