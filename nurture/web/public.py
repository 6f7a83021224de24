"""Public pages: the hosted consult sign-up form."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from nurture.db.models import ConsentSource
from nurture.leads.intake import InvalidSignupError, is_bot, parse_signup, submit_signup
from nurture.web.api import CHECKBOXES, signup_from_form
from nurture.web.deps import ServicesDep, evidence_from
from nurture.web.templating import pages

router = APIRouter()


def _form_page(
    request: Request,
    services: ServicesDep,
    *,
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
        },
        status_code=status_code,
    )


@router.get("/consult", response_class=HTMLResponse)
def consult_form(request: Request, services: ServicesDep) -> HTMLResponse:
    return _form_page(request, services)


@router.post("/consult", response_class=HTMLResponse)
async def consult_submit(request: Request, services: ServicesDep) -> Response:
    data = signup_from_form(await request.form())
    if is_bot(data):
        return RedirectResponse("/consult/thanks", status_code=303)  # a bot learns nothing
    # The limiter counts in Redis in production: a network round trip, never on the event loop.
    limited = await run_in_threadpool(
        services.signup_limiter.check_ip, request.client.host if request.client else None
    )
    # The disclosure recorded is the one this server showed, not whatever the browser sent.
    ticked = [name for name in CHECKBOXES if data.get("consent", {}).get(name)]
    data.pop("consent_text", None)
    data.pop("consent_version", None)
    if ticked:
        data["consent_text"] = services.disclosures.text_for(ticked)
        data["consent_version"] = services.disclosures.version
    values = {**data, **data.get("consent", {})}
    if limited is None:
        try:
            signup = parse_signup(data, sms_countries=services.policy.sms.countries)
        except InvalidSignupError as error:
            errors: dict[str, str] = {}
            for problem in error.problems:
                errors.setdefault(problem.field.removeprefix("consent."), problem.message)
            return _form_page(request, services, values=values, errors=errors, status_code=422)
        limited = await run_in_threadpool(services.signup_limiter.check_phone, signup.phone)
    if limited is not None:
        minutes = max(1, round(limited.retry_after / 60))
        message = (
            f"we have received several requests from this {limited.what} already; please try again "
            f"in {minutes} minutes or call us at {services.clinic.phone}"
        )
        response = _form_page(
            request, services, values=values, errors={"form": message}, status_code=429
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
    )
    # Post/redirect/get: a reload of the thank-you page never submits twice.
    return RedirectResponse("/consult/thanks", status_code=303)


@router.get("/consult/thanks", response_class=HTMLResponse)
def consult_thanks(request: Request, services: ServicesDep) -> HTMLResponse:
    return pages.TemplateResponse(request, "thanks.html", {"clinic": services.clinic})
