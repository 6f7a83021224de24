"""Leads: how a person arrives, is found, and what has happened to them.

- `intake`: the sign-up: validation, identity (e-mail/phone normalisation), all-or-nothing insert.
- `signup_limits`: the per-address and per-IP sign-up limits.
- `lifecycle`: lifecycle events (booked, cancelled, no-show …) and what they plan or cancel.
- `search`: finding leads for staff.
- `story`: a lead's timeline for the front desk.
"""

from nurture.leads.intake import (
    HONEYPOT_FIELD,
    JOINERS,
    MAX_SOURCE_BYTES,
    NAME_REFUSED,
    NOT_A_MOBILE,
    ZIP_CODE,
    ConsentChoices,
    FieldProblem,
    InvalidSignupError,
    RequestEvidence,
    Signup,
    SignupResult,
    cross_field_problems,
    find_existing,
    find_lead,
    is_bot,
    normalize_email,
    normalize_phone,
    parse_signup,
    submit_signup,
)

__all__ = [
    "HONEYPOT_FIELD",
    "JOINERS",
    "MAX_SOURCE_BYTES",
    "NAME_REFUSED",
    "NOT_A_MOBILE",
    "ZIP_CODE",
    "ConsentChoices",
    "FieldProblem",
    "InvalidSignupError",
    "RequestEvidence",
    "Signup",
    "SignupResult",
    "cross_field_problems",
    "find_existing",
    "find_lead",
    "is_bot",
    "normalize_email",
    "normalize_phone",
    "parse_signup",
    "submit_signup",
]
