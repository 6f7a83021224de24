"""Staff accounts (admins only): who may sign in, with which role; add, update, deactivate."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from nurture import staff
from nurture.content.staff_time import utc_text
from nurture.db.models import StaffRole, StaffUser
from nurture.leads.intake import normalize_email
from nurture.leads.story import parse_row_id
from nurture.runtime import Services
from nurture.staff import directory
from nurture.web.admin.auth import Staff, UsersStaff, check_csrf
from nurture.web.admin.staff_page import render
from nurture.web.deps import ServicesDep

router = APIRouter(prefix="/users")
FIELDS = ("email", "role", "phone")


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _page(
    request: Request,
    services: Services,
    who: Staff,
    *,
    errors: list[str] | None = None,
    entered: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with services.sessions() as session:
        users = directory.users(session)
    return render(
        request,
        who,
        "users.html",
        {
            "users": users,
            "roles": [role.value for role in StaffRole],
            "errors": errors or [],
            "entered": {"email": "", "role": StaffRole.MARKETING.value, "phone": ""}
            | (entered or {}),
            "min_password": staff.MIN_PASSWORD,
            "utc": utc_text,
        },
        status_code=status,
    )


def _same_address(entered: str, own: str) -> bool:
    try:
        return normalize_email(entered) == own
    except ValueError:
        return False


@router.get("", response_class=HTMLResponse)
def list_users(request: Request, services: ServicesDep, who: UsersStaff) -> HTMLResponse:
    return _page(request, services, who)


@router.post("")
async def save_user(request: Request, services: ServicesDep, who: UsersStaff) -> Response:
    form = await request.form()
    check_csrf(who, form)
    entered = {name: _field(form, name) for name in FIELDS}
    password = form.get("password")
    password = password if isinstance(password, str) else ""

    def save() -> None:
        with services.sessions.begin() as session:
            if _same_address(entered["email"], who.user.email) and entered["role"] != who.user.role:
                raise staff.StaffError("role: you cannot change your own role; ask another admin")
            staff.add_user(
                session,
                entered["email"],
                password,
                role=entered["role"],
                phone=entered["phone"] or None,
                actor=who.actor,
                clinic_name=services.clinic.name,
            )

    try:
        await run_in_threadpool(save)
    except staff.StaffError as error:
        errors = [f"Not saved: {error}"]
        return await run_in_threadpool(
            lambda: _page(request, services, who, errors=errors, entered=entered, status=422)
        )
    return RedirectResponse("/admin/users?notice=user-saved", 303)


@router.post("/{user_id}/deactivate")
async def deactivate(
    request: Request, user_id: str, services: ServicesDep, who: UsersStaff
) -> Response:
    check_csrf(who, await request.form())
    parsed = parse_row_id(user_id)

    def act() -> StaffUser | None:
        if parsed is None:
            return None
        with services.sessions.begin() as session:
            by = session.get_one(StaffUser, who.user.id)
            return directory.deactivate(session, parsed, by=by, actor=who.actor)

    try:
        user = await run_in_threadpool(act)
    except staff.StaffError as error:
        errors = [f"Not deactivated: {error}"]
        return await run_in_threadpool(
            lambda: _page(request, services, who, errors=errors, status=422)
        )
    if user is None:
        raise HTTPException(404, "no such staff user")
    return RedirectResponse("/admin/users?notice=user-saved", 303)
