"""Staff accounts, passwords (argon2), sessions, lockout and CSRF tokens for the admin UI."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nurture import audit
from nurture.leads import normalize_email, normalize_phone
from nurture.models import StaffRole, StaffSession, StaffUser

MIN_PASSWORD = 12
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
_hasher = PasswordHasher()
# Verifying against this when the e-mail is unknown keeps both answers equally slow.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0123456789")

# What each role may open; admin may open everything.
ROLE_AREAS = {
    StaffRole.MARKETING: {"templates", "sequences"},
    StaffRole.OPS: {"ops", "leads", "inbox", "sequences"},
    StaffRole.ADMIN: {"templates", "sequences", "ops", "leads", "inbox", "users"},
}


class StaffError(ValueError):
    pass


def actor(user: StaffUser) -> str:
    return f"staff:{user.email}"


def add_user(
    session: Session, email: str, password: str, *, role: str, phone: str | None, actor: str
) -> tuple[StaffUser, bool]:
    try:
        address = normalize_email(email)
    except ValueError as error:
        raise StaffError(f"e-mail: {error}") from None
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"password: use at least {MIN_PASSWORD} characters")
    try:
        staff_role = StaffRole(role)
        number = normalize_phone(phone) if phone else None
    except ValueError as error:
        raise StaffError(str(error)) from None
    user = session.scalars(select(StaffUser).where(StaffUser.email == address)).one_or_none()
    created = user is None
    if user is None:
        user = StaffUser(email=address, password_hash="", role=staff_role)
        session.add(user)
    user.password_hash = _hasher.hash(password)
    user.role = staff_role
    user.phone = number or user.phone
    user.active = True
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="staff.user_saved",
        details={"email": address, "role": staff_role.value, "created": created},
    )
    return user, created


@dataclass(frozen=True)
class LoginResult:
    user: StaffUser | None
    token: str | None
    error: str | None


def login(session: Session, email: str, password: str, *, now: datetime) -> LoginResult:
    """Check a password; after MAX_FAILURES wrong ones the account waits LOCKOUT."""
    generic = "wrong e-mail or password"
    try:
        address = normalize_email(email)
    except ValueError:
        return LoginResult(None, None, generic)
    user = session.scalars(select(StaffUser).where(StaffUser.email == address)).one_or_none()
    if user is None or not user.active:
        _verify(_DUMMY_HASH, password)
        return LoginResult(None, None, generic)
    if user.locked_until is not None and user.locked_until > now:
        audit.record(session, actor=actor(user), action="staff.login_refused_locked")
        return LoginResult(None, None, "too many failed attempts; try again in a few minutes")
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            audit.record(session, actor=actor(user), action="staff.locked_out")
        audit.record(session, actor=actor(user), action="staff.login_failed")
        return LoginResult(None, None, generic)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_hash=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    audit.record(session, actor=actor(user), action="staff.login")
    return LoginResult(user, token, None)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_for(
    session: Session, token: str | None, *, now: datetime
) -> tuple[StaffSession, StaffUser] | None:
    if not token:
        return None
    found = session.execute(
        select(StaffSession, StaffUser)
        .join(StaffUser, StaffUser.id == StaffSession.user_id)
        .where(
            StaffSession.token_hash == _digest(token),
            StaffSession.expires_at > now,
            StaffUser.active,
        )
    ).one_or_none()
    return (found[0], found[1]) if found else None


def logout(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(StaffSession).where(StaffSession.token_hash == _digest(token)))


def csrf_ok(staff_session: StaffSession, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(staff_session.csrf_token, submitted or "")


def may_open(user: StaffUser, area: str) -> bool:
    return area in ROLE_AREAS[user.role]
