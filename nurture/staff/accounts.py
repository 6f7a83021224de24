"""Staff accounts, passwords (argon2, strength by zxcvbn), sessions and CSRF tokens for the
admin UI. How often someone may try to sign in is `nurture.staff.login_throttle`'s job, not
the account's: an account row never changes how a sign-in answers."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import StaffRole, StaffSession, StaffUser
from nurture.leads.intake import normalize_email, normalize_phone

MIN_PASSWORD = 12
# zxcvbn's cost grows with the length; 128 leaves room for any passphrase.
MAX_PASSWORD = 128
# zxcvbn's 0-4 scale: 3 is "safely unguessable" (about 10^8 guesses or more) for an online attack.
MIN_STRENGTH = 3
SESSION_LIFETIME = timedelta(hours=12)
WRONG_CREDENTIALS = "wrong e-mail or password"
_hasher = PasswordHasher()
# Every sign-in attempt verifies one hash, against this one when there is no active account for
# the address: known, unknown and switched-off addresses then cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0123456789")
# zxcvbn keeps the user inputs of the call in module state: two threads at once would mix them.
_zxcvbn_lock = threading.Lock()

# What each role may open; admin may open everything.
ROLE_AREAS = {
    # reach: leads without contact details; funnel: counts only
    StaffRole.MARKETING: {"templates", "sequences", "reach", "funnel"},
    StaffRole.OPS: {"ops", "leads", "inbox", "sequences"},
    StaffRole.ADMIN: {
        "templates",
        "sequences",
        "reach",
        "funnel",
        "ops",
        "leads",
        "inbox",
        "users",
    },
}


class StaffError(ValueError):
    pass


def actor(user: StaffUser) -> str:
    return f"staff:{user.email}"


def add_user(
    session: Session,
    email: str,
    password: str,
    *,
    role: str,
    phone: str | None,
    actor: str,
    clinic_name: str = "",
) -> tuple[StaffUser, bool]:
    """Create an account or reset its password and role. clinic_name is one more thing the
    password must not be made of (every caller that knows the clinic passes it)."""
    try:
        address = normalize_email(email)
    except ValueError as error:
        raise StaffError(f"e-mail: {error}") from None
    problem = password_problem(password, email=address, clinic_name=clinic_name)
    if problem:
        raise StaffError(f"password: {problem}")
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
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="staff.user_saved",
        details={"email": address, "role": staff_role.value, "created": created},
    )
    return user, created


def deactivate_user(session: Session, email: str, *, actor: str) -> StaffUser:
    """Close an account: it can no longer sign in, and its open sessions end now. The last
    active admin cannot be closed (nobody could then manage accounts from the admin UI)."""
    user = session.scalars(
        select(StaffUser).where(StaffUser.email == email.strip().lower())
    ).one_or_none()
    if user is None:
        raise StaffError(f"no staff account {email.strip()!r}")
    if user.active and user.role is StaffRole.ADMIN:
        admins = session.scalars(
            select(StaffUser.id).where(StaffUser.active, StaffUser.role == StaffRole.ADMIN)
        ).all()
        if len(admins) <= 1:
            raise StaffError(f"{user.email} is the last active admin; add another admin first")
    user.active = False
    session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    audit.record(
        session,
        actor=actor,
        action="staff.user_deactivated",
        details={"email": user.email, "role": user.role.value},
    )
    return user


def all_users(session: Session) -> list[StaffUser]:
    """Every account, active ones first, then by e-mail."""
    return list(
        session.scalars(select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.email))
    )


def password_problem(password: str, *, email: str, clinic_name: str = "") -> str | None:
    """Why this password is too easy to guess for this person, or None when it is good enough.

    Length alone lets `aaaaaaaaaaaa` through; zxcvbn estimates how many guesses a password
    takes (dictionaries, keyboard patterns, repeats, dates), and is told the words an attacker
    would try first for this account: its address, the parts of it, the clinic's name."""
    if len(password) < MIN_PASSWORD:
        return f"use at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"use at most {MAX_PASSWORD} characters"
    # Imported here: its dictionaries are 13 MB that every web process and worker would hold
    # from start (docs/benchmarks.md, embedded memory), for the rare moment a password is set.
    from zxcvbn import zxcvbn

    with _zxcvbn_lock:
        estimate = zxcvbn(
            password, user_inputs=_guessable_words(email, clinic_name), max_length=MAX_PASSWORD
        )
    if int(estimate["score"]) >= MIN_STRENGTH:
        return None
    feedback = estimate["feedback"]
    advice = [str(feedback["warning"]), *(str(line) for line in feedback["suggestions"])]
    if any(part.get("dictionary_name") == "user_inputs" for part in estimate["sequence"]):
        advice.insert(0, "It is built from the e-mail address or the clinic's name.")
    reasons = " ".join(line for line in advice if line) or "Add another word or two."
    return f"too easy to guess. {reasons}"


def _guessable_words(email: str, clinic_name: str) -> list[str]:
    # "ann.lee@clinic.example" -> the address, "ann.lee", "ann", "lee", "clinic", "example".
    words = [email, *email.split("@"), clinic_name, "nurture"]
    pieces = [piece for word in words for piece in re.split(r"[^\w]+", word)]
    return sorted({word for word in [*words, *pieces] if word})


@dataclass(frozen=True)
class LoginResult:
    user: StaffUser | None
    token: str | None
    error: str | None


def login(session: Session, email: str, password: str, *, now: datetime) -> LoginResult:
    """Check a password. Every attempt verifies exactly one argon2 hash and every failure gives
    the same answer, so neither the answer nor its timing says whether the address has an
    account, or an active one. Throttling happens before this, on what was submitted."""
    user = _active_user(session, email)
    matches = _verify(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not matches:
        # Recorded in both cases, so both cost one insert as well as one hash.
        audit.record(session, actor=actor(user) if user else "public", action="staff.login_failed")
        return LoginResult(None, None, WRONG_CREDENTIALS)
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


def _active_user(session: Session, email: str) -> StaffUser | None:
    try:
        address = normalize_email(email)
    except ValueError:
        # Looked up anyway (finds nothing), so a malformed address costs what an unknown one does.
        address = email
    user = session.scalars(select(StaffUser).where(StaffUser.email == address)).one_or_none()
    return user if user is not None and user.active else None


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
