"""Sign in, sign out, and the landing page."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from nurture import clock, staff
from nurture.leads import today
from nurture.leads.signup_limits import storage_uri_for
from nurture.runtime import Services
from nurture.staff.login_throttle import LoginThrottle, Throttled
from nurture.web.admin.auth import (
    COOKIE,
    LOGIN_COOKIE,
    StaffDep,
    check_csrf,
    login_token_ok,
    new_login_token,
    set_cookie,
)
from nurture.web.admin.staff_page import render
from nurture.web.deps import ServicesDep

router = APIRouter()


def _safe_next(value: str | None) -> str:
    # Only ever back into the admin: never an open redirect to another site.
    if value and value.startswith("/admin") and not value.startswith("//"):
        return value
    return "/admin/"


def _login_page(
    request: Request,
    services: ServicesDep,
    *,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    nonce, token = new_login_token(services)
    response = render(
        request,
        None,
        "login.html",
        {"token": token, "next": _safe_next(request.query_params.get("next")), "error": error},
        status_code=status,
    )
    response.headers.update(headers or {})
    set_cookie(response, services, LOGIN_COOKIE, nonce, max_age=3600)
    return response


def login_throttle(request: Request, services: Services) -> LoginThrottle:
    """One per app, built on the first sign-in (on the event loop, so never twice); tests may
    put their own in app.state.login_throttle."""
    state = request.app.state
    if getattr(state, "login_throttle", None) is None:
        state.login_throttle = LoginThrottle(storage_uri_for(services.settings.resolved_broker_url))
    throttle: LoginThrottle = state.login_throttle
    return throttle


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, services: ServicesDep) -> Response:
    return _login_page(request, services)


@router.post("/login")
async def login(request: Request, services: ServicesDep) -> Response:
    form = await request.form()
    token = form.get("token")
    if not login_token_ok(
        services, request.cookies.get(LOGIN_COOKIE), token if isinstance(token, str) else None
    ):
        return _login_page(
            request, services, error="The form expired; please sign in again.", status=403
        )
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    client = request.client.host if request.client else None
    throttle = login_throttle(request, services)

    def check() -> staff.LoginResult | Throttled:
        # Throttled before anything about the account is looked at, and without a hash: the
        # answer depends on the submitted address and client only, and costs the server little.
        throttled = throttle.attempt(email, client)
        if throttled:
            return throttled
        with services.sessions.begin() as session:
            result = staff.login(session, email, password, now=clock.utcnow())
        if result.token:
            throttle.succeeded(email, client)
        return result

    result = await run_in_threadpool(check)
    if isinstance(result, Throttled):
        return _login_page(
            request,
            services,
            error=result.message,
            status=429,
            headers={"Retry-After": str(result.retry_after)},
        )
    if result.token is None:
        return _login_page(request, services, error=result.error, status=401)
    response = RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)
    set_cookie(
        response,
        services,
        COOKIE,
        result.token,
        max_age=int(staff.SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/admin")
    return response


@router.post("/logout")
async def logout(request: Request, who: StaffDep, services: ServicesDep) -> Response:
    check_csrf(who, await request.form())

    def end() -> None:
        with services.sessions.begin() as session:
            staff.logout(session, request.cookies.get(COOKIE))
            from nurture.db import audit

            audit.record(session, actor=who.actor, action="staff.logout")

    await run_in_threadpool(end)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path="/admin")
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, who: StaffDep, services: ServicesDep) -> HTMLResponse:
    """The day at a glance (in the clinic's time zone), then the way to each area."""
    zone = services.clinic.zone
    with services.read_sessions() as session:
        glance = today.at_a_glance(session, clinic_zone=zone, now=clock.utcnow())

    def local(moment: datetime) -> str:
        return f"{moment.astimezone(zone):%a %H:%M %Z}"

    return render(request, who, "home.html", {"glance": glance, "local": local})
