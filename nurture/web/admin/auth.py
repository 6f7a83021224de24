"""Who is asking: the staff session behind the cookie, role checks and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response
from starlette.datastructures import FormData

from nurture import clock, staff
from nurture.db.models import Pause, PauseScope, StaffSession, StaffUser
from nurture.outbox import pauses
from nurture.runtime import Services
from nurture.web.deps import ServicesDep

COOKIE = "nurture_staff"
LOGIN_COOKIE = "nurture_login"


class LoginRequiredError(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


@dataclass(frozen=True)
class Staff:
    user: StaffUser
    session: StaffSession
    # What is paused right now, in words: every admin page shows it (a kill switch left on is
    # the quietest outage there is).
    paused: tuple[str, ...] = ()

    @property
    def actor(self) -> str:
        return staff.actor(self.user)

    @property
    def csrf(self) -> str:
        return self.session.csrf_token

    def may(self, area: str) -> bool:
        return staff.may_open(self.user, area)


def set_cookie(
    response: Response, services: Services, name: str, value: str, *, max_age: int
) -> None:
    """HttpOnly, SameSite=Lax, only under /admin, and Secure whenever the site uses https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        path="/admin",
        secure=services.settings.public_url.startswith("https://"),
    )


def current_staff(request: Request, services: ServicesDep) -> Staff:
    with services.read_sessions() as session:
        found = staff.session_for(session, request.cookies.get(COOKIE), now=clock.utcnow())
        paused = tuple(_in_words(pause) for pause in pauses.active(session)) if found else ()
    if found is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequiredError(path)
    return Staff(user=found[1], session=found[0], paused=paused)


def _in_words(pause: Pause) -> str:
    if pause.scope is PauseScope.ALL:
        what = "everything"
    elif pause.scope is PauseScope.CHANNEL:
        channel, purpose = pauses.channel_purpose(pause.value)
        what = f"{purpose.value} {channel.value}" if purpose else f"all {channel.value}"
    else:
        what = f"the sequence {pause.value}"
    return f"{what} ({pause.reason})"


StaffDep = Annotated[Staff, Depends(current_staff)]


def area(name: str) -> Callable[[Staff], Staff]:
    """A dependency: the signed-in staff member, if their role opens ``name``; 403 otherwise."""

    def check(who: StaffDep) -> Staff:
        if not who.may(name):
            raise HTTPException(403, f"your role ({who.user.role.value}) cannot open {name}")
        return who

    return check


TemplatesStaff = Annotated[Staff, Depends(area("templates"))]
SequencesStaff = Annotated[Staff, Depends(area("sequences"))]
LeadsStaff = Annotated[Staff, Depends(area("leads"))]
InboxStaff = Annotated[Staff, Depends(area("inbox"))]
OpsStaff = Annotated[Staff, Depends(area("ops"))]
UsersStaff = Annotated[Staff, Depends(area("users"))]


def check_csrf(who: Staff, form: FormData | None = None, header: str | None = None) -> None:
    submitted = header if header is not None else (form.get("csrf") if form is not None else None)
    if not staff.csrf_ok(who.session, submitted if isinstance(submitted, str) else None):
        raise HTTPException(
            403, "the form expired or did not come from this site (CSRF); reload and retry"
        )


# Login happens before there is a session, so its form uses a signed double-submit token.
def new_login_token(services: Services) -> tuple[str, str]:
    nonce = secrets.token_urlsafe(16)
    signature = hmac.new(services.secret, f"login:{nonce}".encode(), hashlib.sha256).hexdigest()
    return nonce, signature


def login_token_ok(services: Services, cookie: str | None, submitted: str | None) -> bool:
    if not cookie or not submitted:
        return False
    expected = hmac.new(services.secret, f"login:{cookie}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, submitted)


def login_redirect(next_path: str) -> str:
    return f"/admin/login?next={quote(next_path, safe='')}"
