"""One-click unsubscribe (RFC 8058) and the preferences page behind every e-mail's footer link.

POST with ``List-Unsubscribe=One-Click`` unsubscribes from marketing e-mail with no cookie, no
login and no redirect, as mail providers send it. A GET only shows a page: link scanners
prefetch URLs, and a prefetch must never unsubscribe anyone.

Ticking a text box that was not granted is a new consent to texts (compliance rules 1, 3, 11):
it is recorded with the same evidence as the sign-up form and confirmed by the opt-in text at
once; after crisis words or an opt-out by text in the last 30 days a person from the care team
confirms with them first, and the tick alone turns nothing on.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from nurture import clock, consent
from nurture.consent import disclosures, tokens
from nurture.db.models import Channel, ConsentSource, Lead, Purpose
from nurture.outbox import confirmations, withdrawals
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


HELD_NOTICE = (
    "Your choices are saved, but texts stay off for now: someone from our care team will "
    "confirm with you before texts start again."
)


def sms_box_wording(services: Services, name: str) -> tuple[str, str]:
    """The words beside an SMS box and the version they belong to: what the page shows and
    what a grant records, from this one place (the disclosures are becoming stored versions)."""
    return getattr(services.disclosures, name), services.disclosures.version


def masked_phone(phone: str | None) -> str:
    """Enough of the number to recognise it, not enough to learn it: ``(•••) •••-0123``."""
    if not phone:
        return "your phone"
    if phone.startswith("+1") and len(phone) == 12:
        return f"(•••) •••-{phone[-4:]}"
    return f"••• {phone[-4:]}"


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
            # A box not granted starts unticked: a grant is only ever the person's own tick.
            "checked": state.allows(channel, purpose),
            "disclosure": sms_box_wording(services, name)[0] if channel is Channel.SMS else None,
            "number": masked_phone(lead.phone) if channel is Channel.SMS else None,
            "available": (lead.phone if channel is Channel.SMS else lead.email) is not None,
        }
        for name, channel, purpose, label in CHOICES
    ]
    context: dict[str, Any] = {
        "clinic": services.clinic,
        "token": token,
        "csrf": _csrf(services, token),
        "address": _masked(lead.email),
        "phone": masked_phone(lead.phone) if lead.phone else None,
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
    # The link's token opens this page for years: evidence that may be shown to others (a
    # TCPA dispute) keeps the page's address without it.
    page_url = str(request.url).replace(token, "…")
    request_evidence = {
        "ip": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
        "page_url": page_url,
    }
    wanted = {name for name, *_rest in CHOICES if form.get(name) == "on"}
    held = await run_in_threadpool(_save, services, lead, wanted, request_evidence)
    # The page reads the consent it shows: a database read, so in the thread pool too.
    return await run_in_threadpool(
        _page,
        request,
        services,
        token,
        lead,
        notice=HELD_NOTICE if held else "Your choices are saved.",
    )


def _sms_grant_evidence(
    services: Services, lead: Lead, name: str, request_evidence: dict[str, Any]
) -> dict[str, Any]:
    """What the sign-up form records for a grant of texts (compliance rule 1), for this box."""
    # Only a box not granted can be a grant, and such a box renders unticked.
    shown = disclosures.Shown(
        wording=services.disclosures, seller=services.clinic.name, boxes_started_unticked=True
    )
    return {
        **request_evidence,
        **disclosures.box_evidence(shown, name, now=clock.utcnow()),
        "name": f"{lead.first_name} {lead.last_name}".strip(),
        "phone": lead.phone,
        "contact": lead.phone,  # the sign-up form's name for it
    }


def _save(
    services: Services, lead_seen: Lead, wanted: set[str], request_evidence: dict[str, Any]
) -> bool:
    """Apply the form in one unit of work; True when texts asked for wait for a person."""
    now = clock.utcnow()
    with services.sessions.begin() as session:
        lead = session.get(Lead, lead_seen.id)
        if lead is None:
            return False
        state = consent.current(session, lead.id)
        # A text box that was not granted and is ticked now: a new consent to texts.
        new_sms = {
            name: label
            for name, channel, purpose, label in CHOICES
            if channel is Channel.SMS
            and lead.phone is not None
            and name in wanted
            and not state.allows(channel, purpose)
        }
        held_because = (
            confirmations.why_a_person_confirms_first(session, lead, now=now) if new_sms else None
        )
        for name, channel, purpose, _label in CHOICES:
            if (lead.phone if channel is Channel.SMS else lead.email) is None:
                continue
            grants_texts = name in new_sms
            if grants_texts and held_because is not None:
                continue  # not granted: a person confirms first (below)
            evidence = (
                _sms_grant_evidence(services, lead, name, request_evidence)
                if grants_texts
                else dict(request_evidence)
            )
            withdrawals.set_preference(
                session,
                lead.id,
                channel,
                purpose,
                name in wanted,
                source=ConsentSource.EMAIL_LINK,
                evidence=evidence,
                actor="lead",
                now=now,
            )
        if held_because is not None:
            confirmations.ask_a_person_first(
                session,
                lead,
                asked_for=list(new_sms.values()),
                reason=held_because,
                clinic=services.clinic,
                public_url=services.settings.public_url,
                now=now,
                actor="lead",
            )
        elif new_sms:
            # Granted just now (the ledger said not granted): rule 3's confirmation, at once.
            confirmations.plan_optin_confirmation(session, lead, now=now, actor="lead")
    return held_because is not None
