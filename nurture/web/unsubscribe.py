"""One-click unsubscribe (RFC 8058) and the preferences page behind every e-mail's footer link.

POST with ``List-Unsubscribe=One-Click`` unsubscribes from marketing e-mail with no cookie, no
login and no redirect, as mail providers send it. A GET only shows a page: link scanners
prefetch URLs, and a prefetch must never unsubscribe anyone.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from nurture import clock, consent
from nurture.consent import tokens
from nurture.db.models import Channel, ConsentSource, Lead, Purpose
from nurture.outbox import withdrawals
from nurture.runtime import Services
from nurture.web.deps import ServicesDep
from nurture.web.templating import pages

router = APIRouter()
CHOICES = [
    (
        "email_marketing",
        Channel.EMAIL,
        Purpose.MARKETING,
        "News, education and reminders to book, by e-mail",
    ),
    ("email_care", Channel.EMAIL, Purpose.CARE, "E-mails about a consultation you booked"),
    ("sms_care", Channel.SMS, Purpose.CARE, "Texts about a consultation you booked"),
    ("sms_marketing", Channel.SMS, Purpose.MARKETING, "Texts with news and reminders to book"),
]


def _csrf(services: Services, token: str) -> str:
    return hmac.new(services.secret, f"prefs:{token}".encode(), hashlib.sha256).hexdigest()[:32]


def _masked(email: str | None) -> str:
    if not email:
        return "your address"
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def _not_found(request: Request, services: Services) -> HTMLResponse:
    return pages.TemplateResponse(
        request, "link_not_found.html", {"clinic": services.clinic}, status_code=404
    )


def _page(
    request: Request,
    services: Services,
    token: str,
    lead: Lead,
    *,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with services.read_sessions() as session:
        state = consent.current(session, lead.id)
    choices = [
        {
            "name": name,
            "label": label,
            "checked": state.allows(channel, purpose),
            "disclosure": getattr(services.disclosures, name, None)
            if channel is Channel.SMS
            else None,
            "available": (lead.phone if channel is Channel.SMS else lead.email) is not None,
        }
        for name, channel, purpose, label in CHOICES
    ]
    context: dict[str, Any] = {
        "clinic": services.clinic,
        "token": token,
        "csrf": _csrf(services, token),
        "address": _masked(lead.email),
        "choices": choices,
        "notice": notice,
        "email_marketing": state.allows(Channel.EMAIL, Purpose.MARKETING),
    }
    return pages.TemplateResponse(request, "unsubscribe.html", context, status_code=status_code)


def _lead(services: Services, token: str) -> Lead | None:
    subject = tokens.verify(services.secret, token)
    if subject is None:
        return None
    with services.read_sessions() as session:
        return session.get(Lead, subject.lead_id)


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, request: Request, services: ServicesDep) -> HTMLResponse:
    lead = _lead(services, token)
    if lead is None:
        return _not_found(request, services)
    return _page(request, services, token, lead)


@router.post("/u/{token}", response_class=HTMLResponse)
async def one_click(token: str, request: Request, services: ServicesDep) -> HTMLResponse:
    form = await request.form()  # urlencoded or multipart, as RFC 8058 allows
    lead = await run_in_threadpool(_lead, services, token)
    if lead is None:
        return _not_found(request, services)
    if form.get("List-Unsubscribe") != "One-Click":
        return pages.TemplateResponse(
            request,
            "unsubscribe_done.html",
            {
                "clinic": services.clinic,
                "error": "This link needs the List-Unsubscribe=One-Click form field.",
            },
            status_code=400,
        )
    source = (
        ConsentSource.EMAIL_LINK if form.get("via") == "page" else ConsentSource.EMAIL_ONE_CLICK
    )
    evidence = {
        "ip": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
    }

    def revoke() -> None:
        with services.sessions.begin() as session:
            withdrawals.set_preference(
                session,
                lead.id,
                Channel.EMAIL,
                Purpose.MARKETING,
                False,
                source=source,
                evidence=evidence,
                actor="lead",
                now=clock.utcnow(),
            )

    await run_in_threadpool(revoke)
    return pages.TemplateResponse(
        request, "unsubscribe_done.html", {"clinic": services.clinic, "error": None, "token": token}
    )


@router.post("/u/{token}/preferences", response_class=HTMLResponse)
async def preferences(token: str, request: Request, services: ServicesDep) -> HTMLResponse:
    form = await request.form()
    lead = await run_in_threadpool(_lead, services, token)
    if lead is None:
        return _not_found(request, services)
    if not hmac.compare_digest(str(form.get("csrf", "")), _csrf(services, token)):
        return await run_in_threadpool(
            _page,
            request,
            services,
            token,
            lead,
            notice="The form expired; please try again.",
            status_code=403,
        )
    evidence_base = {
        "ip": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
        "page_url": str(request.url),
    }

    def save() -> None:
        with services.sessions.begin() as session:
            for name, channel, purpose, _label in CHOICES:
                if (lead.phone if channel is Channel.SMS else lead.email) is None:
                    continue
                wanted = form.get(name) == "on"
                evidence = dict(evidence_base)
                if wanted and channel is Channel.SMS:
                    evidence["disclosure_text"] = getattr(services.disclosures, name)
                    evidence["disclosure_version"] = services.disclosures.version
                withdrawals.set_preference(
                    session,
                    lead.id,
                    channel,
                    purpose,
                    wanted,
                    source=ConsentSource.EMAIL_LINK,
                    evidence=evidence,
                    actor="lead",
                    now=clock.utcnow(),
                )

    await run_in_threadpool(save)
    # The page reads the consent it shows: a database read, so in the thread pool too.
    return await run_in_threadpool(
        _page, request, services, token, lead, notice="Your choices are saved."
    )
