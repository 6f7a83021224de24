"""Staff: accounts, roles and sign-in.

- `accounts`: staff users, passwords (argon2, zxcvbn), sessions, CSRF, roles.
- `directory`: who is on call and who gets alerts.
- `login_throttle`: the per-address and per-IP sign-in limits.
"""

from nurture.staff.accounts import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    MIN_STRENGTH,
    ROLE_AREAS,
    SESSION_LIFETIME,
    WRONG_CREDENTIALS,
    LoginResult,
    StaffError,
    actor,
    add_user,
    all_users,
    csrf_ok,
    deactivate_user,
    login,
    logout,
    may_open,
    password_problem,
    session_for,
)

__all__ = [
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "MIN_STRENGTH",
    "ROLE_AREAS",
    "SESSION_LIFETIME",
    "WRONG_CREDENTIALS",
    "LoginResult",
    "StaffError",
    "actor",
    "add_user",
    "all_users",
    "csrf_ok",
    "deactivate_user",
    "login",
    "logout",
    "may_open",
    "password_problem",
    "session_for",
]
