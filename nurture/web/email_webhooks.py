"""Bounce and complaint webhooks from e-mail providers (issue 13 §3).

Each provider's proof is checked on the raw body before anything is read from it: a bad or
missing one is a 403 and records nothing; a provider that is not configured answers 404. The
provider modules in nurture.outbox.email_feedback do the reading; here are only HTTP, the
settings and the transaction. Network calls (SNS certificates, subscription confirmations)
run in a worker thread and before the transaction opens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from nurture import clock
from nurture.outbox.email_feedback import (
    Feedback,
    FeedbackMalformedError,
    FeedbackRefusedError,
    mailgun,
    postmark,
    sendgrid,
    ses,
)
from nurture.outbox.email_feedback.record import Recorded, record, use_token
from nurture.runtime import Services
from nurture.web.deps import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/email")

# SNS signing certificates, per process.
certificates = ses.Certificates()


def _not_configured(provider: str) -> HTTPException:
    return HTTPException(404, f"{provider} bounce and complaint webhooks are not configured here")


def _refused(error: FeedbackRefusedError, path: str) -> HTTPException:
    log.warning("refused an e-mail feedback webhook at %s: %s", path, error)
    return HTTPException(403, str(error))


def _answer(recorded: Recorded) -> JSONResponse:
    return JSONResponse(
        {"recorded": recorded.new, "duplicates": recorded.duplicates, "paused": recorded.paused}
    )


async def _store(
    services: Services,
    read: Callable[[], list[Feedback]],
    *,
    token: tuple[str, str] | None = None,
) -> JSONResponse:
    """Parse (422 when malformed) and record in one transaction; a used token refuses all."""

    def in_transaction() -> Recorded:
        items = read()
        with services.sessions.begin() as session:
            now = clock.utcnow()
            if token is not None:
                use_token(session, *token, now=now)
            return record(session, items, policy=services.policy.email_feedback, now=now)

    try:
        recorded = await run_in_threadpool(in_transaction)
    except FeedbackMalformedError as error:
        raise HTTPException(422, str(error)) from None
    except IntegrityError:
        # The same event arrived twice at once and the other copy was stored first: the
        # provider retries, and the retry is answered as a duplicate.
        raise HTTPException(503, "the same event is being recorded right now; retry") from None
    return _answer(recorded)


@router.post("/ses")
async def ses_notification(request: Request, services: ServicesDep) -> JSONResponse:
    settings = services.settings
    if not settings.ses_topic_arns:
        raise _not_configured("Amazon SES")
    body = await request.body()
    try:
        envelope = ses.parse_envelope(body)
    except FeedbackMalformedError as error:
        raise HTTPException(422, str(error)) from None

    def verify() -> None:
        ses.verify(
            envelope,
            certificates=certificates,
            topic_arns=settings.ses_topic_arns,
            host_pattern=settings.sns_host_pattern,
            now=clock.utcnow(),
        )
        if envelope["Type"] == "SubscriptionConfirmation":
            ses.confirm_subscription(envelope, host_pattern=settings.sns_host_pattern)

    try:
        await run_in_threadpool(verify)
    except FeedbackRefusedError as error:
        raise _refused(error, request.url.path) from None
    except FeedbackMalformedError as error:
        raise HTTPException(422, str(error)) from None
    if envelope["Type"] != "Notification":
        log.info("SNS %s for %s handled", envelope["Type"], envelope.get("TopicArn"))
        return JSONResponse({"type": envelope["Type"]})
    return await _store(services, lambda: ses.parse_notification(envelope))


@router.post("/sendgrid")
async def sendgrid_events(request: Request, services: ServicesDep) -> JSONResponse:
    configured = services.settings.sendgrid_webhook_public_key
    if not configured:
        raise _not_configured("SendGrid")
    try:
        key = sendgrid.public_key(configured)
    except ValueError as error:
        log.error("%s", error)
        raise HTTPException(503, "the SendGrid webhook key is misconfigured here") from None
    body = await request.body()
    try:
        sendgrid.verify(
            key,
            signature=request.headers.get(sendgrid.SIGNATURE_HEADER, ""),
            timestamp=request.headers.get(sendgrid.TIMESTAMP_HEADER, ""),
            body=body,
        )
    except FeedbackRefusedError as error:
        raise _refused(error, request.url.path) from None
    return await _store(services, lambda: sendgrid.parse(body))


@router.post("/mailgun")
async def mailgun_event(request: Request, services: ServicesDep) -> JSONResponse:
    signing_key = services.settings.mailgun_signing_key.get_secret_value()
    if not signing_key:
        raise _not_configured("Mailgun")
    body = await request.body()
    try:
        delivery = mailgun.parse_and_verify(body, signing_key=signing_key, now=clock.utcnow())
    except FeedbackMalformedError as error:
        raise HTTPException(422, str(error)) from None
    except FeedbackRefusedError as error:
        raise _refused(error, request.url.path) from None
    try:
        return await _store(
            services,
            lambda: mailgun.parse(delivery.event),
            token=(mailgun.PROVIDER, delivery.token),
        )
    except FeedbackRefusedError as error:  # the token was used before: a replay
        raise _refused(error, request.url.path) from None


@router.post("/postmark")
async def postmark_event(request: Request, services: ServicesDep) -> JSONResponse:
    settings = services.settings
    password = settings.postmark_webhook_password.get_secret_value()
    if not settings.postmark_webhook_user or not password:
        raise _not_configured("Postmark")
    try:
        postmark.check_auth(
            request.headers.get("authorization", ""),
            user=settings.postmark_webhook_user,
            password=password,
        )
    except FeedbackRefusedError as error:
        raise _refused(error, request.url.path) from None
    body = await request.body()
    return await _store(services, lambda: postmark.parse(body))
