"""Booking tools' webhooks as their providers send them: payloads shaped as each documents
them (/work/shared/research/integrations.md §1a–1d) and signed exactly as each signs, written
here independently of nurture's own verification so a mistake there shows."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

CALENDLY_KEY = "calendly-test-signing-key"
CALCOM_SECRET = "calcom-test-secret"
ACUITY_API_KEY = "acuity-test-api-key"
ACUITY_USER_ID = "12345"
SQUARE_KEY = "square-test-signature-key"
SQUARE_TOKEN = "square-test-access-token"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- Calendly: Calendly-Webhook-Signature: t=<unix>,v1=hex(HMAC-SHA256(key, "<t>." + body))
def calendly_headers(
    body: bytes, *, key: str = CALENDLY_KEY, at: float | None = None
) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    digest = hmac.new(key.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Calendly-Webhook-Signature": f"t={stamp},v1={digest}",
        "Content-Type": "application/json",
    }


def calendly_invitee(
    event: str,
    *,
    invitee: str,
    created_at: datetime,
    start: datetime,
    email: str = "jo@example.com",
    name: str = "Jo Doe",
    text_reminder_number: str | None = None,
    rescheduled: bool = False,
    old_invitee: str | None = None,
    new_invitee: str | None = None,
    event_type: str = "https://api.calendly.com/event_types/CONSULT",
    event_name: str = "Free consultation",
) -> bytes:
    """An ``invitee.created`` / ``invitee.canceled`` delivery (API v2 envelope)."""
    scheduled = invitee.rsplit("/invitees/", 1)[0]
    payload: dict[str, Any] = {
        "event": event,
        "created_at": iso(created_at),
        "created_by": "https://api.calendly.com/users/AAAA",
        "payload": {
            "uri": invitee,
            "email": email,
            "name": name,
            "first_name": None,
            "last_name": None,
            "status": "canceled" if event == "invitee.canceled" else "active",
            "text_reminder_number": text_reminder_number,
            "timezone": "America/Boise",
            "rescheduled": rescheduled,
            "old_invitee": old_invitee,
            "new_invitee": new_invitee,
            "questions_and_answers": [],
            "tracking": {"utm_source": None, "utm_medium": None, "utm_campaign": None},
            "cancellation": (
                {"canceled_by": name, "reason": "conflict", "canceler_type": "invitee"}
                if event == "invitee.canceled"
                else None
            ),
            "no_show": None,
            "created_at": iso(created_at),
            "updated_at": iso(created_at),
            "scheduled_event": {
                "uri": scheduled,
                "name": event_name,
                "event_type": event_type,
                "status": "canceled"
                if event == "invitee.canceled" and not rescheduled
                else "active",
                "start_time": iso(start),
                "end_time": iso(start.replace(minute=30) if start.minute < 30 else start),
            },
        },
    }
    return json.dumps(payload).encode()


def calendly_no_show(*, invitee: str, created_at: datetime) -> bytes:
    payload = {
        "event": "invitee_no_show.created",
        "created_at": iso(created_at),
        "created_by": "https://api.calendly.com/users/AAAA",
        "payload": {
            "uri": "https://api.calendly.com/invitee_no_shows/NNNN",
            "invitee": invitee,
            "created_at": iso(created_at),
        },
    }
    return json.dumps(payload).encode()


# --- Cal.com: X-Cal-Signature-256: hex(HMAC-SHA256(secret, body))
def calcom_headers(body: bytes, *, secret: str = CALCOM_SECRET) -> dict[str, str]:
    return {
        "X-Cal-Signature-256": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "x-cal-webhook-version": "2021-10-20",
        "Content-Type": "application/json",
    }


def calcom_booking(
    trigger: str,
    *,
    uid: str,
    created_at: datetime,
    start: datetime,
    email: str = "cal@example.com",
    sms_reminder_number: str | None = None,
    reschedule_uid: str | None = None,
    event_type_id: int = 42,
    slug: str = "consultation",
) -> bytes:
    payload: dict[str, Any] = {
        "uid": uid,
        "bookingId": 100,
        "type": slug,
        "eventTypeId": event_type_id,
        "title": "Consultation between Clinic and Cal Person",
        "startTime": iso(start),
        "endTime": iso(start.replace(minute=45)),
        "status": "CANCELLED" if trigger == "BOOKING_CANCELLED" else "ACCEPTED",
        "attendees": [
            {
                "email": email,
                "name": "Cal Person",
                "firstName": "Cal",
                "lastName": "Person",
                "timeZone": "America/Boise",
            }
        ],
        "responses": {
            "name": {"label": "your_name", "value": "Cal Person"},
            "email": {"label": "email_address", "value": email},
        },
        "organizer": {"email": "clinic@example.com", "name": "Clinic", "timeZone": "America/Boise"},
    }
    if sms_reminder_number:
        payload["smsReminderNumber"] = sms_reminder_number
    if reschedule_uid:
        payload["rescheduleUid"] = reschedule_uid
        payload["rescheduleId"] = 99
    body = {"triggerEvent": trigger, "createdAt": iso(created_at), "payload": payload}
    return json.dumps(body).encode()


def calcom_no_show(*, uid: str, created_at: datetime, email: str = "cal@example.com") -> bytes:
    body = {
        "triggerEvent": "BOOKING_NO_SHOW_UPDATED",
        "createdAt": iso(created_at),
        "payload": {
            "message": f"{email} marked as no-show",
            "attendees": [{"email": email, "noShow": True}],
            "bookingUid": uid,
            "bookingId": 100,
        },
    }
    return json.dumps(body).encode()


# --- Acuity: form body; X-Acuity-Signature: base64(HMAC-SHA256(API key, body))
def acuity_notice(action: str, appointment_id: int, *, type_id: int = 1) -> bytes:
    return urlencode(
        {"action": action, "id": appointment_id, "calendarID": 27238, "appointmentTypeID": type_id}
    ).encode()


def acuity_headers(body: bytes, *, api_key: str = ACUITY_API_KEY) -> dict[str, str]:
    digest = hmac.new(api_key.encode(), body, hashlib.sha256).digest()
    return {
        "X-Acuity-Signature": base64.b64encode(digest).decode(),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def acuity_appointment(
    appointment_id: int,
    *,
    start: datetime,
    email: str = "acu@example.com",
    phone: str = "(208) 555-0177",
    sms_opt_in: bool = False,
    canceled: bool = False,
    no_show: bool = False,
    type_id: int = 1,
) -> dict[str, Any]:
    """``GET /appointments/{id}`` as Acuity answers it (``datetime`` with an offset)."""
    return {
        "id": appointment_id,
        "firstName": "Acu",
        "lastName": "Person",
        "phone": phone,
        "email": email,
        "date": start.strftime("%B %d, %Y"),
        "time": start.strftime("%I:%M%p").lower(),
        "datetime": start.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "endTime": "",
        "timezone": "America/Boise",
        "price": "0.00",
        "paid": "no",
        "type": "Free consultation",
        "appointmentTypeID": type_id,
        "calendar": "Clinic",
        "calendarID": 27238,
        "canceled": canceled,
        "noShow": no_show,
        "smsOptIn": sms_opt_in,
        "labels": None,
        "forms": [],
    }


# --- Square: x-square-hmacsha256-signature: base64(HMAC-SHA256(key, notification URL + body))
def square_headers(body: bytes, url: str, *, key: str = SQUARE_KEY) -> dict[str, str]:
    digest = hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()
    return {
        "x-square-hmacsha256-signature": base64.b64encode(digest).decode(),
        "Content-Type": "application/json",
    }


def square_booking(
    event_type: str,
    *,
    event_id: str,
    booking_id: str,
    updated_at: datetime,
    start: datetime,
    status: str = "ACCEPTED",
    customer_id: str = "CUST1",
    version: int = 0,
    service_variation_id: str = "CONSULTVAR",
) -> bytes:
    booking = {
        "id": booking_id,
        "version": version,
        "status": status,
        "created_at": iso(updated_at),
        "updated_at": iso(updated_at),
        "start_at": iso(start),
        "location_id": "LOC1",
        "customer_id": customer_id,
        "appointment_segments": [
            {
                "duration_minutes": 60,
                "service_variation_id": service_variation_id,
                "team_member_id": "TM1",
                "service_variation_version": 1,
            }
        ],
    }
    body = {
        "merchant_id": "MERCHANT1",
        "type": event_type,
        "event_id": event_id,
        "created_at": iso(updated_at),
        "data": {"type": "booking", "id": booking_id, "object": {"booking": booking}},
    }
    return json.dumps(body).encode()
