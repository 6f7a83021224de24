"""Acuity Scheduling webhooks: a form (``action``, ``id``, ``calendarID``,
``appointmentTypeID``) signed in ``X-Acuity-Signature`` as base64 HMAC-SHA256 of the raw body
with the account's API key. The body carries only ids, so the appointment is read from
Acuity's API (``GET /appointments/{id}``, basic auth user id : API key) before anything is
written; what it says now is the truth, whichever webhook arrived first."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote

from nurture.leads.bookings.event import (
    BookingEvent,
    BookingKind,
    Invitee,
    PayloadError,
    SignatureError,
    parse_instant,
    same,
    text,
)
from nurture.leads.bookings.fetching import Fetcher

SIGNATURE_HEADER = "X-Acuity-Signature"
APPOINTMENT_ACTIONS = frozenset(
    {"scheduled", "rescheduled", "canceled", "changed"}
    | {f"appointment.{name}" for name in ("scheduled", "rescheduled", "canceled", "changed")}
)


def signature(api_key: str, body: bytes) -> str:
    digest = hmac.new(api_key.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(header: str | None, body: bytes, api_key: str) -> None:
    if not header:
        raise SignatureError(f"{SIGNATURE_HEADER} is missing")
    if not same(signature(api_key, body), header.strip()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")


def parse_notice(body: bytes) -> tuple[str, str | None]:
    """(action, appointment id); the id is None for what is not an appointment (an order)."""
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise PayloadError("body", "not UTF-8 form data") from None
    action = (form.get("action") or [""])[0].strip()
    if not action:
        raise PayloadError("action", "missing")
    if action not in APPOINTMENT_ACTIONS:
        return action, None
    identifier = (form.get("id") or [""])[0].strip()
    if not identifier.isdecimal() or len(identifier) > 18:
        raise PayloadError("id", "must be the appointment's number")
    return action, identifier


def fetch_appointment(
    fetcher: Fetcher, *, api_url: str, user_id: str, api_key: str, appointment_id: str
) -> dict[str, Any]:
    return fetcher.get_json(
        f"{api_url.rstrip('/')}/appointments/{quote(appointment_id)}",
        what=f"Acuity appointment {appointment_id}",
        auth=(user_id, api_key),
    )


def ignored(action: str, now: datetime) -> BookingEvent:
    return BookingEvent(
        "acuity",
        f"{action}:{now.isoformat()}",
        action,
        BookingKind.IGNORED,
        now,
        provider_event=action,
    )


def event_from_appointment(
    action: str, appointment: dict[str, Any], *, now: datetime
) -> BookingEvent:
    """The appointment as Acuity has it now, as one change of its booking."""
    identifier = appointment.get("id")
    if isinstance(identifier, bool) or not isinstance(identifier, int | str) or not str(identifier):
        raise PayloadError("appointment.id", "missing")
    start = parse_instant(appointment.get("datetime"), "appointment.datetime")
    labels = appointment.get("labels") or []
    label_names = (
        {str(label.get("name", "")).casefold() for label in labels if isinstance(label, dict)}
        if isinstance(labels, list)
        else set()
    )
    if appointment.get("canceled") is True:
        kind, state = BookingKind.CANCELLED, "canceled"
    elif appointment.get("noShow") is True:
        kind, state = BookingKind.NO_SHOW, "no_show"
    elif "completed" in label_names:
        kind, state = BookingKind.COMPLETED, "completed"
    else:
        kind, state = BookingKind.BOOKED, "active"
    phone = text(appointment, "phone", "appointment.phone")
    texts = appointment.get("smsOptIn") is True and phone is not None
    type_id = appointment.get("appointmentTypeID")
    return BookingEvent(
        provider="acuity",
        # The state it is in, not the action: "changed" and "scheduled" for the same booking
        # as it is count once (Acuity warns that they duplicate each other).
        delivery_key=f"{identifier}:{start.isoformat()}:{state}",
        booking_key=str(identifier),
        kind=kind,
        occurred_at=now,
        consult_at=start if kind is BookingKind.BOOKED else None,
        event_types=tuple(
            str(value)
            for value in (type_id, appointment.get("type"))
            if isinstance(value, int | str) and not isinstance(value, bool) and str(value)
        ),
        invitee=Invitee(
            email=text(appointment, "email", "appointment.email"),
            phone=phone,
            first_name=text(appointment, "firstName", "appointment.firstName") or "",
            last_name=text(appointment, "lastName", "appointment.lastName") or "",
            text_reminder_number=phone if texts else None,
            text_reminder_field="smsOptIn" if texts else None,
            timezone=text(appointment, "timezone", "appointment.timezone"),
        ),
        provider_event=action,
    )
