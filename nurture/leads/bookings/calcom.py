"""Cal.com webhooks: ``X-Cal-Signature-256`` is the hex HMAC-SHA256 of the raw body with the
webhook's secret (no timestamp: Cal.com signs nothing that could expire, so replays are
caught by deduplication). A reschedule is one ``BOOKING_RESCHEDULED`` whose ``uid`` is the
new booking and ``rescheduleUid`` the old one."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from nurture.leads.bookings.event import (
    BookingEvent,
    BookingKind,
    Invitee,
    PayloadError,
    SignatureError,
    hex_hmac_sha256,
    obj,
    parse_instant,
    same,
    split_name,
    text,
)

SIGNATURE_HEADER = "X-Cal-Signature-256"

KINDS = {
    "BOOKING_CREATED": BookingKind.BOOKED,
    "BOOKING_RESCHEDULED": BookingKind.RESCHEDULED,
    "BOOKING_CANCELLED": BookingKind.CANCELLED,
    "BOOKING_REJECTED": BookingKind.CANCELLED,
    "BOOKING_NO_SHOW_UPDATED": BookingKind.NO_SHOW,
    "MEETING_ENDED": BookingKind.COMPLETED,
}


def verify(header: str | None, body: bytes, secret: str) -> None:
    if not header:
        raise SignatureError(f"{SIGNATURE_HEADER} is missing")
    if not same(hex_hmac_sha256(secret.encode(), body), header.strip()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")


def parse(body: bytes, *, now: datetime) -> BookingEvent:
    try:
        envelope = obj(json.loads(body), "body")
    except (ValueError, RecursionError):
        raise PayloadError("body", "not JSON") from None
    trigger = text(envelope, "triggerEvent") or ""
    # MEETING_STARTED/ENDED are sent flat: the booking's fields at the top level.
    payload = obj(envelope.get("payload", envelope), "payload")
    created = envelope.get("createdAt")
    occurred_at = parse_instant(created, "createdAt") if created else now
    kind = KINDS.get(trigger, BookingKind.IGNORED)
    uid = text(payload, "uid", "payload.uid") or text(payload, "bookingUid", "payload.bookingUid")
    if uid is None:
        if kind is not BookingKind.IGNORED:
            raise PayloadError("payload.uid", "the booking's uid is missing")
        uid = trigger or "unknown"
    attendees = payload.get("attendees") or []
    if not isinstance(attendees, list):
        raise PayloadError("payload.attendees", "must be a list")
    first = obj(attendees[0], "payload.attendees[0]") if attendees else {}
    if kind is BookingKind.NO_SHOW and first.get("noShow") is not True:
        kind = BookingKind.IGNORED  # a no-show taken back: the booking stands as it was
    start = payload.get("startTime")
    key_time = created if isinstance(created, str) else text(payload, "endTime") or ""
    return BookingEvent(
        provider="calcom",
        delivery_key=f"{trigger}:{uid}:{key_time}",
        booking_key=uid,
        kind=kind,
        occurred_at=occurred_at,
        consult_at=(
            parse_instant(start, "payload.startTime")
            if start and kind in (BookingKind.BOOKED, BookingKind.RESCHEDULED)
            else None
        ),
        event_types=_event_types(payload),
        invitee=_invitee(payload, first),
        replaces=text(payload, "rescheduleUid", "payload.rescheduleUid"),
        provider_event=trigger,
    )


def _event_types(payload: dict[str, Any]) -> tuple[str, ...] | None:
    names = tuple(
        str(value)
        for value in (payload.get("eventTypeId"), payload.get("type"))
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value)
    )
    return names or None


def _invitee(payload: dict[str, Any], attendee: dict[str, Any]) -> Invitee:
    responses = payload.get("responses") if isinstance(payload.get("responses"), dict) else {}
    assert isinstance(responses, dict)

    def answer(name: str) -> str | None:
        entry = responses.get(name)
        value = entry.get("value") if isinstance(entry, dict) else None
        return value.strip() or None if isinstance(value, str) else None

    first = text(attendee, "firstName", "payload.attendees[0].firstName")
    last = text(attendee, "lastName", "payload.attendees[0].lastName")
    if first is None:
        first, last = split_name(text(attendee, "name", "payload.attendees[0].name"))
    reminders = text(payload, "smsReminderNumber", "payload.smsReminderNumber")
    return Invitee(
        email=text(attendee, "email", "payload.attendees[0].email") or answer("email"),
        phone=(
            text(attendee, "phoneNumber", "payload.attendees[0].phoneNumber")
            or answer("attendeePhoneNumber")
            or reminders
        ),
        first_name=first or "",
        last_name=last or "",
        text_reminder_number=reminders,
        text_reminder_field="smsReminderNumber" if reminders else None,
        timezone=text(attendee, "timeZone", "payload.attendees[0].timeZone"),
    )
