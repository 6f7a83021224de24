"""Public pages: the hosted consult sign-up form.

The same form is also shown inside other sites (:mod:`nurture.web.embed`); one handler takes
both, told by :class:`FormPlace` where the form was shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from nurture.config.clinic import Disclosures
from nurture.consent import disclosures
from nurture.db.models import ConsentSource
from nurture.leads.intake import (
    InvalidSignupError,
    StaffContact,
    is_bot,
    parse_signup,
    submit_signup,
    utm_tags,
)
from nurture.runtime import Services
from nurture.web.api import CHECKBOXES, signup_from_form
from nurture.web.deps import ServicesDep, evidence_from
from nurture.web.templating import pages

router = APIRouter()


@dataclass(frozen=True)
class FormPlace:
    """Where the sign-up form was shown: where it posts (``action``, per request) and where a
    sign-up then lands. nurture's own page, or the embed inside another site."""

    action: Callable[[Request], str]
    thanks_path: str


HOSTED = FormPlace(action=lambda _request: "/consult", thanks_path="/consult/thanks")


def form_page(
    request: Request,
    services: ServicesDep,
    *,
    place: FormPlace = HOSTED,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return pages.TemplateResponse(
        request,
        "consult.html",
        {
            "clinic": services.clinic,
            "disclosures": services.disclosures,
            "values": values or {},
            "errors": errors or {},
            "form_action": place.action(request),
            "utm": _utm_to_carry(request, values),
        },
        status_code=status_code,
    )


def _utm_to_carry(request: Request, values: dict[str, Any] | None) -> dict[str, str]:
    """The UTM tags the form carries in hidden fields: those of the address the page was opened
    at (an ad's link), or, when it is shown again with errors, those it was posted with."""
    posted = (values or {}).get("source")
    source = posted if isinstance(posted, dict) else dict(request.query_params)
    return {name: value for name, value in utm_tags(source).items() if value is not None}


@router.get("/consult", response_class=HTMLResponse)
def consult_form(request: Request, services: ServicesDep) -> HTMLResponse:
    return form_page(request, services)


@router.post("/consult", response_class=HTMLResponse)
async def consult_submit(request: Request, services: ServicesDep) -> Response:
    return await submit_form(request, services, shown_on=HOSTED)


async def submit_form(request: Request, services: Services, *, shown_on: FormPlace) -> Response:
    """A sign-up from the form, wherever it was shown."""
    data = signup_from_form(await request.form())
    if is_bot(data):
        return RedirectResponse(shown_on.thanks_path, status_code=303)  # a bot learns nothing
    # The limiter counts in Redis in production: a network round trip, never on the event loop.
    limited = await run_in_threadpool(
        services.signup_limiter.check_ip, request.client.host if request.client else None
    )
    # The wording recorded is the one this server showed, never wording the browser sent.
    data.pop("consent_text", None)
    shown_version = data.pop("consent_version", None)
    wording = services.disclosures
    if isinstance(shown_version, str) and shown_version and shown_version != wording.version:
        # Drawn before a restart with new wording, most likely: that older version, read back.
        wording = await run_in_threadpool(_wording_of, services, shown_version)
    shown = disclosures.Shown(
        wording=wording,
        seller=services.clinic.name,
        # consult.html draws every box unticked; only a re-drawn page with errors keeps the
        # ticks the person had made themselves.
        boxes_started_unticked=True,
    )
    if any(data.get("consent", {}).get(name) for name in CHECKBOXES):
        data["consent_version"] = wording.version
    values = {**data, **data.get("consent", {})}
    if limited is None:
        try:
            signup = parse_signup(data, sms_countries=services.policy.sms.countries)
        except InvalidSignupError as error:
            errors: dict[str, str] = {}
            for problem in error.problems:
                errors.setdefault(problem.field.removeprefix("consent."), problem.message)
            return form_page(
                request, services, place=shown_on, values=values, errors=errors, status_code=422
            )
        limited = await run_in_threadpool(services.signup_limiter.check_phone, signup.phone)
    if limited is not None:
        minutes = max(1, round(limited.retry_after / 60))
        message = (
            f"we have received several requests from this {limited.what} already; please try again "
            f"in {minutes} minutes or call us at {services.clinic.phone}"
        )
        response = form_page(
            request,
            services,
            place=shown_on,
            values=values,
            errors={"form": message},
            status_code=429,
        )
        response.headers["Retry-After"] = str(limited.retry_after)
        return response
    evidence = evidence_from(request, page_url=str(request.url), source=ConsentSource.WEB_FORM)
    await run_in_threadpool(
        submit_signup,
        services.sessions,
        signup,
        evidence,
        catalog=services.catalog,
        clinic_zone=services.clinic.zone,
        shown=shown,
        staff=StaffContact(services.clinic, services.settings.public_url),
    )
    # Post/redirect/get: a reload of the thank-you page never submits twice.
    return RedirectResponse(shown_on.thanks_path, status_code=303)


def _wording_of(services: Services, version: str) -> Disclosures:
    """The wording of the version the page was drawn with; the current one for a version the
    server never showed (a hand-made post). Blocking: it reads the database."""
    with services.read_sessions() as session:
        found = disclosures.find(session, version, current=services.disclosures)
    return found or services.disclosures


@router.get("/consult/thanks", response_class=HTMLResponse)
def consult_thanks(request: Request, services: ServicesDep) -> HTMLResponse:
    # The confirmation text waits for the morning when the sign-up came at night: say so, or
    # a person (or a newcomer trying nurture) concludes texting is broken.
    texts = services.policy.windows.sms
    first_text_from = clock_time((texts.optin or texts.care).start)
    context = {"clinic": services.clinic, "first_text_from": first_text_from}
    return pages.TemplateResponse(request, "thanks.html", context)


def clock_time(minutes: int) -> str:
    """Minutes after midnight as people say it: 480 → "8 a.m.", 1290 → "9:30 p.m."."""
    hour, minute = divmod(minutes % 1440, 60)
    half = "a.m." if hour < 12 else "p.m."
    shown = hour % 12 or 12
    return f"{shown}:{minute:02d} {half}" if minute else f"{shown} {half}"
